"""A reject says the product's figure the member must meet: the band of
`outside_price_band`, the tick, the lot, the largest quantity. The gateway and the engine
(which checks again) say the same, from the configuration alone -- but for the band, which
is market state only the engine follows (rex/price_band.py): the engine names the band in
force (tests/engine/test_market_band.py)."""

from __future__ import annotations

import pytest

from engine.market import Market
from engine.outputs import outputs
from gateway.validation import Forward, Reject, judge
from rex.protocol import NewOrderRequest, ReplaceRequest, Request, encode, unpack
from rex.vocabulary import Side
from tests.engine.helpers import PRODUCT, Session

CASES = [
    (
        {"price": 600_000},
        "outside_price_band",
        "The price is outside today's band, 450000..550000 CNY/t (both included).",
    ),
    (
        {"price": 450_025},
        "price_not_on_tick",
        "The price is not a multiple of the product's tick, 50 CNY/t.",
    ),
    (
        {"quantity": 150},
        "quantity_not_on_lot",
        "The quantity is not a multiple of the product's lot, 100 kg.",
    ),
    (
        {"quantity": 100 * 100_000 + 100},
        "quantity_out_of_range",
        "The quantity must be positive and at most 10000000 kg.",
    ),
]


def order(**fields: int) -> NewOrderRequest:
    values = {"price": 450_000, "quantity": 100, **fields}
    return NewOrderRequest("c-1", "PRND-OX", Side.BUY, values["quantity"], price=values["price"])


def at_the_gateway(request: Request) -> Reject:
    verdict = judge(
        "alpha", request.kind, "alpha.PRND-OX", "m-1", encode(request), {"PRND-OX": PRODUCT}, 1
    )
    assert isinstance(verdict, Reject), verdict
    return verdict


@pytest.mark.parametrize(("fields", "reason", "text"), CASES[1:])
def test_the_gateway_names_the_figure(fields: dict[str, int], reason: str, text: str) -> None:
    verdict = at_the_gateway(order(**fields))
    assert (verdict.reason, verdict.text) == (reason, text)


@pytest.mark.parametrize(("fields", "reason", "text"), CASES)
def test_the_engine_says_the_same(fields: dict[str, int], reason: str, text: str) -> None:
    session = Session()
    request = order(**fields)
    out = Market(PRODUCT).handle(
        session.new("alpha", "c-1", Side.BUY, request.quantity, request.price)
    )
    reports = [unpack(e.body) for e in outputs(out).envelopes if e.type == "execution"]
    assert [(r["status"], r["reason"], r["text"]) for r in reports] == [("rejected", reason, text)]


def test_the_gateway_leaves_the_band_to_the_engine() -> None:
    """An operator may have set another band: the gateway, which does not follow the
    engine's input log, forwards a price outside products.toml's band."""
    for request in (order(price=600_000), ReplaceRequest("c-2", "c-1", "PRND-OX", 400_000, None)):
        verdict = judge(
            "alpha", request.kind, "alpha.PRND-OX", "m-1", encode(request), {"PRND-OX": PRODUCT}, 1
        )
        assert isinstance(verdict, Forward), verdict
