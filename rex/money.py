"""Exact money: an integer number of minor units tagged with its ISO 4217 currency.

Why a type and not a bare ``int``: the ledger and the bill rules move amounts in several
currencies (CNY by default; USD and others for cross-border members), and the one mistake
that must be impossible is adding fen to cents. So :class:`Money` carries its currency
everywhere, arithmetic and ordering work only within one currency (anything else raises
:class:`CurrencyMismatch`), and floats are refused outright: a float cannot represent
0.10 exactly, and a ledger that is off by one fen no longer sums to zero.

Equality is the exception to "raise on mixed currencies": ``Money(100, "CNY") ==
Money(100, "USD")`` is simply ``False``, because ``==`` must stay usable in sets, dicts and
``assert`` comparisons. Ordering (``<``, ``<=``, ...) across currencies raises.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Final

from rex.config import CURRENCY_MINOR_UNITS

__all__ = [
    "DEFAULT_CURRENCY",
    "CurrencyMismatch",
    "InexactAmount",
    "Money",
    "MoneyError",
    "UnknownCurrency",
    "minor_units",
]

#: The exchange's home currency; the one to use when a caller has no other information.
DEFAULT_CURRENCY: Final = "CNY"


class MoneyError(ValueError):
    """Base class for invalid money values and operations."""


class CurrencyMismatch(MoneyError):
    """Two amounts in different currencies were added, subtracted or ordered."""

    def __init__(self, left: str, right: str, operation: str) -> None:
        self.left = left
        self.right = right
        super().__init__(f"cannot {operation} {left} and {right}: currencies differ")


class UnknownCurrency(MoneyError):
    """A currency code that is not in :data:`rex.config.CURRENCY_MINOR_UNITS`."""


class InexactAmount(MoneyError):
    """An amount with more decimals than its currency's minor unit (e.g. 1.234 CNY)."""


def minor_units(currency: str) -> int:
    """The number of decimal places of ``currency`` (CNY 2, JPY 0).

    Raises :class:`UnknownCurrency` for a code REX does not accept.
    """
    try:
        return CURRENCY_MINOR_UNITS[currency]
    except (KeyError, TypeError):
        known = ", ".join(CURRENCY_MINOR_UNITS)
        raise UnknownCurrency(f"unsupported currency {currency!r} (known: {known})") from None


@dataclass(frozen=True, slots=True)
class Money:
    """An exact amount: ``minor`` units (fen, cents; yen for JPY) of ``currency``.

    Negative amounts are allowed (a refund, a credit balance); whether a given use accepts
    them is that use's rule.
    """

    minor: int
    currency: str

    def __post_init__(self) -> None:
        # bool is an int subclass; True fen is a bug, not one fen.
        if not isinstance(self.minor, int) or isinstance(self.minor, bool):
            raise TypeError(f"Money must be an int of minor units, got {type(self.minor).__name__}")
        minor_units(self.currency)

    # ------------------------------------------------------------------ constructors

    @classmethod
    def zero(cls, currency: str) -> Money:
        """Nothing, in ``currency``."""
        return cls(0, currency)

    @classmethod
    def of(cls, value: Decimal | str | int, currency: str) -> Money:
        """Money from a major-unit amount: ``Money.of("1234.56", "CNY")`` is 123456 fen.

        The value must be exactly representable in the currency's minor units: "1.234"
        CNY and "0.5" JPY raise :class:`InexactAmount` rather than being rounded, because
        silently rounding an amount someone typed is how ledgers drift. Trailing zeros are
        fine ("1.500" CNY is 150 fen). Floats raise :class:`TypeError`.
        """
        places = minor_units(currency)
        if isinstance(value, bool) or not isinstance(value, Decimal | str | int):
            raise TypeError(
                f"Money.of takes a Decimal, str or int, not {type(value).__name__} "
                "(floats are never exact)"
            )
        if isinstance(value, str):
            try:
                number = Decimal(value.strip())
            except InvalidOperation:
                raise MoneyError(f"not a decimal number: {value!r}") from None
        else:
            number = Decimal(value)
        if not number.is_finite():
            raise MoneyError(f"amount must be finite, got {value!r}")
        # Exact test, independent of the Decimal context's precision.
        numerator, denominator = number.as_integer_ratio()
        scaled, remainder = divmod(numerator * 10**places, denominator)
        if remainder:
            raise InexactAmount(f"{value!r} has more decimals than {currency} allows ({places})")
        return cls(scaled, currency)

    # -------------------------------------------------------------------- arithmetic

    def _same(self, other: Money, operation: str) -> None:
        if self.currency != other.currency:
            raise CurrencyMismatch(self.currency, other.currency, operation)

    def __add__(self, other: Money) -> Money:
        if not isinstance(other, Money):
            return NotImplemented
        self._same(other, "add")
        return Money(self.minor + other.minor, self.currency)

    def __sub__(self, other: Money) -> Money:
        if not isinstance(other, Money):
            return NotImplemented
        self._same(other, "subtract")
        return Money(self.minor - other.minor, self.currency)

    def __neg__(self) -> Money:
        return Money(-self.minor, self.currency)

    def __abs__(self) -> Money:
        return Money(abs(self.minor), self.currency)

    # ---------------------------------------------------------------------- ordering

    def __lt__(self, other: Money) -> bool:
        if not isinstance(other, Money):
            return NotImplemented
        self._same(other, "compare")
        return self.minor < other.minor

    def __le__(self, other: Money) -> bool:
        if not isinstance(other, Money):
            return NotImplemented
        self._same(other, "compare")
        return self.minor <= other.minor

    def __gt__(self, other: Money) -> bool:
        if not isinstance(other, Money):
            return NotImplemented
        self._same(other, "compare")
        return self.minor > other.minor

    def __ge__(self, other: Money) -> bool:
        if not isinstance(other, Money):
            return NotImplemented
        self._same(other, "compare")
        return self.minor >= other.minor

    # ------------------------------------------------------------------- conversions

    def to_decimal(self) -> Decimal:
        """The amount in major units, exactly (``Decimal("1234.56")``)."""
        places = minor_units(self.currency)
        # Built from a string, so no context rounding can apply.
        return Decimal(f"{self.minor}E-{places}")

    def __str__(self) -> str:
        """``"1,234.56 CNY"``, ``"-0.05 USD"``, ``"1,234 JPY"``."""
        places = minor_units(self.currency)
        sign = "-" if self.minor < 0 else ""
        whole, fraction = divmod(abs(self.minor), 10**places)
        text = f"{whole:,}"
        if places:
            text += f".{fraction:0{places}d}"
        return f"{sign}{text} {self.currency}"
