"""Property: a Market restored from an image goes on exactly as the original.

A random session of input-log entries (new orders of every type and time in force, cancels,
replaces, mass cancels, ticks, status changes; duplicate client order ids and request ids,
far-off GTD expiries, a clock that sometimes steps back and sometimes leaps hours, across
trading days; half the time with windows of remembered ids small enough to fill and forget
by time and by count) runs through market A. At a random
cut, B is restored from A's image; the rest of the session then goes to both. Every message
after the cut -- reports, trades, public trades, and the book snapshots the service takes
after each input-log message -- must be the same envelope, byte for byte, and the final
images must be equal. This is what lets an engine take over from an image instead of
replaying the input log from its start. Some state never shows in a message (entries that
have left the book, stale expiries), so the two markets' objects are compared as well.

Profiles: REX_IMAGE_PROPERTY_PROFILE=image-ci (default: 300 examples) or image-thorough.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Sequence
from dataclasses import astuple
from typing import TypeVar

import msgpack
import pytest
from hypothesis import HealthCheck, Phase, given, note, settings
from hypothesis import strategies as st

from engine.image import ImageError, decode_image, encode_image
from engine.market import ClientIdWindow, Market, RequestWindow
from engine.outputs import outputs
from rex.bus import Envelope
from rex.environment import REX_IMAGE_PROPERTY_PROFILE
from rex.protocol import (
    CancelRequest,
    EngineInput,
    InputKind,
    MassCancelRequest,
    NewOrderRequest,
    ReplaceRequest,
    pack,
)
from rex.vocabulary import OrderType, SelfTradePrevention, Side, TimeInForce
from tests.engine.products import PRODUCT

# A failing session is slow to shrink (every run replays two markets), so: one bug at a
# time, and no explain phase (tracing it line by line takes minutes); the shrunk session
# and the first differing envelope already say what is wrong.
PHASES = [Phase.explicit, Phase.reuse, Phase.generate, Phase.target, Phase.shrink]
for name, examples in (("image-ci", 300), ("image-thorough", 3_000)):
    settings.register_profile(
        name,
        max_examples=examples,
        deadline=None,
        phases=PHASES,
        report_multiple_bugs=False,
        suppress_health_check=[HealthCheck.too_slow],
    )
IMAGE_SETTINGS = settings.get_profile(REX_IMAGE_PROPERTY_PROFILE.get())
pytestmark = pytest.mark.property

SYMBOL = PRODUCT.symbol
MS = 1_000_000  # ns
START = 1_800_000_000_000 * MS
FAR_OFF_MS = 10**14  # year ~5138: in ns, wider than msgpack's 64-bit integers

T = TypeVar("T")
Step = tuple[EngineInput, bool]  # an entry, and whether its input-log message ends there

MEMBERS = ["M1", "M2", "M3"]
HOUR = 3_600_000 * MS
# Now and then hours at once: trading days roll over and (with small windows) request ids
# are forgotten by time.
CLOCK_STEPS = [0, MS, MS // 2, 3 * MS, 40 * MS, -2 * MS, 0, MS, 7 * HOUR]
PRICES = [*range(960, 1041, 10), 1005, 1100]  # the last two are refused
PASSIVE = {  # levels that do not cross, mostly the first, so queues grow
    Side.BUY: [990, 990, 990, 980],
    Side.SELL: [1010, 1010, 1010, 1020],
}
SMALL = [2, 4, 6]
QUANTITIES = [*SMALL, *range(8, 21, 2), 3, 0]  # 3 and 0 are refused
TERMS = [
    *[(OrderType.LIMIT, TimeInForce.GTC)] * 4,
    *[(OrderType.LIMIT, TimeInForce.GTD)] * 3,
    (OrderType.LIMIT, TimeInForce.IOC),
    (OrderType.LIMIT, TimeInForce.FOK),
    (OrderType.MARKET, TimeInForce.IOC),
    (OrderType.MARKET, TimeInForce.GTC),
]
STATUSES = ["open", "open", "open", "halted", "closed", "paused"]  # paused is not a status
KINDS = [
    *["resting"] * 10,
    *["new_order"] * 5,
    *["cancel"] * 3,
    *["replace"] * 3,
    "mass_cancel",
    "tick",
    "status",
]

# Draws go through cached integer strategies (as in test_book_model.py): building a new
# strategy for every draw would cost more than running the markets, and slow shrinking.


@functools.cache
def _index(size: int) -> st.SearchStrategy[int]:
    return st.integers(0, size - 1)


def pick(draw: st.DrawFn, items: Sequence[T]) -> T:
    """One of the items; shrinks towards the first."""
    return items[draw(_index(len(items)))]


def sometimes(draw: st.DrawFn) -> bool:
    """True one time in eight."""
    return draw(_index(8)) == 7


@st.composite
def sessions(draw: st.DrawFn) -> list[Step]:
    """Input-log entries, the clock mostly going forward. A shadow market runs alongside, so
    that cancels and replaces mostly name a resting order (mass cancels, its member) and the
    book builds some depth."""
    shadow = Market(PRODUCT)
    now = START
    sent: list[tuple[str, str]] = []  # (member, client order id) of every request
    request_ids: list[tuple[str, str]] = []
    steps: list[Step] = []
    for n in range(1 + draw(_index(60))):
        now += pick(draw, CLOCK_STEPS)
        kind = pick(draw, KINDS)
        if kind == "tick":
            entry = EngineInput(InputKind.TICK, SYMBOL, now)
        elif kind == "status":
            entry = EngineInput(InputKind.STATUS, SYMBOL, now, status=pick(draw, STATUSES))
        else:
            member, request_id, orig, side = pick(draw, MEMBERS), f"r{n}", "c-unknown", Side.BUY
            targets = _targets(shadow) if kind in ("cancel", "replace", "mass_cancel") else []
            if targets and not sometimes(draw):
                member, orig, side = pick(draw, targets)
            if request_ids and sometimes(draw):  # the gateway forwarded one twice
                member, request_id = pick(draw, request_ids)
            else:
                request_ids.append((member, request_id))
            used = [cid for m, cid in sent if m == member]
            cid = pick(draw, used) if used and sometimes(draw) else f"c{n}"
            sent.append((member, cid))
            request = _request(draw, kind, cid, orig, side, now)
            entry = EngineInput(request.kind, SYMBOL, now, member, request_id, request)
        shadow.handle(entry)
        steps.append((entry, pick(draw, (True, False))))
    return steps


def _targets(shadow: Market) -> list[tuple[str, str, Side]]:
    """The resting orders' member, client order id and side; those in the middle of their
    queue five times, as an order leaving from there leaves a dead entry behind."""
    targets = []
    for key, order_id in shadow.live.items():
        order = shadow.book.order(order_id)
        if order is None or order.price is None:
            continue  # expired by a status entry, which Market does not report
        queue = shadow.book.queue(order.side, order.price)
        middle = 0 < queue.index(order_id) < len(queue) - 1
        targets += [(*key, order.side)] * (5 if middle else 1)
    return targets


def _request(
    draw: st.DrawFn, kind: str, cid: str, orig: str, side: Side, now: int
) -> NewOrderRequest | CancelRequest | ReplaceRequest | MassCancelRequest:
    if kind == "resting":  # an order on its own side of the book, now and then GTD
        side = pick(draw, list(Side))
        expire = _expiry(draw, now) if draw(_index(4)) == 3 else None
        return NewOrderRequest(
            cid,
            SYMBOL,
            side,
            pick(draw, SMALL),
            price=pick(draw, PASSIVE[side]),
            time_in_force=TimeInForce.GTC if expire is None else TimeInForce.GTD,
            expire_time=expire,
        )
    if kind == "new_order":
        order_type, tif = pick(draw, TERMS)
        return NewOrderRequest(
            cid,
            SYMBOL,
            pick(draw, list(Side)),
            pick(draw, QUANTITIES),
            order_type,
            None if order_type is OrderType.MARKET else pick(draw, PRICES),
            tif,
            _expiry(draw, now) if tif is TimeInForce.GTD else None,
            sometimes(draw),
            pick(draw, list(SelfTradePrevention)),
        )
    if kind == "mass_cancel":
        return MassCancelRequest(cid, SYMBOL)
    if kind == "cancel":
        return CancelRequest(cid, orig, SYMBOL)
    # Mostly one that sends the order to the back of a queue, leaving a dead entry behind.
    how = pick(draw, ["move", "raise", "any"])
    if how == "move":  # along its own side of the book (or nothing to replace)
        price, quantity = pick(draw, sorted(set(PASSIVE[side]))), None
    elif how == "raise":
        price, quantity = None, pick(draw, [8, 10, 12])
    else:
        price, quantity = pick(draw, [None, *PRICES]), pick(draw, [None, *QUANTITIES])
    return ReplaceRequest(cid, orig, SYMBOL, price, quantity)


def _expiry(draw: st.DrawFn, now: int) -> int:
    """A GTD expiry in ms: soon, now and then in the past, or centuries ahead."""
    return FAR_OFF_MS if sometimes(draw) else now // MS - 1 + draw(_index(60))


def step(market: Market, entry: EngineInput, message_ends: bool) -> list[Envelope]:
    """What the service publishes for one entry: its messages, and after the last entry of
    an input-log message, the book snapshot if one is due (engine/outputs.py)."""
    results = market.handle(entry)
    return outputs(results, market.snapshot() if message_ends else None).envelopes


# After the session, what is left is drained through messages: GTD orders expire (in
# heap order), then each member's mass cancel reports its orders (in acceptance order).
END = START + 1_000_000 * MS  # long after any session's GTD orders
DRAIN: list[Step] = [
    (EngineInput(InputKind.TICK, SYMBOL, END), True),
    *(
        (EngineInput(InputKind.MASS_CANCEL, SYMBOL, END, member, f"drain-{member}", request), True)
        for member in MEMBERS
        for request in [MassCancelRequest(f"drain-{member}", SYMBOL)]
    ),
]


def everything(market: Market) -> tuple[object, ...]:
    """All of a market's state, read from the objects (not through an image), so that a
    part the image leaves out shows even where no message depends on it: the entries that
    have left the book, stale expiries, the resting orders' acceptance order."""
    book = market.book.export_state()
    levels = [
        (
            (level.price, level.quantity, level.order_count, level.dead),
            [(*astuple(o), book.orders.get(o.order_id) is o) for o in level],
        )
        for level in book.bids + book.asks
    ]
    return (
        market.clock,
        market.next_order_id,
        market.report_sequence,
        list(market.live.items()),
        [(order_id, astuple(info)) for order_id, info in market.info.items()],
        market.used_client_ids.day,
        list(market.used_client_ids.keys),
        market.seen_requests.by_second(),
        market.book_changed,
        market.last_snapshot_at,
        book.status,
        book.sequence,
        book.trade_sequence,
        levels,
        (book.best_bid, book.best_ask),
        list(book.orders),
        list(book.expiries),
        book.next_expiry,
    )


def small_windows(market: Market) -> Market:
    """The market with windows small enough for a short session to fill them: request ids
    forgotten after 8 hours or 6 newer ones (keeping 2 whatever the time), client order ids
    past 5 a day. The bounds are the code's constants, not the image's, so a restored
    market gets them the same way."""
    requests, client_ids = market.seen_requests, market.used_client_ids
    market.seen_requests = RequestWindow(8 * HOUR, 6, 2)
    market.seen_requests.restore(requests.by_second())
    market.used_client_ids = ClientIdWindow(client_ids.day, 5)
    market.used_client_ids.restore(client_ids.day, list(client_ids.keys))
    return market


@IMAGE_SETTINGS
@given(
    steps=sessions(),
    data=st.data(),
    interval=st.sampled_from([0, 2 * MS]),
    small=st.booleans(),
)
def test_a_restored_market_goes_on_exactly_as_the_original(
    steps: list[Step], data: st.DataObject, interval: int, small: bool
) -> None:
    cut = data.draw(st.integers(0, len(steps)), label="cut")
    original = Market(PRODUCT, snapshot_interval_ns=interval)
    if small:
        small_windows(original)
    for entry, message_ends in steps[:cut]:
        step(original, entry, message_ends)
    image = encode_image(original, cut)
    restored, through = decode_image(PRODUCT, image, snapshot_interval_ns=interval)
    if small:
        small_windows(restored)
    assert through == cut
    assert encode_image(restored, cut) == image
    assert everything(restored) == everything(original)
    for n, (entry, message_ends) in enumerate(steps[cut:], start=cut):
        note(f"entry {n}: {entry}")
        assert step(restored, entry, message_ends) == step(original, entry, message_ends)
    assert encode_image(restored, len(steps)) == encode_image(original, len(steps))
    assert everything(restored) == everything(original)
    for entry, message_ends in DRAIN:
        assert step(restored, entry, message_ends) == step(original, entry, message_ends)
    assert encode_image(restored, len(steps)) == encode_image(original, len(steps))


# ----------------------------------------------------------------------- malformed images

LEAVES: st.SearchStrategy[object] = st.sampled_from(
    [None, True, 0, -1, 1 << 62, "", "x", 1.5, b"\x00", [], {}, [1]]
)


def _paths(value: object, path: tuple[object, ...] = ()) -> list[tuple[object, ...]]:
    """Every place in an unpacked image, as a path of keys and indexes."""
    found = [path]
    if isinstance(value, dict):
        for key, item in value.items():
            found += _paths(item, (*path, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found += _paths(item, (*path, index))
    return found


@IMAGE_SETTINGS
@given(steps=sessions(), data=st.data())
def test_a_damaged_image_raises_image_error_and_nothing_else(
    steps: list[Step], data: st.DataObject
) -> None:
    market = Market(PRODUCT)
    for entry, message_ends in steps:
        step(market, entry, message_ends)
    image = msgpack.unpackb(encode_image(market, 7), raw=False)
    path = data.draw(st.sampled_from(_paths(image)[1:]), label="path")
    parent = image
    for key in path[:-1]:
        parent = parent[key]
    if data.draw(st.booleans(), label="delete") and isinstance(parent, dict):
        del parent[path[-1]]
    else:
        parent[path[-1]] = data.draw(LEAVES, label="value")
    body = pack(image)
    cut = data.draw(st.integers(0, len(body)), label="truncate at")
    for damaged in (body, body[:cut]):
        with contextlib.suppress(ImageError):
            decode_image(PRODUCT, damaged)
