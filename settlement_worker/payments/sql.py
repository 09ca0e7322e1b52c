"""Payments in the settlement store (tables of migration v0002), inside a Transaction.

Functions take the caller's `Transaction`, so a payment can be created in the same commit
as its obligation. Updates are optimistic: a row carries a `version`, and `save` writes
only over the version it read, else raises :class:`ConcurrentUpdate` (the transaction
rolls back and the caller reads again). Every event of a step goes to `payment_events`
and, as a state change, to the audit log, in the same commit as the row. Writing a row
posts nothing: what a state change books is
:func:`settlement_worker.payments.operations.move_payment`'s.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from typing import Any

from rex.money import Money
from settlement_worker.obligations.rules import ObligationState
from settlement_worker.payments.rules import ACTIVE_STATES, Payment, PaymentEvent, PaymentState
from settlement_worker.store import AuditRow, ConcurrentUpdate, Transaction

__all__ = [
    "counts_by_state",
    "due_payment_ids",
    "insert_payment",
    "insert_payments",
    "load_history",
    "load_payment",
    "open_obligation_cover",
    "payments_in_states",
    "recourse_to_bank",
    "save_payment",
]

_COLUMNS = (
    "payment_id, obligation_id, payer, payee, amount, currency, bank, state, attempts,"
    " next_attempt_at, updated_at, fallbacks, send_no, deadline, queries, last_error,"
    " created_at, version"
)


def _fallbacks(banks: Sequence[str]) -> str:
    for bank in banks:
        if "," in bank or not bank:
            raise ValueError(f"bad bank id {bank!r}")
    return ",".join(banks)


def _values(p: Payment) -> tuple[Any, ...]:
    return (
        p.payment_id,
        p.obligation_id,
        p.payer,
        p.payee,
        p.amount.minor,
        p.amount.currency,
        p.bank,
        str(p.state),
        p.attempts,
        p.next_attempt_at,
        p.updated_at,
        _fallbacks(p.fallbacks),
        p.send_no,
        p.deadline,
        p.queries,
        p.last_error,
        p.created_at,
    )


def _from_row(row: Sequence[Any]) -> tuple[Payment, int]:
    payment = Payment(
        payment_id=row[0],
        obligation_id=row[1],
        payer=row[2],
        payee=row[3],
        amount=Money(int(row[4]), row[5]),
        bank=row[6],
        state=PaymentState(row[7]),
        attempts=int(row[8]),
        next_attempt_at=None if row[9] is None else int(row[9]),
        updated_at=int(row[10]),
        fallbacks=tuple(b for b in str(row[11]).split(",") if b),
        send_no=int(row[12]),
        deadline=None if row[13] is None else int(row[13]),
        queries=int(row[14]),
        last_error=row[15],
        created_at=int(row[16]),
    )
    return payment, int(row[17])


def insert_payment(tx: Transaction, payment: Payment, actor: str = "payer") -> bool:
    """Create the payment unless its id exists (then nothing is written): False."""
    marks = ", ".join("?" for _ in range(18))
    rows = tx.execute(
        f"INSERT INTO payments ({_COLUMNS}) VALUES ({marks})"
        " ON CONFLICT (payment_id) DO NOTHING RETURNING payment_id",
        (*_values(payment), 0),
    )
    if not rows:
        return False
    _append(tx, payment.payment_id, payment.history, actor)
    return True


def insert_payments(tx: Transaction, payments: Sequence[Payment], actor: str = "payer") -> None:
    """Create new payments set-wise (one statement per table), e.g. with the obligations
    they pay, in the booking's transaction. Ids must be new: a duplicate fails the commit."""
    if not payments:
        return
    marks = ", ".join("?" for _ in range(18))
    tx.executemany(
        f"INSERT INTO payments ({_COLUMNS}) VALUES ({marks})",
        [(*_values(p), 0) for p in payments],
    )
    _append_many(tx, [(p.payment_id, p.history) for p in payments], actor)


def load_payment(tx: Transaction, payment_id: str) -> tuple[Payment, int] | None:
    """The payment (without its history) and its version."""
    rows = tx.execute(f"SELECT {_COLUMNS} FROM payments WHERE payment_id = ?", (payment_id,))
    return _from_row(rows[0]) if rows else None


def save_payment(
    tx: Transaction, old: Payment, version: int, new: Payment, actor: str = "payer"
) -> int:
    """Write `new` over `old` (read at `version`) with the events it added; the new
    version. Raises ConcurrentUpdate if the row moved on since it was read."""
    sets = ", ".join(f"{c.strip()} = ?" for c in _COLUMNS.split(",")[1:17])
    rows = tx.execute(
        f"UPDATE payments SET {sets}, version = version + 1"
        " WHERE payment_id = ? AND version = ? RETURNING version",
        (*_values(new)[1:], new.payment_id, version),
    )
    if not rows:
        raise ConcurrentUpdate(f"{new.payment_id} changed since version {version}")
    _append(tx, new.payment_id, new.history[len(old.history) :], actor)
    return int(rows[0][0])


def _append(
    tx: Transaction, payment_id: str, events: Sequence[PaymentEvent], default_actor: str
) -> None:
    _append_many(tx, [(payment_id, events)], default_actor)


def _append_many(
    tx: Transaction,
    histories: Sequence[tuple[str, Sequence[PaymentEvent]]],
    default_actor: str,
) -> None:
    rows = []
    audits: list[AuditRow] = []
    for payment_id, events in histories:
        for event in events:
            actor = str(event.detail.get("actor", default_actor))
            detail = json.dumps(event.detail, sort_keys=True)
            from_state = None if event.from_state is None else str(event.from_state)
            rows.append(
                (payment_id, event.at, event.kind, from_state, str(event.to_state), actor, detail)
            )
            audit = {"from": from_state, "to": str(event.to_state), **event.detail}
            audits.append(AuditRow(event.at, actor, "payment", payment_id, event.kind, audit))
    if not rows:
        return
    tx.executemany(
        "INSERT INTO payment_events (payment_id, at, kind, from_state, to_state, actor, detail)"
        " VALUES (?, ?, ?, ?, ?, ?, ?)",
        rows,
    )
    tx.audit_many(audits)


def load_history(tx: Transaction, payment_id: str) -> list[tuple[PaymentEvent, str]]:
    """Every event of the payment, oldest first, with its actor."""
    rows = tx.execute(
        "SELECT at, kind, from_state, to_state, actor, detail FROM payment_events"
        " WHERE payment_id = ? ORDER BY seq",
        (payment_id,),
    )
    history = []
    for at, kind, from_state, to_state, actor, detail in rows:
        data = json.loads(detail) if isinstance(detail, str) else dict(detail)
        event = PaymentEvent(
            int(at),
            kind,
            None if from_state is None else PaymentState(from_state),
            PaymentState(to_state),
            data,
        )
        history.append((event, str(actor)))
    return history


_ACTIVE = tuple(sorted(str(s) for s in ACTIVE_STATES))


def due_payment_ids(tx: Transaction, now: int, limit: int = 1000) -> list[str]:
    """Active payments whose next step is due, earliest first."""
    marks = ", ".join("?" for _ in _ACTIVE)
    rows = tx.execute(
        f"SELECT payment_id FROM payments WHERE state IN ({marks}) AND next_attempt_at <= ?"
        " ORDER BY next_attempt_at LIMIT ?",
        (*_ACTIVE, now, limit),
    )
    return [r[0] for r in rows]


def payments_in_states(tx: Transaction, states: Iterable[PaymentState]) -> list[Payment]:
    wanted = [str(s) for s in states]
    if not wanted:
        return []
    marks = ", ".join("?" for _ in wanted)
    rows = tx.execute(
        f"SELECT {_COLUMNS} FROM payments WHERE state IN ({marks}) ORDER BY updated_at, payment_id",
        wanted,
    )
    return [_from_row(r)[0] for r in rows]


def counts_by_state(tx: Transaction) -> dict[str, int]:
    rows = tx.execute("SELECT state, COUNT(*) FROM payments GROUP BY state")
    return {str(r[0]): int(r[1]) for r in rows}


def recourse_to_bank(tx: Transaction, payment_id: str) -> bool:
    """Whether ``payment_id`` pays a bank's recourse claim (the bank discounted the bill):
    the row bills write for each recourse payment (table ``bill_recourse``) says so."""
    rows = tx.execute(
        "SELECT creditor_is_bank FROM bill_recourse WHERE payment_id = ?", [payment_id]
    )
    return bool(rows and rows[0][0])


def open_obligation_cover(
    tx: Transaction, obligation_id: str, paid_states: Iterable[PaymentState]
) -> tuple[int, int] | None:
    """(amount, covered) of an open obligation, in minor units: covered is what its payments
    in ``paid_states`` paid plus the faces of the bills issued or endorsed for it (a bill
    later cancelled by a dispute no longer counts); None if it is not open."""
    states = sorted(str(s) for s in paid_states)
    marks = ", ".join("?" for _ in states)
    rows = tx.execute(
        "SELECT o.amount, (SELECT COALESCE(SUM(p.amount), 0) FROM payments p"
        f" WHERE p.obligation_id = o.obligation_id AND p.state IN ({marks}))"
        " + (SELECT COALESCE(SUM(b.face), 0) FROM bills b"
        " WHERE b.obligation_id = o.obligation_id AND b.state <> 'cancelled')"
        " + (SELECT COALESCE(SUM(b.face), 0) FROM bill_endorsements e JOIN bills b"
        " ON b.bill_id = e.bill_id WHERE e.obligation_id = o.obligation_id"
        " AND b.state <> 'cancelled')"
        " FROM obligations o WHERE o.obligation_id = ? AND o.state = ?",
        [*states, obligation_id, ObligationState.OPEN],
    )
    return (int(rows[0][0]), int(rows[0][1])) if rows else None
