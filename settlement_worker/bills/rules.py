"""Electronic acceptance bills as a pure state machine.

A :class:`Bill` is an immutable value. Each operation (:func:`accept`, :func:`endorse`,
:func:`discount`, :func:`pay_at_maturity`, :func:`dishonour`, :func:`cancel`) takes a bill
and returns a **new** bill, or raises a :class:`~settlement_worker.codes.RuleViolation`
whose ``code`` names the rule broken (``tenor_too_long``, ``not_transferable``,
``overdue``...). Dates are inputs; nothing here reads the clock.

Life cycle::

    ISSUED ──accept──▶ ACCEPTED ──endorse──▶ ENDORSED ─┬─endorse (again)─┐
      │                   │                      ▲      │◀───────────────┘
    cancel                └──────── discount ────┼──────┴──▶ DISCOUNTED
      ▼                                                             │
    CANCELLED          ACCEPTED / ENDORSED / DISCOUNTED ──at or after due──▶ PAID
                                                                 └──────▶ DISHONOURED
    ISSUED / ACCEPTED / ENDORSED / DISCOUNTED ──void (upheld dispute)──▶ CANCELLED

Rules (Negotiable Instruments Law of the PRC, and the 2023 tenor rule):

* **Tenor** ``0 < due_date - issue_date`` and ``due_date <= legal_latest_due_date(issue_date)``:
  calendar-month arithmetic, clamped to the end of the month (31 Aug + 6 months is
  28 Feb, or 29 Feb in a leap year). Six months has been the maximum for electronic
  commercial bills since 1 January 2023 (it was one year before).
* **Endorsement**: the whole bill or nothing (no partial amounts); only by the current
  holder, so the chain stays continuous; never for a bill marked not transferable, after
  its due date, or once it is discounted, paid, dishonoured or cancelled. The chain is
  append-only: every operation keeps the existing endorsements and can only add one.
* **Discounting** transfers the bill to the bank by a discount endorsement (it appears in
  the chain, so the bank has recourse against the member who sold it). Same refusals as
  endorsement; the arithmetic is in :mod:`settlement_worker.bills.discount`.
* **Dishonour** gives the holder recourse against every earlier party: the most recent
  endorser first, then earlier endorsers, then the drawer. A holder who held the bill
  before (a bill endorsed back to an earlier party) has no recourse against the parties
  between its two holdings (NIL art. 69), so only parties before its first holding count.
* **Privacy**: the chain is shown only to parties to the bill.
* **Voiding**: only the drawer cancels, and only before acceptance (:func:`cancel`); after
  that a bill ends as ``CANCELLED`` only when an operator upholds a dispute about it
  (:func:`void`), which keeps its chain: the record of who held it is not rewritten.

The bill's ``holder`` starts as the payee: the bill is drawn in the payee's favour, but it
cannot be endorsed, discounted or paid until the acceptor has accepted it.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, replace
from decimal import Decimal
from enum import StrEnum
from typing import Final

from rex.money import Money
from settlement_worker.bills.discount import DiscountResult, HolidayCalendar, quote_discount
from settlement_worker.codes import RuleViolation, SettlementCode
from settlement_worker.plans.receipt_limits import LEGAL_MAX_TENOR_MONTHS, legal_latest_due_date

__all__ = [
    "Bill",
    "BillKind",
    "BillState",
    "Endorsement",
    "EndorsementKind",
    "accept",
    "cancel",
    "discount",
    "dishonour",
    "endorse",
    "is_live",
    "issue",
    "parties",
    "pay_at_maturity",
    "recourse_parties",
    "roles",
    "visible_chain",
    "void",
]

#: Longest tenor of an electronic commercial bill, in calendar months (rule since 2023).

_PARTY_RE: Final = re.compile(r"[A-Za-z0-9_-]{1,32}")


# --------------------------------------------------------------------------- errors


# ---------------------------------------------------------------------------- values


class BillKind(StrEnum):
    BANK_ACCEPTANCE = "bank_acceptance"
    COMMERCIAL_ACCEPTANCE = "commercial_acceptance"


class BillState(StrEnum):
    ISSUED = "issued"
    ACCEPTED = "accepted"
    ENDORSED = "endorsed"
    DISCOUNTED = "discounted"
    PAID = "paid"
    DISHONOURED = "dishonoured"
    CANCELLED = "cancelled"


_LIVE: Final = frozenset({BillState.ACCEPTED, BillState.ENDORSED, BillState.DISCOUNTED})
_CLOSED_AT_MATURITY: Final = frozenset({BillState.PAID, BillState.DISHONOURED})
#: States in which the bill is still owed: drawn and neither paid, dishonoured nor cancelled.
_OUTSTANDING: Final = frozenset({BillState.ISSUED, *_LIVE})


def is_live(state: BillState) -> bool:
    """True while the bill is outstanding (issued, accepted, endorsed or discounted): its
    face is still owed by the drawer and held by someone."""
    return state in _OUTSTANDING


class EndorsementKind(StrEnum):
    """``TRANSFER``: an ordinary endorsement; ``DISCOUNT``: the sale of the bill to a bank."""

    TRANSFER = "transfer"
    DISCOUNT = "discount"


@dataclass(frozen=True, slots=True)
class Endorsement:
    """One link of the chain: ``from_holder`` transferred the whole bill to ``to_holder``.

    ``sequence`` numbers the links 1, 2, 3... so a gap or a rewrite is detectable.
    """

    from_holder: str
    to_holder: str
    date: dt.date
    sequence: int
    kind: EndorsementKind = EndorsementKind.TRANSFER


def _check_party(name: str, value: object) -> str:
    if not isinstance(value, str) or _PARTY_RE.fullmatch(value) is None:
        raise RuleViolation(
            SettlementCode.INVALID_PARTY,
            f"{name} must be 1-32 letters, digits, '_' or '-', got {value!r}",
        )
    return value


def _check_date(name: str, value: object) -> dt.date:
    if not isinstance(value, dt.date) or isinstance(value, dt.datetime):
        raise RuleViolation(SettlementCode.INVALID_DATE, f"{name} must be a date, got {value!r}")
    return value


@dataclass(frozen=True, slots=True)
class Bill:
    """An electronic acceptance bill, validated on construction.

    Build one with :func:`issue`; every other operation returns an updated copy. The
    constructor re-checks all invariants (parties, tenor, a continuous and numbered chain,
    a state consistent with the chain and dates), so a bill loaded from storage is held to
    the same rules as one built by the functions here.

    ``acceptor`` is a bank id for a bank acceptance bill and the drawer itself for a
    commercial acceptance bill. ``accepted_on`` is set by :func:`accept`; ``closed_on`` is
    the date the bill was paid, dishonoured or cancelled.
    """

    bill_id: str
    kind: BillKind
    drawer: str
    payee: str
    acceptor: str
    acceptor_city: str
    face: Money
    issue_date: dt.date
    due_date: dt.date
    transferable: bool
    state: BillState
    holder: str
    endorsements: tuple[Endorsement, ...] = ()
    accepted_on: dt.date | None = None
    closed_on: dt.date | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "endorsements", tuple(self.endorsements))
        self._check_fields()
        self._check_tenor()
        self._check_chain()
        self._check_state()

    def _check_fields(self) -> None:
        if not isinstance(self.bill_id, str) or not self.bill_id.strip():
            raise RuleViolation(
                SettlementCode.INVALID_BILL,
                f"bill_id must be a non-empty string, got {self.bill_id!r}",
            )
        if not isinstance(self.kind, BillKind):
            raise RuleViolation(
                SettlementCode.INVALID_BILL, f"kind must be a BillKind, got {self.kind!r}"
            )
        if not isinstance(self.state, BillState):
            raise RuleViolation(
                SettlementCode.INVALID_BILL, f"state must be a BillState, got {self.state!r}"
            )
        for name in ("drawer", "payee", "acceptor", "holder"):
            _check_party(name, getattr(self, name))
        if not isinstance(self.acceptor_city, str) or not self.acceptor_city.strip():
            raise RuleViolation(
                SettlementCode.INVALID_PARTY, "acceptor_city must be a non-empty string"
            )
        if self.drawer == self.payee:
            raise RuleViolation(SettlementCode.INVALID_PARTY, "drawer and payee must differ")
        if self.kind is BillKind.COMMERCIAL_ACCEPTANCE and self.acceptor != self.drawer:
            raise RuleViolation(
                SettlementCode.WRONG_ACCEPTOR,
                "a commercial acceptance bill is accepted by its drawer",
            )
        if self.kind is BillKind.BANK_ACCEPTANCE and self.acceptor in (self.drawer, self.payee):
            raise RuleViolation(
                SettlementCode.WRONG_ACCEPTOR,
                "a bank acceptance bill is accepted by a bank, not a trading party",
            )
        if not isinstance(self.face, Money) or self.face.minor <= 0:
            raise RuleViolation(
                SettlementCode.NON_POSITIVE_FACE, f"face must be positive Money, got {self.face!r}"
            )
        if not isinstance(self.transferable, bool):
            raise RuleViolation(
                SettlementCode.INVALID_BILL,
                f"transferable must be a bool, got {self.transferable!r}",
            )

    def _check_tenor(self) -> None:
        issued = _check_date("issue_date", self.issue_date)
        due = _check_date("due_date", self.due_date)
        if due <= issued:
            raise RuleViolation(
                SettlementCode.TENOR_NOT_POSITIVE,
                f"due date {due} must be after issue date {issued}",
            )
        latest = legal_latest_due_date(issued)
        if due > latest:
            raise RuleViolation(
                SettlementCode.TENOR_TOO_LONG,
                f"tenor over {LEGAL_MAX_TENOR_MONTHS} months: issued {issued}, due {due}, "
                f"latest allowed {latest}",
            )

    def _check_chain(self) -> None:
        expected_from = self.payee
        earliest = self.accepted_on or self.issue_date
        for index, link in enumerate(self.endorsements, start=1):
            if not isinstance(link, Endorsement):
                raise RuleViolation(
                    SettlementCode.CHAIN_BROKEN, f"link {index} is not an Endorsement: {link!r}"
                )
            _check_party("endorsement to_holder", link.to_holder)
            on = _check_date("endorsement date", link.date)
            if link.sequence != index:
                raise RuleViolation(
                    SettlementCode.CHAIN_BROKEN, f"link {index} has sequence {link.sequence}"
                )
            if link.from_holder != expected_from:
                raise RuleViolation(
                    SettlementCode.CHAIN_BROKEN,
                    f"link {index} is from {link.from_holder!r} but {expected_from!r} held it",
                )
            if link.to_holder == link.from_holder:
                raise RuleViolation(
                    SettlementCode.SELF_ENDORSEMENT,
                    f"link {index} endorses {link.to_holder!r} to itself",
                )
            if not isinstance(link.kind, EndorsementKind):
                raise RuleViolation(
                    SettlementCode.CHAIN_BROKEN, f"link {index} has kind {link.kind!r}"
                )
            if link.kind is EndorsementKind.DISCOUNT and index != len(self.endorsements):
                raise RuleViolation(
                    SettlementCode.CHAIN_BROKEN,
                    f"link {index}: a discounted bill cannot be endorsed on",
                )
            if not self.transferable:
                raise RuleViolation(
                    SettlementCode.NOT_TRANSFERABLE,
                    "a bill marked not transferable has no endorsements",
                )
            if on < earliest:
                raise RuleViolation(
                    SettlementCode.BACKDATED, f"link {index} dated {on}, before {earliest}"
                )
            if on > self.due_date:
                raise RuleViolation(
                    SettlementCode.OVERDUE,
                    f"link {index} dated {on}, after the due date {self.due_date}",
                )
            expected_from = link.to_holder
            earliest = on
        if self.holder != expected_from:
            raise RuleViolation(
                SettlementCode.CHAIN_BROKEN,
                f"holder is {self.holder!r} but the chain ends at {expected_from!r}",
            )

    def _check_state(self) -> None:
        state = self.state
        accepted = self.accepted_on
        if accepted is not None:
            _check_date("accepted_on", accepted)
            if not self.issue_date <= accepted <= self.due_date:
                raise RuleViolation(
                    SettlementCode.INVALID_DATE, f"accepted on {accepted}, outside the bill's life"
                )
        if self.closed_on is not None:
            _check_date("closed_on", self.closed_on)
        last_kind = self.endorsements[-1].kind if self.endorsements else None
        ok = {
            BillState.ISSUED: accepted is None and not self.endorsements,
            # Drawer's cancel: before acceptance; an upheld dispute (void): any history.
            BillState.CANCELLED: True,
            BillState.ACCEPTED: accepted is not None and not self.endorsements,
            BillState.ENDORSED: accepted is not None and last_kind is EndorsementKind.TRANSFER,
            BillState.DISCOUNTED: accepted is not None and last_kind is EndorsementKind.DISCOUNT,
            BillState.PAID: accepted is not None,
            BillState.DISHONOURED: accepted is not None,
        }[state]
        closed = state in _CLOSED_AT_MATURITY or state is BillState.CANCELLED
        if closed != (self.closed_on is not None):
            ok = False
        if (
            state in _CLOSED_AT_MATURITY
            and self.closed_on is not None
            and self.closed_on < self.due_date
        ):
            ok = False
        if not ok:
            raise RuleViolation(
                SettlementCode.INVALID_STATE,
                f"state {state} is inconsistent with the bill's history",
            )

    @property
    def last_event_date(self) -> dt.date:
        """The date of the latest thing that happened to the bill."""
        days = [self.issue_date]
        if self.accepted_on is not None:
            days.append(self.accepted_on)
        if self.endorsements:
            days.append(self.endorsements[-1].date)
        if self.closed_on is not None:
            days.append(self.closed_on)
        return max(days)


# ------------------------------------------------------------------------ operations


def issue(
    bill_id: str,
    kind: BillKind,
    drawer: str,
    payee: str,
    acceptor: str,
    acceptor_city: str,
    face: Money,
    issue_date: dt.date,
    due_date: dt.date,
    transferable: bool = True,
) -> Bill:
    """Draw a bill in the payee's favour; it still has to be accepted."""
    return Bill(
        bill_id=bill_id,
        kind=kind,
        drawer=drawer,
        payee=payee,
        acceptor=acceptor,
        acceptor_city=acceptor_city,
        face=face,
        issue_date=issue_date,
        due_date=due_date,
        transferable=transferable,
        state=BillState.ISSUED,
        holder=payee,
    )


def _refuse_closed(bill: Bill) -> None:
    """Raise for the states in which nothing more can happen to a bill."""
    if bill.state is BillState.PAID:
        raise RuleViolation(
            SettlementCode.ALREADY_PAID, f"bill {bill.bill_id} was paid on {bill.closed_on}"
        )
    if bill.state is BillState.DISHONOURED:
        raise RuleViolation(
            SettlementCode.DISHONOURED, f"bill {bill.bill_id} was dishonoured on {bill.closed_on}"
        )
    if bill.state is BillState.CANCELLED:
        raise RuleViolation(
            SettlementCode.CANCELLED, f"bill {bill.bill_id} was cancelled on {bill.closed_on}"
        )


def _require_accepted(bill: Bill) -> None:
    _refuse_closed(bill)
    if bill.state is BillState.ISSUED:
        raise RuleViolation(
            SettlementCode.NOT_ACCEPTED, f"bill {bill.bill_id} has not been accepted"
        )


def _check_on(bill: Bill, on: dt.date) -> dt.date:
    _check_date("on", on)
    if on < bill.last_event_date:
        raise RuleViolation(
            SettlementCode.BACKDATED,
            f"{on} is before the bill's latest event on {bill.last_event_date}",
        )
    return on


def accept(bill: Bill, by: str, on: dt.date) -> Bill:
    """The acceptor accepts the bill, promising to pay the holder at maturity."""
    _refuse_closed(bill)
    if bill.state is not BillState.ISSUED:
        raise RuleViolation(
            SettlementCode.ALREADY_ACCEPTED,
            f"bill {bill.bill_id} was accepted on {bill.accepted_on}",
        )
    if by != bill.acceptor:
        raise RuleViolation(
            SettlementCode.NOT_ACCEPTOR, f"{by!r} is not the acceptor of bill {bill.bill_id}"
        )
    _check_on(bill, on)
    if on > bill.due_date:
        raise RuleViolation(
            SettlementCode.OVERDUE,
            f"cannot accept bill {bill.bill_id} after its due date {bill.due_date}",
        )
    return replace(bill, state=BillState.ACCEPTED, accepted_on=on)


def _require_transferable(bill: Bill, holder: str, on: dt.date) -> None:
    """The checks endorsement and discounting share (both transfer the whole bill)."""
    if not bill.transferable:
        raise RuleViolation(
            SettlementCode.NOT_TRANSFERABLE, f"bill {bill.bill_id} is marked not transferable"
        )
    if holder != bill.holder:
        raise RuleViolation(
            SettlementCode.NOT_HOLDER, f"{holder!r} does not hold bill {bill.bill_id}"
        )
    _check_on(bill, on)
    if on > bill.due_date:
        raise RuleViolation(
            SettlementCode.OVERDUE, f"bill {bill.bill_id} fell due on {bill.due_date}"
        )


def _append(
    bill: Bill, to_holder: str, on: dt.date, kind: EndorsementKind
) -> tuple[Endorsement, ...]:
    link = Endorsement(bill.holder, to_holder, on, len(bill.endorsements) + 1, kind)
    return (*bill.endorsements, link)


def endorse(
    bill: Bill,
    from_holder: str,
    to_holder: str,
    on: dt.date,
    amount: Money | None = None,
) -> Bill:
    """Transfer the whole bill from its current holder to ``to_holder``.

    ``amount``, if given, must equal the face: a bill cannot be split by endorsement.
    """
    _require_accepted(bill)
    if bill.state is BillState.DISCOUNTED:
        raise RuleViolation(SettlementCode.DISCOUNTED, f"bill {bill.bill_id} has been discounted")
    if amount is not None:
        if not isinstance(amount, Money):
            raise TypeError(f"amount must be Money, got {type(amount).__name__}")
        if amount != bill.face:
            raise RuleViolation(
                SettlementCode.PARTIAL_ENDORSEMENT,
                f"endorsement of {amount} on a bill of {bill.face}: the whole bill or nothing",
            )
    _require_transferable(bill, from_holder, on)
    _check_party("to_holder", to_holder)
    if to_holder == from_holder:
        raise RuleViolation(
            SettlementCode.SELF_ENDORSEMENT, f"{from_holder!r} cannot endorse a bill to itself"
        )
    return replace(
        bill,
        state=BillState.ENDORSED,
        holder=to_holder,
        endorsements=_append(bill, to_holder, on, EndorsementKind.TRANSFER),
    )


def _city(name: str) -> str:
    return " ".join(name.split()).casefold()


def discount(
    bill: Bill,
    holder: str,
    bank: str,
    on: dt.date,
    annual_rate: Decimal,
    calendar: HolidayCalendar,
    *,
    bank_city: str,
) -> tuple[Bill, DiscountResult]:
    """The holder sells the bill to ``bank`` on ``on``; returns the bill and the proceeds.

    The acceptor is "in another city" when ``acceptor_city`` differs from ``bank_city``
    (compared ignoring case and extra spaces), which adds three days of interest.
    """
    _require_accepted(bill)
    if bill.state is BillState.DISCOUNTED:
        raise RuleViolation(
            SettlementCode.ALREADY_DISCOUNTED, f"bill {bill.bill_id} has already been discounted"
        )
    _require_transferable(bill, holder, on)
    _check_party("bank", bank)
    if bank == holder:
        raise RuleViolation(
            SettlementCode.SELF_ENDORSEMENT, f"{holder!r} cannot discount a bill with itself"
        )
    other_city = _city(bill.acceptor_city) != _city(bank_city)
    result = quote_discount(bill.face, annual_rate, on, bill.due_date, calendar, other_city)
    discounted = replace(
        bill,
        state=BillState.DISCOUNTED,
        holder=bank,
        endorsements=_append(bill, bank, on, EndorsementKind.DISCOUNT),
    )
    return discounted, result


def pay_at_maturity(bill: Bill, on: dt.date) -> Bill:
    """The acceptor pays the holder the face; allowed on or after the due date."""
    _require_accepted(bill)
    _check_on(bill, on)
    if on < bill.due_date:
        raise RuleViolation(
            SettlementCode.NOT_DUE, f"bill {bill.bill_id} is due on {bill.due_date}, not {on}"
        )
    return replace(bill, state=BillState.PAID, closed_on=on)


def dishonour(bill: Bill, on: dt.date) -> tuple[Bill, list[str]]:
    """Record non-payment at maturity; return the bill and who the holder has recourse to."""
    _require_accepted(bill)
    _check_on(bill, on)
    if on < bill.due_date:
        raise RuleViolation(
            SettlementCode.NOT_DUE,
            f"bill {bill.bill_id} cannot be dishonoured before {bill.due_date}",
        )
    return replace(bill, state=BillState.DISHONOURED, closed_on=on), recourse_parties(bill)


def cancel(bill: Bill, by: str, on: dt.date) -> Bill:
    """The drawer withdraws a bill that has not been accepted yet."""
    _refuse_closed(bill)
    if bill.state is not BillState.ISSUED:
        raise RuleViolation(
            SettlementCode.ALREADY_ACCEPTED,
            f"bill {bill.bill_id} is accepted; it can no longer be cancelled",
        )
    if by != bill.drawer:
        raise RuleViolation(SettlementCode.NOT_DRAWER, f"{by!r} did not draw bill {bill.bill_id}")
    _check_on(bill, on)
    return replace(bill, state=BillState.CANCELLED, closed_on=on)


def void(bill: Bill, on: dt.date) -> Bill:
    """An upheld dispute cancels an outstanding bill, whatever happened to it so far.

    Unlike :func:`cancel` (the drawer's own, before acceptance) this is an operator's
    decision after a dispute, so it is allowed after acceptance, endorsement or discount;
    the chain is kept as it was (append-only: the record of who held the bill stays).
    A paid or dishonoured bill is history and cannot be voided (``already_paid``,
    ``dishonoured``). Dated no earlier than the bill's latest event.
    """
    _refuse_closed(bill)
    _check_date("on", on)
    return replace(bill, state=BillState.CANCELLED, closed_on=max(on, bill.last_event_date))


def recourse_parties(bill: Bill) -> list[str]:
    """Who the current holder may pursue if the bill is dishonoured, nearest first.

    Walks back from the holder: the most recent endorser, then earlier endorsers, then the
    drawer, each named once. If the holder held the bill before (it was endorsed back to
    it), only the parties before its first holding count (NIL art. 69): the others took the
    bill from it and owe it nothing.
    """
    holders = [bill.drawer, bill.payee, *(link.to_holder for link in bill.endorsements)]
    first = holders.index(bill.holder)
    result: list[str] = []
    for party in reversed(holders[:first]):
        if party not in result:
            result.append(party)
    return result


def parties(bill: Bill) -> frozenset[str]:
    """Everyone on the bill: drawer, payee, acceptor, every endorser and endorsee, holder.

    The acceptor is included because it is the bill's principal debtor and must know whom
    it pays at maturity.
    """
    named = {bill.drawer, bill.payee, bill.acceptor, bill.holder}
    for link in bill.endorsements:
        named.update((link.from_holder, link.to_holder))
    return frozenset(named)


def roles(bill: Bill, member: str) -> list[str]:
    """``member``'s parts in the bill, for statements and listings: ``holder``,
    ``drawer``, ``endorser`` (it passed the bill on), ``payee``, ``acceptor`` (a bank, or a
    member other than the drawer); empty if it is no party."""
    named = [
        ("holder", bill.holder == member),
        ("drawer", bill.drawer == member),
        ("endorser", any(link.from_holder == member for link in bill.endorsements)),
        ("payee", bill.payee == member),
        ("acceptor", bill.acceptor == member and bill.acceptor != bill.drawer),
    ]
    return [name for name, applies in named if applies]


def visible_chain(bill: Bill, member: str) -> tuple[Endorsement, ...]:
    """The endorsement chain, for a party to the bill only (else a RuleViolation)."""
    if member not in parties(bill):
        raise RuleViolation(
            SettlementCode.NOT_A_PARTY, f"{member!r} is not a party to bill {bill.bill_id}"
        )
    return bill.endorsements
