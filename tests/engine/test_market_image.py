"""Market images: a restored Market is the original, byte for byte; a bad image is refused.

The books here are built through `Market.handle`, as the engine builds them, so the image
holds what a real one does: levels on both sides, entries that have left the book, GTD
orders, a moved order whose old entry is still queued, members' indexes and counters.
"""

from __future__ import annotations

import gc
import json
from collections.abc import Callable
from typing import Any

import msgpack
import pytest

from engine import bench_image
from engine.image import IMAGE_FORMAT, IMAGE_KIND, ImageError, decode_image, encode_image
from engine.market import NS_PER_MS, Market
from engine.outputs import outputs
from rex.bus import Envelope
from rex.protocol import (
    EngineInput,
    pack,
)
from rex.vocabulary import Side, TimeInForce
from tests.engine.helpers import ASK, BID, PRODUCT, T0, Session, make_product, state

SYMBOL = PRODUCT.symbol


def run(market: Market, entries: list[EngineInput]) -> list[Envelope]:
    """Every message of the entries, each entry as one input-log message, as the service
    publishes them."""
    out: list[Envelope] = []
    for entry in entries:
        out += outputs(market.handle(entry), market.snapshot()).envelopes
    return out


def busy_market(session: Session) -> Market:
    """Both sides with several levels; dead entries; a partly filled GTD order; an order
    moved to the back of its own level and one moved to another level, each leaving its
    old entry behind; a request forwarded twice; a halt."""
    market = Market(PRODUCT, snapshot_interval_ns=5 * NS_PER_MS)
    s = session
    expire_ms = (T0 // NS_PER_MS) + 60_000
    run(
        market,
        [
            s.new("alpha", "a1", Side.BUY, 100, BID),
            s.new("alpha", "a2", Side.BUY, 200, BID),
            s.new("beta", "b1", Side.BUY, 300, BID),
            s.new("alpha", "a3", Side.BUY, 100, BID),
            s.new("gamma", "g1", Side.BUY, 400, BID - 500),
            s.new("gamma", "g2", Side.BUY, 100, BID - 500),
            s.new("beta", "b2", Side.BUY, 100, BID - 500),
            s.new(
                "gamma",
                "g3",
                Side.SELL,
                300,
                ASK,
                time_in_force=TimeInForce.GTD,
                expire_time=expire_ms,
            ),
            s.new("delta", "d1", Side.SELL, 200, ASK),
            s.new("delta", "d2", Side.SELL, 100, ASK + 1_000, post_only=True),
            s.cancel("alpha", "a2x", "a2"),  # from the middle: a dead entry
            s.replace("beta", "b1x", "b1", quantity=500),  # to the back of its level
            s.replace("gamma", "g2x", "g2", price=BID - 1_000),  # to another level
            s.new("delta", "d3", Side.BUY, 100, ASK),  # takes 100 of the GTD order
        ],
    )
    duplicate = s.new("alpha", "a4", Side.BUY, 100, BID - 500)
    run(market, [duplicate, duplicate, s.tick(), s.status("halted")])
    return market


def test_an_image_says_its_kind_and_format() -> None:
    assert (IMAGE_KIND, IMAGE_FORMAT) == ("engine_image", 3)
    image = msgpack.unpackb(encode_image(Market(PRODUCT), 42), raw=False)
    assert (image["format"], image["product"], image["through"]) == (3, SYMBOL, 42)


def test_an_empty_market_round_trips() -> None:
    image = encode_image(Market(PRODUCT), 0)
    restored, through = decode_image(PRODUCT, image)
    assert through == 0
    assert encode_image(restored, 0) == image


def test_a_busy_market_round_trips_byte_for_byte() -> None:
    market = busy_market(Session())
    image = encode_image(market, 17)
    restored, through = decode_image(PRODUCT, image, snapshot_interval_ns=5 * NS_PER_MS)
    assert through == 17
    assert encode_image(restored, 17) == image
    assert state(restored.book) == state(market.book)
    assert (restored.book.sequence, restored.book.trade_sequence) == (
        market.book.sequence,
        market.book.trade_sequence,
    )
    for name in ("clock", "next_order_id", "report_sequence", "live", "info", "book_changed"):
        assert getattr(restored, name) == getattr(market, name), name
    assert restored.used_client_ids == market.used_client_ids
    assert restored.seen_requests == market.seen_requests
    assert restored.last_snapshot_at == market.last_snapshot_at


def test_the_book_keeps_its_dead_entries_and_the_moved_orders_live_objects() -> None:
    market = busy_market(Session())
    restored, _ = decode_image(PRODUCT, encode_image(market, 1))
    original, copy = market.book.export_state(), restored.book.export_state()
    assert copy.status == "halted"
    for before, after in zip(original.bids + original.asks, copy.bids + copy.asks, strict=True):
        assert [(o.order_id, o.remaining, o.filled) for o in after] == [
            (o.order_id, o.remaining, o.filled) for o in before
        ]
        assert (after.price, after.quantity, after.order_count, after.dead) == (
            before.price,
            before.quantity,
            before.order_count,
            before.dead,
        )
    best_bid = copy.bids[0]
    ids = [o.order_id for o in best_bid]
    moved = market.live[("beta", "b1x")]
    assert ids.count(moved) == 2  # its old entry, dead, and the live one at the back
    assert best_bid[-1] is restored.book.order(moved) and best_bid[-1].remaining == 500
    assert list(copy.orders) == list(original.orders)  # acceptance order, not price order
    assert copy.expiries == original.expiries
    assert copy.next_expiry == original.next_expiry


def test_a_restored_market_answers_as_the_original() -> None:
    session = Session()
    market = busy_market(session)
    restored, _ = decode_image(PRODUCT, encode_image(market, 1), snapshot_interval_ns=5 * NS_PER_MS)
    s = session
    rest = [
        s.new("alpha", "a4", Side.BUY, 100, BID),  # forwarded twice before: ignored
        s.status("open"),
        s.new("alpha", "a1", Side.SELL, 100, ASK),  # a used client order id
        s.cancel("beta", "b1y", "b1x"),
        s.mass_cancel("gamma", "gx"),  # its orders in acceptance order
        s.new("epsilon", "e1", Side.SELL, 2_000, None),  # a market order sweeps the bids
        s.tick(ahead_ms=120_000),  # the GTD order expires
        s.new("alpha", "a5", Side.BUY, 300, ASK + 1_000),
    ]
    assert run(restored, rest) == run(market, rest)
    assert encode_image(restored, 2) == encode_image(market, 2)


def test_a_far_off_expiry_wider_than_64_bits_round_trips() -> None:
    session = Session()
    market = Market(PRODUCT)
    far_off_ms = 10**14  # the protocol allows it; in ns it no longer fits in 64 bits
    run(
        market,
        [
            session.new(
                "alpha",
                "a1",
                Side.BUY,
                100,
                BID,
                time_in_force=TimeInForce.GTD,
                expire_time=far_off_ms,
            ),
        ],
    )
    assert market.book.export_state().next_expiry >= 1 << 64
    image = encode_image(market, 1)
    restored, _ = decode_image(PRODUCT, image)
    assert encode_image(restored, 1) == image
    assert restored.book.export_state().expiries == [(far_off_ms * NS_PER_MS, 1)]


def test_equal_markets_give_equal_images_whatever_their_sets_order() -> None:
    """The ids are written in the order they came, never in a set's (hash) order."""
    session = Session()
    entries = [session.new(f"m{n}", f"c{n}", Side.BUY, 100, BID) for n in range(50)]
    forwards, backwards = Market(PRODUCT), Market(PRODUCT)
    run(forwards, entries)
    run(backwards, entries)
    requests, client_ids = backwards.seen_requests, backwards.used_client_ids
    requests._set = set(sorted(requests._set, reverse=True))
    client_ids._set = set(sorted(client_ids._set, reverse=True))
    assert encode_image(forwards, 5) == encode_image(backwards, 5)


# ----------------------------------------------------------------------- refused images


def _image() -> dict[str, Any]:
    decoded: dict[str, Any] = msgpack.unpackb(encode_image(busy_market(Session()), 9), raw=False)
    return decoded


def _first_entry(image: dict[str, Any]) -> list[Any]:
    entry: list[Any] = image["book"]["bids"][0][4][0]
    return entry


def _set(path: str, value: Any) -> Callable[[dict[str, Any]], None]:
    """Set image[a][b]... for a path "a.b...", list indexes as numbers."""

    def change(image: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        node: Any = image
        for key in parents:
            node = node[int(key)] if isinstance(node, list) else node[key]
        if isinstance(node, list):
            node[int(last)] = value
        else:
            node[last] = value

    return change


def _delete(section: str, key: str) -> Callable[[dict[str, Any]], None]:
    def change(image: dict[str, Any]) -> None:
        del image[section][key]

    return change


def _two_resting_flags(image: dict[str, Any]) -> None:
    level = image["book"]["bids"][0][4]
    level[1][0], level[1][12] = level[0][0], True  # another entry as the first's order


def _other_resting_id(image: dict[str, Any]) -> None:
    image["book"]["orders"][0] = 999_999


def _duplicate_level(image: dict[str, Any]) -> None:
    image["book"]["bids"].append(image["book"]["bids"][0])


def _another_run(image: dict[str, Any], seconds_later: int, key: str) -> None:
    runs = image["market"]["seen_requests"]
    runs.append([runs[-1][0] + seconds_later, [key]])


MALFORMED: dict[str, Callable[[dict[str, Any]], None]] = {
    "clock is text": _set("market.clock", "soon"),
    "book_changed is a number": _set("market.book_changed", 1),
    "report_sequence is missing": _delete("market", "report_sequence"),
    "book is missing": lambda image: image.pop("book"),
    "through is text": _set("through", "9"),
    "through is true": _set("through", True),
    "a status that is not one": _set("book.status", "paused"),
    "sequence is a float": _set("book.sequence", 1.5),
    "best has one side": _set("book.best", [0]),
    "next_expiry is text": _set("book.next_expiry", "never"),
    "a level price is text": _set("book.bids.0.0", "499000"),
    "a level is short": _set("book.asks.0", [BID, 100]),
    "an order quantity is text": lambda image: _first_entry(image).__setitem__(2, "100"),
    "post_only is a number": lambda image: _first_entry(image).__setitem__(6, 0),
    "an unknown time in force": lambda image: _first_entry(image).__setitem__(4, "GTX"),
    "an order entry is short": lambda image: _first_entry(image).pop(),
    "an order's member is a number": lambda image: _first_entry(image).__setitem__(1, 7),
    "an order's resting flag is missing a value": lambda image: _first_entry(image).__setitem__(
        12, None
    ),
    "two entries rest under one id": _two_resting_flags,
    "a resting id no entry has": _other_resting_id,
    "two levels at one price": _duplicate_level,
    "a live key is a number": _set("market.live.0.0", 3),
    "an info side that is not one": _set("market.info.0.3", "up"),
    "used_client_ids are flat": _set("market.used_client_ids", ["alpha", "a1"]),
    "a client order id's member is a name": _set("market.used_client_ids.0.0", "alpha"),
    "a client order id's member is past the members": _set("market.used_client_ids.0.0", 99),
    "a client order id's member is negative": _set("market.used_client_ids.0.0", -1),
    "client_id_members is missing": _delete("market", "client_id_members"),
    "a client_id_member is a number": _set("market.client_id_members.0", 4),
    "a seen request run is a number": _set("market.seen_requests.0", 5),
    "a seen request is a number": _set("market.seen_requests.0.1.0", 5),
    "a seen request's second is text": _set("market.seen_requests.0.0", "1800000000"),
    "seen_requests are a text": _set("market.seen_requests", "alpha/q1"),
    "used client ids are a map": _set("market.used_client_ids.0.1", {"a1": True}),
    "client_ids_day is missing": _delete("market", "client_ids_day"),
    "client_ids_day is text": _set("market.client_ids_day", "today"),
    "a client order id twice": lambda image: image["market"]["used_client_ids"].append(
        image["market"]["used_client_ids"][0]
    ),
    "a request id twice": lambda image: _another_run(image, 1, "alpha/q1"),
    "request ids out of order": lambda image: _another_run(image, -1, "alpha/later"),
    "an empty run of request ids": _set("market.seen_requests.0.1", []),
    "an expiry is a float": _set("book.expiries.0.0", 1.0),
}


@pytest.mark.parametrize("change", MALFORMED.values(), ids=MALFORMED.keys())
def test_a_malformed_image_is_refused(change: Callable[[dict[str, Any]], None]) -> None:
    image = _image()
    change(image)
    with pytest.raises(ImageError) as refused:
        decode_image(PRODUCT, pack(image))
    assert refused.value.code == "malformed"


@pytest.mark.parametrize("found", [4, 0, "1", "3", True, None, 1.0, 3.0])
def test_an_image_of_another_format_is_refused(found: Any) -> None:
    image = _image()
    image["format"] = found
    with pytest.raises(ImageError) as refused:
        decode_image(PRODUCT, pack(image))
    assert refused.value.code == "format"


def test_an_image_of_another_product_is_refused() -> None:
    body = encode_image(Market(PRODUCT), 3)
    with pytest.raises(ImageError) as refused:
        decode_image(make_product(symbol="DY-OX"), body)
    assert refused.value.code == "product"


@pytest.mark.parametrize(
    "body",
    [b"", b"\xc1", b"\x93\x01", b"garbage", pack([IMAGE_FORMAT, SYMBOL]), pack("image")],
    ids=["empty", "never-used byte", "short array", "text", "an array", "a string"],
)
def test_a_body_that_is_not_an_image_is_refused(body: bytes) -> None:
    with pytest.raises(ImageError) as refused:
        decode_image(PRODUCT, body)
    assert refused.value.code == "malformed"


def test_a_truncated_image_is_refused_wherever_it_is_cut() -> None:
    body = encode_image(busy_market(Session()), 1)
    for cut in range(0, len(body), max(1, len(body) // 200)):
        with pytest.raises(ImageError):
            decode_image(PRODUCT, body[:cut])


def test_image_error_is_a_value_error() -> None:
    assert issubclass(ImageError, ValueError)
    assert ImageError("format", "x").code == "format"


# ----------------------------------------------------------------------- the benchmark


def test_bench_image_runs_on_a_small_book(capsys: pytest.CaptureFixture[str]) -> None:
    thresholds = gc.get_threshold()
    try:
        assert bench_image.main(["--orders", "300"]) == 0
    finally:  # the benchmark freezes the heap and raises GC thresholds, as the engine does
        gc.unfreeze()
        gc.set_threshold(*thresholds)
    figures = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert figures["orders"] == 300
    assert set(figures) == {"orders", "image_bytes", "encode_s", "decode_s"}
    assert figures["image_bytes"] > 0
