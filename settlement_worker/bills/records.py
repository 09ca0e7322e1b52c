"""What a bill's state change writes besides the bill row: its journal entry, audit rows
and member events, collected and then written in the caller's transaction.

Booking (bill_booking) and the bill operations (bill_ops) use the same
:class:`BillRecords`, so a bill issued by the worker and one endorsed on a member's request
are recorded alike:

===========  ====================================  ===================  ===================
change       entry (bill_entries)                  audit (subject bill)  event, to
===========  ====================================  ===================  ===================
issued       ``issue-B``                           issued, accepted      bill_issued: drawer,
                                                                         payee
endorsed     ``endorse-B-n``                       endorsed              bill_endorsed: both
discounted   ``discount-B``                        discounted            bill_discounted:
                                                                         the seller
paid         ``maturity-B``                        paid                  bill_paid: holder,
                                                                         drawer
dishonoured  ``dishonour-B``                       dishonoured,          bill_dishonoured:
                                                   recourse (each)       holder, drawer,
                                                                         debtors
===========  ====================================  ===================  ===================

Banks get no events (they are not members); a bank holding a discounted bill is left out.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from rex.settlement_protocol import (
    BILL_DISCOUNTED,
    BILL_DISHONOURED,
    BILL_ENDORSED,
    BILL_ISSUED,
    BILL_PAID,
    SettlementEvent,
    bill_events,
)
from settlement_worker.bills import postings as posting
from settlement_worker.bills.discount import DiscountResult
from settlement_worker.bills.rules import Bill, Endorsement
from settlement_worker.bills.sql import Recourse
from settlement_worker.ledger.rules import JournalEntry
from settlement_worker.ledger.sql import entry_row, from_ns
from settlement_worker.outbox import add_events
from settlement_worker.store import AuditRow, EntryRow, Transaction

__all__ = ["BillRecords", "bill_detail"]

_SUBJECT = "bill"


def bill_detail(bill: Bill) -> dict[str, Any]:
    """A bill as events and audit rows show it (money in minor units, dates ISO)."""
    return {
        "kind": bill.kind.value,
        "drawer": bill.drawer,
        "payee": bill.payee,
        "acceptor": bill.acceptor,
        "face": bill.face.minor,
        "currency": bill.face.currency,
        "issue_date": bill.issue_date.isoformat(),
        "due_date": bill.due_date.isoformat(),
        "holder": bill.holder,
        "state": bill.state.value,
    }


@dataclass(slots=True)
class BillRecords:
    """Records of bill changes made at ``at`` (ns) by ``actor`` (``settlement``,
    ``member:<id>``, ``operator:<name>``), to write together with the bill rows."""

    at: int
    actor: str
    entries: list[EntryRow] = field(default_factory=list)
    audits: list[AuditRow] = field(default_factory=list)
    events: list[SettlementEvent] = field(default_factory=list)

    def _book(self, entry: JournalEntry) -> None:
        self.entries.append(entry_row(entry))

    def _audit(self, bill: Bill, action: str, detail: dict[str, Any]) -> None:
        self.audits.append(AuditRow(self.at, self.actor, _SUBJECT, bill.bill_id, action, detail))

    def _tell(self, bill: Bill, event: str, key: str, members: Sequence[str], **extra: Any) -> None:
        detail = {**bill_detail(bill), **extra}
        self.events += bill_events(bill.bill_id, event, key, members, detail, self.at)

    def issued(self, bill: Bill, obligation_id: str) -> None:
        """``bill`` (accepted) was drawn to pay part of ``obligation_id``."""
        self._book(posting.issue_entry(bill, from_ns(self.at)))
        self._audit(
            bill,
            "issued",
            {
                **bill_detail(bill),
                "obligation_id": obligation_id,
                "reason": f"drawn by {bill.drawer} to pay obligation {obligation_id}",
            },
        )
        self._audit(
            bill,
            "accepted",
            {
                "acceptor": bill.acceptor,
                "on": str(bill.accepted_on),
                "reason": "accepted on issue by the acceptor the payment plan names",
            },
        )
        self._tell(
            bill, BILL_ISSUED, "issued", [bill.drawer, bill.payee], obligation_id=obligation_id
        )

    def endorsed(
        self,
        bill: Bill,
        link: Endorsement,
        obligation_id: str | None,
        reason: str | None = None,
    ) -> None:
        """``link`` (the last of ``bill``'s chain) moved it; ``obligation_id``: what it paid;
        ``reason``: the why the endorser gave, if any (else one is made up from the facts)."""
        self._book(
            posting.endorse_entry(
                bill, link, from_ns(self.at), pays_obligation=obligation_id is not None
            )
        )
        why = reason or (
            f"endorsed by {link.from_holder} to pay obligation {obligation_id}"
            if obligation_id is not None
            else f"endorsed by {link.from_holder} to {link.to_holder}"
        )
        self._audit(
            bill,
            "endorsed",
            {
                "from": link.from_holder,
                "to": link.to_holder,
                "sequence": link.sequence,
                "on": link.date.isoformat(),
                "obligation_id": obligation_id,
                "reason": why,
            },
        )
        self._tell(
            bill,
            BILL_ENDORSED,
            f"endorsed-{link.sequence}",
            [link.from_holder, link.to_holder],
            sequence=link.sequence,
            endorser=link.from_holder,
            obligation_id=obligation_id,
        )

    def discounted(
        self, bill: Bill, seller: str, result: DiscountResult, reason: str | None = None
    ) -> None:
        """``seller`` sold ``bill`` (now held by the bank) at ``result``."""
        self._book(posting.discount_entry(bill, seller, result, from_ns(self.at)))
        working = {
            "bank": bill.holder,
            "seller": seller,
            "on": result.discount_date.isoformat(),
            "annual_rate": str(result.annual_rate),
            "days": result.days,
            "other_city": result.other_city,
            "interest": result.interest.minor,
            "proceeds": result.proceeds.minor,
        }
        self._audit(
            bill,
            "discounted",
            {**working, "reason": reason or f"discounted by {seller} at {bill.holder}"},
        )
        self._tell(bill, BILL_DISCOUNTED, "discounted", [seller], **working)

    def paid(self, bill: Bill) -> None:
        """``bill`` was paid at maturity (``bill.closed_on``)."""
        self._book(posting.maturity_entry(bill, from_ns(self.at)))
        on = str(bill.closed_on)
        self._audit(bill, "paid", {"on": on, "holder": bill.holder, "reason": "paid at maturity"})
        self._tell(bill, BILL_PAID, "paid", self._members(bill, bill.drawer), on=on)

    def dishonoured(self, bill: Bill, claims: Sequence[Recourse], reason: str) -> None:
        """``bill`` was dishonoured; ``claims`` move the holder's claim back along the chain
        (empty if the holder is the drawer)."""
        debtor = claims[0].debtor if claims else None
        self._book(posting.dishonour_entry(bill, debtor, from_ns(self.at)))
        on = str(bill.closed_on)
        self._audit(bill, "dishonoured", {"on": on, "holder": bill.holder, "reason": reason})
        for claim in claims:
            self._audit(
                bill,
                "recourse",
                {
                    "recourse_id": claim.recourse_id,
                    "creditor": claim.creditor,
                    "debtor": claim.debtor,
                    "amount": claim.amount.minor,
                    "payment_id": claim.payment_id,
                    "reason": f"{claim.debtor} owes {claim.creditor} the face after dishonour",
                },
            )
        debtors = [c.debtor for c in claims]
        self._tell(
            bill,
            BILL_DISHONOURED,
            "dishonoured",
            self._members(bill, bill.drawer, *debtors),
            on=on,
            recourse=[{"creditor": c.creditor, "debtor": c.debtor} for c in claims],
        )

    @staticmethod
    def _members(bill: Bill, *others: str) -> list[str]:
        """The holder (unless a bank, which is no member) and ``others``."""
        holder = [] if posting.held_by_bank(bill) else [bill.holder]
        return [*holder, *others]

    def write(self, tx: Transaction) -> None:
        tx.append_entries(self.entries)
        tx.audit_many(self.audits)
        add_events(tx, self.events)
