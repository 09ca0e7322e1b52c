"""Money: exact minor units, one currency at a time, never floats."""

from __future__ import annotations

import dataclasses
from decimal import Decimal

import pytest

from rex.money import (
    CurrencyMismatch,
    InexactAmount,
    Money,
    MoneyError,
    UnknownCurrency,
)


def test_money_formats_with_the_currency_minor_units() -> None:
    assert str(Money(123456, "CNY")) == "1,234.56 CNY"
    assert str(Money(-5, "USD")) == "-0.05 USD"
    assert str(Money(0, "CNY")) == "0.00 CNY"
    assert str(Money(1234, "JPY")) == "1,234 JPY"  # JPY has no minor unit
    assert str(Money(1234567, "KRW")) == "1,234,567 KRW"
    assert str(Money(100_000_000_00, "CNY")) == "100,000,000.00 CNY"


def test_money_of_reads_major_units_exactly() -> None:
    assert Money.of("1234.56", "CNY") == Money(123456, "CNY")
    assert Money.of(Decimal("0.01"), "USD") == Money(1, "USD")
    assert Money.of(5, "CNY") == Money(500, "CNY")
    assert Money.of("1234", "JPY") == Money(1234, "JPY")
    assert Money.of("-3.10", "CNY") == Money(-310, "CNY")
    # Trailing zeros are not extra precision: 1.500 CNY is exactly 150 fen.
    assert Money.of("1.500", "CNY") == Money(150, "CNY")


def test_money_of_refuses_more_decimals_than_the_currency_allows() -> None:
    with pytest.raises(InexactAmount):
        Money.of("1.234", "CNY")
    with pytest.raises(InexactAmount):
        Money.of("0.5", "JPY")
    with pytest.raises(MoneyError):
        Money.of("1,234.56", "CNY")  # not a number: the comma is formatting
    with pytest.raises(MoneyError):
        Money.of("NaN", "CNY")


def test_money_refuses_floats() -> None:
    with pytest.raises(TypeError):
        Money.of(0.1, "CNY")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        Money(1.0, "CNY")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        Money(True, "CNY")


def test_unknown_currency_is_refused() -> None:
    with pytest.raises(UnknownCurrency):
        Money(1, "XXX")
    with pytest.raises(UnknownCurrency):
        Money.zero("cny")


def test_arithmetic_stays_within_one_currency() -> None:
    a, b = Money(150, "CNY"), Money(50, "CNY")
    assert a + b == Money(200, "CNY")
    assert a - b == Money(100, "CNY")
    assert -a == Money(-150, "CNY")
    assert abs(Money(-7, "CNY")) == Money(7, "CNY")
    assert Money.zero("USD") == Money(0, "USD")
    assert b < a and a > b and a >= a and b <= a


def test_mixing_currencies_raises_currency_mismatch() -> None:
    cny, usd = Money(100, "CNY"), Money(100, "USD")
    with pytest.raises(CurrencyMismatch):
        _ = cny + usd
    with pytest.raises(CurrencyMismatch):
        _ = cny - usd
    with pytest.raises(CurrencyMismatch):
        _ = cny < usd
    # Equality is just False, so Money stays usable in sets and dicts.
    assert cny != usd
    assert len({cny, usd}) == 2


def test_money_does_not_mix_with_bare_ints() -> None:
    with pytest.raises(TypeError):
        _ = Money(1, "CNY") + 1  # type: ignore[operator]


def test_money_is_immutable() -> None:
    m = Money(1, "CNY")
    with pytest.raises(dataclasses.FrozenInstanceError):
        m.minor = 2  # type: ignore[misc]


def test_to_decimal_is_exact() -> None:
    assert Money(123456, "CNY").to_decimal() == Decimal("1234.56")
    assert Money(7, "JPY").to_decimal() == Decimal("7")
