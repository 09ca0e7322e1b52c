"""The gateway's judge (gateway/validation.py): every way a request is rejected, each with
the reason and the text the member reads, and what a request that passes is forwarded as.

The product: PRND-OX, tick 50, lot 100, band 450 000..550 000 CNY/t."""

from __future__ import annotations

import dataclasses
from decimal import Decimal
from typing import Any

import pytest

from gateway.validation import (
    NS_PER_MS,
    Forward,
    Reject,
    Verdict,
    answer_time_ns,
    judge,
    properties_problem,
    usable_message_id,
)
from rex.config import Product, TradingStatus
from rex.protocol import (
    MAX_REQUEST_BODY_BYTES,
    MAX_TIMESTAMP_S,
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


# ----------------------------------------------------------------------- bounds
# Every field a member controls, at and past its bound (docs/members/protocol.md#bounds).


def judged_with(
    *, message_id: str | None = "m-1", timestamp_s: int | None = None, body: bytes | None = None
) -> Verdict:
    return judge(
        MEMBER,
        "new_order",
        "alpha.PRND-OX",
        message_id,
        encode(BUY) if body is None else body,
        PRODUCTS,
        NOW,
        timestamp_s=timestamp_s,
    )


def test_a_request_without_message_id_is_malformed_and_answered_by_its_client_order_id() -> None:
    for missing in (None, ""):
        verdict = rejected(judged_with(message_id=missing))
        assert verdict == Reject(Reason.MALFORMED, "message_id is required", "c-1", "PRND-OX", BUY)


@pytest.mark.parametrize(
    "message_id", ["m" * 129, "m" * 255, "has space", "tab\t", "稀土", "\x00"], ids=repr
)
def test_a_message_id_past_its_bound_is_malformed_and_never_echoed(message_id: str) -> None:
    verdict = rejected(judged_with(message_id=message_id))
    assert verdict == Reject(
        Reason.MALFORMED,
        "message_id must be 1-128 printable ASCII characters without spaces",
        "c-1",
        "PRND-OX",
        BUY,
    )
    assert usable_message_id(message_id) is None


def test_a_message_id_or_type_that_is_not_utf8_is_malformed() -> None:
    # pika hands over an AMQP short string that is not UTF-8 as bytes
    verdict = rejected(judged_with(message_id=b"\xff\xfe"))  # type: ignore[arg-type]
    assert verdict.text == "message_id must be 1-128 printable ASCII characters without spaces"
    assert usable_message_id(b"m-1") is None
    by_type = rejected(judged_body(b"\xff", encode(BUY)))  # type: ignore[arg-type]
    assert by_type.text == (
        "unknown message type; expected one of new_order, cancel, replace, mass_cancel"
    )


def test_a_message_id_of_128_printable_characters_is_used() -> None:
    message_id = "~" * 128
    assert usable_message_id(message_id) == message_id
    verdict = judged_with(message_id=message_id)
    assert isinstance(verdict, Forward) and verdict.entry.request_id == message_id


@pytest.mark.parametrize("timestamp_s", [MAX_TIMESTAMP_S + 1, 2**62, 2**64 - 1])
def test_a_timestamp_past_2100_is_malformed(timestamp_s: int) -> None:
    verdict = rejected(judged_with(timestamp_s=timestamp_s))
    assert verdict == Reject(
        Reason.MALFORMED,
        "timestamp must be seconds since the epoch, at most 4102444800 (2100-01-01)",
        "c-1",
        "PRND-OX",
        BUY,
    )
    assert answer_time_ns(timestamp_s, NOW) == NOW  # the answer is stamped by the clock


def test_a_timestamp_up_to_2100_is_taken_and_stamps_the_answer() -> None:
    assert isinstance(judged_with(timestamp_s=MAX_TIMESTAMP_S), Forward)
    assert answer_time_ns(MAX_TIMESTAMP_S, NOW) == MAX_TIMESTAMP_S * 1_000_000_000 < 2**63
    assert answer_time_ns(None, NOW) == answer_time_ns(0, NOW) == NOW


def test_the_properties_are_checked_in_order_message_id_first() -> None:
    assert properties_problem("m" * 200, 2**62) == (
        "message_id must be 1-128 printable ASCII characters without spaces"
    )
    assert properties_problem("m-1", None) is None


def test_a_body_over_4096_bytes_is_malformed_with_nothing_salvaged() -> None:
    body = pack({"client_order_id": "c-1", "product": "PRND-OX", "pad": "x" * 4096})
    verdict = rejected(judged_with(body=body))
    assert verdict == Reject(
        Reason.MALFORMED,
        f"the body is {len(body)} bytes; at most {MAX_REQUEST_BODY_BYTES}",
        None,
        None,
    )


def test_a_body_of_4096_bytes_is_decoded() -> None:
    filler = {"client_order_id": "c-1", "product": "PRND-OX", "side": "buy", "quantity": 100}
    padded = pack({**filler, "pad": "x" * (MAX_REQUEST_BODY_BYTES - len(pack(filler)) - 7)})
    assert len(padded) == MAX_REQUEST_BODY_BYTES
    verdict = rejected(judged_with(body=padded))
    assert verdict.text == "unknown field(s): pad"


@pytest.mark.parametrize(
    "product", ["P" * 33, "P" * 300, "PRND.OX", "PRND OX", "稀土", "", "PR\x00"], ids=repr
)
def test_a_product_past_its_bound_is_malformed_and_not_echoed(product: str) -> None:
    body = pack({**_fields(BUY), "product": product})
    verdict = rejected(judged_body("new_order", body))
    assert verdict == Reject(
        Reason.MALFORMED,
        "product must be 1-32 printable ASCII characters without spaces or dots",
        "c-1",
        None,
    )


def test_a_well_formed_product_of_32_characters_that_is_not_listed_is_unknown_product() -> None:
    order = dataclasses.replace(BUY, product="P" * 32)
    verdict = rejected(judged(order, routing_key="alpha." + "P" * 32))
    assert (verdict.reason, verdict.product) == (Reason.UNKNOWN_PRODUCT, "P" * 32)


@pytest.mark.parametrize("name", ["client_order_id", "orig_client_order_id"])
@pytest.mark.parametrize("value", ["c" * 65, "has space", "", "稀土", 7, None], ids=repr)
def test_a_client_order_id_past_its_bound_is_malformed_and_not_echoed(
    name: str, value: Any
) -> None:
    cancel = _fields(CancelRequest("c-2", "c-1", "PRND-OX"))
    verdict = rejected(judged_body("cancel", pack({**cancel, name: value})))
    assert verdict.reason == Reason.MALFORMED
    assert name in verdict.text
    assert verdict.client_order_id == (None if name == "client_order_id" else "c-2")


@pytest.mark.parametrize("name", ["quantity", "price", "expire_time"])
@pytest.mark.parametrize("value", [2**63, 2**64 - 1, -(2**63)])
def test_an_integer_outside_int64_is_malformed(name: str, value: int) -> None:
    body = pack({**_fields(BUY), name: value})
    verdict = rejected(judged_body("new_order", body))
    assert (verdict.reason, verdict.text) == (Reason.MALFORMED, f"{name} is out of range")


@pytest.mark.parametrize(
    ("name", "value", "text"),
    [
        ("side", "up", "side must be one of buy, sell"),
        ("order_type", 1, "order_type must be one of limit, market"),
        ("time_in_force", "x" * 300, "time_in_force must be one of GTC, IOC, FOK, GTD"),
        ("stp", [], "stp must be one of cancel_newest, cancel_oldest, cancel_both"),
        ("post_only", "yes", "post_only must be true or false"),
        ("quantity", 1.5, "quantity must be an integer"),
        ("price", True, "price must be an integer"),
    ],
)
def test_a_choice_or_flag_out_of_its_set_is_malformed_without_echoing_it(
    name: str, value: Any, text: str
) -> None:
    verdict = rejected(judged_body("new_order", pack({**_fields(BUY), name: value})))
    assert (verdict.reason, verdict.text) == (Reason.MALFORMED, text)


def test_unknown_fields_are_named_only_when_shaped_like_a_field_and_at_most_five() -> None:
    extra = {f"field_{c}": 1 for c in "abcdefg"} | {"x" * 300: 1, "稀土": 2, b"\xff": 3}
    verdict = rejected(judged_body("new_order", pack({**_fields(BUY), **extra})))
    assert verdict.text == (
        "unknown field(s): field_a, field_b, field_c, field_d, field_e and 5 more"
    )
    only_odd = rejected(judged_body("new_order", pack({**_fields(BUY), "x" * 300: 1})))
    assert only_odd.text == "unknown field(s): 1 not shown"


@pytest.mark.parametrize("kind", ["x" * 255, "New-Order", "稀土", ""], ids=repr)
def test_an_unknown_message_type_not_shaped_like_a_kind_is_not_echoed(kind: str) -> None:
    verdict = rejected(judged_body(kind, encode(BUY)))
    assert verdict.text == (
        "unknown message type; expected one of new_order, cancel, replace, mass_cancel"
    )


def test_deeply_nested_or_odd_msgpack_is_malformed_not_an_error() -> None:
    nested = b"\x91" * 3000 + b"\x01"  # 3000 nested arrays, within the size bound
    assert rejected(judged_body("new_order", nested)).text == "the body is not valid msgpack"
    int_key = pack({1: "x"})
    assert rejected(judged_body("new_order", int_key)).text == "the body is not valid msgpack"


def _fields(request: Request) -> dict[str, Any]:
    return {f.name: getattr(request, f.name) for f in dataclasses.fields(request)}
