"""Events the order book emits.

The book emits each event as a *record*: a plain tuple whose first item is the event's class
and whose other items are that class's fields in order, e.g.
`(Trade, sequence, timestamp, trade_sequence, price, ...)`. A tuple costs a fifth of an object
to build, and the matching loop builds millions; `typed(record)` turns a record into its
dataclass for code that wants attribute access, and `encode_records` packs records for the
wire without building objects at all.

Every event carries the book's gapless `sequence` and the `timestamp` of the command that
caused it, so the same commands give the same events, byte for byte.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any, ClassVar

import msgpack

from rex.config import TradingStatus
from rex.vocabulary import Reason, Side


@dataclass(slots=True)
class Event:
    kind: ClassVar[str] = "event"
    sequence: int
    timestamp: int


@dataclass(slots=True)
class OrderAccepted(Event):
    kind: ClassVar[str] = "accepted"
    order_id: int
    member: str
    client_order_id: str
    side: Side
    price: int | None  # None for a market order
    quantity: int


@dataclass(slots=True)
class OrderRejected(Event):
    """A command refused whole; nothing in the book changed."""

    kind: ClassVar[str] = "rejected"
    order_id: int | None
    member: str | None
    reason: Reason


@dataclass(slots=True)
class Trade(Event):
    kind: ClassVar[str] = "trade"
    trade_sequence: int  # gapless count of this product's trades, from 1
    price: int  # the resting (maker) order's price
    quantity: int
    aggressor: Side
    taker_order_id: int
    taker_member: str
    taker_client_order_id: str
    taker_filled: int  # cumulative, after this trade
    taker_remaining: int
    maker_order_id: int
    maker_member: str
    maker_client_order_id: str
    maker_filled: int
    maker_remaining: int


@dataclass(slots=True)
class OrderCancelled(Event):
    kind: ClassVar[str] = "cancelled"
    order_id: int
    member: str
    client_order_id: str
    side: Side
    price: int | None
    cancelled_quantity: int
    filled: int
    reason: Reason


@dataclass(slots=True)
class OrderExpired(Event):
    kind: ClassVar[str] = "expired"
    order_id: int
    member: str
    client_order_id: str
    side: Side
    price: int
    cancelled_quantity: int
    filled: int


@dataclass(slots=True)
class OrderReplaced(Event):
    kind: ClassVar[str] = "replaced"
    order_id: int
    member: str
    client_order_id: str
    side: Side
    price: int
    quantity: int  # new total quantity
    remaining: int
    filled: int
    priority_kept: bool


@dataclass(slots=True)
class LevelChanged(Event):
    """Level-2 incremental update: the total resting at one price after the command."""

    kind: ClassVar[str] = "level"
    side: Side
    price: int
    quantity: int  # 0 when the level is gone
    orders: int


@dataclass(slots=True)
class StatusChanged(Event):
    kind: ClassVar[str] = "status"
    status: TradingStatus


@dataclass(slots=True)
class BandChanged(Event):
    """The price band from this command on: new orders and replaces are checked against
    it; orders resting outside it stay."""

    kind: ClassVar[str] = "band"
    low: int
    high: int


Record = tuple[Any, ...]
"""An event as the book emits it: (event class, sequence, timestamp, *other fields)."""


def typed(record: Record) -> Event:
    """The dataclass view of a record."""
    event: Event = record[0](*record[1:])
    return event


def field_index(event_type: type[Event], name: str) -> int:
    """Where a field sits in that event type's records (the class is at index 0)."""
    names = [f.name for f in fields(event_type)]
    return names.index(name) + 1


def record_of(event: Event) -> Record:
    """The record of a dataclass event (the inverse of `typed`)."""
    return (type(event), *(getattr(event, f.name) for f in fields(event)))


def encode_records(records: list[Record]) -> bytes:
    """Deterministic msgpack bytes for records: each as [kind, *fields]. StrEnum members
    pack as their string values."""
    packed: bytes = msgpack.packb([[r[0].kind, *r[1:]] for r in records], use_bin_type=True)
    return packed
