"""The settlement store's interface: one repository over SQLite (`store/sqlite.py`, the
embedded default, a WAL file under REX_DATA_DIR) or PostgreSQL (`store/postgres.py`,
`REX_DATABASE_URL=postgresql://...`, through psycopg 3); `store/opening.py` picks one.

The worker works in transactions: `with store.transaction() as tx:` ... everything written
inside commits together or not at all, and the worker acks its messages only after the
commit. The journal is append-only: the store has no update or delete for entries.
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, NamedTuple

from settlement_worker.store.migrations import MIGRATIONS, render


@dataclass(frozen=True, slots=True)
class PostingRow:
    owner: str
    account_kind: str
    currency: str
    amount: int  # minor units; debit positive, credit negative


class ConcurrentUpdate(RuntimeError):
    """A row changed since it was read: its version moved on. The transaction rolls back
    and the caller reads it again (optimistic updates of payments, bills, settings)."""


class AuditRow(NamedTuple):
    """One row of the audit log: who did what to which subject, when, and its detail."""

    at: int  # ns
    actor: str
    subject_type: str  # obligation, payment, bill, dispute, member_settings, ...
    subject_id: str
    action: str
    detail: dict[str, Any]


@dataclass(frozen=True, slots=True)
class EntryRow:
    entry_id: str
    kind: str
    reference: str
    effective_date: str  # ISO date
    created_at: int  # ns
    postings: tuple[PostingRow, ...]
    corrects: str | None = None


@dataclass(frozen=True, slots=True)
class ObligationRow:
    obligation_id: str
    trade_id: str
    product: str
    payer: str
    payee: str
    currency: str
    amount: int
    state: str
    trade_date: str
    created_at: int


class Transaction(ABC):
    """What the worker may do inside one commit."""

    @abstractmethod
    def execute(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        """Portable SQL with `?` placeholders; returns the rows, if any."""

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        for row in rows:
            self.execute(sql, row)

    # --- trades
    def trade_processed(self, trade_id: str) -> bool:
        return bool(self.processed_among([trade_id]))

    def processed_among(self, trade_ids: Sequence[str]) -> set[str]:
        """Which of these trades are already booked (one query per 500, not one per trade)."""
        found: set[str] = set()
        for start in range(0, len(trade_ids), 500):
            chunk = list(trade_ids[start : start + 500])
            marks = ", ".join("?" for _ in chunk)
            rows = self.execute(
                f"SELECT trade_id FROM processed_trades WHERE trade_id IN ({marks})", chunk
            )
            found.update(r[0] for r in rows)
        return found

    def mark_processed(self, trade_id: str, obligation_id: str, at: int) -> None:
        self.mark_processed_many([(trade_id, obligation_id, at)])

    def mark_processed_many(self, rows: Sequence[tuple[str, str, int]]) -> None:
        self.executemany(
            "INSERT INTO processed_trades (trade_id, obligation_id, processed_at) VALUES (?, ?, ?)",
            rows,
        )

    # --- obligations
    def add_obligation(self, row: ObligationRow) -> None:
        self.add_obligations([row])

    def add_obligations(self, rows: Sequence[ObligationRow]) -> None:
        self.executemany(
            "INSERT INTO obligations (obligation_id, trade_id, product, payer, payee, currency,"
            " amount, state, trade_date, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [
                (
                    r.obligation_id,
                    r.trade_id,
                    r.product,
                    r.payer,
                    r.payee,
                    r.currency,
                    r.amount,
                    r.state,
                    r.trade_date,
                    r.created_at,
                )
                for r in rows
            ],
        )

    def set_obligation_state(self, obligation_id: str, state: str) -> None:
        self.execute(
            "UPDATE obligations SET state = ? WHERE obligation_id = ?", (state, obligation_id)
        )

    # --- journal
    def append_entry(self, entry: EntryRow) -> None:
        self.append_entries([entry])

    def append_entries(self, entries: Sequence[EntryRow]) -> None:
        self.executemany(
            "INSERT INTO journal_entries (entry_id, kind, reference, effective_date, created_at,"
            " corrects) VALUES (?, ?, ?, ?, ?, ?)",
            [
                (e.entry_id, e.kind, e.reference, e.effective_date, e.created_at, e.corrects)
                for e in entries
            ],
        )
        self.executemany(
            "INSERT INTO postings (entry_id, line, owner, account_kind, currency, amount)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            [
                (e.entry_id, line, p.owner, p.account_kind, p.currency, p.amount)
                for e in entries
                for line, p in enumerate(e.postings)
            ],
        )

    # --- audit
    def audit(
        self,
        at: int,
        actor: str,
        subject_type: str,
        subject_id: str,
        action: str,
        detail: dict[str, Any],
    ) -> None:
        self.audit_many([AuditRow(at, actor, subject_type, subject_id, action, detail)])

    def audit_many(self, rows: Sequence[AuditRow]) -> None:
        self.executemany(
            "INSERT INTO audit_log (at, actor, subject_type, subject_id, action, detail)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            [
                (
                    r.at,
                    r.actor,
                    r.subject_type,
                    r.subject_id,
                    r.action,
                    json.dumps(r.detail, sort_keys=True),
                )
                for r in rows
            ],
        )

    # --- disputes (migration v0003): a subject with an open dispute is frozen
    def is_frozen(self, subject_type: str, subject_id: str) -> bool:
        """True while the trade or bill has an open dispute: do not settle, pay or move it."""
        return bool(self.frozen_among(subject_type, [subject_id]))

    def frozen_among(self, subject_type: str, subject_ids: Sequence[str]) -> set[str]:
        """Which of these trades (or bills) are frozen by an open dispute, 500 per query."""
        found: set[str] = set()
        for start in range(0, len(subject_ids), 500):
            chunk = list(subject_ids[start : start + 500])
            marks = ", ".join("?" for _ in chunk)
            rows = self.execute(
                "SELECT subject_id FROM disputes WHERE state = 'open' AND subject_type = ?"
                f" AND subject_id IN ({marks})",
                [subject_type, *chunk],
            )
            found.update(r[0] for r in rows)
        return found


class Store(ABC):
    backend: str

    @abstractmethod
    @contextmanager
    def transaction(self) -> Iterator[Transaction]:
        """One commit: everything inside is written together, or nothing is."""

    def migrate(self) -> list[int]:
        """Apply the migrations not yet applied; returns their versions."""
        with self.transaction() as tx:
            tx.execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations"
                " (version INTEGER PRIMARY KEY, applied_at TEXT NOT NULL)"
            )
            done = {int(r[0]) for r in tx.execute("SELECT version FROM schema_migrations")}
        applied = []
        for version, statements in MIGRATIONS:
            if version in done:
                continue
            with self.transaction() as tx:
                for statement in statements:
                    tx.execute(render(statement, self.backend))
                tx.execute(
                    "INSERT INTO schema_migrations (version, applied_at) VALUES (?, ?)",
                    (version, "now"),
                )
            applied.append(version)
        return applied

    # --- reading
    def query(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        with self.transaction() as tx:
            return tx.execute(sql, params)

    def balances(self) -> dict[tuple[str, str, str], int]:
        """Every account's balance, derived from the postings."""
        rows = self.query(
            "SELECT owner, account_kind, currency, SUM(amount) FROM postings"
            " GROUP BY owner, account_kind, currency"
        )
        return {(r[0], r[1], r[2]): int(r[3]) for r in rows}

    def totals_by_currency(self) -> dict[str, int]:
        rows = self.query("SELECT currency, SUM(amount) FROM postings GROUP BY currency")
        return {r[0]: int(r[1]) for r in rows}

    @abstractmethod
    def close(self) -> None: ...

    def has_table(self, name: str) -> bool:
        """Whether the table exists (in the current schema, on PostgreSQL)."""
        if self.backend == "sqlite":
            sql = "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?"
        else:
            sql = (
                "SELECT 1 FROM information_schema.tables"
                " WHERE table_schema = current_schema() AND table_name = ?"
            )
        return bool(self.query(sql, (name,)))
