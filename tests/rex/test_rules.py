"""The pre-trade rules that need no book (rex/rules.py), one test per rule, named after it.

The product: PRND-OX, tick 50, lot 100, reference 500 000 with a 10% band (450 000..550 000,
both included), at most 100 000 lots (10 000 000 kg).
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from rex.config import Product, TradingStatus
from rex.rules import (
    order_problem,
    price_problem,
    quantity_problem,
    reject_text,
    replace_problem,
    status_problem,
)
from rex.vocabulary import OrderType, Reason, TimeInForce

NOW = 1_800_000_000_000_000_000  # ns


def product(**overrides: Any) -> Product:
    fields: dict[str, Any] = {
        "symbol": "PRND-OX",
        "name": "Praseodymium-neodymium oxide",
        "currency": "CNY",
        "price_unit": "CNY/t",
        "tick": 50,
        "quantity_unit": "kg",
        "lot": 100,
        "quantity_per_price_unit": 1000,
        "reference_price": 500_000,
        "band_percent": Decimal(10),
    }
    return Product(**{**fields, **overrides})


PRODUCT = product()


def new_order(**fields: Any) -> Reason | None:
    """`order_problem` for a GTC limit buy of 100 at 500 000, changed by ``fields``."""
    order: dict[str, Any] = {
        "order_type": OrderType.LIMIT,
        "price": 500_000,
        "quantity": 100,
        "time_in_force": TimeInForce.GTC,
        "expire_time": None,
        "post_only": False,
        **fields,
    }
    return order_problem(PRODUCT, now=NOW, **order)


# ----------------------------------------------------------------------- status


def test_an_open_product_takes_orders() -> None:
    assert status_problem(TradingStatus.OPEN) is None


def test_a_halted_product_rejects_product_halted() -> None:
    assert status_problem(TradingStatus.HALTED) is Reason.PRODUCT_HALTED


def test_a_closed_product_rejects_product_closed() -> None:
    assert status_problem(TradingStatus.CLOSED) is Reason.PRODUCT_CLOSED


# ----------------------------------------------------------------------- quantity


@pytest.mark.parametrize("quantity", [0, -100, 10_000_100])
def test_quantity_out_of_range(quantity: int) -> None:
    assert quantity_problem(PRODUCT, quantity) is Reason.QUANTITY_OUT_OF_RANGE


def test_quantity_out_of_range_is_checked_before_the_lot() -> None:
    assert quantity_problem(PRODUCT, -150) is Reason.QUANTITY_OUT_OF_RANGE


def test_quantity_not_on_lot() -> None:
    assert quantity_problem(PRODUCT, 150) is Reason.QUANTITY_NOT_ON_LOT


@pytest.mark.parametrize("quantity", [100, 10_000_000])
def test_quantities_from_one_lot_to_the_largest_are_allowed(quantity: int) -> None:
    assert quantity_problem(PRODUCT, quantity) is None


def test_the_largest_quantity_is_the_products_own() -> None:
    small = product(max_quantity=1_000)
    assert quantity_problem(small, 1_000) is None
    assert quantity_problem(small, 1_100) is Reason.QUANTITY_OUT_OF_RANGE


# ----------------------------------------------------------------------- price


def test_price_not_on_tick() -> None:
    assert price_problem(PRODUCT, 500_025) is Reason.PRICE_NOT_ON_TICK


def test_price_not_on_tick_is_checked_before_the_band() -> None:
    assert price_problem(PRODUCT, 600_025) is Reason.PRICE_NOT_ON_TICK


@pytest.mark.parametrize("price", [449_950, 550_050])
def test_outside_price_band(price: int) -> None:
    assert price_problem(PRODUCT, price) is Reason.OUTSIDE_PRICE_BAND


@pytest.mark.parametrize("price", [450_000, 550_000])
def test_the_band_includes_both_ends(price: int) -> None:
    assert price_problem(PRODUCT, price) is None


# ----------------------------------------------------------------------- new order


def test_a_valid_limit_order_breaks_no_rule() -> None:
    assert new_order() is None


def test_the_quantity_is_checked_first() -> None:
    assert new_order(quantity=150, price=None) is Reason.QUANTITY_NOT_ON_LOT


def test_missing_price() -> None:
    assert new_order(price=None) is Reason.MISSING_PRICE


def test_a_limit_orders_price_follows_the_price_rules() -> None:
    assert new_order(price=500_010) is Reason.PRICE_NOT_ON_TICK
    assert new_order(price=600_000) is Reason.OUTSIDE_PRICE_BAND


def test_price_not_allowed_on_a_market_order() -> None:
    assert new_order(order_type=OrderType.MARKET) is Reason.PRICE_NOT_ALLOWED


def test_a_market_order_without_a_price_breaks_no_rule() -> None:
    assert new_order(order_type=OrderType.MARKET, price=None) is None


def test_invalid_time_in_force_a_market_order_never_rests_until_a_date() -> None:
    problem = new_order(
        order_type=OrderType.MARKET,
        price=None,
        time_in_force=TimeInForce.GTD,
        expire_time=NOW + 1,
    )
    assert problem is Reason.INVALID_TIME_IN_FORCE


def test_missing_expire_time() -> None:
    assert new_order(time_in_force=TimeInForce.GTD) is Reason.MISSING_EXPIRE_TIME


@pytest.mark.parametrize("expire_time", [NOW, NOW - 1])
def test_expire_time_in_past_includes_now(expire_time: int) -> None:
    problem = new_order(time_in_force=TimeInForce.GTD, expire_time=expire_time)
    assert problem is Reason.EXPIRE_TIME_IN_PAST


def test_a_gtd_order_expiring_after_now_breaks_no_rule() -> None:
    assert new_order(time_in_force=TimeInForce.GTD, expire_time=NOW + 1) is None


@pytest.mark.parametrize("tif", [TimeInForce.GTC, TimeInForce.IOC, TimeInForce.FOK])
def test_expire_time_not_allowed_without_gtd(tif: TimeInForce) -> None:
    assert new_order(time_in_force=tif, expire_time=NOW + 1) is Reason.EXPIRE_TIME_NOT_ALLOWED


@pytest.mark.parametrize(
    "fields",
    [
        {"order_type": OrderType.MARKET, "price": None},
        {"time_in_force": TimeInForce.IOC},
        {"time_in_force": TimeInForce.FOK},
    ],
    ids=["market", "ioc", "fok"],
)
def test_post_only_not_allowed_on_an_order_that_cannot_rest(fields: dict[str, Any]) -> None:
    assert new_order(post_only=True, **fields) is Reason.POST_ONLY_NOT_ALLOWED


@pytest.mark.parametrize("tif", [TimeInForce.GTC, TimeInForce.GTD])
def test_post_only_on_a_resting_limit_order_breaks_no_rule(tif: TimeInForce) -> None:
    expire = NOW + 1 if tif is TimeInForce.GTD else None
    assert new_order(post_only=True, time_in_force=tif, expire_time=expire) is None


# ----------------------------------------------------------------------- replace


def test_nothing_to_replace() -> None:
    assert replace_problem(PRODUCT, None, None) is Reason.NOTHING_TO_REPLACE


def test_a_replaces_price_follows_the_price_rules() -> None:
    assert replace_problem(PRODUCT, 500_010, None) is Reason.PRICE_NOT_ON_TICK
    assert replace_problem(PRODUCT, 400_000, 100) is Reason.OUTSIDE_PRICE_BAND


def test_a_replaces_quantity_follows_the_quantity_rules() -> None:
    assert replace_problem(PRODUCT, None, 150) is Reason.QUANTITY_NOT_ON_LOT
    assert replace_problem(PRODUCT, 500_000, 0) is Reason.QUANTITY_OUT_OF_RANGE


@pytest.mark.parametrize(("price", "quantity"), [(500_050, None), (None, 200), (500_050, 200)])
def test_a_replace_of_price_or_quantity_or_both_breaks_no_rule(
    price: int | None, quantity: int | None
) -> None:
    assert replace_problem(PRODUCT, price, quantity) is None


# ----------------------------------------------------------------------- reject text


def test_reject_text_of_outside_price_band_names_the_band() -> None:
    assert reject_text(PRODUCT, Reason.OUTSIDE_PRICE_BAND) == (
        "The price is outside today's band, 450000..550000 CNY/t (both included)."
    )


def test_reject_text_of_price_not_on_tick_names_the_tick() -> None:
    assert reject_text(PRODUCT, Reason.PRICE_NOT_ON_TICK) == (
        "The price is not a multiple of the product's tick, 50 CNY/t."
    )


def test_reject_text_of_quantity_not_on_lot_names_the_lot() -> None:
    assert reject_text(PRODUCT, Reason.QUANTITY_NOT_ON_LOT) == (
        "The quantity is not a multiple of the product's lot, 100 kg."
    )


def test_reject_text_of_quantity_out_of_range_names_the_largest_quantity() -> None:
    assert reject_text(PRODUCT, Reason.QUANTITY_OUT_OF_RANGE) == (
        "The quantity must be positive and at most 10000000 kg."
    )


def test_reject_text_uses_the_products_own_figures() -> None:
    other = product(symbol="DY-OX", tick=500, reference_price=1_800_000, band_percent=Decimal(7))
    assert reject_text(other, Reason.OUTSIDE_PRICE_BAND) == (
        f"The price is outside today's band, {other.band_low}..{other.band_high} CNY/t"
        " (both included)."
    )
    assert reject_text(other, Reason.PRICE_NOT_ON_TICK).endswith("tick, 500 CNY/t.")


@pytest.mark.parametrize(
    "reason",
    [
        Reason.MISSING_PRICE,
        Reason.PRICE_NOT_ALLOWED,
        Reason.NOTHING_TO_REPLACE,
        Reason.INVALID_TIME_IN_FORCE,
        Reason.MISSING_EXPIRE_TIME,
        Reason.EXPIRE_TIME_NOT_ALLOWED,
        Reason.EXPIRE_TIME_IN_PAST,
        Reason.POST_ONLY_NOT_ALLOWED,
        Reason.PRODUCT_HALTED,
        Reason.PRODUCT_CLOSED,
    ],
)
def test_reject_text_of_a_rule_with_no_figure_is_the_reasons_sentence(reason: Reason) -> None:
    assert reject_text(PRODUCT, reason) == reason.text != ""
