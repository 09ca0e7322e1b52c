"""What a Market remembers of past requests is bounded, and forgotten by the input alone.

Request ids (the gateway's forwarded message_id) for a day of input time, at most the
product's last 100,000, never fewer than its last 10,000; client order ids for their trading
day (Beijing time) and as long as their order rests. Forgetting depends on the entries'
times and order only, so an image and the rest of the log give what the whole log gives.
"""

from __future__ import annotations

import sys
from pathlib import Path

import msgpack
import pytest

from engine.image import IMAGE_FORMAT, decode_image, encode_image
from engine.market import (
    CLIENT_IDS_MAX,
    NS_PER_MS,
    NS_PER_S,
    REQUEST_HORIZON_NS,
    REQUEST_IDS_KEPT,
    REQUEST_IDS_MAX,
    ClientIdWindow,
    Market,
    RequestWindow,
    trading_day,
)
from engine.outputs import outputs
from rex.bus import Envelope
from rex.exchange_time import parse_time_ns
from rex.protocol import (
    CancelRequest,
    EngineInput,
    ExecutionReport,
    InputKind,
    NewOrderRequest,
    ReplaceRequest,
    Request,
)
from rex.vocabulary import Reason, Side, TimeInForce
from tests.engine.helpers import ASK, BID, PRODUCT, SYMBOL, T0

HOUR = 3_600 * NS_PER_S
DAY = 24 * HOUR
# T0 is 2027-01-15 16:00 in Beijing: the trading day ends 8 hours later.
MIDNIGHT = parse_time_ns("2027-01-16T00:00")
FORMAT_1 = Path(__file__).with_name("image_format_1.msgpack")  # written by the engine before


def entry(member: str, request_id: str, request: Request, at: int) -> EngineInput:
    return EngineInput(request.kind, SYMBOL, at, member, request_id, request)


def new(member: str, cid: str, at: int, *, price: int = BID) -> EngineInput:
    """A GTC limit buy; at BID on an empty book it rests."""
    request = NewOrderRequest(cid, SYMBOL, Side.BUY, 100, price=price)
    return entry(member, f"r-{cid}-{at}", request, at)


def ioc(member: str, cid: str, at: int, request_id: str | None = None) -> EngineInput:
    """A buy that finds nothing to trade with and is cancelled at once: no order rests."""
    request = NewOrderRequest(cid, SYMBOL, Side.BUY, 100, price=BID, time_in_force=TimeInForce.IOC)
    return entry(member, request_id or f"r-{cid}", request, at)


def tick(at: int) -> EngineInput:
    return EngineInput(InputKind.TICK, SYMBOL, at)


def statuses(market: Market, item: EngineInput) -> list[tuple[str, Reason | None]]:
    """(status, reason) of each report of the entry."""
    return [(r.status, r.reason) for r in market.handle(item) if isinstance(r, ExecutionReport)]


REJECTED_DUPLICATE = [("rejected", Reason.DUPLICATE_CLIENT_ORDER_ID)]


# ----------------------------------------------------------------------- the bounds


def test_the_bounds_are_a_day_100000_ids_and_never_fewer_than_10000() -> None:
    assert REQUEST_HORIZON_NS == DAY
    assert (REQUEST_IDS_MAX, REQUEST_IDS_KEPT, CLIENT_IDS_MAX) == (100_000, 10_000, 1_000_000)
    # The floor is what makes dedupe safe: the gateway re-forwards only what it held unacked,
    # at most its prefetch (2,000), so a copy comes within 2 x 2,000 new ids.
    assert REQUEST_IDS_KEPT >= 2 * 2_000


def test_the_trading_day_turns_at_midnight_in_beijing() -> None:
    assert trading_day(MIDNIGHT - 1) + 1 == trading_day(MIDNIGHT)
    assert trading_day(T0) == trading_day(MIDNIGHT - 1)
    assert MIDNIGHT - T0 == 8 * HOUR  # 16:00 UTC


# ----------------------------------------------------------------------- request ids


def test_a_request_forwarded_again_within_the_day_counts_once() -> None:
    market = Market(PRODUCT)
    first = ioc("alpha", "a1", T0)
    assert market.handle(first)
    again = EngineInput(
        first.kind, SYMBOL, T0 + DAY - NS_PER_S, "alpha", first.request_id, first.request
    )
    assert market.handle(again) == []


def test_request_ids_are_forgotten_a_day_of_input_time_later_down_to_the_last_10000() -> None:
    market = Market(PRODUCT)
    extra = 25
    for n in range(REQUEST_IDS_KEPT + extra):
        market.handle(ioc("alpha", f"c{n}", T0 + n * NS_PER_MS))
    assert len(market.seen_requests) == REQUEST_IDS_KEPT + extra
    market.handle(tick(T0 + DAY - NS_PER_S))  # not yet a day
    assert len(market.seen_requests) == REQUEST_IDS_KEPT + extra
    market.handle(tick(T0 + DAY + 2 * NS_PER_S))
    assert len(market.seen_requests) == REQUEST_IDS_KEPT
    assert "alpha/r-c0" not in market.seen_requests
    assert f"alpha/r-c{extra}" in market.seen_requests


def test_time_alone_never_forgets_the_last_10000_ids_however_far_the_clock_jumps() -> None:
    """The gateway down for a week: its first entry back carries a week later's time, and a
    request it had forwarded just before going down comes again."""
    market = Market(PRODUCT)
    for n in range(REQUEST_IDS_KEPT):
        market.handle(ioc("alpha", f"c{n}", T0 + n * NS_PER_MS))
    week_later = T0 + 7 * DAY
    market.handle(tick(week_later))
    assert len(market.seen_requests) == REQUEST_IDS_KEPT
    copy = ioc("alpha", "c0", week_later + 1, request_id="r-c0")
    assert market.handle(copy) == []


def test_past_100000_ids_the_oldest_are_forgotten_and_the_size_stays() -> None:
    window = RequestWindow()
    for n in range(2 * REQUEST_IDS_MAX):
        assert window.add(f"alpha/{n}", T0 + n * 1_000)
        assert len(window) == min(n + 1, REQUEST_IDS_MAX)
    assert "alpha/99999" not in window
    assert "alpha/100000" in window
    assert sum(count for _, count in window.runs) == REQUEST_IDS_MAX


def test_a_late_copy_after_the_window_is_a_new_request_and_its_id_is_refused_that_day() -> None:
    """Past the window a copy is taken for a new request; its client order id, used that
    day, gets it rejected as duplicate_client_order_id, so nothing is done twice."""
    market = Market(PRODUCT, seen_requests=RequestWindow(max_ids=3, min_ids=1))
    first = ioc("alpha", "a1", T0)
    market.handle(first)
    for n in range(3):
        market.handle(ioc("alpha", f"other{n}", T0 + (n + 1) * NS_PER_MS))
    assert "alpha/r-a1" not in market.seen_requests
    copy = EngineInput(
        first.kind, SYMBOL, T0 + 10 * NS_PER_MS, "alpha", first.request_id, first.request
    )
    assert statuses(market, copy) == REJECTED_DUPLICATE


# ----------------------------------------------------------------------- client order ids


def test_a_client_order_id_is_refused_again_the_same_trading_day() -> None:
    market = Market(PRODUCT)
    market.handle(ioc("alpha", "a1", T0))  # ended at once: nothing rests
    assert statuses(market, ioc("alpha", "a1", MIDNIGHT - 1, "again")) == REJECTED_DUPLICATE


def test_the_next_trading_day_an_id_whose_order_no_longer_rests_may_be_used_again() -> None:
    market = Market(PRODUCT)
    market.handle(ioc("alpha", "a1", T0))
    market.handle(new("alpha", "a2", T0 + 1))
    market.handle(entry("alpha", "x", CancelRequest("a2x", "a2", SYMBOL), T0 + 2))
    assert statuses(market, new("alpha", "a1", MIDNIGHT)) == [("new", None)]
    assert statuses(market, new("alpha", "a2", MIDNIGHT + 1)) == [("new", None)]
    assert statuses(market, new("alpha", "a2x", MIDNIGHT + 2)) == [("new", None)]
    assert statuses(market, new("alpha", "a2x", MIDNIGHT + 3)) == REJECTED_DUPLICATE


def test_a_resting_orders_id_stays_reserved_on_later_days_and_still_names_it() -> None:
    market = Market(PRODUCT)
    market.handle(new("alpha", "a1", T0))  # GTC: rests for days
    later = MIDNIGHT + 3 * DAY
    market.handle(tick(later))
    assert len(market.used_client_ids) == 0
    assert statuses(market, new("alpha", "a1", later + 1)) == REJECTED_DUPLICATE
    assert statuses(market, ioc("alpha", "a1", later + 2, "again")) == REJECTED_DUPLICATE
    cancel = entry("alpha", "x", CancelRequest("a1x", "a1", SYMBOL), later + 3)
    assert statuses(market, cancel) == [("cancelled", Reason.REQUESTED)]
    assert statuses(market, new("alpha", "a1", later + 4)) == [("new", None)]  # it left


def test_a_resting_orders_id_is_not_released_by_the_days_cap() -> None:
    market = Market(PRODUCT, used_client_ids=ClientIdWindow(max_ids=3))
    market.handle(new("alpha", "a1", T0))
    for n in range(5):
        market.handle(ioc("alpha", f"c{n}", T0 + n + 1))
    assert ("alpha", "a1") not in market.used_client_ids  # forgotten by the day's window
    assert ("alpha", "c0") not in market.used_client_ids
    assert statuses(market, new("alpha", "a1", T0 + 10)) == REJECTED_DUPLICATE
    assert statuses(market, ioc("alpha", "c0", T0 + 11, "again")) == [
        ("cancelled", Reason.IMMEDIATE_OR_CANCEL)
    ]


def test_a_replaced_orders_old_id_is_released_the_next_day_and_its_new_one_kept() -> None:
    market = Market(PRODUCT)
    market.handle(new("alpha", "a1", T0))
    replace = EngineInput(
        InputKind.REPLACE,
        SYMBOL,
        T0 + 1,
        "alpha",
        "rep",
        ReplaceRequest("a1r", "a1", SYMBOL, None, 200),
    )
    assert statuses(market, replace) == [("replaced", None)]
    assert statuses(market, new("alpha", "a1r", MIDNIGHT)) == REJECTED_DUPLICATE
    assert statuses(market, new("alpha", "a1", MIDNIGHT + 1)) == [("new", None)]


# ----------------------------------------------------------------------- images


def run(market: Market, items: list[EngineInput]) -> list[Envelope]:
    out: list[Envelope] = []
    for item in items:
        out += outputs(market.handle(item), market.snapshot()).envelopes
    return out


def windowed(market: Market) -> Market:
    """Small windows, so a short session fills and forgets (the bounds are the code's, not
    the image's: a restored market gets them the same way)."""
    requests, client_ids = market.seen_requests, market.used_client_ids
    market.seen_requests = RequestWindow(2 * HOUR, 5, 2)
    market.seen_requests.restore(requests.by_second())
    market.used_client_ids = ClientIdWindow(client_ids.day, 4)
    market.used_client_ids.restore(client_ids.day, list(client_ids.keys))
    return market


def days_of_requests() -> tuple[list[EngineInput], list[int]]:
    """Three trading days of orders, cancels, copies forwarded again soon and too late, ids
    used again the same day and the next, the clock leaping hours now and then (and, after
    a tick an hour ahead, stepping back). Also the indexes of the copies."""
    items: list[EngineInput] = []
    copies: list[int] = []
    at = T0
    for n in range(120):
        at += (n % 7) * 1_300 * NS_PER_S if n % 5 else 1_000
        member = ("alpha", "beta")[n % 2]
        requests = [item for item in items if item.request_id is not None]
        if n % 11 == 3 and requests:
            original = requests[max(-len(requests), -1 - n % 4)]
            copies.append(len(items))
            items.append(
                EngineInput(
                    original.kind, SYMBOL, at, original.member, original.request_id,
                    original.request,
                )
            )  # fmt: skip
        elif n % 13 == 4:
            items.append(ioc(member, f"c{n - 4}", at, f"reuse{n}"))
        elif n % 3 == 0:
            items.append(new(member, f"c{n}", at, price=ASK if n % 2 else BID))
        elif n % 3 == 1:
            items.append(entry(member, f"x{n}", CancelRequest(f"x{n}", f"c{n - 1}", SYMBOL), at))
        else:
            items.append(ioc(member, f"c{n}", at))
        if n % 17 == 0:
            items.append(tick(at + HOUR))
    return items, copies


def test_a_replay_from_any_image_gives_what_the_whole_log_gives_while_ids_are_forgotten() -> None:
    items, copies = days_of_requests()
    whole = windowed(Market(PRODUCT))
    expected = [run(whole, [item]) for item in items]
    assert trading_day(items[-1].received) - trading_day(items[0].received) >= 2
    # Some copies came within the window (dropped), some after it (answered as new requests).
    assert {bool(expected[index]) for index in copies} == {True, False}
    for cut in range(len(items) + 1):
        original = windowed(Market(PRODUCT))
        run(original, items[:cut])
        restored, through = decode_image(PRODUCT, encode_image(original, cut))
        windowed(restored)
        assert through == cut
        assert [run(restored, [item]) for item in items[cut:]] == expected[cut:], cut
        assert encode_image(restored, 0) == encode_image(whole, 0)


def test_the_image_keeps_the_ids_in_their_order_with_their_seconds_and_the_day() -> None:
    market = Market(PRODUCT)
    market.handle(ioc("beta", "b1", T0))
    market.handle(ioc("alpha", "a1", T0 + 1))
    market.handle(ioc("alpha", "a0", T0 + 2 * NS_PER_S))
    image = msgpack.unpackb(encode_image(market, 3), raw=False)
    part = image["market"]
    assert image["format"] == IMAGE_FORMAT == 3
    assert part["client_ids_day"] == trading_day(T0)
    assert part["client_id_members"] == ["beta", "alpha"]
    assert part["used_client_ids"] == [[0, ["b1"]], [1, ["a1", "a0"]]]
    second = T0 // NS_PER_S
    assert part["seen_requests"] == [
        [second, ["beta/r-b1", "alpha/r-a1"]],
        [second + 2, ["alpha/r-a0"]],
    ]
    restored, _ = decode_image(PRODUCT, encode_image(market, 3))
    assert restored.seen_requests == market.seen_requests
    assert restored.used_client_ids == market.used_client_ids


def test_an_image_of_format_1_is_read_its_ids_kept_until_the_day_ends() -> None:
    """tests/engine/image_format_1.msgpack was written by the engine before the windows
    (sets, sorted, no times): alpha a1 rests, a2 was cancelled (by a2x), beta's b1 traded
    and b2 rests; request ids alpha/q1..q3, beta/q4..q5, all at 16:00 in Beijing."""
    body = FORMAT_1.read_bytes()
    assert msgpack.unpackb(body, raw=False)["format"] == 1
    market, through = decode_image(PRODUCT, body)
    assert through == 4
    assert len(market.seen_requests) == 5
    assert market.seen_requests.by_second() == [
        (market.clock // NS_PER_S, ["alpha/q1", "alpha/q2", "alpha/q3", "beta/q4", "beta/q5"])
    ]
    assert market.used_client_ids.day == trading_day(market.clock)
    copy = EngineInput(
        InputKind.NEW_ORDER, SYMBOL, market.clock + 1, "beta", "q4",
        NewOrderRequest("b1", SYMBOL, Side.SELL, 100, price=BID),
    )  # fmt: skip
    assert market.handle(copy) == []  # still remembered
    assert statuses(market, ioc("alpha", "a2", MIDNIGHT - 1, "late")) == REJECTED_DUPLICATE
    assert statuses(market, ioc("alpha", "a2", MIDNIGHT, "next-day")) == [
        ("cancelled", Reason.IMMEDIATE_OR_CANCEL)
    ]
    assert statuses(market, new("alpha", "a1", MIDNIGHT + 1)) == REJECTED_DUPLICATE  # rests
    again = msgpack.unpackb(encode_image(market, 5), raw=False)
    assert again["format"] == 3


# ----------------------------------------------------------------------- staying flat


def held_bytes(market: Market) -> int:
    """What the two windows take in memory: their containers and the ids in them."""
    requests, client_ids = market.seen_requests, market.used_client_ids
    total = sum(
        sys.getsizeof(part)
        for part in (requests.keys, requests.runs, requests._set, client_ids.keys, client_ids._set)
    )
    total += sum(sys.getsizeof(key) for key in requests.keys)
    total += sum(sys.getsizeof(run) + sys.getsizeof(run[0]) for run in requests.runs)
    return total + sum(sys.getsizeof(key) + sys.getsizeof(key[1]) for key in client_ids.keys)


@pytest.mark.slow  # about 10 s: 200,000 requests through the market
def test_memory_and_image_stay_flat_over_200000_distinct_requests() -> None:
    """40,000 requests a trading day for five days: from the first day on, the ids held
    and the image stay where they were, and the memory they take within what a hash table's
    growth steps give (before, all five days' ids were kept: five times the first day's).
    Ids of one width, so that only their number could grow."""
    market = Market(PRODUCT)
    per_day = 40_000
    sizes: list[tuple[int, int, int, int]] = []
    for n in range(5 * per_day):
        day, k = divmod(n, per_day)
        at = MIDNIGHT + day * DAY + k * (20 * HOUR // per_day)
        market.handle(ioc(f"m{n % 7}", f"c{n:06d}", at))
        if k == per_day - 1:
            image = encode_image(market, n)
            held = len(market.seen_requests), len(market.used_client_ids)
            sizes.append((*held, len(image), held_bytes(market)))
    for requests, client_ids, image_bytes, memory in sizes:
        assert requests <= per_day + REQUEST_IDS_KEPT and client_ids <= per_day
        assert image_bytes <= sizes[0][2] * 1.01
        assert memory <= sizes[0][3] * 1.25


@pytest.mark.slow  # about 5 s: 100,000 requests through the market
def test_at_the_real_bounds_a_restored_market_forgets_what_the_original_forgets() -> None:
    """Past 100,000 requests within an hour: the image taken there, restored, goes on as the
    original -- the oldest remembered id's copy is dropped by both, the copy of the one just
    forgotten is answered by both as a new request (its client order id used today)."""
    original = Market(PRODUCT)
    total = REQUEST_IDS_MAX + 500
    for n in range(total):
        original.handle(ioc(f"m{n % 7}", f"c{n}", T0 + n * 10_000_000))
    oldest = total - REQUEST_IDS_MAX  # c0 .. c499 are forgotten
    assert f"m{oldest % 7}/r-c{oldest}" in original.seen_requests
    assert f"m{(oldest - 1) % 7}/r-c{oldest - 1}" not in original.seen_requests
    restored, _ = decode_image(PRODUCT, encode_image(original, total))
    at = T0 + total * 10_000_000
    rest = [
        ioc(f"m{oldest % 7}", f"c{oldest}", at),
        ioc(f"m{(oldest - 1) % 7}", f"c{oldest - 1}", at + 1),
        *(ioc("late", f"l{n}", at + 2 + n) for n in range(1_000)),
        tick(at + DAY + 10 * NS_PER_S),
    ]
    published = [run(original, [item]) for item in rest]
    assert [run(restored, [item]) for item in rest] == published
    assert encode_image(restored, 1) == encode_image(original, 1)
    assert published[0] == []  # still remembered: dropped
    assert b"duplicate_client_order_id" in published[1][0].body  # forgotten: a new request
    assert len(original.seen_requests) == REQUEST_IDS_KEPT  # a day later: down to the floor
