"""The bill part of a trade's payment plan, settled in the booking's own transaction.

Booking a trade (booking.write_rows) pays the plan's bill part at once, in one flow:

1. **Endorse held bills first.** If the payer holds bills the payee would take -- accepted
   and transferable, not frozen by a dispute, not drawn by the payee, in the obligation's
   currency, its acceptor admitted by the payee's receipt limits, its face within the
   payee's face limit, its remaining tenor at least a day and within the payee's tenor
   limit, and not dated after the trade -- they are endorsed to the payee, largest first
   while they fit in what is left of the bill part (first fit by face, then earliest due,
   then id: deterministic). That is the exchange's "bill transfer and payment in one
   flow": a member pays with the bills it was paid with instead of drawing new credit.
2. **Issue new bills for the rest.** Drawn by the payer, accepted by the plan's acceptor
   (a bank bill by the bank the plan names, a commercial bill by the drawer), dated the
   trade date, due after the plan's tenor. With nothing endorsed they are exactly the plan's
   bills; otherwise the rest is split again under the payee's face limit, as the plan
   splits (amounts differing by at most one fen, larger first).

Bill ids derive from the obligation (``bill-<obligation id>-<n>``, n counting the bills
issued for it from 0), and a trade is booked once, so booking is idempotent. The pure
part is :func:`settle_by_bills`; :func:`book_bills` reads the payers' held bills for a
whole batch in one query and writes everything set-wise. A bill received in the batch can
pay a later trade of the same batch.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Final

from rex.money import Money
from settlement_worker.bills.records import BillRecords
from settlement_worker.bills.rules import Bill, BillKind, BillState, accept, endorse, issue
from settlement_worker.bills.sql import NewLink, StoredBill, held_bills, insert_bills, save_bill
from settlement_worker.configuration import SettlementConfig
from settlement_worker.plans.receipt_limits import PaymentKind, ReceiptLimits
from settlement_worker.plans.rules import PaymentPlan
from settlement_worker.store import Transaction

__all__ = [
    "BillSettlement",
    "BillTerms",
    "bill_id_for",
    "bill_terms",
    "book_bills",
    "can_endorse_to",
    "settle_by_bills",
]

#: Where a commercial bill's acceptor is unknown to the configuration.
UNKNOWN_CITY: Final = "unknown"
_ENDORSABLE: Final = frozenset({BillState.ACCEPTED, BillState.ENDORSED})


def bill_id_for(obligation_id: str, number: int) -> str:
    """The id of the ``number``-th bill (from 0) issued to pay ``obligation_id``."""
    return f"bill-{obligation_id}-{number}"


@dataclass(frozen=True, slots=True)
class BillTerms:
    """The bill part of one obligation's plan and what booking needs to settle it."""

    obligation_id: str
    payer: str
    payee: str
    currency: str
    issue_date: dt.date
    kind: BillKind
    acceptor: str
    acceptor_city: str
    tenor_days: int
    faces: tuple[int, ...]  # the plan's bills, larger first
    payee_limits: ReceiptLimits

    @property
    def total(self) -> int:
        return sum(self.faces)

    @property
    def due_date(self) -> dt.date:
        return self.issue_date + dt.timedelta(days=self.tenor_days)


def _acceptor_city(config: SettlementConfig, kind: BillKind, acceptor: str, payer: str) -> str:
    """A bank bill is payable where its bank is; a commercial bill where its drawer banks."""
    bank = acceptor if kind is BillKind.BANK_ACCEPTANCE else config.banks_for(payer)[0]
    found = config.banks.get(bank)
    return found.city if found is not None else UNKNOWN_CITY


def bill_terms(plan: PaymentPlan, config: SettlementConfig) -> BillTerms | None:
    """The plan's bill part (None if it has none), with the payee's receipt limits in
    force in ``config``."""
    bills = plan.bills
    if not bills:
        return None
    first = bills[0]
    assert first.acceptor is not None and first.tenor_days is not None  # PlannedPayment
    kind = BillKind(first.kind.value)
    return BillTerms(
        obligation_id=plan.obligation_id,
        payer=plan.payer,
        payee=plan.payee,
        currency=plan.amount.currency,
        issue_date=plan.issue_date,
        kind=kind,
        acceptor=first.acceptor,
        acceptor_city=_acceptor_city(config, kind, first.acceptor, plan.payer),
        tenor_days=first.tenor_days,
        faces=tuple(part.amount.minor for part in bills),
        payee_limits=config.limits_or_default(plan.payee),
    )


def can_endorse_to(bill: Bill, to: str, limits: ReceiptLimits, on: dt.date) -> bool:
    """Whether ``to``'s receipt limits take ``bill`` by endorsement on ``on``: it takes
    bills of this kind and acceptor, this face, and the tenor left; and the bill is not
    drawn by ``to`` (a drawer holding its own bill has nobody to claim from)."""
    remaining = (bill.due_date - on).days
    face_limit = limits.max_bill_face_minor
    return (
        bill.drawer != to
        and 1 <= remaining <= limits.max_tenor_days
        and (face_limit is None or bill.face.minor <= face_limit)
        and limits.accepts(PaymentKind(bill.kind.value), bill.acceptor)
    )


def _endorsable(bill: Bill, terms: BillTerms) -> bool:
    return (
        bill.holder == terms.payer
        and bill.state in _ENDORSABLE
        and bill.transferable
        and bill.face.currency == terms.currency
        and bill.last_event_date <= terms.issue_date
        and can_endorse_to(bill, terms.payee, terms.payee_limits, terms.issue_date)
    )


def _split(total: int, face_limit: int | None) -> tuple[int, ...]:
    """``total`` in as few bills as the face limit allows, differing by at most one fen,
    larger first (the plan's own split)."""
    count = 1 if face_limit is None else -(-total // face_limit)
    base, extra = divmod(total, count)
    return tuple([base + 1] * extra + [base] * (count - extra))


@dataclass(frozen=True, slots=True)
class BillSettlement:
    """How one obligation's bill part is met: held bills endorsed (before, after) and new
    bills issued (accepted)."""

    endorsed: tuple[tuple[Bill, Bill], ...] = ()
    issued: tuple[Bill, ...] = ()

    @property
    def total(self) -> int:
        return sum(after.face.minor for _, after in self.endorsed) + sum(
            b.face.minor for b in self.issued
        )


def _largest_first(bill: Bill) -> tuple[int, dt.date, str]:
    return (-bill.face.minor, bill.due_date, bill.bill_id)


def settle_by_bills(terms: BillTerms, held: Sequence[Bill]) -> BillSettlement:
    """Meet ``terms`` with the payer's ``held`` bills first, new bills for the rest (pure)."""
    endorsed: list[tuple[Bill, Bill]] = []
    left = terms.total
    # Largest first; the full eligibility test only for a bill that would still fit.
    for bill in sorted((b for b in held if b.face.minor <= left), key=_largest_first):
        if bill.face.minor <= left and _endorsable(bill, terms):
            endorsed.append((bill, endorse(bill, terms.payer, terms.payee, terms.issue_date)))
            left -= bill.face.minor
            if not left:
                break
    if not endorsed:
        faces = terms.faces
    else:
        faces = _split(left, terms.payee_limits.max_bill_face_minor) if left else ()
    issued = tuple(_issue(terms, number, face) for number, face in enumerate(faces))
    return BillSettlement(tuple(endorsed), issued)


def _issue(terms: BillTerms, number: int, face: int) -> Bill:
    drawn = issue(
        bill_id_for(terms.obligation_id, number),
        terms.kind,
        terms.payer,
        terms.payee,
        terms.acceptor,
        terms.acceptor_city,
        Money(face, terms.currency),
        terms.issue_date,
        terms.due_date,
    )
    return accept(drawn, terms.acceptor, terms.issue_date)


@dataclass(slots=True)
class _Batch:
    """The bills of one booking batch: new ones (with their links so far) and held ones
    moved, keyed by bill id in the order they were first touched."""

    new: dict[str, tuple[Bill, str, list[NewLink]]] = field(default_factory=dict)
    moved: dict[str, tuple[Bill, list[NewLink]]] = field(default_factory=dict)

    def issued(self, bill: Bill, obligation_id: str) -> None:
        self.new[bill.bill_id] = (bill, obligation_id, [])

    def endorsed(self, after: Bill, obligation_id: str) -> None:
        link = NewLink(after.endorsements[-1], obligation_id)
        if after.bill_id in self.new:
            _, issued_for, links = self.new[after.bill_id]
            self.new[after.bill_id] = (after, issued_for, [*links, link])
        else:
            _, links = self.moved.get(after.bill_id, (after, []))
            self.moved[after.bill_id] = (after, [*links, link])


def book_bills(
    tx: Transaction, all_terms: Sequence[BillTerms], at: int, actor: str = "settlement"
) -> list[BillSettlement]:
    """Settle the bill parts of a batch of obligations, in order, in ``tx``."""
    if not all_terms:
        return []
    payers = sorted({t.payer for t in all_terms})
    stored = held_bills(
        tx, payers, min(t.issue_date for t in all_terms), max(t.total for t in all_terms)
    )
    frozen = tx.frozen_among("bill", [s.bill.bill_id for s in stored])
    loaded: dict[str, StoredBill] = {}
    # Each payer's endorsable bills by id, updated as the batch moves and issues bills.
    pools: dict[str, dict[str, Bill]] = {payer: {} for payer in payers}
    for s in stored:
        if s.bill.bill_id not in frozen:
            loaded[s.bill.bill_id] = s
            pools[s.bill.holder][s.bill.bill_id] = s.bill
    batch = _Batch()
    records = BillRecords(at, actor)
    settled = []
    for terms in all_terms:
        result = settle_by_bills(terms, list(pools[terms.payer].values()))
        for _, after in result.endorsed:
            del pools[terms.payer][after.bill_id]
            if terms.payee in pools:  # it may pay a later trade of the batch
                pools[terms.payee][after.bill_id] = after
            batch.endorsed(after, terms.obligation_id)
            records.endorsed(after, after.endorsements[-1], terms.obligation_id)
        for bill in result.issued:
            if terms.payee in pools:
                pools[terms.payee][bill.bill_id] = bill
            batch.issued(bill, terms.obligation_id)
            records.issued(bill, terms.obligation_id)
        settled.append(result)
    insert_bills(tx, list(batch.new.values()), at)
    for bill_id, (after, links) in batch.moved.items():
        save_bill(tx, loaded[bill_id], after, at, links)
    records.write(tx)
    return settled
