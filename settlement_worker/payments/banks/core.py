"""What a simulated bank decides, shared by the in-process fake and the simulator process.

A bank keeps a ledger of the payments it executed and of its decision on every attempt:

* a send of a payment id already paid answers PAID and pays nothing (dedupe);
* a send it has decided before (the same attempt, redelivered) gets the same answer;
* a send past its deadline is refused, "expired";
* otherwise it fails with probability `failure_rate`, decided by a hash of the seed, the
  payment id and the attempt (deterministic, and the same after a restart), or pays.

A query answers PAID, the attempt's recorded REJECTED, NOT_FOUND once the bank's clock is
past the send's deadline (from then on that send can only expire), or PENDING before.
"""

from __future__ import annotations

import hashlib
import sqlite3
from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path

from rex.private_files import private_database
from settlement_worker.payments.banks import BankOutcome, SendRequest

__all__ = [
    "BankLedger",
    "BankRules",
    "MemoryBankLedger",
    "SqliteBankLedger",
    "chance",
]


def chance(*parts: object) -> float:
    """A number in [0, 1) determined by `parts` (a seeded, reproducible coin)."""
    digest = hashlib.sha256(":".join(map(str, parts)).encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


class BankLedger(ABC):
    """Executed payments (append-only) and the decision on every attempt."""

    @abstractmethod
    def is_paid(self, payment_id: str) -> bool: ...

    @abstractmethod
    def decision(self, payment_id: str, attempt: int) -> tuple[BankOutcome, str] | None: ...

    @abstractmethod
    def record(
        self, request: SendRequest, outcome: BankOutcome, reason: str, at: int, pay: bool
    ) -> None:
        """Record the decision on `request` and, if `pay`, execute it -- in one commit."""

    @abstractmethod
    def executions(self) -> list[str]:
        """The payment id of every execution, in order (an id twice is a double payment)."""

    @abstractmethod
    def close(self) -> None: ...


class MemoryBankLedger(BankLedger):
    def __init__(self) -> None:
        self.paid: dict[str, SendRequest] = {}
        self.decisions: dict[tuple[str, int], tuple[BankOutcome, str]] = {}
        self._executions: list[str] = []

    def is_paid(self, payment_id: str) -> bool:
        return payment_id in self.paid

    def decision(self, payment_id: str, attempt: int) -> tuple[BankOutcome, str] | None:
        return self.decisions.get((payment_id, attempt))

    def record(
        self, request: SendRequest, outcome: BankOutcome, reason: str, at: int, pay: bool
    ) -> None:
        self.decisions[(request.payment_id, request.attempt)] = (outcome, reason)
        if pay:
            self.paid[request.payment_id] = request
            self._executions.append(request.payment_id)

    def executions(self) -> list[str]:
        return list(self._executions)

    def close(self) -> None:
        pass


_SCHEMA = (
    """CREATE TABLE IF NOT EXISTS executions (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        payment_id TEXT NOT NULL,
        attempt INTEGER NOT NULL,
        payer TEXT NOT NULL,
        payee TEXT NOT NULL,
        amount INTEGER NOT NULL,
        currency TEXT NOT NULL,
        at INTEGER NOT NULL)""",
    "CREATE INDEX IF NOT EXISTS executions_by_id ON executions (payment_id)",
    """CREATE TABLE IF NOT EXISTS decisions (
        payment_id TEXT NOT NULL,
        attempt INTEGER NOT NULL,
        outcome TEXT NOT NULL,
        reason TEXT NOT NULL,
        at INTEGER NOT NULL,
        PRIMARY KEY (payment_id, attempt))""",
)


class SqliteBankLedger(BankLedger):
    """The simulator's ledger: a SQLite file, so a restarted bank still dedupes. The
    executions table has no unique key on purpose: it records what the bank did, so a
    double payment would show, not be hidden by a constraint."""

    def __init__(self, path: Path) -> None:
        self._db = sqlite3.connect(private_database(path), isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        for statement in _SCHEMA:
            self._db.execute(statement)

    def is_paid(self, payment_id: str) -> bool:
        row = self._db.execute(
            "SELECT 1 FROM executions WHERE payment_id = ? LIMIT 1", (payment_id,)
        ).fetchone()
        return row is not None

    def decision(self, payment_id: str, attempt: int) -> tuple[BankOutcome, str] | None:
        row = self._db.execute(
            "SELECT outcome, reason FROM decisions WHERE payment_id = ? AND attempt = ?",
            (payment_id, attempt),
        ).fetchone()
        return None if row is None else (BankOutcome(row[0]), str(row[1]))

    def record(
        self, request: SendRequest, outcome: BankOutcome, reason: str, at: int, pay: bool
    ) -> None:
        db = self._db
        db.execute("BEGIN IMMEDIATE")
        try:
            db.execute(
                "INSERT OR IGNORE INTO decisions (payment_id, attempt, outcome, reason, at)"
                " VALUES (?, ?, ?, ?, ?)",
                (request.payment_id, request.attempt, str(outcome), reason, at),
            )
            if pay:
                db.execute(
                    "INSERT INTO executions (payment_id, attempt, payer, payee, amount,"
                    " currency, at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (
                        request.payment_id,
                        request.attempt,
                        request.payer,
                        request.payee,
                        request.amount_minor,
                        request.currency,
                        at,
                    ),
                )
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")

    def executions(self) -> list[str]:
        return [r[0] for r in self._db.execute("SELECT payment_id FROM executions ORDER BY seq")]

    def close(self) -> None:
        self._db.close()


@dataclass(frozen=True, slots=True)
class BankRules:
    """One bank's behaviour: its id, failure rate and seed."""

    bank_id: str
    failure_rate: float = 0.0
    seed: int = 0

    def send(self, ledger: BankLedger, request: SendRequest, now: int) -> tuple[BankOutcome, str]:
        """Decide (and record, and maybe execute) a send."""
        if ledger.is_paid(request.payment_id):
            return BankOutcome.PAID, "duplicate"
        before = ledger.decision(request.payment_id, request.attempt)
        if before is not None:
            return before
        if now > request.deadline:
            outcome, reason = BankOutcome.REJECTED, "expired"
        elif chance(self.seed, self.bank_id, request.payment_id, request.attempt) < (
            self.failure_rate
        ):
            outcome, reason = BankOutcome.REJECTED, "declined"
        else:
            outcome, reason = BankOutcome.PAID, ""
        ledger.record(request, outcome, reason, now, pay=outcome is BankOutcome.PAID)
        return outcome, reason

    def query(
        self, ledger: BankLedger, payment_id: str, attempt: int, deadline: int, now: int
    ) -> tuple[BankOutcome, str]:
        if ledger.is_paid(payment_id):
            return BankOutcome.PAID, ""
        before = ledger.decision(payment_id, attempt)
        if before is not None:
            return before
        if now > deadline:
            return BankOutcome.NOT_FOUND, "never received"
        return BankOutcome.PENDING, "deadline not passed"
