"""Resolving a dispute, with what an upheld dispute on a bill does to the bill itself.

:func:`settlement_worker.disputes_store.resolve_in_store` reverses the disputed subject's
journal entries (for a bill: every entry whose reference is the bill id) and audits the
cancellation. :func:`resolve_dispute` does that and, for an upheld bill, also:

* cancels the bill row (``bills.void``: any outstanding bill, its chain kept as it was);
  a bill already paid, dishonoured or cancelled is history and is refused
  (``bill_not_cancellable``), and nothing is written: an operator rejects that dispute
  instead;
* reopens the obligations the bill paid (the one it was issued for, and any a booking
  endorsed it to pay): the reversal restored their payables and receivables, so that part
  is owed again. Paying it is left to the operator (a new payment, or a new bill).

``rex dispute resolve`` calls this; call it, not ``resolve_in_store``, wherever a dispute
is resolved.
"""

from __future__ import annotations

from .bill_store import load_bill, save_bill
from .disputes import Actor, Dispute, SubjectType, cancel_disputed_bill
from .disputes_store import Resolution, resolve_in_store
from .settle import trade_date
from .store import Transaction

__all__ = ["resolve_dispute"]


def resolve_dispute(
    tx: Transaction, dispute_id: str, by: Actor, upheld: bool, note: str, at: int
) -> Resolution:
    """An operator upholds or rejects dispute ``dispute_id`` (see the module docstring)."""
    resolution = resolve_in_store(tx, dispute_id, by, upheld, note, at)
    dispute = resolution.dispute
    if upheld and dispute.subject_type is SubjectType.BILL:
        _cancel_bill(tx, dispute, by, at)
    return resolution


def _cancel_bill(tx: Transaction, dispute: Dispute, by: Actor, at: int) -> None:
    stored = load_bill(tx, dispute.subject_id)
    if stored is None:
        return  # a bill known only to the journal: its entries are reversed, nothing more
    save_bill(tx, stored, cancel_disputed_bill(stored.bill, dispute, trade_date(at)), at)
    paid = tx.execute(
        "SELECT obligation_id FROM obligations WHERE state = 'settled' AND (obligation_id = ?"
        " OR obligation_id IN (SELECT obligation_id FROM bill_endorsements WHERE bill_id = ?))",
        [stored.obligation_id, dispute.subject_id],
    )
    for (obligation_id,) in paid:
        tx.set_obligation_state(obligation_id, "open")
        tx.audit(
            at,
            str(by),
            "obligation",
            obligation_id,
            "reopened",
            {
                "bill_id": dispute.subject_id,
                "dispute_id": dispute.dispute_id,
                "reason": f"bill {dispute.subject_id} cancelled by dispute "
                f"{dispute.dispute_id}: the part it paid is owed again",
            },
        )
