"""Reading journal entries back from the store, and booking one trade inside a transaction.

:func:`trade_rows` is what booking one trade writes; the worker writes a batch of them with
:func:`write_rows`, and :func:`book_trade` books one that does not come from the bus (an
offline trade confirmed by both members) the same way, in the caller's transaction.

Booking a trade also plans how its obligation is paid (:func:`plans.plan_payment`: the
payer's method bent to the payee's limits, ``today`` = the trade date) and creates, in the
same transaction, one NEW payment per cash part (the payer sends it). A bill part is not
issued yet: it gets an audit row "bill part planned (bills not yet issued by the worker)"
and stays unpaid (docs/settlement.md).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from rex.config import Product
from rex.protocol import TradeMessage

from .events import SettlementEvent, obligation_created
from .ledger import AccountId, AccountKind, JournalEntry, Posting
from .outbox import add_events
from .payment_store import insert_payments
from .payments import Payment, cash_payments
from .plans import plan_payment
from .settings import SettlementConfig
from .settle import settle_trade
from .store import EntryRow, ObligationRow, PostingRow, Transaction

__all__ = [
    "TradeRows",
    "book_trade",
    "entry_row",
    "from_ns",
    "load_entries",
    "to_ns",
    "to_row",
    "trade_rows",
    "write_rows",
]

_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
#: The actor of the rows the worker writes.
SETTLEMENT_ACTOR = "settlement"
#: The audit note of a planned bill part: nothing pays it yet.
BILL_PART_PLANNED = "bill part planned (bills not yet issued by the worker)"

_Audit = tuple[int, str, str, str, str, dict[str, Any]]


def to_ns(when: dt.datetime) -> int:
    """Exact ns since the epoch (no float on the way)."""
    delta = when - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000_000 + delta.microseconds * 1_000


def from_ns(ns: int) -> dt.datetime:
    """A UTC datetime, to the microsecond (a datetime holds no more)."""
    return _EPOCH + dt.timedelta(microseconds=ns // 1_000)


def entry_row(entry: JournalEntry) -> EntryRow:
    return EntryRow(
        entry_id=entry.entry_id,
        kind=entry.reason,
        reference=entry.reference,
        effective_date=entry.effective.isoformat(),
        created_at=to_ns(entry.created_at),
        postings=tuple(
            PostingRow(p.account.owner, p.account.kind.value, p.account.currency, p.amount)
            for p in entry.postings
        ),
        corrects=entry.corrects,
    )


to_row = entry_row  # the name the dispute code uses


def _entries(tx: Transaction, where: str, params: Sequence[str]) -> dict[str, JournalEntry]:
    heads = tx.execute(
        "SELECT entry_id, kind, reference, effective_date, created_at, corrects"
        f" FROM journal_entries WHERE {where}",
        params,
    )
    lines = tx.execute(
        "SELECT p.entry_id, p.owner, p.account_kind, p.currency, p.amount FROM postings p"
        f" JOIN journal_entries ON journal_entries.entry_id = p.entry_id WHERE {where}"
        " ORDER BY p.entry_id, p.line",
        params,
    )
    postings: dict[str, list[Posting]] = {}
    for entry_id, owner, kind, currency, amount in lines:
        account = AccountId(owner, AccountKind(kind), currency)
        postings.setdefault(entry_id, []).append(Posting(account, int(amount)))
    return {
        entry_id: JournalEntry(
            entry_id=entry_id,
            postings=tuple(postings.get(entry_id, ())),
            reason=kind,
            reference=reference,
            effective=dt.date.fromisoformat(effective),
            created_at=from_ns(int(created)),
            corrects=corrects,
        )
        for entry_id, kind, reference, effective, created, corrects in heads
    }


def load_entries(tx: Transaction, reference: str) -> list[JournalEntry]:
    """Every entry about ``reference``, and every entry they correct, in an order
    :meth:`Ledger.rebuild` can replay: by ``created_at``, a correction after its original."""
    found = _entries(tx, "journal_entries.reference = ?", [reference])
    missing = {e.corrects for e in found.values() if e.corrects and e.corrects not in found}
    while missing:
        marks = ", ".join("?" for _ in missing)
        more = _entries(tx, f"journal_entries.entry_id IN ({marks})", sorted(missing))
        found.update(more)
        missing = {e.corrects for e in more.values() if e.corrects and e.corrects not in found}
    ordered: list[JournalEntry] = []
    placed: set[str] = set()
    waiting = sorted(found.values(), key=lambda e: (e.created_at, e.entry_id))
    while waiting:  # a correction goes after what it corrects, whatever the clocks said
        ready = [e for e in waiting if e.corrects is None or e.corrects in placed]
        if not ready:
            break  # a correction of an entry that does not exist: Ledger.rebuild will say so
        ordered.extend(ready)
        placed.update(e.entry_id for e in ready)
        waiting = [e for e in waiting if e.entry_id not in placed]
    return ordered + waiting


@dataclass(frozen=True, slots=True)
class TradeRows:
    """Everything booking one trade writes (the worker writes many of these set-wise)."""

    obligation: ObligationRow
    entries: tuple[EntryRow, ...]
    audits: tuple[_Audit, ...]  # the first: the obligation's "created"
    events: tuple[SettlementEvent, ...]
    payments: tuple[Payment, ...] = ()


def trade_rows(
    trade: TradeMessage, product: Product, config: SettlementConfig, at: int
) -> TradeRows:
    settlement = settle_trade(trade, product, config.fees)
    ob = settlement.obligation
    plan = plan_payment(
        ob,
        config.method_or_default(ob.payer),
        config.limits_or_default(ob.payee),
        today=ob.trade_date,
    )
    bank, fallbacks = config.banks_for(ob.payer)
    payments = cash_payments(plan, bank, at, fallbacks)
    bills = [
        {
            "part": index,
            "kind": str(part.kind),
            "amount": part.amount_minor,
            "acceptor": part.acceptor,
            "tenor_days": part.tenor_days,
        }
        for index, part in enumerate(plan.parts)
        if part.kind.is_bill
    ]
    created = {
        "trade_id": ob.trade_id,
        "amount": ob.amount_minor,
        "currency": ob.currency,
        "payments": [p.payment_id for p in payments],
        "bank": bank,
        "bill_minor": plan.bill_minor,
        "plan_reasons": list(plan.codes),
    }
    audits: list[_Audit] = [
        (at, SETTLEMENT_ACTOR, "obligation", ob.obligation_id, "created", created)
    ]
    if bills:  # one row for all of them: nothing pays them yet, and that is on record
        audits.append(
            (
                at,
                SETTLEMENT_ACTOR,
                "obligation",
                ob.obligation_id,
                "bill_part_planned",
                {
                    "reason": BILL_PART_PLANNED,
                    "bills": bills,
                    "reasons": [str(reason) for reason in plan.reasons],
                },
            )
        )
    return TradeRows(
        obligation=ObligationRow(
            ob.obligation_id,
            ob.trade_id,
            ob.product,
            ob.payer,
            ob.payee,
            ob.currency,
            ob.amount_minor,
            "open",
            ob.trade_date.isoformat(),
            at,
        ),
        entries=tuple(entry_row(e) for e in settlement.entries),
        audits=tuple(audits),
        events=tuple(
            obligation_created(
                ob.obligation_id, ob.payer, ob.payee, ob.amount_minor, ob.currency, at
            )
        ),
        payments=tuple(payments),
    )


def write_rows(tx: Transaction, booked: Sequence[TradeRows]) -> None:
    """All of a batch's rows, one statement per table."""
    tx.add_obligations([b.obligation for b in booked])
    tx.append_entries([e for b in booked for e in b.entries])
    tx.audit_many([a for b in booked for a in b.audits])
    add_events(tx, [e for b in booked for e in b.events])
    insert_payments(tx, [p for b in booked for p in b.payments], SETTLEMENT_ACTOR)
    tx.mark_processed_many(
        [(b.obligation.trade_id, b.obligation.obligation_id, b.audits[0][0]) for b in booked]
    )


def book_trade(
    tx: Transaction, trade: TradeMessage, product: Product, config: SettlementConfig, at: int
) -> bool:
    """Settle ``trade`` as the worker would (obligation, entries, payments); ``False`` if its
    id was booked already."""
    if tx.trade_processed(trade.trade_id):
        return False
    write_rows(tx, [trade_rows(trade, product, config, at)])
    return True
