"""rex.price_band and the rules with a band in force; set_band's wire form."""

from __future__ import annotations

from decimal import Decimal

import pytest

from rex.config import Product
from rex.operator_requests import (
    OperatorRequest,
    Refusal,
    band_refusal,
    decode_request,
    encode_request,
)
from rex.operators import Action
from rex.price_band import ANY_PRICE, PriceBand, band_around, band_shape_problem, configured_band
from rex.protocol import unpack
from rex.rules import order_problem, price_problem, reject_text, replace_problem
from rex.vocabulary import OrderType, Reason, TimeInForce
from tests.rex.test_rules import PRODUCT

NEW = PriceBand(520_000, 600_000)


def test_the_first_band_is_products_tomls() -> None:
    assert configured_band(PRODUCT) == PriceBand(450_000, 550_000)


@pytest.mark.parametrize(
    ("reference", "percent", "tick"),
    [(500_000, Decimal(10), 50), (123_450, Decimal("7.5"), 50), (3000, Decimal(10), 10),
     (1_000_000, Decimal("33.33"), 50), (1000, Decimal("0.01"), 10)],
)  # fmt: skip
def test_band_around_is_products_arithmetic(reference: int, percent: Decimal, tick: int) -> None:
    product = Product(
        "X", "X", "CNY", "CNY/t", tick, "kg", 100, reference, percent, quantity_per_price_unit=1
    )
    assert band_around(reference, percent, tick) == configured_band(product)


@pytest.mark.parametrize(
    ("low", "high", "problem"),
    [
        (520_000, 600_000, None),
        (520_010, 600_000, "multiples of the tick"),
        (600_000, 520_000, "below band_high"),
        (0, 600_000, "band_low must be a positive integer price"),
        (False, 600_000, "band_low must be a positive integer price"),
        (520_000, 1 << 63, "band_high must be a positive integer price"),
    ],
)
def test_the_shape_of_a_band(low: object, high: object, problem: str | None) -> None:
    found = band_shape_problem(50, low, high)
    assert (found is None) if problem is None else (found is not None and problem in found)


def test_the_rules_check_the_band_in_force() -> None:
    assert price_problem(PRODUCT, 500_000) is None
    assert price_problem(PRODUCT, 500_000, NEW) is Reason.OUTSIDE_PRICE_BAND
    assert price_problem(PRODUCT, 580_000, NEW) is None
    assert price_problem(PRODUCT, 10**12, ANY_PRICE) is None
    args = (OrderType.LIMIT, 500_000, 100, TimeInForce.GTC, None, False, 0)
    assert order_problem(PRODUCT, *args) is None
    assert order_problem(PRODUCT, *args, NEW) is Reason.OUTSIDE_PRICE_BAND
    assert replace_problem(PRODUCT, 500_000, None, NEW) is Reason.OUTSIDE_PRICE_BAND
    assert replace_problem(PRODUCT, 580_000, None, NEW) is None
    assert reject_text(PRODUCT, Reason.OUTSIDE_PRICE_BAND, NEW) == (
        "The price is outside today's band, 520000..600000 CNY/t (both included)."
    )


def test_a_set_band_request_round_trips() -> None:
    request = OperatorRequest(Action.SET_BAND, "PRND-OX", NEW)
    body = encode_request(request)
    assert unpack(body) == {"product": "PRND-OX", "band_low": 520_000, "band_high": 600_000}
    assert decode_request("set_band", body) == request


def test_band_refusal_of_each_kind() -> None:
    assert band_refusal(PRODUCT, NEW) is None
    assert band_refusal(PRODUCT, PriceBand(520_025, 600_000))[0] is Refusal.BAND_NOT_ON_TICK  # type: ignore[index]
    assert band_refusal(PRODUCT, PriceBand(600_000, 600_000))[0] is Refusal.BAND_INVERTED  # type: ignore[index]
    assert band_refusal(PRODUCT, PriceBand(50, 600_000))[0] is Refusal.BAND_OUT_OF_RANGE  # type: ignore[index]
