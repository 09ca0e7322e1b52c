"""Property: any amount in any currency round-trips through Decimal and its text."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from rex.config import CURRENCY_MINOR_UNITS
from rex.money import Money


@given(
    st.integers(min_value=-(10**15), max_value=10**15),
    st.sampled_from(sorted(CURRENCY_MINOR_UNITS)),
)
def test_money_round_trips_through_decimal(amount: int, currency: str) -> None:
    money = Money(amount, currency)
    assert Money.of(money.to_decimal(), currency) == money
    assert Money.of(str(money.to_decimal()), currency) == money
