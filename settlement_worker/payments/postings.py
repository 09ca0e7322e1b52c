"""What a payment's state change books and announces, computed (pure); the move
(:func:`settlement_worker.payments.operations.move_payment`) writes it beside the row, in
the same commit, so every path that moves a payment -- the payer, an operator's
``rex payments --resolve`` -- books it the same way.

* **CONFIRMED or PAID_MANUALLY** (the money moved): the journal entry ``paid-<payment id>``
  (reference: the payment id, the one entry reconcile expects) debits the payer's PAYABLES
  and credits the payee's RECEIVABLES by the amount, settling that much of the obligation
  the trade booked (``trade-<trade id>`` credited PAYABLES and debited RECEIVABLES); both
  parties get a ``payment_confirmed`` event; the move then settles the obligation once its
  payments are paid (its bill part was met by bills at booking). A recourse payment to a
  bank (after a dishonour) credits the exchange's BANK_SETTLEMENT instead: the bank is no
  member.
* **SENT**: the payer gets ``payment_sent``; **FAILED** or **MANUAL_REVIEW** after a send:
  the payer gets ``payment_failed`` (with the reason).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from rex.settlement_protocol import SettlementEvent
from settlement_worker.ledger.rules import EXCHANGE, AccountKind
from settlement_worker.obligations.settle import trade_date
from settlement_worker.payments.rules import Payment, PaymentState
from settlement_worker.store import EntryRow, PostingRow

__all__ = [
    "PAID_STATES",
    "PaymentEffects",
    "is_recourse",
    "paid_entry",
    "paid_entry_id",
    "payment_effects",
]

PAID_STATES: Final = frozenset({PaymentState.CONFIRMED, PaymentState.PAID_MANUALLY})
#: Payment ids of recourse claims after a dishonour (``pay-rec-<bill id>-<n>-0``).
RECOURSE_PAYMENT_PREFIX: Final = "pay-rec-"


def is_recourse(payment_id: str) -> bool:
    """A recourse claim's payment (after a dishonour): its payee may be a bank."""
    return payment_id.startswith(RECOURSE_PAYMENT_PREFIX)


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


@dataclass(frozen=True, slots=True)
class PaymentEffects:
    """What moving a payment books (``entries``) and announces (``events``); ``paid``: the
    money moved with this move, so its obligation may now be settled."""

    entries: tuple[EntryRow, ...] = ()
    events: tuple[SettlementEvent, ...] = ()
    paid: bool = False


def payment_effects(old: Payment, new: Payment, *, to_bank: bool = False) -> PaymentEffects:
    """What moving ``old`` to ``new`` means (nothing if the state stayed). ``to_bank``: the
    payee of this recourse payment is a bank (the caller looked it up)."""
    if new.state == old.state and new.send_no == old.send_no:
        return PaymentEffects()
    if new.state in PAID_STATES and old.state not in PAID_STATES:
        detail: dict[str, object] = {"state": str(new.state)}
        return PaymentEffects(
            entries=(paid_entry(new, new.updated_at, to_bank=to_bank),),
            events=tuple(
                _event(new, member, "payment_confirmed", "confirmed", detail)
                for member in (new.payer, new.payee)
            ),
            paid=True,
        )
    if new.state is PaymentState.SENT and new.send_no != old.send_no:
        sent = _event(
            new, new.payer, "payment_sent", f"sent-{new.send_no}", {"attempt": new.send_no}
        )
        return PaymentEffects(events=(sent,))
    if new.state in (PaymentState.FAILED, PaymentState.MANUAL_REVIEW) and old.state in (
        PaymentState.SENT,
        PaymentState.UNKNOWN,
        PaymentState.UNKNOWN_REVIEW,
    ):
        failed = _event(
            new,
            new.payer,
            "payment_failed",
            f"failed-{old.send_no}",
            {"attempt": old.send_no, "reason": new.last_error, "state": str(new.state)},
        )
        return PaymentEffects(events=(failed,))
    return PaymentEffects()
