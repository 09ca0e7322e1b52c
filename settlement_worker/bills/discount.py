"""Bill discounting arithmetic and the business-day calendar it needs.

A holder who sells an accepted bill to a bank before maturity receives::

    interest = face * annual_rate * days / 360        (rounded, see below)
    proceeds = face - interest

where ``days`` runs from the discount date (**included**) to the adjusted maturity
(**excluded**). The adjusted maturity is the due date, rolled forward to the next business
day when the due date is not one (the acceptor pays on the next business day, so the bank
waits that long), plus 3 days when the acceptor is in another city than the discounting
bank (the customary collection period for a remote acceptor).

**The rounding rule.** The interest is computed exactly (``Fraction``) and rounded
**half-up** to the currency's minor unit; the proceeds are ``face - rounded interest``. So
there is exactly one rounding, the bank never takes more than the rounded interest, and
``proceeds + interest == face`` always holds, which is what keeps the ledger entry for a
discount balanced.

Pure: dates are inputs; there is no clock and no I/O. The calendar is loaded from
``config/holidays.toml`` by :mod:`settlement_worker.bills.holidays`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from fractions import Fraction
from typing import Final

from rex.money import Money
from settlement_worker.codes import RuleViolation, SettlementCode

__all__ = [
    "DAY_COUNT_BASIS",
    "OTHER_CITY_EXTRA_DAYS",
    "DiscountResult",
    "HolidayCalendar",
    "discount_days",
    "discount_interest",
    "discount_proceeds",
    "quote_discount",
]

#: Days in the interest year (ACT/360, the convention for Chinese bill discounting).
DAY_COUNT_BASIS: Final = 360
#: Extra days added when the acceptor is in another city than the discounting bank.
OTHER_CITY_EXTRA_DAYS: Final = 3

_ONE_DAY: Final = timedelta(days=1)


def _check_date(name: str, value: object) -> date:
    # datetime is a date subclass; a timestamp here would silently drop its time and zone.
    if not isinstance(value, date) or isinstance(value, datetime):
        raise TypeError(f"{name} must be a datetime.date, got {value!r}")
    return value


@dataclass(frozen=True, slots=True)
class HolidayCalendar:
    """Business days: not a weekend day and not a holiday, unless a make-up working day.

    ``weekend`` holds weekday numbers (Monday 0 ... Sunday 6). ``workdays`` are weekend dates
    that are working days anyway: China moves weekends around its public holidays (调休),
    and banks settle on those days, so ignoring them would overstate discount days.
    """

    holidays: frozenset[date] = frozenset()
    weekend: tuple[int, ...] = (5, 6)
    workdays: frozenset[date] = frozenset()

    def __post_init__(self) -> None:
        object.__setattr__(self, "holidays", frozenset(self.holidays))
        object.__setattr__(self, "workdays", frozenset(self.workdays))
        for weekday in self.weekend:
            if not isinstance(weekday, int) or isinstance(weekday, bool) or not 0 <= weekday <= 6:
                raise ValueError(f"weekend days are 0 (Monday) to 6 (Sunday), got {weekday!r}")
        object.__setattr__(self, "weekend", tuple(sorted(set(self.weekend))))
        if len(self.weekend) == 7:
            # next_business_day would never return.
            raise ValueError("a week must have at least one business day")
        for day in self.holidays | self.workdays:
            _check_date("calendar date", day)
        both = self.holidays & self.workdays
        if both:
            raise ValueError(f"dates both holiday and workday: {sorted(both)}")

    def is_business_day(self, day: date) -> bool:
        """True if banks settle on ``day``."""
        _check_date("day", day)
        if day in self.workdays:
            return True
        return day.weekday() not in self.weekend and day not in self.holidays

    def next_business_day(self, day: date) -> date:
        """The first business day strictly after ``day``."""
        candidate = _check_date("day", day) + _ONE_DAY
        while not self.is_business_day(candidate):
            candidate += _ONE_DAY
        return candidate

    def roll_forward(self, day: date) -> date:
        """``day`` if it is a business day, else the next one (the "following" convention)."""
        return day if self.is_business_day(day) else self.next_business_day(day)


def discount_days(
    discount_date: date, due_date: date, calendar: HolidayCalendar, other_city: bool
) -> int:
    """Days of interest: discount date included, adjusted maturity excluded.

    Adjusted maturity = ``due_date`` rolled forward to a business day, plus
    :data:`OTHER_CITY_EXTRA_DAYS` calendar days if ``other_city``. A discount on a due date
    that is a business day, same city, gives 0 days. A discount after the due date is
    refused (``after_maturity``): the bill is then for presentment, not for sale.
    """
    _check_date("discount_date", discount_date)
    _check_date("due_date", due_date)
    if discount_date > due_date:
        raise RuleViolation(
            SettlementCode.AFTER_MATURITY,
            f"cannot discount on {discount_date}: the bill fell due on {due_date}",
        )
    maturity = calendar.roll_forward(due_date)
    extra = OTHER_CITY_EXTRA_DAYS if other_city else 0
    return (maturity - discount_date).days + extra


def _check_rate(annual_rate: Decimal) -> Fraction:
    if not isinstance(annual_rate, Decimal):
        raise TypeError(
            f"annual_rate must be a Decimal (e.g. Decimal('0.015')), "
            f"got {type(annual_rate).__name__}"
        )
    # The rate is a fraction: 0.015 is 1.5 %. A value >= 1 is almost surely a percentage
    # passed by mistake (1.5 meaning 1.5 %), which would charge 100 times too much.
    if not annual_rate.is_finite() or not 0 <= annual_rate < 1:
        raise RuleViolation(
            SettlementCode.INVALID_RATE,
            f"annual_rate must be a fraction in [0, 1) (0.015 = 1.5 %), got {annual_rate}",
        )
    return Fraction(annual_rate)


def discount_interest(face_minor: int, annual_rate: Decimal, days: int) -> int:
    """``face * rate * days / 360`` in minor units, exact, then rounded half-up.

    Half-up on a non-negative exact fraction n/d is ``floor((2n + d) / 2d)``: .5 of a
    minor unit goes up, anything less goes down. This is THE rounding rule of discounting.
    """
    if not isinstance(face_minor, int) or isinstance(face_minor, bool) or face_minor < 0:
        raise RuleViolation(
            SettlementCode.INVALID_FACE, f"face must be a non-negative int, got {face_minor!r}"
        )
    if not isinstance(days, int) or isinstance(days, bool) or days < 0:
        raise RuleViolation(
            SettlementCode.INVALID_DAYS, f"days must be a non-negative int, got {days!r}"
        )
    exact = face_minor * _check_rate(annual_rate) * days / DAY_COUNT_BASIS
    return (2 * exact.numerator + exact.denominator) // (2 * exact.denominator)


def discount_proceeds(face: Money, annual_rate: Decimal, days: int) -> Money:
    """``face - discount_interest(...)``, in the face's currency.

    Refused (``proceeds_not_positive``) if the interest would swallow the whole face: a
    bank paying nothing (or less) for a bill is an input error, not a discount.
    """
    if not isinstance(face, Money) or face.minor <= 0:
        raise RuleViolation(
            SettlementCode.INVALID_FACE, f"face must be positive Money, got {face!r}"
        )
    interest = discount_interest(face.minor, annual_rate, days)
    if interest >= face.minor:
        raise RuleViolation(
            SettlementCode.PROCEEDS_NOT_POSITIVE,
            f"interest {Money(interest, face.currency)} leaves nothing of face {face}",
        )
    return Money(face.minor - interest, face.currency)


@dataclass(frozen=True, slots=True)
class DiscountResult:
    """Everything a discount computed, so a statement can show the working.

    ``interest + proceeds == face`` always.
    """

    face: Money
    annual_rate: Decimal
    discount_date: date
    due_date: date
    maturity: date
    other_city: bool
    days: int
    interest: Money
    proceeds: Money


def quote_discount(
    face: Money,
    annual_rate: Decimal,
    discount_date: date,
    due_date: date,
    calendar: HolidayCalendar,
    other_city: bool,
) -> DiscountResult:
    """Compute a full discount: days, interest and proceeds, with the adjusted maturity."""
    days = discount_days(discount_date, due_date, calendar, other_city)
    proceeds = discount_proceeds(face, annual_rate, days)
    return DiscountResult(
        face=face,
        annual_rate=annual_rate,
        discount_date=discount_date,
        due_date=due_date,
        maturity=calendar.roll_forward(due_date),
        other_city=other_city,
        days=days,
        interest=face - proceeds,
        proceeds=proceeds,
    )
