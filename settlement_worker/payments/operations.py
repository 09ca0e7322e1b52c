"""Moving a payment, in the caller's transaction: its row and history written
(:mod:`~settlement_worker.payments.sql`), then what the move books and announces, computed
by :func:`~settlement_worker.payments.postings.payment_effects`, written in the same commit;
an obligation whose payments and bills now cover it is settled. The one way a payment's
state changes in the store, so the payer and an operator's commands book it alike."""

from __future__ import annotations

from settlement_worker.obligations.rules import ObligationState
from settlement_worker.outbox import add_events
from settlement_worker.payments.postings import PAID_STATES, is_recourse, payment_effects
from settlement_worker.payments.rules import Payment
from settlement_worker.payments.sql import open_obligation_cover, recourse_to_bank, save_payment
from settlement_worker.store import Transaction

__all__ = ["move_payment"]


def move_payment(
    tx: Transaction, old: Payment, version: int, new: Payment, actor: str = "payer"
) -> int:
    """Write ``new`` over ``old`` (read at ``version``) and book the change; the new
    version. Raises :class:`~settlement_worker.store.ConcurrentUpdate` if the row
    moved on since it was read."""
    saved = save_payment(tx, old, version, new, actor)
    # Only a recourse payment that is paid now needs its payee's kind looked up.
    paid_now = new.state in PAID_STATES and old.state not in PAID_STATES
    to_bank = paid_now and is_recourse(new.payment_id) and recourse_to_bank(tx, new.payment_id)
    effects = payment_effects(old, new, to_bank=to_bank)
    if effects.entries:
        tx.append_entries(effects.entries)
    if effects.paid:
        _settle_if_covered(tx, new.obligation_id, new.updated_at)
    if effects.events:
        add_events(tx, effects.events)
    return saved


def _settle_if_covered(tx: Transaction, obligation_id: str, at: int) -> None:
    """``settled`` once its paid payments and its bills cover the whole obligation: every
    cash part is paid, and the bill part was met by bills issued or endorsed for it at
    booking."""
    cover = open_obligation_cover(tx, obligation_id, PAID_STATES)
    if cover is None or cover[1] < cover[0]:
        return
    settled = ObligationState.SETTLED
    tx.set_obligation_state(obligation_id, settled)
    tx.audit(at, "payer", "obligation", obligation_id, settled, {"reason": "all of it paid"})
