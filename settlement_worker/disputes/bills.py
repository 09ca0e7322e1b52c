"""What an upheld dispute does to a bill itself, besides reversing its journal entries.

:func:`settlement_worker.disputes.operations.resolve_in_store` calls these for every upheld bill
dispute, so no caller can resolve one and leave the bill row live (reconcile would flag
it: a bill whose entries are reversed must be cancelled):

* :func:`bill_to_cancel`, before anything is written, reads the bill and cancels it in
  memory (``bills.void``: any outstanding bill, its chain kept as it was); a bill already
  paid, dishonoured or cancelled is history and is refused (``bill_not_cancellable``), so
  the resolution writes nothing and an operator rejects that dispute instead;
* :func:`cancel_bill` saves it and reopens the obligations the bill paid (the one it was
  issued for, and any a booking endorsed it to pay): the reversal restored their payables
  and receivables, so that part is owed again. Paying it is left to the operator (a new
  payment, or a new bill).

Nothing here imports the dispute store: it imports this.
"""

from __future__ import annotations

from dataclasses import dataclass

from settlement_worker.bills.rules import Bill
from settlement_worker.bills.sql import StoredBill, load_bill, save_bill
from settlement_worker.disputes.rules import Actor, Dispute, cancel_disputed_bill
from settlement_worker.obligations.rules import ObligationState
from settlement_worker.obligations.settle import trade_date
from settlement_worker.store import Transaction

__all__ = ["BillCancellation", "bill_to_cancel", "cancel_bill"]


@dataclass(frozen=True, slots=True)
class BillCancellation:
    """A bill an upheld dispute cancels: as read, and cancelled."""

    stored: StoredBill
    cancelled: Bill


def bill_to_cancel(tx: Transaction, upheld: Dispute, at: int) -> BillCancellation | None:
    """The bill ``upheld`` cancels, or None for a bill known only to the journal (its
    entries are reversed, there is no row to cancel). Reads only; raises
    ``bill_not_cancellable`` for a bill that is no longer outstanding."""
    stored = load_bill(tx, upheld.subject_id)
    if stored is None:
        return None
    return BillCancellation(stored, cancel_disputed_bill(stored.bill, upheld, trade_date(at)))


def cancel_bill(
    tx: Transaction, cancellation: BillCancellation, upheld: Dispute, by: Actor, at: int
) -> None:
    """Save the cancelled bill and reopen the obligations it paid."""
    stored = cancellation.stored
    bill_id = stored.bill.bill_id
    save_bill(tx, stored, cancellation.cancelled, at)
    paid = tx.execute(
        "SELECT obligation_id FROM obligations WHERE state = 'settled' AND (obligation_id = ?"
        " OR obligation_id IN (SELECT obligation_id FROM bill_endorsements WHERE bill_id = ?))",
        [stored.obligation_id, bill_id],
    )
    for (obligation_id,) in paid:
        tx.set_obligation_state(obligation_id, ObligationState.OPEN)
        tx.audit(
            at,
            str(by),
            "obligation",
            obligation_id,
            "reopened",
            {
                "bill_id": bill_id,
                "dispute_id": upheld.dispute_id,
                "reason": f"bill {bill_id} cancelled by dispute "
                f"{upheld.dispute_id}: the part it paid is owed again",
            },
        )
