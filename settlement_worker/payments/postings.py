"""What a payment's state change writes besides the payment itself, in the same commit.

* **CONFIRMED or PAID_MANUALLY** (the money moved): the journal entry ``paid-<payment id>``
  (reference: the payment id, the one entry reconcile expects) debits the payer's PAYABLES
  and credits the payee's RECEIVABLES by the amount, settling that much of the obligation
  the trade booked (``trade-<trade id>`` credited PAYABLES and debited RECEIVABLES); the
  obligation becomes ``settled`` once its payments are paid (its bill part was met by bills
  at booking); both parties get a ``payment_confirmed`` event. A recourse payment to a bank
  (after a dishonour) credits the exchange's BANK_SETTLEMENT instead: the bank is no member.
* **SENT**: the payer gets ``payment_sent``; **FAILED** or **MANUAL_REVIEW** after a send:
  the payer gets ``payment_failed`` (with the reason).

Called by :func:`settlement_worker.payments.operations.move_payment` beside the row's write,
so every path that moves a payment -- the payer, an operator's ``rex payments --resolve`` --
books it the same way.
"""

from __future__ import annotations

from typing import Final

from rex.settlement_protocol import SettlementEvent
from settlement_worker.ledger.rules import EXCHANGE, AccountKind
from settlement_worker.obligations.rules import ObligationState
from settlement_worker.obligations.settle import trade_date
from settlement_worker.outbox import add_events
from settlement_worker.payments.rules import Payment, PaymentState
from settlement_worker.payments.sql import recourse_to_bank
from settlement_worker.store import EntryRow, PostingRow, Transaction

__all__ = ["PAID_STATES", "on_state_change", "paid_entry", "paid_entry_id"]

PAID_STATES: Final = frozenset({PaymentState.CONFIRMED, PaymentState.PAID_MANUALLY})
#: Payment ids of recourse claims after a dishonour (``pay-rec-<bill id>-<n>-0``).
RECOURSE_PAYMENT_PREFIX: Final = "pay-rec-"
_ACTOR = "payer"


def paid_entry_id(payment_id: str) -> str:
    return f"paid-{payment_id}"


def paid_entry(p: Payment, at: int, *, to_bank: bool = False) -> EntryRow:
    """The entry booking a paid payment: payer PAYABLES debit, payee RECEIVABLES credit.

    ``to_bank``: the payee is a bank, not a member (a discounting bank's recourse after a
    dishonour), so the money leaves the members through the exchange's BANK_SETTLEMENT.
    """
    credit = (
        PostingRow(EXCHANGE, AccountKind.BANK_SETTLEMENT.value, p.amount.currency, -p.amount.minor)
        if to_bank
        else PostingRow(p.payee, AccountKind.RECEIVABLES.value, p.amount.currency, -p.amount.minor)
    )
    return EntryRow(
        entry_id=paid_entry_id(p.payment_id),
        kind="payment",
        reference=p.payment_id,
        effective_date=trade_date(at).isoformat(),
        created_at=at,
        postings=(
            PostingRow(p.payer, AccountKind.PAYABLES.value, p.amount.currency, p.amount.minor),
            credit,
        ),
    )


def _event(
    p: Payment, member: str, event: str, key: str, detail: dict[str, object]
) -> SettlementEvent:
    body = {
        "obligation_id": p.obligation_id,
        "payer": p.payer,
        "payee": p.payee,
        "amount": p.amount.minor,
        "currency": p.amount.currency,
        "bank": p.bank,
        **detail,
    }
    return SettlementEvent(
        f"{p.payment_id}/{key}/{member}", member, event, p.payment_id, body, p.updated_at
    )


def _settle_obligation(tx: Transaction, obligation_id: str, at: int) -> None:
    """``settled`` once its paid payments and its bills cover the whole obligation: every
    cash part is paid, and the bill part was met by bills issued or endorsed for it at
    booking (a bill later cancelled by a dispute no longer counts)."""
    marks = ", ".join("?" for _ in PAID_STATES)
    rows = tx.execute(
        "SELECT o.amount, (SELECT COALESCE(SUM(p.amount), 0) FROM payments p"
        f" WHERE p.obligation_id = o.obligation_id AND p.state IN ({marks}))"
        " + (SELECT COALESCE(SUM(b.face), 0) FROM bills b"
        " WHERE b.obligation_id = o.obligation_id AND b.state <> 'cancelled')"
        " + (SELECT COALESCE(SUM(b.face), 0) FROM bill_endorsements e JOIN bills b"
        " ON b.bill_id = e.bill_id WHERE e.obligation_id = o.obligation_id"
        " AND b.state <> 'cancelled')"
        " FROM obligations o WHERE o.obligation_id = ? AND o.state = ?",
        [*sorted(str(s) for s in PAID_STATES), obligation_id, ObligationState.OPEN],
    )
    if not rows or int(rows[0][1]) < int(rows[0][0]):
        return
    tx.set_obligation_state(obligation_id, ObligationState.SETTLED)
    settled = ObligationState.SETTLED
    tx.audit(at, _ACTOR, "obligation", obligation_id, settled, {"reason": "all of it paid"})


def on_state_change(tx: Transaction, old: Payment, new: Payment) -> None:
    """Book and announce what moving ``old`` to ``new`` means (nothing if the state stayed)."""
    if new.state == old.state and new.send_no == old.send_no:
        return
    at = new.updated_at
    events: list[SettlementEvent] = []
    if new.state in PAID_STATES and old.state not in PAID_STATES:
        to_bank = new.payment_id.startswith(RECOURSE_PAYMENT_PREFIX) and recourse_to_bank(
            tx, new.payment_id
        )
        tx.append_entries([paid_entry(new, at, to_bank=to_bank)])
        _settle_obligation(tx, new.obligation_id, at)
        detail: dict[str, object] = {"state": str(new.state)}
        events += [
            _event(new, member, "payment_confirmed", "confirmed", detail)
            for member in (new.payer, new.payee)
        ]
    elif new.state is PaymentState.SENT and new.send_no != old.send_no:
        events.append(
            _event(new, new.payer, "payment_sent", f"sent-{new.send_no}", {"attempt": new.send_no})
        )
    elif new.state in (PaymentState.FAILED, PaymentState.MANUAL_REVIEW) and old.state in (
        PaymentState.SENT,
        PaymentState.UNKNOWN,
        PaymentState.UNKNOWN_REVIEW,
    ):
        events.append(
            _event(
                new,
                new.payer,
                "payment_failed",
                f"failed-{old.send_no}",
                {"attempt": old.send_no, "reason": new.last_error, "state": str(new.state)},
            )
        )
    if events:
        add_events(tx, events)
