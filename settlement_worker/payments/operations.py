"""Moving a payment, in the caller's transaction: its row and history written
(:mod:`~settlement_worker.payments.sql`) and what the move books and announces
(:mod:`~settlement_worker.payments.postings`), in the same commit. The one way a payment's
state changes in the store, so the payer and an operator's commands book it alike."""

from __future__ import annotations

from settlement_worker.payments.postings import on_state_change
from settlement_worker.payments.rules import Payment
from settlement_worker.payments.sql import save_payment
from settlement_worker.store import Transaction

__all__ = ["move_payment"]


def move_payment(
    tx: Transaction, old: Payment, version: int, new: Payment, actor: str = "payer"
) -> int:
    """Write ``new`` over ``old`` (read at ``version``) and book the change; the new
    version. Raises :class:`~settlement_worker.store.ConcurrentUpdate` if the row
    moved on since it was read."""
    saved = save_payment(tx, old, version, new, actor)
    on_state_change(tx, old, new)  # the ledger entry of a paid payment, its events
    return saved
