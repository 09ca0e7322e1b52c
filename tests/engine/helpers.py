"""Shared building blocks for the engine's tests.

One product (PRND-OX: tick 50, lot 100, reference 500 000, band 10% -> 450 000..550 000),
short constructors for orders, `run` to apply a command to a book (either: they speak
engine/book_protocol.py) and get typed events back, a seeded generator of mixed command
streams for the whole-book invariants, and `Session`, input-log entries for a Market.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterable
from decimal import Decimal
from typing import Any, TypeVar

from engine.book_protocol import Book
from engine.events import Event, Record, typed
from engine.market import NS_PER_MS
from engine.orders import (
    AdvanceTime,
    CancelOrder,
    Command,
    MassCancel,
    Order,
    ReplaceOrder,
    SetTradingStatus,
)
from rex.config import Product, TradingStatus
from rex.protocol import (
    CancelRequest,
    EngineInput,
    InputKind,
    MassCancelRequest,
    NewOrderRequest,
    ReplaceRequest,
)
from rex.vocabulary import OrderType, SelfTradePrevention, Side, TimeInForce

SYMBOL = "PRND-OX"
TICK = 50
LOT = 100
REF = 500_000
BAND_LOW = 450_000  # REF - 10%
BAND_HIGH = 550_000  # REF + 10%
MAX_QUANTITY = LOT * 100_000  # Product's default


def make_product(**overrides: Any) -> Product:
    fields: dict[str, Any] = {
        "symbol": SYMBOL,
        "name": "Praseodymium-neodymium oxide",
        "currency": "CNY",
        "price_unit": "CNY/t",
        "tick": TICK,
        "quantity_unit": "kg",
        "lot": LOT,
        "quantity_per_price_unit": 1000,
        "reference_price": REF,
        "band_percent": Decimal(10),
    }
    fields.update(overrides)
    return Product(**fields)


PRODUCT = make_product()


NewBook = Callable[..., Book]
"""The `new_book` fixture: an empty book of PRODUCT, or of a product with the fields given
changed (`new_book(status=...)`), of the implementation the test runs on."""


# ----------------------------------------------------------------------- commands


def order(
    order_id: int,
    side: Side,
    quantity: int,
    price: int | None = None,
    *,
    member: str = "alpha",
    timestamp: int = 0,
    **kwargs: Any,
) -> Order:
    """A new order; `price=None` makes it a market order unless order_type is given."""
    if price is None and "order_type" not in kwargs:
        kwargs["order_type"] = OrderType.MARKET
    return Order(order_id, member, side, quantity, price, timestamp=timestamp, **kwargs)


def buy(order_id: int, quantity: int, price: int | None = None, **kwargs: Any) -> Order:
    return order(order_id, Side.BUY, quantity, price, **kwargs)


def sell(order_id: int, quantity: int, price: int | None = None, **kwargs: Any) -> Order:
    return order(order_id, Side.SELL, quantity, price, **kwargs)


# ----------------------------------------------------------------------- running


def run(book: Book, command: Command) -> list[Event]:
    """Apply one command and return its events as dataclasses."""
    return [typed(record) for record in book.apply(command)]


def run_all(book: Book, commands: Iterable[Command]) -> list[Event]:
    events: list[Event] = []
    for command in commands:
        events.extend(run(book, command))
    return events


E = TypeVar("E", bound=Event)


def only(events: Iterable[Event], kind: type[E]) -> list[E]:
    """The events of one type, in order."""
    return [e for e in events if type(e) is kind]


def kinds(events: Iterable[Event]) -> list[str]:
    return [e.kind for e in events]


def state(book: Book) -> tuple[Any, ...]:
    """Everything observable about a book except its sequence counters: full depth,
    every resting order with its fills, and the queue at every level."""
    depth = book.depth(10_000)
    queues = tuple(
        (side, level.price, tuple(book.queue(side, level.price)))
        for side, levels in ((Side.BUY, depth.bids), (Side.SELL, depth.asks))
        for level in levels
    )
    orders = tuple(
        (o.order_id, o.member, o.side, o.price, o.quantity, o.remaining, o.filled)
        for o in book.orders()
    )
    return depth.bids, depth.asks, orders, queues, book.status, book.band


# ----------------------------------------------------------------------- streams

MEMBERS = ("alpha", "beta", "gamma", "delta")


def random_commands(seed: int, count: int) -> list[Command]:
    """A reproducible mix of every command and order kind around the reference price.

    Fresh objects on every call (the book takes ownership of submitted orders). New order
    ids are unique; cancels and replaces pick earlier ids, mostly as their owner, so some
    hit live orders and some are rejected.
    """
    rng = random.Random(seed)
    commands: list[Command] = []
    owner: dict[int, str] = {}
    ts = 1_000
    halted = False
    for _ in range(count):
        ts += rng.randint(1, 5)
        roll = rng.random()
        if halted and roll < 0.3:
            commands.append(SetTradingStatus(TradingStatus.OPEN, timestamp=ts))
            halted = False
        elif roll < 0.6 or not owner:
            order_id = len(owner) + 1
            member = rng.choice(MEMBERS)
            owner[order_id] = member
            side = rng.choice((Side.BUY, Side.SELL))
            quantity = LOT * rng.randint(1, 10)
            price: int | None = REF + TICK * rng.randint(-6, 6)
            kwargs: dict[str, Any] = {"stp": rng.choice(list(SelfTradePrevention))}
            kind = rng.random()
            if kind < 0.08:
                price = None
                kwargs["order_type"] = OrderType.MARKET
                kwargs["time_in_force"] = rng.choice((TimeInForce.GTC, TimeInForce.IOC))
            elif kind < 0.16:
                kwargs["time_in_force"] = TimeInForce.IOC
            elif kind < 0.24:
                kwargs["time_in_force"] = TimeInForce.FOK
            elif kind < 0.38:
                kwargs["time_in_force"] = TimeInForce.GTD
                kwargs["expire_time"] = ts + rng.randint(1, 80)
            elif kind < 0.46:
                kwargs["post_only"] = True
            commands.append(
                Order(
                    order_id,
                    member,
                    side,
                    quantity,
                    price,
                    client_order_id=f"c{order_id}",
                    timestamp=ts,
                    **kwargs,
                )
            )
        elif roll < 0.75:
            order_id = rng.randint(1, len(owner))
            member = owner[order_id] if rng.random() < 0.9 else rng.choice(MEMBERS)
            commands.append(CancelOrder(order_id, member, timestamp=ts))
        elif roll < 0.93:
            order_id = rng.randint(1, len(owner))
            member = owner[order_id] if rng.random() < 0.9 else rng.choice(MEMBERS)
            new_price = REF + TICK * rng.randint(-6, 6) if rng.random() < 0.6 else None
            new_quantity = LOT * rng.randint(1, 12) if rng.random() < 0.6 else None
            commands.append(ReplaceOrder(order_id, member, new_price, new_quantity, timestamp=ts))
        elif roll < 0.97:
            ts += rng.randint(0, 40)
            commands.append(AdvanceTime(ts))
        elif roll < 0.99:
            commands.append(MassCancel(rng.choice(MEMBERS), timestamp=ts))
        elif not halted:
            commands.append(SetTradingStatus(TradingStatus.HALTED, timestamp=ts))
            halted = True
    return commands


def records_of(book: Book, commands: Iterable[Command]) -> list[list[Record]]:
    """The raw records of each command, one list per command."""
    return [book.apply(command) for command in commands]


# ----------------------------------------------------------------------- a market's input

T0 = 1_800_000_000_000 * NS_PER_MS  # ns
BID, ASK = 499_000, 501_000


class Session:
    """Input-log entries for one market, each a millisecond after the one before."""

    def __init__(self) -> None:
        self.now = T0
        self.count = 0

    def _entry(self, member: str, request: Any) -> EngineInput:
        self.now += NS_PER_MS
        self.count += 1
        return EngineInput(request.kind, SYMBOL, self.now, member, f"q{self.count}", request)

    def new(
        self, member: str, cid: str, side: Side, quantity: int, price: int | None, **fields: Any
    ) -> EngineInput:
        if price is None:
            fields["order_type"] = OrderType.MARKET
        request = NewOrderRequest(cid, SYMBOL, side, quantity, price=price, **fields)
        return self._entry(member, request)

    def cancel(self, member: str, cid: str, orig: str) -> EngineInput:
        return self._entry(member, CancelRequest(cid, orig, SYMBOL))

    def replace(
        self,
        member: str,
        cid: str,
        orig: str,
        price: int | None = None,
        quantity: int | None = None,
    ) -> EngineInput:
        return self._entry(member, ReplaceRequest(cid, orig, SYMBOL, price, quantity))

    def mass_cancel(self, member: str, cid: str) -> EngineInput:
        return self._entry(member, MassCancelRequest(cid, SYMBOL))

    def tick(self, ahead_ms: int = 1) -> EngineInput:
        self.now += ahead_ms * NS_PER_MS
        return EngineInput(InputKind.TICK, SYMBOL, self.now)

    def status(self, status: str) -> EngineInput:
        self.now += NS_PER_MS
        return EngineInput(InputKind.STATUS, SYMBOL, self.now, status=status)

    def band(self, low: object, high: object) -> EngineInput:
        """An operator's band entry, as the operator desk writes it (any values: the
        engine checks them again)."""
        self.now += NS_PER_MS
        return EngineInput(
            InputKind.BAND,
            SYMBOL,
            self.now,
            band_low=low,  # type: ignore[arg-type]
            band_high=high,  # type: ignore[arg-type]
        )
