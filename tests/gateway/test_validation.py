"""The gateway's judge (gateway/validation.py): every way a request is rejected, each with
the reason and the text the member reads, and what a request that passes is forwarded as.

The product: PRND-OX, tick 50, lot 100, band 450 000..550 000 CNY/t."""

from __future__ import annotations

import dataclasses
from decimal import Decimal
from typing import Any

import pytest

from gateway.validation import NS_PER_MS, Forward, Reject, Verdict, judge
from rex.config import Product, TradingStatus
from rex.protocol import (
    CancelRequest,
    EngineInput,
    MassCancelRequest,
    NewOrderRequest,
    ReplaceRequest,
    Request,
    encode,
    pack,
)
from rex.vocabulary import Reason, Side, TimeInForce

MEMBER = "alpha"
NOW = 1_800_000_000_000_000_000  # ns
PRODUCT = Product(
    symbol="PRND-OX",
    name="Praseodymium-neodymium oxide",
    currency="CNY",
    price_unit="CNY/t",
    tick=50,
    quantity_unit="kg",
    lot=100,
    quantity_per_price_unit=1000,
    reference_price=500_000,
    band_percent=Decimal(10),
)
PRODUCTS = {PRODUCT.symbol: PRODUCT}
BUY = NewOrderRequest("c-1", "PRND-OX", Side.BUY, 100, price=500_000)


def judged(
    request: Request,
    *,
    routing_key: str = "alpha.PRND-OX",
    products: dict[str, Product] = PRODUCTS,
) -> Verdict:
    return judge(MEMBER, request.kind, routing_key, "m-1", encode(request), products, NOW)


def judged_body(kind: str | None, body: bytes) -> Verdict:
    return judge(MEMBER, kind, "alpha.PRND-OX", "m-1", body, PRODUCTS, NOW)


def rejected(verdict: Verdict) -> Reject:
    assert isinstance(verdict, Reject), verdict
    return verdict


def halted() -> dict[str, Product]:
    return {PRODUCT.symbol: dataclasses.replace(PRODUCT, status=TradingStatus.HALTED)}


# ----------------------------------------------------------------------- forward


def test_a_valid_new_order_is_forwarded_as_an_input_log_entry() -> None:
    verdict = judged(BUY)
    assert verdict == Forward(
        EngineInput(
            kind="new_order",
            product="PRND-OX",
            received=NOW,
            member=MEMBER,
            request_id="m-1",
            request=BUY,
        )
    )
    assert isinstance(verdict, Forward)
    assert (verdict.request, verdict.client_order_id, verdict.product) == (BUY, "c-1", "PRND-OX")


@pytest.mark.parametrize(
    "request_",
    [
        CancelRequest("c-2", "c-1", "PRND-OX"),
        ReplaceRequest("c-2", "c-1", "PRND-OX", price=500_050),
        MassCancelRequest("c-2", "PRND-OX"),
    ],
    ids=["cancel", "replace", "mass_cancel"],
)
def test_cancels_and_valid_replaces_are_forwarded(request_: Request) -> None:
    verdict = judged(request_)
    assert isinstance(verdict, Forward), verdict
    assert verdict.entry.kind == request_.kind
    assert verdict.request == request_


@pytest.mark.parametrize(
    "request_",
    [CancelRequest("c-2", "c-1", "PRND-OX"), MassCancelRequest("c-2", "PRND-OX")],
    ids=["cancel", "mass_cancel"],
)
def test_a_halted_product_still_takes_cancels(request_: Request) -> None:
    assert isinstance(judged(request_, products=halted()), Forward)


# ----------------------------------------------------------------------- malformed


def test_a_body_that_is_not_msgpack_is_malformed_with_nothing_salvaged() -> None:
    verdict = rejected(judged_body("new_order", b"\xc1"))
    assert verdict == Reject(Reason.MALFORMED, "the body is not valid msgpack", None, None)


def test_a_body_that_is_not_a_map_is_malformed() -> None:
    verdict = rejected(judged_body("new_order", pack([1, 2])))
    assert (verdict.reason, verdict.text) == (Reason.MALFORMED, "the body must be a msgpack map")


def test_an_unknown_message_type_is_malformed_naming_the_types() -> None:
    verdict = rejected(judged_body("bogus", pack({"client_order_id": "c-1", "product": "PRND-OX"})))
    assert verdict == Reject(
        Reason.MALFORMED,
        "unknown message type 'bogus'; expected one of new_order, cancel, replace, mass_cancel",
        "c-1",
        "PRND-OX",
    )


def test_a_field_of_the_wrong_type_is_malformed_and_keeps_the_ids_for_the_answer() -> None:
    body: dict[str, Any] = {
        "client_order_id": "c-1",
        "product": "PRND-OX",
        "side": "buy",
        "quantity": "ten",
        "price": 500_000,
    }
    verdict = rejected(judged_body("new_order", pack(body)))
    assert verdict == Reject(Reason.MALFORMED, "quantity must be an integer", "c-1", "PRND-OX")


def test_a_routing_key_not_of_the_member_and_product_is_malformed() -> None:
    verdict = rejected(judged(BUY, routing_key="beta.PRND-OX"))
    assert verdict == Reject(
        Reason.MALFORMED, "routing key must be alpha.PRND-OX", "c-1", "PRND-OX", BUY
    )


# ----------------------------------------------------------------------- product


def test_an_unknown_product_is_rejected_unknown_product() -> None:
    order = dataclasses.replace(BUY, product="ND-OX")
    verdict = rejected(judged(order, routing_key="alpha.ND-OX"))
    assert verdict == Reject(
        Reason.UNKNOWN_PRODUCT, "No product with that symbol is listed.", "c-1", "ND-OX", order
    )


def test_a_halted_product_rejects_a_new_order_before_its_own_rules() -> None:
    off_tick = dataclasses.replace(BUY, price=500_010)
    verdict = rejected(judged(off_tick, products=halted()))
    assert verdict == Reject(
        Reason.PRODUCT_HALTED, "Trading in this product is halted.", "c-1", "PRND-OX", off_tick
    )


# ----------------------------------------------------------------------- order rules


def test_a_new_order_breaking_a_rule_is_rejected_with_the_products_figure() -> None:
    off_tick = dataclasses.replace(BUY, price=500_010)
    verdict = rejected(judged(off_tick))
    assert verdict == Reject(
        Reason.PRICE_NOT_ON_TICK,
        "The price is not a multiple of the product's tick, 50 CNY/t.",
        "c-1",
        "PRND-OX",
        off_tick,
    )


def gtd(expire_time_ms: int) -> NewOrderRequest:
    return dataclasses.replace(BUY, time_in_force=TimeInForce.GTD, expire_time=expire_time_ms)


def test_an_expire_time_in_milliseconds_is_compared_with_now_in_nanoseconds() -> None:
    now_ms = NOW // NS_PER_MS
    verdict = rejected(judged(gtd(now_ms)))
    assert (verdict.reason, verdict.text) == (
        Reason.EXPIRE_TIME_IN_PAST,
        Reason.EXPIRE_TIME_IN_PAST.text,
    )
    assert isinstance(judged(gtd(now_ms + 1)), Forward)


def test_a_replace_with_nothing_to_change_is_rejected() -> None:
    replace = ReplaceRequest("c-2", "c-1", "PRND-OX")
    verdict = rejected(judged(replace))
    assert verdict == Reject(
        Reason.NOTHING_TO_REPLACE, Reason.NOTHING_TO_REPLACE.text, "c-2", "PRND-OX", replace
    )


def test_a_replace_breaking_a_rule_is_rejected_with_the_products_figure() -> None:
    replace = ReplaceRequest("c-2", "c-1", "PRND-OX", quantity=150)
    verdict = rejected(judged(replace))
    assert (verdict.reason, verdict.text) == (
        Reason.QUANTITY_NOT_ON_LOT,
        "The quantity is not a multiple of the product's lot, 100 kg.",
    )
