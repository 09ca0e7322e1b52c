"""The payment plan: how one obligation will be paid, in parts, and why.

:func:`plan_payment` starts from the buyer's preferred :class:`PaymentMethod` and bends it
to the seller's :class:`ReceiptLimits`, the 6-month law and what is available today. The
rules, applied in this order (docs/members/settlement.md has the full text):

1. A cash payer pays everything in cash.
2. Bills are CNY-only; any other currency is paid in cash (``currency_not_billable``).
3. A payee that takes no bills gets cash (``payee_refuses_bills``).
4. A payee that does not take this acceptor's bills gets cash (``acceptor_not_accepted``).
5. A tenor longer than the payee's maximum, the law's 6 months from ``today`` or what the
   acceptor issues today is shortened to that limit if the payer's ``min_tenor_days``
   allows, else the whole obligation is cash (``tenor_too_long``).
6. The bill part is ``floor(amount * max_bill_share_bps / 10000)``; the rest is cash
   (``bill_share_capped``).
7. A bill part above what the payer can issue today (``bill_amount_available_minor``,
   e.g. its undrawn acceptance line) is cut to it, the rest is cash
   (``remainder_in_cash``).
8. A bill part above the payee's largest face is split into ``ceil(part / max_face)``
   bills as equal as possible, larger first (``face_limit_split``); if that needs more
   than ``max_bills`` bills, the part above ``max_bills * max_face`` is cash
   (``remainder_in_cash``).

Invariants, checked by :class:`PaymentPlan` itself: the parts sum exactly to the
obligation, no part is zero or negative, at most one cash part (the last).

Pure: ``today`` is the caller's; no I/O and no clock.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from enum import StrEnum
from typing import Final

from rex.config import CURRENCY_MINOR_UNITS
from rex.money import Money
from settlement_worker.obligations.rules import Obligation
from settlement_worker.plans.receipt_limits import (
    LEGAL_MAX_TENOR_DAYS,
    PaymentKind,
    PaymentMethod,
    ReceiptLimits,
    legal_max_tenor_days,
)

__all__ = [
    "BILL_CURRENCIES",
    "MAX_BILLS_PER_OBLIGATION",
    "PaymentPlan",
    "PlanDeparture",
    "PlanError",
    "PlanReason",
    "PlannedPayment",
    "format_minor",
    "plan_payment",
]

#: Electronic commercial drafts (bank and commercial acceptance bills) are denominated in
#: renminbi; an obligation in another currency is always paid in cash.
BILL_CURRENCIES: Final = frozenset({"CNY"})
#: The most bills one obligation is split into; beyond it, the rest is cash. Keeps a tiny
#: face limit from producing thousands of bills (and thousands of endorsements later).
MAX_BILLS_PER_OBLIGATION: Final = 100
_MAX_BPS: Final = 10_000


class PlanError(ValueError):
    """A payment plan that breaks an invariant, or an invalid planning input."""


class PlanDeparture(StrEnum):
    """Why a plan departs from the payer's preferred method."""

    CURRENCY_NOT_BILLABLE = "currency_not_billable"
    PAYEE_REFUSES_BILLS = "payee_refuses_bills"
    ACCEPTOR_NOT_ACCEPTED = "acceptor_not_accepted"
    TENOR_TOO_LONG = "tenor_too_long"
    BILL_SHARE_CAPPED = "bill_share_capped"
    FACE_LIMIT_SPLIT = "face_limit_split"
    REMAINDER_IN_CASH = "remainder_in_cash"


@dataclass(frozen=True, slots=True)
class PlanReason:
    """A machine code and a sentence for the member's statement."""

    code: PlanDeparture
    text: str

    def __str__(self) -> str:
        return f"{self.code}: {self.text}"


@dataclass(frozen=True, slots=True)
class PlannedPayment:
    """One part of a plan: cash, or one bill of ``amount`` face."""

    kind: PaymentKind
    amount: Money
    acceptor: str | None = None
    tenor_days: int | None = None

    def __post_init__(self) -> None:
        amount = self.amount
        if not isinstance(amount, Money) or amount.minor <= 0:
            raise PlanError(f"a planned payment must be a positive amount, got {amount!r}")
        if self.kind is PaymentKind.CASH:
            if self.acceptor is not None or self.tenor_days is not None:
                raise PlanError("a cash payment has no acceptor and no tenor")
        elif (
            not self.acceptor
            or self.tenor_days is None
            or not 1 <= self.tenor_days <= LEGAL_MAX_TENOR_DAYS
        ):
            raise PlanError(
                f"a bill needs an acceptor and a tenor of 1..{LEGAL_MAX_TENOR_DAYS} days, "
                f"got {self.acceptor!r}, {self.tenor_days!r}"
            )


@dataclass(frozen=True, slots=True)
class PaymentPlan:
    """How obligation ``obligation_id`` is paid: ``parts`` (bills first, larger first, then
    at most one cash part) and the ``reasons`` for every departure from the payer's
    preferred method, in the order the rules applied. Bills are issued on ``issue_date``.
    """

    obligation_id: str
    payer: str
    payee: str
    amount: Money
    issue_date: dt.date
    parts: tuple[PlannedPayment, ...]
    reasons: tuple[PlanReason, ...] = ()

    def __post_init__(self) -> None:
        if not self.parts:
            raise PlanError(f"{self.obligation_id}: a plan needs at least one part")
        total = sum((part.amount for part in self.parts), Money.zero(self.amount.currency))
        if total != self.amount:
            raise PlanError(
                f"{self.obligation_id}: parts sum to {total}, the obligation is {self.amount}"
            )
        cash = [i for i, part in enumerate(self.parts) if part.kind is PaymentKind.CASH]
        if cash and cash != [len(self.parts) - 1]:
            raise PlanError(f"{self.obligation_id}: at most one cash part, and it comes last")

    @property
    def codes(self) -> tuple[str, ...]:
        """The reason codes alone, e.g. ``("bill_share_capped", "face_limit_split")``."""
        return tuple(str(reason.code) for reason in self.reasons)

    @property
    def bills(self) -> tuple[PlannedPayment, ...]:
        return tuple(part for part in self.parts if part.kind.is_bill)

    @property
    def bill_total(self) -> Money:
        """What the plan's bills pay."""
        return sum((part.amount for part in self.bills), Money.zero(self.amount.currency))

    @property
    def cash(self) -> Money:
        """What the plan pays in cash."""
        return self.amount - self.bill_total


def format_minor(amount_minor: int, currency: str) -> str:
    """``53956500, "CNY"`` -> ``"539,565.00 CNY"``: amounts as the reason sentences show
    them (exact; no float)."""
    exponent = CURRENCY_MINOR_UNITS[currency]
    sign = "-" if amount_minor < 0 else ""
    major, minor = divmod(abs(amount_minor), 10**exponent)
    fraction = f".{minor:0{exponent}d}" if exponent else ""
    return f"{sign}{major:,}{fraction} {currency}"


def _percent(bps: int) -> str:
    return f"{bps // 100}.{bps % 100:02d}%"


def _check_optional_count(name: str, value: int | None, low: int) -> None:
    if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < low):
        raise PlanError(f"{name} must be an integer >= {low} or None, got {value!r}")


def _tenor(
    obligation: Obligation,
    method: PaymentMethod,
    limits: ReceiptLimits,
    today: dt.date,
    available: int | None,
) -> tuple[int | None, PlanReason | None]:
    """The tenor to issue at, or None for cash; and the reason if it is not the payer's."""
    assert method.tenor_days is not None and method.min_tenor_days is not None
    legal = legal_max_tenor_days(today)
    due = today + dt.timedelta(days=legal)
    caps = [
        (
            limits.max_tenor_days,
            f"{obligation.payee} accepts bills of at most {limits.max_tenor_days} days",
        ),
        (legal, f"the law allows at most 6 months, {legal} days from {today} (to {due})"),
    ]
    if available is not None:
        caps.append((available, f"the acceptor issues bills of at most {available} days today"))
    cap, why = min(caps, key=lambda item: item[0])
    wanted = method.tenor_days
    if wanted <= cap:
        return wanted, None
    if cap >= method.min_tenor_days:
        text = f"the payer's {wanted}-day tenor is too long: {why}; the bills run {cap} days"
        return cap, PlanReason(PlanDeparture.TENOR_TOO_LONG, text)
    text = (
        f"the payer's {wanted}-day tenor is too long: {why}, and the payer issues no bill "
        f"shorter than {method.min_tenor_days} days; the whole "
        f"{format_minor(obligation.amount.minor, obligation.amount.currency)} is paid in cash"
    )
    return None, PlanReason(PlanDeparture.TENOR_TOO_LONG, text)


def _split(total: int, count: int) -> list[int]:
    """``total`` in ``count`` amounts differing by at most one, larger first."""
    base, extra = divmod(total, count)
    return [base + 1] * extra + [base] * (count - extra)


def plan_payment(
    obligation: Obligation,
    payer_method: PaymentMethod,
    payee_limits: ReceiptLimits,
    *,
    today: dt.date,
    bill_tenor_days_available: int | None = None,
    bill_amount_available_minor: int | None = None,
    max_bills: int = MAX_BILLS_PER_OBLIGATION,
) -> PaymentPlan:
    """Plan how ``obligation`` is paid (see the module docstring for the rules).

    ``today``: the issue date of any bill; the law's 6 months run from it.
    ``bill_tenor_days_available``: the longest tenor the acceptor issues today (None: no
    limit beyond the payee's and the law's; 0: it issues none).
    ``bill_amount_available_minor``: the most the payer can issue in bills today, e.g. its
    undrawn acceptance line at the bank (None: no limit).
    ``max_bills``: the most bills for one obligation.

    Deterministic: the same inputs give the same plan.
    """
    _check_optional_count("bill_tenor_days_available", bill_tenor_days_available, 0)
    _check_optional_count("bill_amount_available_minor", bill_amount_available_minor, 0)
    _check_optional_count("max_bills", max_bills, 1)
    amount = obligation.amount.minor
    money = obligation.amount.currency
    reasons: list[PlanReason] = []

    def plan(
        bills: list[int], acceptor: str | None = None, tenor: int | None = None
    ) -> PaymentPlan:
        parts = [
            PlannedPayment(payer_method.kind, Money(face, money), acceptor, tenor) for face in bills
        ]
        cash = amount - sum(bills)
        if cash:
            parts.append(PlannedPayment(PaymentKind.CASH, Money(cash, money)))
        return PaymentPlan(
            obligation_id=obligation.obligation_id,
            payer=obligation.payer,
            payee=obligation.payee,
            amount=obligation.amount,
            issue_date=today,
            parts=tuple(parts),
            reasons=tuple(reasons),
        )

    def cash_because(code: PlanDeparture, why: str) -> PaymentPlan:
        text = f"{why}; the whole {format_minor(amount, money)} is paid in cash"
        reasons.append(PlanReason(code, text))
        return plan([])

    kind = payer_method.kind
    if not kind.is_bill:
        return plan([])
    if money not in BILL_CURRENCIES:
        return cash_because(
            PlanDeparture.CURRENCY_NOT_BILLABLE,
            f"acceptance bills are issued in {', '.join(sorted(BILL_CURRENCIES))} only, "
            f"not {money}",
        )
    payee = obligation.payee
    if not payee_limits.accept_bills:
        return cash_because(PlanDeparture.PAYEE_REFUSES_BILLS, f"{payee} does not accept bills")
    acceptor = payer_method.acceptor if kind is PaymentKind.BANK_ACCEPTANCE else obligation.payer
    assert acceptor is not None
    if not payee_limits.accepts(kind, acceptor):
        if kind is PaymentKind.BANK_ACCEPTANCE:
            listed = ", ".join(sorted(payee_limits.accepted_acceptors or ()))
            why = (
                f"{payee} accepts bank acceptance bills only from {listed or 'no bank'}, "
                f"not {acceptor}"
            )
        else:
            why = f"{payee} does not accept commercial acceptance bills drawn by {acceptor}"
        return cash_because(PlanDeparture.ACCEPTOR_NOT_ACCEPTED, why)

    tenor, tenor_reason = _tenor(
        obligation, payer_method, payee_limits, today, bill_tenor_days_available
    )
    if tenor_reason is not None:
        reasons.append(tenor_reason)
    if tenor is None:
        return plan([])

    share = payee_limits.max_bill_share_bps
    bill_total = amount * share // _MAX_BPS
    if bill_total < amount:
        reasons.append(
            PlanReason(
                PlanDeparture.BILL_SHARE_CAPPED,
                f"{payee} accepts at most {_percent(share)} of an obligation by bill: "
                f"{format_minor(bill_total, money)} by bill, "
                f"{format_minor(amount - bill_total, money)} in cash",
            )
        )
    available = bill_amount_available_minor
    if bill_total and available is not None and bill_total > available:
        reasons.append(
            PlanReason(
                PlanDeparture.REMAINDER_IN_CASH,
                f"the payer can issue only {format_minor(available, money)} in bills today; "
                f"the remaining {format_minor(bill_total - available, money)} is paid in cash",
            )
        )
        bill_total = available
    if not bill_total:
        return plan([])

    face = payee_limits.max_bill_face_minor
    count = 1
    if face is not None and bill_total > face:
        count = -(-bill_total // face)
        if count > max_bills:
            reasons.append(
                PlanReason(
                    PlanDeparture.REMAINDER_IN_CASH,
                    f"at most {max_bills} bills of {format_minor(face, money)} per obligation; "
                    f"the remaining {format_minor(bill_total - max_bills * face, money)} "
                    "is paid in cash",
                )
            )
            count, bill_total = max_bills, max_bills * face
        if count > 1:
            reasons.append(
                PlanReason(
                    PlanDeparture.FACE_LIMIT_SPLIT,
                    f"{payee} accepts bills of at most {format_minor(face, money)} each: "
                    f"{format_minor(bill_total, money)} is split into {count} bills",
                )
            )
    return plan(_split(bill_total, count), acceptor, tenor)
