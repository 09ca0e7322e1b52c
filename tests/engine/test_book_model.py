"""Property tests: the OrderBook against the slow reference model (engine/reference_book.py).

Random command sequences (orders of every type, time in force and self-trade mode, cancels,
replaces, mass cancels, halts, clock moves; some of them invalid) go through both the book and
the model, and after every command we check that

* the records are the same, in the same order, sequence numbers included: acceptances,
  rejects and their reasons, trades (price, quantity, both sides, cumulative
  filled/remaining), cancels and expiries with their reasons and quantities, replaces, and
  the level changes after each;
* the resting book is the same: levels with totals on each side, the queue at every price in
  time priority, each order's quantity, remaining and filled, acceptance order;

and, on the book alone, that it is never crossed, event and trade sequence numbers are
gapless from 1, every order's quantity is conserved (filled + remaining + cancelled, as told
by the events), a DepthMirror fed the events shows the book's own depth, and replaying the
commands through a fresh book gives byte-identical encoded events.

Profiles: REX_BOOK_PROPERTY_PROFILE=book-ci (default: 500 examples) or book-thorough.
"""

from __future__ import annotations

import copy
import dataclasses
import functools
from collections import deque
from collections.abc import Sequence
from enum import Enum
from typing import Any, TypeVar
from unittest import mock

import pytest
from hypothesis import HealthCheck, given, note, settings
from hypothesis import strategies as st

import engine.book
from engine.book import Level, OrderBook
from engine.events import (
    OrderAccepted,
    OrderCancelled,
    OrderExpired,
    OrderRejected,
    OrderReplaced,
    Record,
    Trade,
    encode_records,
    typed,
)
from engine.marketdata import DepthMirror
from engine.orders import (
    AdvanceTime,
    CancelOrder,
    Command,
    MassCancel,
    Order,
    ReplaceOrder,
    SetPriceBand,
    SetTradingStatus,
)
from engine.reference_book import ReferenceBook, RefOrder
from rex.config import TradingStatus
from rex.environment import REX_BOOK_PROPERTY_PROFILE
from rex.vocabulary import OrderType, Reason, SelfTradePrevention, Side, TimeInForce
from tests.engine.products import PRODUCT

T = TypeVar("T")
BUY, SELL = Side.BUY, Side.SELL
LIMIT, MARKET = OrderType.LIMIT, OrderType.MARKET
GTC, IOC, FOK, GTD = TimeInForce.GTC, TimeInForce.IOC, TimeInForce.FOK, TimeInForce.GTD
NEWEST = SelfTradePrevention.CANCEL_NEWEST
OLDEST = SelfTradePrevention.CANCEL_OLDEST
BOTH = SelfTradePrevention.CANCEL_BOTH

settings.register_profile(
    "book-ci",
    max_examples=500,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile(
    "book-thorough",
    max_examples=5_000,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
BOOK_SETTINGS = settings.get_profile(REX_BOOK_PROPERTY_PROFILE.get())

pytestmark = pytest.mark.property

DEPTH = 1_000  # more levels than any test book has
UNKNOWN_ID = 999_999
START = 1_000_000  # first timestamp, ns


def test_product_is_what_the_strategies_assume() -> None:
    assert (PRODUCT.band_low, PRODUCT.band_high) == (950, 1050)
    assert (PRODUCT.tick, PRODUCT.lot, PRODUCT.max_quantity) == (10, 2, 40)


# ---------------------------------------------------------------------- strategies

# Seven prices in the middle of the band, so orders cross a lot; the band edges; and prices
# the book must refuse (off tick, outside the band).
GOOD_PRICES = list(range(970, 1031, 10))
PASSIVE_BUYS = list(range(960, 1001, 10))
PASSIVE_SELLS = list(range(1000, 1041, 10))
EDGE_PRICES = [950, 1050]
BAD_PRICES = [1005, 975, 940, 1060, 0]
GOOD_QUANTITIES = list(range(2, 21, 2))
LARGE_QUANTITIES = list(range(4, 41, 4))
BAD_QUANTITIES = [0, -2, 3, 7, 42, 40]  # 40 is the maximum: valid, but an edge


# Drawing goes through a few cached integer strategies: building a new sampled_from for
# every draw would cost more than running the book and the model.


@functools.cache
def _index(size: int) -> st.SearchStrategy[int]:
    return st.integers(0, size - 1)


def pick(draw: st.DrawFn, items: Sequence[T]) -> T:
    """One of the items; shrinks towards the first."""
    return items[draw(_index(len(items)))]


def between(draw: st.DrawFn, low: int, high: int) -> int:
    """An integer in low..high; shrinks towards low."""
    return low + draw(_index(high - low + 1))


@functools.cache
def _table(weights: tuple[tuple[str, int], ...]) -> tuple[str, ...]:
    return tuple(name for name, weight in weights for _ in range(weight))


def weighted(draw: st.DrawFn, **weights: int) -> str:
    """One of the keyword names, each as often as its weight; shrinks towards the first."""
    return pick(draw, _table(tuple(weights.items())))


def draw_price(draw: st.DrawFn, side: Side | None = None, aggressive: bool = False) -> int:
    """Mostly a good price. For an order (side given), often one on its own side of 1000
    (buys low, sells high), so that the book builds up some depth between trades; or, if
    the order is meant to take (aggressive), one on the other side, to sweep the book."""
    kind = weighted(draw, leaning=14, good=5, edge=1, bad=2)
    if kind == "leaning" and side is not None:
        pool = PASSIVE_BUYS if (side is BUY) is not aggressive else PASSIVE_SELLS
    else:
        pool = {"good": GOOD_PRICES, "edge": EDGE_PRICES, "bad": BAD_PRICES}.get(kind, GOOD_PRICES)
    return pick(draw, pool)


def draw_quantity(draw: st.DrawFn, large: bool = False) -> int:
    """Mostly a good quantity; orders that will not rest (large=True) are often bigger, to
    sweep several orders and levels."""
    if weighted(draw, good=12, bad=1) == "good":
        return pick(draw, LARGE_QUANTITIES if large else GOOD_QUANTITIES)
    return pick(draw, BAD_QUANTITIES)


@st.composite
def command_sequences(draw: st.DrawFn, max_size: int = 60) -> list[Command]:
    """A session of commands with non-decreasing timestamps.

    Order ids are 1, 2, 3, ... in submission order (now and then an order reuses an earlier
    id). Cancels and replaces mostly name an order that is resting at that point, as its
    owner; the rest name any order submitted so far (often filled or cancelled by then), an
    id never used, or go in another member's name. To know what is resting, the strategy
    runs its own copy of the reference model alongside.
    """
    members = [f"M{i}" for i in range(1, between(draw, 2, 4) + 1)]
    size = between(draw, 1, max_size)
    shadow = ReferenceBook(PRODUCT)
    ts = START
    submitted: list[tuple[int, str]] = []  # (order_id, member) of every order sent
    next_id = 1
    commands: list[Command] = []

    def target() -> tuple[int, str, RefOrder | None]:
        how = weighted(draw, resting=12, submitted=1, unknown=1)
        chosen: RefOrder | None
        if how == "resting" and shadow.resting:
            chosen = pick(draw, shadow.resting)
            order_id, owner = chosen.order_id, chosen.member
        elif how != "unknown" and submitted:
            order_id, owner = pick(draw, submitted)
            chosen = shadow.order(order_id)
        else:
            return UNKNOWN_ID, pick(draw, members), None
        if weighted(draw, owner=10, anyone=1) == "anyone":
            owner = pick(draw, members)  # may still be the owner
        return order_id, owner, chosen

    for _ in range(size):
        ts += pick(draw, [0, 1, 0, 2, 5, 1, 10])
        kind = weighted(
            draw, order=20, cancel=2, replace=5, burst=2, mass=1, status=1, band=1, advance=2
        )
        command: Command
        if kind == "order":
            member = pick(draw, members)
            side = pick(draw, [BUY, SELL])
            order_type = MARKET if weighted(draw, limit=8, market=1) == "market" else LIMIT
            tif = TimeInForce(weighted(draw, GTC=8, IOC=2, FOK=2, GTD=4))
            if order_type is LIMIT:
                missing = weighted(draw, priced=40, none=1) == "none"
                taking = tif in (IOC, FOK) or weighted(draw, resting=4, taking=1) == "taking"
                price = None if missing else draw_price(draw, side, aggressive=taking)
            else:
                price = None if weighted(draw, none=12, priced=1) == "none" else draw_price(draw)
            expire_time: int | None = None
            if tif is GTD:
                if weighted(draw, future=12, odd=1) == "future":
                    expire_time = ts + between(draw, 1, 40)
                else:
                    expire_time = pick(draw, [None, ts, ts - 1])
            elif weighted(draw, none=30, some=1) == "some":
                expire_time = ts + 10
            if weighted(draw, fresh=30, reused=1) == "reused" and submitted:
                order_id = pick(draw, submitted)[0]
            else:
                order_id = next_id
                next_id += 1
            command = Order(
                order_id=order_id,
                member=member,
                side=side,
                quantity=draw_quantity(draw, large=order_type is MARKET or tif in (IOC, FOK)),
                price=price,
                order_type=order_type,
                time_in_force=tif,
                expire_time=expire_time,
                post_only=weighted(draw, no=6, yes=1) == "yes",
                stp=pick(draw, [NEWEST, NEWEST, OLDEST, BOTH]),
                client_order_id=f"c{len(submitted) + 1}",
                timestamp=ts,
            )
            submitted.append((order_id, member))
        elif kind == "cancel":
            order_id, member, _ = target()
            command = CancelOrder(order_id, member, timestamp=ts)
        elif kind == "replace":
            order_id, member, current = target()
            new_price: int | None = None
            new_quantity: int | None = None
            how = weighted(draw, price=3, quantity=3, both=2, neither=1)
            if how in ("price", "both"):
                if current is not None and current.price is not None and pick(draw, (False, True)):
                    step = pick(draw, [-10, 10, -20, 20, -40, 40])
                    new_price = current.price + step  # near where it is; may cross
                else:
                    new_price = draw_price(draw)
            if how in ("quantity", "both"):
                if current is not None and pick(draw, (False, True)):
                    lot = PRODUCT.lot
                    choices = [
                        current.quantity - lot,  # a cut: keeps priority if the price stays
                        current.quantity + lot,  # a raise: back of the queue
                        current.filled + lot,  # a cut to just above what has filled
                        current.filled,  # quantity_below_filled (or out of range if 0)
                    ]
                    if current.filled:
                        choices += [current.filled] * 2
                    new_quantity = pick(draw, choices)
                else:
                    new_quantity = draw_quantity(draw)
            new_client_id = None if pick(draw, (False, True)) else f"r{len(commands) + 1}"
            command = ReplaceOrder(order_id, member, new_price, new_quantity, ts, new_client_id)
        elif kind == "burst":  # a few plain resting orders at once, to give the book depth
            burst = []
            for _ in range(between(draw, 2, 6)):
                member = pick(draw, members)
                side = pick(draw, [BUY, SELL])
                price = pick(draw, PASSIVE_BUYS if side is BUY else PASSIVE_SELLS)
                quantity = pick(draw, GOOD_QUANTITIES)
                cid = f"c{len(submitted) + 1}"
                burst.append(
                    Order(next_id, member, side, quantity, price, client_order_id=cid, timestamp=ts)
                )
                submitted.append((next_id, member))
                next_id += 1
            for command in burst[:-1]:
                commands.append(command)
                shadow.apply(command)
            command = burst[-1]
        elif kind == "mass":
            command = MassCancel(pick(draw, members), timestamp=ts)
        elif kind == "band":
            # Narrower, wider or moved: resting orders end up outside it, and later orders
            # and replaces meet its limits.
            low = pick(draw, [900, 950, 980, 1000, 1020])
            high = pick(draw, [1000, 1020, 1050, 1100])
            command = SetPriceBand(low, max(high, low + 10), timestamp=ts)
        elif kind == "status":
            status = TradingStatus(weighted(draw, open=2, halted=2, closed=1))
            command = SetTradingStatus(status, timestamp=ts)
            if status is not TradingStatus.OPEN:
                # Not for long: reopen after a few commands, so that most of a session trades.
                commands.append(command)
                shadow.apply(command)
                for _ in range(between(draw, 0, 3)):
                    ts += pick(draw, [0, 1, 5])
                    probe = pick(draw, ["order", "cancel", "replace"])
                    order_id, member, _ = target()
                    if probe == "cancel":
                        command = CancelOrder(order_id, member, timestamp=ts)
                    elif probe == "replace":
                        command = ReplaceOrder(order_id, member, None, 2, timestamp=ts)
                    else:
                        command = Order(next_id, member, BUY, 2, 1000, timestamp=ts)
                        submitted.append((next_id, member))
                        next_id += 1
                    commands.append(command)
                    shadow.apply(command)
                command = SetTradingStatus(TradingStatus.OPEN, timestamp=ts)
        else:
            ts += between(draw, 0, 30)
            command = AdvanceTime(ts)
        commands.append(command)
        shadow.apply(command)
    return commands


@st.composite
def crowded_sequences(draw: st.DrawFn, size: int = 320) -> list[Command]:
    """Long sessions on one or two crowded prices: many small resting orders, most of them
    cancelled again from the middle of their queue, with a sweeping order now and then.
    Long queues full of cancelled entries are where a book that drops entries lazily (and
    compacts its queues) can go wrong; the short sessions above never get there."""
    members = [f"M{i}" for i in range(1, 7)]
    shadow = ReferenceBook(PRODUCT)
    ts = START
    next_id = 1
    commands: list[Command] = []
    building, phase_left = False, 0
    for _ in range(size):
        if not phase_left:  # alternate: fill the queues up, then thin them out
            building, phase_left = not building, between(draw, 30, 120)
        phase_left -= 1
        ts += pick(draw, [0, 1, 3])
        if building:
            kind = weighted(draw, rest=24, cancel=3, sweep=1, replace=2, gtd=2)
        else:
            kind = weighted(draw, cancel=12, rest=1, sweep=1, replace=2)
        command: Command
        if kind in ("rest", "gtd", "sweep") or not shadow.resting:
            side = SELL if weighted(draw, sell=5, buy=1) == "sell" else BUY
            price = pick(draw, [1000] * 6 + [1010] if side is SELL else [990, 980])
            tif, expire_time, quantity = GTC, None, pick(draw, [2, 4])
            if kind == "gtd":
                tif, expire_time = GTD, ts + between(draw, 1, 200)
            elif kind == "sweep":  # take from the other side, through one level or two
                side = BUY if side is SELL else SELL
                tif = pick(draw, [IOC, FOK, GTC])
                quantity = pick(draw, [6, 10, 20, 40])
                price = pick(draw, [1000, 1010] if side is BUY else [990, 980])
            command = Order(
                next_id,
                pick(draw, members),
                side,
                quantity,
                price,
                time_in_force=tif,
                expire_time=expire_time,
                stp=pick(draw, [NEWEST, OLDEST, BOTH]),
                client_order_id=f"c{next_id}",
                timestamp=ts,
            )
            next_id += 1
        else:
            victim = pick(draw, shadow.resting)
            if kind == "cancel":
                command = CancelOrder(victim.order_id, victim.member, timestamp=ts)
            else:
                assert victim.price is not None
                new_quantity = pick(draw, [victim.quantity - 2, victim.quantity + 2])
                new_price = victim.price if pick(draw, (False, True)) else victim.price + 10
                command = ReplaceOrder(
                    victim.order_id, victim.member, new_price, new_quantity, timestamp=ts
                )
        commands.append(command)
        shadow.apply(command)
    return commands


# ---------------------------------------------------------------------- checking


class Conservation:
    """Per order, from the events alone: quantity (after replaces), filled, and cancelled or
    expired. Checks the cumulative figures the events carry as it goes."""

    def __init__(self) -> None:
        self.quantity: dict[int, int] = {}
        self.filled: dict[int, int] = {}
        self.gone: dict[int, int] = {}  # cancelled or expired quantity

    def closed(self, order_id: int) -> bool:
        return self.filled[order_id] + self.gone[order_id] == self.quantity[order_id]

    def apply(self, records: Sequence[Record]) -> None:
        for record in records:
            event = typed(record)
            if isinstance(event, OrderAccepted):
                oid = event.order_id
                if oid in self.quantity:  # an id used again: the old order must be over
                    assert self.closed(oid), f"order {oid} accepted again while still open"
                self.quantity[oid] = event.quantity
                self.filled[oid] = 0
                self.gone[oid] = 0
            elif isinstance(event, Trade):
                for oid, filled, remaining in (
                    (event.taker_order_id, event.taker_filled, event.taker_remaining),
                    (event.maker_order_id, event.maker_filled, event.maker_remaining),
                ):
                    assert self.gone[oid] == 0, f"order {oid} traded after it ended"
                    self.filled[oid] += event.quantity
                    assert filled == self.filled[oid], event
                    assert filled + remaining == self.quantity[oid], event
            elif isinstance(event, OrderReplaced):
                oid = event.order_id
                assert self.gone[oid] == 0
                self.quantity[oid] = event.quantity
                assert event.filled == self.filled[oid], event
                assert event.filled + event.remaining == event.quantity, event
            elif isinstance(event, OrderCancelled | OrderExpired):
                oid = event.order_id
                assert self.gone[oid] == 0, f"order {oid} ended twice"
                assert event.cancelled_quantity > 0, event
                assert event.filled == self.filled[event.order_id], event
                self.gone[oid] = event.cancelled_quantity

    def check(self, book: OrderBook) -> None:
        for oid, quantity in self.quantity.items():
            order = book.order(oid)
            if order is None:
                assert self.closed(oid), f"order {oid} left the book with quantity unaccounted"
            else:
                assert self.gone[oid] == 0
                assert order.filled == self.filled[oid]
                assert order.quantity == quantity
                assert self.filled[oid] + order.remaining == quantity


def resting_view(book: OrderBook, model: ReferenceBook) -> tuple[list[object], list[object]]:
    """Both books' resting orders, in acceptance order, as comparable tuples."""

    def view(o: Order | RefOrder) -> tuple[object, ...]:
        return (
            o.order_id,
            o.member,
            o.client_order_id,
            o.side,
            o.price,
            o.quantity,
            o.remaining,
            o.filled,
            o.expire_time,
            o.post_only,
            o.stp,
        )

    return [view(o) for o in book.orders()], [view(o) for o in model.resting]


def check_same_state(book: OrderBook, model: ReferenceBook) -> None:
    depth = book.depth(DEPTH)
    for side, levels in ((BUY, depth.bids), (SELL, depth.asks)):
        assert levels == tuple(model.levels(side)), f"{side} levels differ"
        for level in levels:
            queue = model.queue(side, level.price)
            assert book.queue(side, level.price) == queue, f"{side} queue at {level.price}"
    in_book, in_model = resting_view(book, model)
    assert in_book == in_model, "resting orders differ"
    assert book.status is model.status
    assert book.band == model.band


def check_book_invariants(book: OrderBook) -> None:
    bid, ask = book.best_bid(), book.best_ask()
    if bid is not None and ask is not None:
        assert bid.price < ask.price, f"crossed book: {bid} / {ask}"
    depth = book.depth(DEPTH)
    assert depth.best_bid == bid and depth.best_ask == ask
    assert [lv.price for lv in depth.bids] == sorted((lv.price for lv in depth.bids), reverse=True)
    assert [lv.price for lv in depth.asks] == sorted(lv.price for lv in depth.asks)
    for level in (*depth.bids, *depth.asks):
        assert level.quantity > 0 and level.orders > 0
    top = book.depth(2)
    assert (top.bids, top.asks) == (depth.bids[:2], depth.asks[:2])


def run_book(commands: Sequence[Command]) -> list[list[Record]]:
    """Records per command from a fresh book; the commands themselves are not touched."""
    book = OrderBook(PRODUCT)
    return [book.apply(copy.copy(command)) for command in commands]


def check_against_model(commands: Sequence[Command]) -> list[list[Record]]:
    """The whole property for one command sequence. Returns the book's records."""
    book = OrderBook(PRODUCT)
    model = ReferenceBook(PRODUCT)
    mirror = DepthMirror(PRODUCT.symbol)
    conservation = Conservation()
    per_command: list[list[Record]] = []
    for step, command in enumerate(commands):
        records = book.apply(copy.copy(command))  # the book takes ownership of orders
        expected = model.apply(command)
        assert records == expected, f"records differ at command {step}: {command}"
        assert all(r[2] == command.timestamp for r in records), "event not stamped with its command"
        per_command.append(records)
        mirror.apply(records)
        assert mirror.depth(DEPTH) == book.depth(DEPTH), f"mirror differs at command {step}"
        conservation.apply(records)
        conservation.check(book)
        check_same_state(book, model)
        check_book_invariants(book)

    everything = [r for records in per_command for r in records]
    assert [r[1] for r in everything] == list(range(1, len(everything) + 1)), "sequence gap"
    assert book.sequence == len(everything)
    trade_numbers = [r[3] for r in everything if r[0] is Trade]
    assert trade_numbers == list(range(1, len(trade_numbers) + 1)), "trade sequence gap"
    assert book.trade_sequence == len(trade_numbers) == model.trade_sequence

    replayed = run_book(commands)
    assert encode_records([r for records in replayed for r in records]) == encode_records(
        everything
    ), "replay is not byte-identical"
    return per_command


def describe(command: Command) -> str:
    """A command as short, pasteable Python: only the fields that differ from the default."""
    parts = []
    for f in dataclasses.fields(command):
        value = getattr(command, f.name)
        if not f.init or (f.default is not dataclasses.MISSING and value == f.default):
            continue
        text = f"{type(value).__name__}.{value.name}" if isinstance(value, Enum) else repr(value)
        parts.append(f"{f.name}={text}")
    return f"{type(command).__name__}({', '.join(parts)})"


def note_commands(commands: Sequence[Command]) -> None:
    note("commands, one a line:\n" + "\n".join(f"{describe(c)}," for c in commands))


@BOOK_SETTINGS
@given(commands=command_sequences())
def test_book_agrees_with_reference_model(commands: list[Command]) -> None:
    note_commands(commands)
    check_against_model(commands)


@pytest.mark.parametrize("compact_after", [2, engine.book._DEAD_ENTRIES_BEFORE_COMPACTING])
@settings(BOOK_SETTINGS, max_examples=max(5, BOOK_SETTINGS.max_examples // 15))
@given(commands=crowded_sequences())
def test_book_agrees_with_reference_model_on_crowded_queues(
    compact_after: int, commands: list[Command]
) -> None:
    """Also with the book compacting its queues after a couple of dead entries rather than
    64, so that the sessions (which seldom pile up 64 in one queue) compact often."""
    note_commands(commands)
    with mock.patch.object(engine.book, "_DEAD_ENTRIES_BEFORE_COMPACTING", compact_after):
        check_against_model(commands)


# ---------------------------------------------------------------------- regressions
# Plain examples. Each goes through the whole property check (model, invariants, mirror,
# replay) and then asserts its point on the book's events directly.


def kinds(records: Sequence[Record]) -> list[tuple[object, ...]]:
    """A short account of the interesting events: (kind, order id, reason or quantity)."""
    out: list[tuple[object, ...]] = []
    for record in records:
        event = typed(record)
        if isinstance(event, OrderRejected | OrderCancelled):
            out.append((event.kind, event.order_id, event.reason))
        elif isinstance(event, Trade):
            out.append((event.kind, event.taker_order_id, event.maker_order_id, event.quantity))
        elif isinstance(event, OrderAccepted | OrderExpired | OrderReplaced):
            out.append((event.kind, event.order_id))
    return out


def limit(
    order_id: int, member: str, side: Side, quantity: int, price: int, ts: int = START, **kw: Any
) -> Order:
    return Order(order_id, member, side, quantity, price, timestamp=ts, **kw)


def market(
    order_id: int, member: str, side: Side, quantity: int, ts: int = START, **kw: Any
) -> Order:
    return Order(order_id, member, side, quantity, None, order_type=MARKET, timestamp=ts, **kw)


def test_market_fok_on_empty_side_is_killed_as_fill_or_kill() -> None:
    """Book bug found by the property test: a market FOK order with nothing on the other
    side was cancelled with reason immediate_or_cancel (the market-order branch came before
    the FOK one). A market FOK that finds some but not enough liquidity was always right."""
    records = check_against_model(
        [
            market(1, "A", BUY, 4, time_in_force=FOK),
            limit(2, "B", SELL, 2, 1000),
            market(3, "A", BUY, 4, time_in_force=FOK),
            market(4, "A", BUY, 4),  # market GTC: the remainder goes as IOC
        ]
    )
    assert kinds(records[0]) == [("accepted", 1), ("cancelled", 1, Reason.FILL_OR_KILL)]
    assert kinds(records[2]) == [("accepted", 3), ("cancelled", 3, Reason.FILL_OR_KILL)]
    assert kinds(records[3]) == [
        ("accepted", 4),
        ("trade", 4, 2, 2),
        ("cancelled", 4, Reason.IMMEDIATE_OR_CANCEL),
    ]


def test_fok_check_follows_self_trade_prevention() -> None:
    """With cancel_oldest a FOK order passes over its member's own orders (cancelling them
    as it goes); with cancel_newest its own order stops it, so it is killed whole."""
    setup = [
        limit(1, "A", SELL, 4, 1000),
        limit(2, "B", SELL, 4, 1000),
        limit(3, "B", SELL, 4, 1010),
    ]
    killed = check_against_model([*setup, limit(4, "A", BUY, 8, 1010, time_in_force=FOK)])
    assert kinds(killed[3]) == [("accepted", 4), ("cancelled", 4, Reason.FILL_OR_KILL)]
    filled = check_against_model(
        [*setup, limit(4, "A", BUY, 8, 1010, time_in_force=FOK, stp=OLDEST)]
    )
    assert kinds(filled[3]) == [
        ("accepted", 4),
        ("cancelled", 1, Reason.SELF_TRADE),
        ("trade", 4, 2, 4),
        ("trade", 4, 3, 4),
    ]


def test_replace_priority_crossing_and_new_client_id() -> None:
    """A cut keeps the queue place; a raise goes to the back; a new price that crosses
    trades at once as the aggressor, under its new client order id."""
    records = check_against_model(
        [
            limit(1, "A", SELL, 4, 1010),
            limit(2, "B", SELL, 4, 1010),
            limit(3, "C", BUY, 6, 990, client_order_id="c3"),
            ReplaceOrder(1, "A", quantity=2, timestamp=START + 1),  # keeps its place
            ReplaceOrder(2, "B", quantity=6, timestamp=START + 2),  # still behind 1 anyway
            ReplaceOrder(1, "A", quantity=4, timestamp=START + 3),  # now behind 2
            ReplaceOrder(3, "C", price=1010, timestamp=START + 4, client_order_id="x3"),
        ]
    )
    assert kinds(records[6]) == [("replaced", 3), ("trade", 3, 2, 6)]
    replaced, trade = (typed(r) for r in records[6] if r[0] in (OrderReplaced, Trade))
    assert isinstance(replaced, OrderReplaced) and isinstance(trade, Trade)
    assert replaced.client_order_id == trade.taker_client_order_id == "x3"
    assert trade.aggressor is BUY and trade.price == 1010


def test_gtd_expires_before_the_command_that_reaches_its_time() -> None:
    expiry = START + 10
    records = check_against_model(
        [
            limit(1, "A", SELL, 4, 1000, time_in_force=GTD, expire_time=expiry),
            limit(2, "B", BUY, 2, 1000, ts=expiry - 1),  # trades: not yet due
            limit(3, "B", BUY, 2, 1000, ts=expiry),  # due now: expires first, 3 rests
            SetTradingStatus(TradingStatus.HALTED, timestamp=expiry),
            limit(4, "A", SELL, 2, 990, ts=expiry + 1, time_in_force=GTD, expire_time=expiry + 5),
            CancelOrder(3, "B", timestamp=expiry + 1),  # cancels work in a halt
        ]
    )
    assert kinds(records[1])[1:] == [("trade", 2, 1, 2)]
    assert kinds(records[2]) == [("expired", 1), ("accepted", 3)]
    assert kinds(records[4]) == [("rejected", 4, Reason.PRODUCT_HALTED)]
    assert kinds(records[5]) == [("cancelled", 3, Reason.REQUESTED)]


def test_mass_cancel_takes_a_moved_order_as_accepted_at_its_replace() -> None:
    """Acceptance order, as `orders()` and mass cancel see it: a replace that loses priority
    counts as a new acceptance; one that keeps priority does not."""
    records = check_against_model(
        [
            limit(1, "A", BUY, 4, 990),
            limit(2, "A", BUY, 4, 980),
            limit(3, "A", BUY, 4, 970),
            ReplaceOrder(1, "A", price=960, timestamp=START),  # moved: now the newest
            ReplaceOrder(2, "A", quantity=2, timestamp=START),  # cut: keeps its place
            MassCancel("A", timestamp=START),
        ]
    )
    assert [k[1] for k in kinds(records[5])] == [2, 3, 1]


def test_long_queue_with_many_cancelled_entries() -> None:
    """Enough cancels in the middle of one queue for the book to compact it (more than 64
    dead entries, more dead than live), then a sweep that must meet the survivors in time
    order and skip everything cancelled."""
    commands: list[Command] = [limit(i, f"M{i % 5}", SELL, 2, 1000) for i in range(1, 151)]
    commands += [CancelOrder(i, f"M{i % 5}") for i in range(2, 150) if i % 10]
    survivors = [1, *range(10, 150, 10), 150]
    commands.append(limit(1000, "X", BUY, 2 * len(survivors) + 2, 1000))  # 2 left to rest
    compactions: list[Level] = []

    def clear(level: Level) -> None:  # a level clears itself only to compact
        compactions.append(level)
        deque.clear(level)

    with mock.patch.object(Level, "clear", clear):
        records = check_against_model(commands)
    assert compactions, "the queue was never compacted; the test lost its point"
    sweep = kinds(records[-1])
    assert [k[2] for k in sweep if k[0] == "trade"] == survivors
