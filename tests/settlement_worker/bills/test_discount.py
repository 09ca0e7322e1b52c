"""Discount arithmetic: days, the holiday roll, the other-city days, THE rounding rule."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest

from rex.money import Money
from settlement_worker.bills.discount import (
    HolidayCalendar,
    discount_days,
    discount_interest,
    discount_proceeds,
    quote_discount,
)
from settlement_worker.codes import RuleViolation

NO_HOLIDAYS = HolidayCalendar(frozenset())
# National Day 2026: Thu 1 Oct to Wed 7 Oct; Sat 10 Oct is a make-up working day.
GOLDEN_WEEK = HolidayCalendar(
    frozenset(date(2026, 10, d) for d in range(1, 8)),
    workdays=frozenset({date(2026, 10, 10)}),
)


def test_weekends_and_holidays_are_not_business_days() -> None:
    assert NO_HOLIDAYS.is_business_day(date(2026, 3, 6))  # Friday
    assert not NO_HOLIDAYS.is_business_day(date(2026, 3, 7))  # Saturday
    assert not GOLDEN_WEEK.is_business_day(date(2026, 10, 1))  # Thursday, holiday
    assert GOLDEN_WEEK.is_business_day(date(2026, 10, 10))  # Saturday, make-up workday
    assert NO_HOLIDAYS.next_business_day(date(2026, 3, 6)) == date(2026, 3, 9)  # strictly after
    assert NO_HOLIDAYS.roll_forward(date(2026, 3, 6)) == date(2026, 3, 6)


def test_calendar_needs_a_business_day_in_the_week() -> None:
    with pytest.raises(ValueError):
        HolidayCalendar(frozenset(), weekend=(0, 1, 2, 3, 4, 5, 6))
    with pytest.raises(ValueError):
        HolidayCalendar(frozenset(), weekend=(7,))
    with pytest.raises(ValueError):
        HolidayCalendar(frozenset({date(2026, 10, 10)}), workdays=frozenset({date(2026, 10, 10)}))


def test_discount_days_include_start_exclude_maturity() -> None:
    # Mon 2 Mar -> Thu 5 Mar 2026: interest for 2, 3, 4 March = 3 days (5 Mar excluded).
    assert discount_days(date(2026, 3, 2), date(2026, 3, 5), NO_HOLIDAYS, other_city=False) == 3
    # 2 Mar -> 1 Jun 2026 (a Monday): 30 (2-31 Mar) + 30 (Apr) + 31 (May) = 91 days.
    assert discount_days(date(2026, 3, 2), date(2026, 6, 1), NO_HOLIDAYS, other_city=False) == 91


def test_maturity_on_holiday_rolls_to_next_business_day() -> None:
    # Due Thu 1 Oct 2026 (National Day): 1-7 Oct are holidays, so the acceptor pays on
    # Thu 8 Oct. From Mon 28 Sep: 28, 29, 30 Sep + 1..7 Oct = 3 + 7 = 10 days.
    days = discount_days(date(2026, 9, 28), date(2026, 10, 1), GOLDEN_WEEK, other_city=False)
    assert days == 10


def test_maturity_on_weekend_rolls_to_monday() -> None:
    # Due Sat 7 Mar 2026 -> paid Mon 9 Mar. From Mon 2 Mar: 2..8 March = 7 days.
    assert discount_days(date(2026, 3, 2), date(2026, 3, 7), NO_HOLIDAYS, other_city=False) == 7


def test_other_city_acceptor_adds_three_days() -> None:
    # 3 days (2, 3, 4 March) + 3 days for a remote acceptor = 6.
    assert discount_days(date(2026, 3, 2), date(2026, 3, 5), NO_HOLIDAYS, other_city=True) == 6
    # The 3 days come after the holiday roll: 10 (as above) + 3 = 13.
    assert discount_days(date(2026, 9, 28), date(2026, 10, 1), GOLDEN_WEEK, other_city=True) == 13


def test_leap_year_february_29_counts() -> None:
    # Mon 28 Feb 2028 -> Wed 1 Mar 2028: 28 Feb and 29 Feb = 2 days.
    assert discount_days(date(2028, 2, 28), date(2028, 3, 1), NO_HOLIDAYS, other_city=False) == 2
    # Without a leap day, 28 Feb 2027 -> Mon 1 Mar 2027 is 1 day.
    assert discount_days(date(2027, 2, 28), date(2027, 3, 1), NO_HOLIDAYS, other_city=False) == 1
    # 36,000.00 CNY at 2 % for the 2 leap days: 3,600,000 x 0.02 x 2 / 360 = 400 fen.
    assert discount_interest(3_600_000, Decimal("0.02"), 2) == 400


def test_same_day_maturity_gives_full_face() -> None:
    # Discounted on its due date, Thu 5 Mar 2026, a business day: 0 days, no interest.
    face = Money.of("1000000.00", "CNY")
    quote = quote_discount(
        face, Decimal("0.0135"), date(2026, 3, 5), date(2026, 3, 5), NO_HOLIDAYS, False
    )
    assert quote.days == 0
    assert quote.proceeds == face
    assert quote.interest == Money.zero("CNY")


def test_same_day_maturity_on_a_weekend_still_pays_for_the_roll() -> None:
    # Due Sat 7 Mar 2026, discounted that day: paid Mon 9 Mar, so 7 and 8 March = 2 days.
    assert discount_days(date(2026, 3, 7), date(2026, 3, 7), NO_HOLIDAYS, other_city=False) == 2


def test_discount_after_maturity_is_refused() -> None:
    with pytest.raises(RuleViolation) as exc:
        discount_days(date(2026, 3, 6), date(2026, 3, 5), NO_HOLIDAYS, other_city=False)
    assert exc.value.code == "after_maturity"


def test_discount_interest_rounds_half_up() -> None:
    # 10,001.00 CNY = 1,000,100 fen at 1.8 % for 100 days:
    #   1,000,100 x 0.018 x 100 / 360 = 1,000,100 / 200 = 5,000.5 fen -> 5,001 (half up;
    #   banker's rounding would give 5,000).
    assert discount_interest(1_000_100, Decimal("0.018"), 100) == 5_001
    # 1,000,099 / 200 = 5,000.495 fen -> 5,000 (below the half goes down).
    assert discount_interest(1_000_099, Decimal("0.018"), 100) == 5_000
    # 1,000,101 / 200 = 5,000.505 fen -> 5,001.
    assert discount_interest(1_000_101, Decimal("0.018"), 100) == 5_001
    # Proceeds are face minus the rounded interest: 1,000,100 - 5,001 = 995,099 fen.
    proceeds = discount_proceeds(Money(1_000_100, "CNY"), Decimal("0.018"), 100)
    assert proceeds == Money(995_099, "CNY")


def test_discount_worked_example() -> None:
    # 1,000,000.00 CNY bill due Mon 1 Jun 2026, discounted Mon 2 Mar 2026 at 1.35 %:
    #   days = 91 (see above); interest = 100,000,000 x 0.0135 x 91 / 360
    #        = 1,350,000 x 91 / 360 = 122,850,000 / 360 = 341,250 fen = 3,412.50 CNY;
    #   proceeds = 100,000,000 - 341,250 = 99,658,750 fen = 996,587.50 CNY.
    quote = quote_discount(
        Money.of("1000000", "CNY"),
        Decimal("0.0135"),
        date(2026, 3, 2),
        date(2026, 6, 1),
        NO_HOLIDAYS,
        other_city=False,
    )
    assert quote.days == 91
    assert quote.interest == Money(341_250, "CNY")
    assert quote.proceeds == Money(99_658_750, "CNY")
    assert str(quote.proceeds) == "996,587.50 CNY"
    assert quote.interest + quote.proceeds == quote.face


def test_discount_rounds_to_the_currency_minor_unit() -> None:
    # JPY has no minor unit: 1,000,000 JPY at 1 % for 90 days = 1,000,000 x 0.01 x 90 / 360
    # = 2,500 JPY; and 1,000,001 JPY gives 2,500.0025 -> 2,500 JPY.
    assert discount_proceeds(Money(1_000_000, "JPY"), Decimal("0.01"), 90) == Money(997_500, "JPY")
    assert discount_interest(1_000_001, Decimal("0.01"), 90) == 2_500


def test_rate_is_a_decimal_fraction_below_one() -> None:
    with pytest.raises(TypeError):
        discount_interest(100, 0.015, 10)  # type: ignore[arg-type]
    for bad in ("1.5", "-0.01", "NaN", "Infinity"):
        with pytest.raises(RuleViolation) as exc:
            discount_interest(100, Decimal(bad), 10)
        assert exc.value.code == "invalid_rate"
    assert discount_interest(100_000, Decimal("0"), 10) == 0


def test_proceeds_must_stay_positive() -> None:
    # 1 fen at 99 % for 360 days: interest 0.99 fen rounds up to 1 fen = the whole face.
    with pytest.raises(RuleViolation) as exc:
        discount_proceeds(Money(1, "CNY"), Decimal("0.99"), 360)
    assert exc.value.code == "proceeds_not_positive"
    with pytest.raises(RuleViolation) as exc:
        discount_proceeds(Money(0, "CNY"), Decimal("0.01"), 1)
    assert exc.value.code == "invalid_face"
    with pytest.raises(RuleViolation) as exc:
        discount_interest(100, Decimal("0.01"), -1)
    assert exc.value.code == "invalid_days"
