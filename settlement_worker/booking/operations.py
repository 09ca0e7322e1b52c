"""Reading journal entries back from the store, and booking one trade inside a transaction.

:func:`trade_rows` is what booking one trade writes; the worker writes a batch of them with
:func:`write_rows`, and :func:`book_trade` books one that does not come from the bus (an
offline trade confirmed by both members) the same way, in the caller's transaction.

Booking a trade also plans how its obligation is paid (:func:`plans.plan_payment`: the
payer's method bent to the payee's limits, ``today`` = the trade date) and, in the same
transaction, creates one NEW payment per cash part (the payer sends it) and meets the bill
part with bills (bill_booking: held bills endorsed to the payee first, new bills issued
and accepted for the rest). An obligation without a cash part is ``settled`` at once.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

from rex.config import Product
from rex.protocol import TradeMessage
from rex.settlement_protocol import SettlementEvent, obligation_created
from settlement_worker.bills.booking import BillTerms, bill_terms, book_bills
from settlement_worker.configuration import SettlementConfig
from settlement_worker.ledger.rules import AccountId, AccountKind, JournalEntry, Posting
from settlement_worker.ledger.sql import entry_row, from_ns, to_ns
from settlement_worker.obligations.rules import ObligationState
from settlement_worker.obligations.settle import settle_trade
from settlement_worker.outbox import add_events
from settlement_worker.payments.rules import Payment, cash_payments
from settlement_worker.payments.sql import insert_payments
from settlement_worker.plans.rules import plan_payment
from settlement_worker.store import AuditRow, EntryRow, ObligationRow, Transaction

__all__ = [
    "TradeRows",
    "book_trade",
    "entry_row",
    "from_ns",
    "load_entries",
    "to_ns",
    "trade_rows",
    "write_rows",
]

#: The actor of the rows the worker writes.
SETTLEMENT_ACTOR = "settlement"


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
    audits: tuple[AuditRow, ...]  # the first: the obligation's "created"
    events: tuple[SettlementEvent, ...]
    payments: tuple[Payment, ...] = ()
    bills: BillTerms | None = None  # the plan's bill part, met by write_rows
    plan_reasons: tuple[str, ...] = ()


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
    bills = bill_terms(plan, config)
    created = {
        "trade_id": ob.trade_id,
        "amount": ob.amount.minor,
        "currency": ob.amount.currency,
        "payments": [p.payment_id for p in payments],
        "bank": bank,
        "bill_minor": plan.bill_total.minor,
        "plan_reasons": list(plan.codes),
    }
    audits: list[AuditRow] = [
        AuditRow(at, SETTLEMENT_ACTOR, "obligation", ob.obligation_id, "created", created)
    ]
    # The bill part is met in this same booking (write_rows), so an obligation with no cash
    # part is settled once booked.
    state = ObligationState.OPEN if plan.cash.minor else ObligationState.SETTLED
    if state is ObligationState.SETTLED:
        audits.append(
            AuditRow(
                at,
                SETTLEMENT_ACTOR,
                "obligation",
                ob.obligation_id,
                ObligationState.SETTLED,
                {"reason": "paid by bills in full"},
            )
        )
    return TradeRows(
        obligation=ObligationRow(
            ob.obligation_id,
            ob.trade_id,
            ob.product,
            ob.payer,
            ob.payee,
            ob.amount.currency,
            ob.amount.minor,
            state,
            ob.trade_date.isoformat(),
            at,
        ),
        entries=tuple(entry_row(e) for e in settlement.entries),
        audits=tuple(audits),
        events=tuple(
            obligation_created(
                ob.obligation_id, ob.payer, ob.payee, ob.amount.minor, ob.amount.currency, at
            )
        ),
        payments=tuple(payments),
        bills=bills,
        plan_reasons=tuple(str(reason) for reason in plan.reasons),
    )


def write_rows(tx: Transaction, booked: Sequence[TradeRows]) -> None:
    """All of a batch's rows, one statement per table."""
    tx.add_obligations([b.obligation for b in booked])
    tx.append_entries([e for b in booked for e in b.entries])
    tx.audit_many([a for b in booked for a in b.audits])
    add_events(tx, [e for b in booked for e in b.events])
    insert_payments(tx, [p for b in booked for p in b.payments], SETTLEMENT_ACTOR)
    _write_bills(tx, booked)
    tx.mark_processed_many(
        [(b.obligation.trade_id, b.obligation.obligation_id, b.audits[0][0]) for b in booked]
    )


def _write_bills(tx: Transaction, booked: Sequence[TradeRows]) -> None:
    """The bill parts, in batch order (a bill received by one trade may pay a later one),
    and per obligation an audit row saying which bills paid it."""
    with_bills = [b for b in booked if b.bills is not None]
    if not with_bills:
        return
    at = with_bills[0].audits[0][0]
    settled = book_bills(tx, [b.bills for b in with_bills if b.bills is not None], at)
    tx.audit_many(
        [
            AuditRow(
                at,
                SETTLEMENT_ACTOR,
                "obligation",
                b.obligation.obligation_id,
                "paid_by_bills",
                {
                    "issued": [bill.bill_id for bill in result.issued],
                    "endorsed": [after.bill_id for _, after in result.endorsed],
                    "bill_minor": result.total,
                    "reasons": list(b.plan_reasons),
                    "reason": f"bill part paid: {len(result.issued)} bill(s) issued, "
                    f"{len(result.endorsed)} held bill(s) endorsed",
                },
            )
            for b, result in zip(with_bills, settled, strict=True)
        ]
    )


def book_trade(
    tx: Transaction, trade: TradeMessage, product: Product, config: SettlementConfig, at: int
) -> bool:
    """Settle ``trade`` as the worker would (obligation, entries, payments, bills); ``False``
    if its id was booked already."""
    if tx.trade_processed(trade.trade_id):
        return False
    write_rows(tx, [trade_rows(trade, product, config, at)])
    return True
