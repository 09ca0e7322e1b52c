"""Property: discount arithmetic for any face, rate, tenor and holidays: proceeds positive and
at most the face, never rising with days or rate, interest the exact value rounded half up."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st

from rex.config import CURRENCY_MINOR_UNITS
from rex.money import Money
from settlement_worker.bills.discount import (
    HolidayCalendar,
    discount_days,
    discount_interest,
    discount_proceeds,
)

rates = st.decimals(min_value=Decimal(0), max_value=Decimal("0.2"), places=6)
faces = st.integers(min_value=100, max_value=10**13)
day_counts = st.integers(min_value=0, max_value=400)


@given(faces, rates, day_counts, st.sampled_from(sorted(CURRENCY_MINOR_UNITS)))
def test_discount_proceeds_are_positive_and_at_most_face(
    face: int, rate: Decimal, days: int, currency: str
) -> None:
    proceeds = discount_proceeds(Money(face, currency), rate, days)
    assert 0 < proceeds.minor <= face
    assert proceeds.minor + discount_interest(face, rate, days) == face


@given(faces, rates, rates, day_counts, day_counts)
def test_discount_proceeds_never_rise_with_days_or_rate(
    face: int, r1: Decimal, r2: Decimal, d1: int, d2: int
) -> None:
    (r_lo, r_hi), (d_lo, d_hi) = sorted((r1, r2)), sorted((d1, d2))
    money = Money(face, "CNY")
    assert discount_proceeds(money, r_lo, d_lo) >= discount_proceeds(money, r_lo, d_hi)
    assert discount_proceeds(money, r_lo, d_lo) >= discount_proceeds(money, r_hi, d_lo)


@given(faces, rates, day_counts)
def test_discount_interest_is_the_exact_value_rounded_half_up(
    face: int, rate: Decimal, days: int
) -> None:
    exact = Decimal(face) * rate * days / 360  # Decimal has ample precision at these sizes
    interest = discount_interest(face, rate, days)
    assert interest - Decimal("0.5") <= exact < interest + Decimal("0.5")


@given(
    st.dates(min_value=date(2026, 1, 1), max_value=date(2027, 12, 31)),
    st.integers(min_value=0, max_value=200),
    st.frozensets(st.dates(min_value=date(2026, 1, 1), max_value=date(2028, 3, 31))),
    st.booleans(),
)
def test_discount_days_count_to_a_business_day_maturity(
    start: date, tenor: int, holidays: frozenset[date], other_city: bool
) -> None:
    calendar = HolidayCalendar(holidays)
    due = start + timedelta(days=tenor)
    days = discount_days(start, due, calendar, other_city)
    maturity = start + timedelta(days=days - (3 if other_city else 0))
    assert maturity >= due
    assert calendar.is_business_day(maturity)
    # Every day between the due date and the maturity is a non-business day.
    assert all(
        not calendar.is_business_day(due + timedelta(days=k)) for k in range((maturity - due).days)
    )
