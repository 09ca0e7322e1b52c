"""Bills in the settlement store (tables of migration v0005), inside a Transaction.

A :class:`~settlement_worker.bills.rules.Bill` is saved as its ``bills`` row plus its chain in
``bill_endorsements``, and loaded back through the ``Bill`` constructor, so a bill read from
the store is held to the same rules as one built in memory (continuous chain, consistent
state). The chain is append-only here: :func:`save_bill` inserts the links the new bill has
beyond the old one and refuses a bill whose earlier links differ. Rows carry a ``version``
(optimistic lock): booking, an operator's maturity run and a member's request may move the
same bill, and the second writer must read again rather than overwrite.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Final

from rex.money import Money
from settlement_worker.bills.rules import Bill, BillKind, BillState, Endorsement, EndorsementKind
from settlement_worker.codes import RuleViolation, SettlementCode
from settlement_worker.store import ConcurrentUpdate, Transaction

__all__ = [
    "COLUMNS",
    "NewLink",
    "Recourse",
    "StoredBill",
    "bill_from_row",
    "bills_where",
    "due_bills",
    "held_bills",
    "insert_bills",
    "insert_recourse",
    "load_bill",
    "load_chains",
    "member_bills",
    "recourse_of",
    "save_bill",
]

COLUMNS: Final = (
    "bill_id, kind, drawer, payee, acceptor, acceptor_city, face, currency, issue_date,"
    " due_date, transferable, state, holder, accepted_on, closed_on, obligation_id,"
    " created_at, updated_at, version"
)
_CHUNK: Final = 500
_ENDORSABLE: Final = (BillState.ACCEPTED.value, BillState.ENDORSED.value)
_LIVE: Final = (*_ENDORSABLE, BillState.DISCOUNTED.value)


@dataclass(frozen=True, slots=True)
class StoredBill:
    """A bill as stored: the value, the obligation it was issued for, its row version."""

    bill: Bill
    obligation_id: str
    version: int


@dataclass(frozen=True, slots=True)
class NewLink:
    """An endorsement to append, and the obligation it paid (None: not in payment of one)."""

    link: Endorsement
    obligation_id: str | None = None


@dataclass(frozen=True, slots=True)
class Recourse:
    """A claim a dishonour created: ``debtor`` owes ``creditor`` the amount, paid by the
    payment ``payment_id`` (whose obligation id is ``recourse_id``)."""

    recourse_id: str
    bill_id: str
    creditor: str
    debtor: str
    amount: Money
    creditor_is_bank: bool
    payment_id: str
    created_at: int


def _date(value: str | None) -> dt.date | None:
    return None if value is None else dt.date.fromisoformat(value)


def _iso(value: dt.date | None) -> str | None:
    return None if value is None else value.isoformat()


def _row(bill: Bill, obligation_id: str, at: int) -> tuple[Any, ...]:
    return (
        bill.bill_id,
        bill.kind.value,
        bill.drawer,
        bill.payee,
        bill.acceptor,
        bill.acceptor_city,
        bill.face.minor,
        bill.face.currency,
        bill.issue_date.isoformat(),
        bill.due_date.isoformat(),
        int(bill.transferable),
        bill.state.value,
        bill.holder,
        _iso(bill.accepted_on),
        _iso(bill.closed_on),
        obligation_id,
        at,
        at,
        0,
    )


def _link_rows(bill_id: str, links: Iterable[NewLink], at: int) -> list[tuple[Any, ...]]:
    return [
        (
            bill_id,
            new.link.sequence,
            new.link.from_holder,
            new.link.to_holder,
            new.link.kind.value,
            new.link.date.isoformat(),
            new.obligation_id,
            at,
        )
        for new in links
    ]


def _insert_links(tx: Transaction, rows: Sequence[tuple[Any, ...]]) -> None:
    tx.executemany(
        "INSERT INTO bill_endorsements (bill_id, seq, from_holder, to_holder, kind,"
        " endorsed_on, obligation_id, at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        rows,
    )


def insert_bills(
    tx: Transaction,
    bills: Sequence[tuple[Bill, str, Sequence[NewLink]]],
    at: int,
) -> None:
    """New bills set-wise, each with the obligation it was issued for and its chain so far
    (a bill issued and endorsed on within one booking batch)."""
    if not bills:
        return
    marks = ", ".join("?" for _ in range(19))
    tx.executemany(
        f"INSERT INTO bills ({COLUMNS}) VALUES ({marks})",
        [_row(bill, obligation_id, at) for bill, obligation_id, _ in bills],
    )
    _insert_links(tx, [r for bill, _, links in bills for r in _link_rows(bill.bill_id, links, at)])


def save_bill(
    tx: Transaction,
    before: StoredBill,
    after: Bill,
    at: int,
    links: Sequence[NewLink] | None = None,
) -> StoredBill:
    """Write ``after`` over the row read as ``before``, appending its new links.

    ``links`` gives the new links with the obligation each paid; by default the links
    ``after`` has beyond ``before``, paying none. Raises
    :class:`~settlement_worker.codes.RuleViolation` if ``after`` does not extend
    ``before``'s chain (the chain is append-only) and :class:`ConcurrentUpdate` if the
    row moved on since ``before`` was read.
    """
    old = before.bill
    if after.bill_id != old.bill_id or after.endorsements[: len(old.endorsements)] != (
        old.endorsements
    ):
        raise RuleViolation(
            SettlementCode.CHAIN_BROKEN, f"bill {old.bill_id}: a save may only append to the chain"
        )
    added = after.endorsements[len(old.endorsements) :]
    if links is None:
        links = [NewLink(link) for link in added]
    elif tuple(new.link for new in links) != added:
        raise RuleViolation(
            SettlementCode.CHAIN_BROKEN,
            f"bill {old.bill_id}: the links given are not the links added",
        )
    rows = tx.execute(
        "UPDATE bills SET state = ?, holder = ?, accepted_on = ?, closed_on = ?,"
        " updated_at = ?, version = version + 1 WHERE bill_id = ? AND version = ?"
        " RETURNING version",
        (
            after.state.value,
            after.holder,
            _iso(after.accepted_on),
            _iso(after.closed_on),
            at,
            after.bill_id,
            before.version,
        ),
    )
    if not rows:
        raise ConcurrentUpdate(f"{after.bill_id} changed since version {before.version}")
    _insert_links(tx, _link_rows(after.bill_id, links, at))
    return StoredBill(after, before.obligation_id, int(rows[0][0]))


def load_chains(tx: Transaction, bill_ids: Sequence[str]) -> dict[str, list[Endorsement]]:
    chains: dict[str, list[Endorsement]] = {}
    for start in range(0, len(bill_ids), _CHUNK):
        chunk = list(bill_ids[start : start + _CHUNK])
        marks = ", ".join("?" for _ in chunk)
        for bill_id, seq, from_holder, to_holder, kind, on in tx.execute(
            "SELECT bill_id, seq, from_holder, to_holder, kind, endorsed_on"
            f" FROM bill_endorsements WHERE bill_id IN ({marks}) ORDER BY bill_id, seq",
            chunk,
        ):
            chains.setdefault(bill_id, []).append(
                Endorsement(
                    from_holder,
                    to_holder,
                    dt.date.fromisoformat(on),
                    int(seq),
                    EndorsementKind(kind),
                )
            )
    return chains


def bill_from_row(row: Sequence[Any], chain: Sequence[Endorsement]) -> StoredBill:
    """A ``SELECT COLUMNS FROM bills`` row and its chain as a validated bill (raises a
    :class:`~settlement_worker.codes.RuleViolation` for an inconsistent one)."""
    issue_date = _date(row[8])
    due_date = _date(row[9])
    assert issue_date is not None and due_date is not None  # NOT NULL columns
    bill = Bill(
        bill_id=row[0],
        kind=BillKind(row[1]),
        drawer=row[2],
        payee=row[3],
        acceptor=row[4],
        acceptor_city=row[5],
        face=Money(int(row[6]), row[7]),
        issue_date=issue_date,
        due_date=due_date,
        transferable=bool(row[10]),
        state=BillState(row[11]),
        holder=row[12],
        endorsements=tuple(chain),
        accepted_on=_date(row[13]),
        closed_on=_date(row[14]),
    )
    return StoredBill(bill, row[15], int(row[18]))


def bills_where(tx: Transaction, where: str, params: Sequence[Any] = ()) -> list[StoredBill]:
    """Bills matching an SQL condition on the ``bills`` columns, with their chains, ordered
    by due date and id (so every caller walks them in the same order)."""
    rows = tx.execute(
        f"SELECT {COLUMNS} FROM bills WHERE {where} ORDER BY due_date, bill_id", params
    )
    chains = load_chains(tx, [r[0] for r in rows])
    return [bill_from_row(r, chains.get(r[0], ())) for r in rows]


def load_bill(tx: Transaction, bill_id: str) -> StoredBill | None:
    found = bills_where(tx, "bill_id = ?", [bill_id])
    return found[0] if found else None


def held_bills(
    tx: Transaction, holders: Sequence[str], due_after: dt.date, max_face: int
) -> list[StoredBill]:
    """Bills the ``holders`` could endorse on: accepted or endorsed to them, transferable,
    falling due after ``due_after``, of at most ``max_face`` (no larger one can fit)."""
    found: list[StoredBill] = []
    states = ", ".join("?" for _ in _ENDORSABLE)
    for start in range(0, len(holders), _CHUNK):
        chunk = list(holders[start : start + _CHUNK])
        marks = ", ".join("?" for _ in chunk)
        found += bills_where(
            tx,
            f"holder IN ({marks}) AND state IN ({states}) AND transferable = 1"
            " AND due_date > ? AND face <= ?",
            [*chunk, *_ENDORSABLE, due_after.isoformat(), max_face],
        )
    return found


def due_bills(tx: Transaction, on: dt.date) -> list[StoredBill]:
    """Outstanding bills (accepted, endorsed or discounted) due on or before ``on``."""
    marks = ", ".join("?" for _ in _LIVE)
    return bills_where(tx, f"state IN ({marks}) AND due_date <= ?", [*_LIVE, on.isoformat()])


def member_bills(tx: Transaction, member: str) -> list[StoredBill]:
    """Every bill ``member`` is a party to: drawer, payee, acceptor, holder, or on the chain."""
    return bills_where(
        tx,
        "drawer = ? OR payee = ? OR acceptor = ? OR holder = ? OR bill_id IN (SELECT bill_id"
        " FROM bill_endorsements WHERE from_holder = ? OR to_holder = ?)",
        [member] * 6,
    )


def insert_recourse(tx: Transaction, claims: Sequence[Recourse]) -> None:
    tx.executemany(
        "INSERT INTO bill_recourse (recourse_id, bill_id, creditor, debtor, amount, currency,"
        " creditor_is_bank, payment_id, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [
            (
                c.recourse_id,
                c.bill_id,
                c.creditor,
                c.debtor,
                c.amount.minor,
                c.amount.currency,
                int(c.creditor_is_bank),
                c.payment_id,
                c.created_at,
            )
            for c in claims
        ],
    )


def recourse_of(tx: Transaction, bill_id: str) -> list[Recourse]:
    rows = tx.execute(
        "SELECT recourse_id, bill_id, creditor, debtor, amount, currency, creditor_is_bank,"
        " payment_id, created_at FROM bill_recourse WHERE bill_id = ? ORDER BY recourse_id",
        [bill_id],
    )
    return [
        Recourse(r[0], r[1], r[2], r[3], Money(int(r[4]), r[5]), bool(r[6]), r[7], int(r[8]))
        for r in rows
    ]
