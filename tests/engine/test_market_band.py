"""A band entry on a product's input log (an operator set it through the operator desk):
the market applies it in log order, publishes it on rex.marketdata, names it in rejects,
replays it to the same bytes, and keeps it in its image (format 3); older images, which
have no band, load with products.toml's."""

from __future__ import annotations

from typing import Any

import msgpack
import pytest

from engine.image import ImageError, decode_image, encode_image
from engine.market import Market
from engine.outputs import outputs
from rex import topology
from rex.bus import Envelope
from rex.price_band import PriceBand
from rex.protocol import EngineInput, InputKind, decode_inputs, encode_inputs, pack, unpack
from rex.vocabulary import Side
from tests.engine.helpers import BAND_HIGH, BAND_LOW, PRODUCT, SYMBOL, Session

NEW = PriceBand(520_000, 600_000)


def run(market: Market, entries: list[EngineInput]) -> list[Envelope]:
    out: list[Envelope] = []
    for entry in entries:
        out += outputs(market.handle(entry), market.snapshot()).envelopes
    return out


def reports(envelopes: list[Envelope]) -> list[dict[str, Any]]:
    return [unpack(e.body) for e in envelopes if e.type == "execution"]


def test_a_band_entry_is_published_as_market_data() -> None:
    session = Session()
    market = Market(PRODUCT)
    run(market, [session.new("alpha", "a1", Side.BUY, 100, 500_000)])
    entry = session.band(NEW.low, NEW.high)
    [envelope] = run(market, [entry])
    assert (envelope.exchange, envelope.routing_key, envelope.type) == (
        topology.MARKETDATA,
        f"{SYMBOL}.band",
        "price_band",
    )
    assert envelope.message_id == f"{SYMBOL}-band-3"  # accepted, level, band
    assert unpack(envelope.body) == {
        "product": SYMBOL,
        "band_low": NEW.low,
        "band_high": NEW.high,
        "sequence": 3,
        "timestamp": entry.received,
    }
    assert market.book.band == NEW


def test_orders_are_then_checked_against_it_and_the_reject_names_it() -> None:
    session = Session()
    market = Market(PRODUCT)
    run(market, [session.band(NEW.low, NEW.high)])
    out = run(
        market,
        [
            session.new("alpha", "in-old", Side.BUY, 100, 500_000),  # the old band's only
            session.new("alpha", "in-new", Side.SELL, 100, 580_000),  # the new band's only
        ],
    )
    [rejected, accepted] = reports(out)
    assert (rejected["client_order_id"], rejected["reason"], rejected["text"]) == (
        "in-old",
        "outside_price_band",
        "The price is outside today's band, 520000..600000 CNY/t (both included).",
    )
    assert (accepted["client_order_id"], accepted["status"]) == ("in-new", "new")


@pytest.mark.parametrize(
    ("low", "high"),
    [
        (520_010, 600_000),  # off tick
        (600_000, 520_000),  # inverted
        (600_000, 600_000),  # empty
        (0, 600_000),
        (-50, 600_000),
        (True, 600_000),
        ("520000", 600_000),
        (None, 600_000),
        (520_000, None),
        (520_000, 1 << 64),
    ],
)
def test_a_band_entry_of_no_shape_is_skipped(low: object, high: object) -> None:
    """The desk writes no such entry; were one in the log, every engine skips it alike."""
    session = Session()
    market = Market(PRODUCT)
    assert run(market, [session.band(low, high)]) == []
    assert market.book.band == PriceBand(BAND_LOW, BAND_HIGH)
    assert market.book.sequence == 0


def test_the_band_fields_travel_in_the_input_log() -> None:
    entry = EngineInput(InputKind.BAND, SYMBOL, 9, band_low=NEW.low, band_high=NEW.high)
    assert decode_inputs(encode_inputs([entry])) == [entry]
    assert unpack(encode_inputs([entry])) == [
        {
            "kind": "band",
            "product": SYMBOL,
            "received": 9,
            "band_low": NEW.low,
            "band_high": NEW.high,
        }
    ]


def session_entries() -> list[EngineInput]:
    s = Session()
    return [
        s.new("alpha", "a1", Side.SELL, 300, 500_000),
        s.band(NEW.low, NEW.high),
        s.new("beta", "b1", Side.BUY, 100, 500_000),  # rejected now
        s.new("beta", "b2", Side.BUY, 100, NEW.low),  # trades with a1, resting outside
        s.new("gamma", "g1", Side.SELL, 100, 590_000),
        s.band(BAND_LOW, BAND_HIGH),
        s.new("gamma", "g2", Side.SELL, 100, 590_000),  # rejected again
    ]


def test_a_replay_gives_the_same_bytes() -> None:
    first = run(Market(PRODUCT), session_entries())
    again = run(Market(PRODUCT), session_entries())
    assert [(e.routing_key, e.type, e.message_id, e.body) for e in first] == [
        (e.routing_key, e.type, e.message_id, e.body) for e in again
    ]
    assert [r["reason"] for r in reports(first) if r["status"] == "rejected"] == [
        "outside_price_band",
        "outside_price_band",
    ]
    assert [e.type for e in first].count("price_band") == 2


@pytest.mark.parametrize("cut", range(1, 8))
def test_an_image_after_a_band_change_restores_it(cut: int) -> None:
    """Restored at any entry, the market goes on as the original: the same messages."""
    entries = session_entries()
    whole = Market(PRODUCT)
    expected = run(whole, entries)
    original = Market(PRODUCT)
    head = run(original, entries[:cut])
    image = encode_image(original, cut)
    restored, through = decode_image(PRODUCT, image)
    assert through == cut
    assert restored.book.band == original.book.band
    assert encode_image(restored, cut) == image
    tail = run(restored, session_entries()[cut:])
    assert [(e.message_id, e.body) for e in head + tail] == [
        (e.message_id, e.body) for e in expected
    ]


def test_the_image_holds_the_band() -> None:
    session = Session()
    market = Market(PRODUCT)
    run(market, [session.band(NEW.low, NEW.high)])
    image = msgpack.unpackb(encode_image(market, 1), raw=False)
    assert (image["format"], image["book"]["band"]) == (3, [NEW.low, NEW.high])


def test_an_image_of_format_2_loads_with_the_products_band() -> None:
    """Written before operators set bands: no "band"; products.toml's was the only one."""
    session = Session()
    market = Market(PRODUCT)
    run(market, [session.new("alpha", "a1", Side.BUY, 100, 500_000)])
    image = msgpack.unpackb(encode_image(market, 1), raw=False)
    image["format"] = 2
    del image["book"]["band"]
    restored, _ = decode_image(PRODUCT, pack(image))
    assert restored.book.band == PriceBand(BAND_LOW, BAND_HIGH)
    assert restored.book.order(1) is not None


@pytest.mark.parametrize(
    "band",
    [None, [520_000], [520_000, "600000"], [600_000, 520_000], [520_010, 600_000], [0, 50]],
)
def test_an_image_with_a_bad_band_is_refused(band: Any) -> None:
    image = msgpack.unpackb(encode_image(Market(PRODUCT), 0), raw=False)
    if band is None:
        del image["book"]["band"]
    else:
        image["book"]["band"] = band
    with pytest.raises(ImageError) as refused:
        decode_image(PRODUCT, pack(image))
    assert refused.value.code == "malformed"
