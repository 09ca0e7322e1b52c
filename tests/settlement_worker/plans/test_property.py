"""Whatever the obligation and the limits, a plan pays exactly and obeys every limit."""

from __future__ import annotations

import datetime as dt

from hypothesis import given, settings
from hypothesis import strategies as st

from settlement_worker.obligations.rules import Obligation
from settlement_worker.plans.receipt_limits import (
    LEGAL_MAX_TENOR_DAYS,
    PaymentKind,
    PaymentMethod,
    ReceiptLimits,
    legal_max_tenor_days,
)
from settlement_worker.plans.rules import PaymentPlan, plan_payment
from tests.settlement_worker.factories import BANKS, obligation

PAYER, PAYEE = "ningbo-alloy", "baotou-metals"
IDS = (*BANKS, PAYER, "xinyu-pvc")

# Half the draws near the 6-month limit, where the law (181-184 days by date) bites.
tenors = st.integers(1, LEGAL_MAX_TENOR_DAYS) | st.integers(178, LEGAL_MAX_TENOR_DAYS)


@st.composite
def methods(draw: st.DrawFn) -> PaymentMethod:
    kind = draw(st.sampled_from(PaymentKind))
    if kind is PaymentKind.CASH:
        return PaymentMethod.cash()
    tenor = draw(tenors)
    minimum = draw(st.integers(1, tenor))
    if kind is PaymentKind.BANK_ACCEPTANCE:
        return PaymentMethod.bank_acceptance(draw(st.sampled_from(BANKS)), tenor, minimum)
    return PaymentMethod.commercial_acceptance(tenor, minimum)


limits_strategy = st.builds(
    ReceiptLimits,
    accept_bills=st.booleans(),
    max_bill_face_minor=st.none() | st.integers(1, 10**6) | st.integers(1, 10**12),
    max_tenor_days=tenors,
    accepted_acceptors=st.none() | st.frozensets(st.sampled_from(IDS)),
    accept_commercial=st.booleans(),
    max_bill_share_bps=st.integers(0, 10_000) | st.sampled_from([0, 5_000, 10_000]),
)
obligations = st.builds(
    lambda amount, currency: obligation(amount, currency=currency, payer=PAYER, payee=PAYEE),
    amount=st.integers(1, 10**6) | st.integers(1, 10**15),
    currency=st.sampled_from(["CNY", "CNY", "CNY", "USD"]),
)


def _check(
    plan: PaymentPlan,
    obl: Obligation,
    method: PaymentMethod,
    limits: ReceiptLimits,
    today: dt.date,
    tenor_available: int | None,
    amount_available: int | None,
    max_bills: int,
) -> None:
    amount = obl.amount.minor
    assert sum(p.amount.minor for p in plan.parts) == amount
    assert all(p.amount.minor > 0 for p in plan.parts)
    bills = plan.bills
    assert sum(b.amount.minor for b in bills) <= amount * limits.max_bill_share_bps // 10_000
    if amount_available is not None:
        assert sum(b.amount.minor for b in bills) <= amount_available
    assert len(bills) <= max_bills
    if bills:
        assert method.kind.is_bill and limits.accept_bills and obl.amount.currency == "CNY"
        faces = [b.amount.minor for b in bills]
        assert faces == sorted(faces, reverse=True) and faces[0] - faces[-1] <= 1
    for bill in bills:
        assert bill.kind is method.kind
        expected_acceptor = method.acceptor if method.kind is PaymentKind.BANK_ACCEPTANCE else PAYER
        assert bill.acceptor is not None and bill.acceptor == expected_acceptor
        assert limits.accepts(bill.kind, bill.acceptor)
        if limits.max_bill_face_minor is not None:
            assert bill.amount.minor <= limits.max_bill_face_minor
        assert bill.tenor_days is not None and method.tenor_days is not None
        assert method.min_tenor_days is not None
        assert method.min_tenor_days <= bill.tenor_days <= method.tenor_days
        assert bill.tenor_days <= min(limits.max_tenor_days, legal_max_tenor_days(today))
        if tenor_available is not None:
            assert bill.tenor_days <= tenor_available
    # Any departure from the payer's preference is explained.
    preferred = (
        [(PaymentKind.CASH, amount, None)]
        if not method.kind.is_bill
        else [(method.kind, amount, method.tenor_days)]
    )
    if [(p.kind, p.amount.minor, p.tenor_days) for p in plan.parts] != preferred:
        assert plan.reasons
    if not method.kind.is_bill:
        assert plan.reasons == ()


@settings(max_examples=400, deadline=None)
@given(
    obl=obligations,
    method=methods(),
    limits=limits_strategy,
    today=st.dates(dt.date(2020, 1, 1), dt.date(2035, 12, 31)),
    tenor_available=st.none() | st.integers(0, 200),
    amount_available=st.none() | st.integers(0, 10**15),
    max_bills=st.integers(1, 120),
)
def test_plans_pay_exactly_and_obey_every_limit(
    obl: Obligation,
    method: PaymentMethod,
    limits: ReceiptLimits,
    today: dt.date,
    tenor_available: int | None,
    amount_available: int | None,
    max_bills: int,
) -> None:
    plan = plan_payment(
        obl,
        method,
        limits,
        today=today,
        bill_tenor_days_available=tenor_available,
        bill_amount_available_minor=amount_available,
        max_bills=max_bills,
    )
    _check(plan, obl, method, limits, today, tenor_available, amount_available, max_bills)


def _within_six_months(issue: dt.date, due: dt.date) -> bool:
    """Oracle for the law, by months and days: the due date's month is at most 6 months
    after the issue month, and in that sixth month its day is not past the issue day
    (so 31 August may run to the end of February, whatever its length)."""
    months = (due.year - issue.year) * 12 + due.month - issue.month
    return months < 6 or (months == 6 and due.day <= issue.day)


@settings(max_examples=300, deadline=None)
@given(
    tenor=st.integers(178, LEGAL_MAX_TENOR_DAYS),
    today=st.dates(dt.date(2020, 1, 1), dt.date(2035, 12, 31)),
)
def test_no_bill_matures_more_than_six_calendar_months_after_issue(
    tenor: int, today: dt.date
) -> None:
    # The payee takes 183 days; the law, counted in calendar months from today, may not.
    method = PaymentMethod.bank_acceptance("icbc-baotou", tenor)
    plan = plan_payment(obligation(10**8), method, ReceiptLimits(accept_bills=True), today=today)
    (bill,) = plan.parts
    assert bill.tenor_days is not None
    due = today + dt.timedelta(days=bill.tenor_days)
    assert _within_six_months(today, due)
    # And shortened no more than the law requires.
    if bill.tenor_days < tenor:
        assert not _within_six_months(today, due + dt.timedelta(days=1))
        assert plan.codes == ("tenor_too_long",)
