"""What an order book is to its callers: the one small protocol both books implement.

* `engine.book.OrderBook` is the exchange's book: sorted levels, lazy deletion, a flat
  matching loop; what the engine runs.
* `engine.reference_book.ReferenceBook` is the model: one plain list of resting orders and
  linear scans, written from the rules. The property tests compare the two after every
  command, and the per-rule tests (tests/engine/test_book_*.py) run against both.

Both take the commands of engine/orders.py and answer with the records of engine/events.py,
numbered the same way. (`engine.baseline.MinimalBook`, the benchmark's yardstick, is no
Book: it knows no events, rules or members.)
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Protocol

from rex.config import Product, TradingStatus
from rex.price_band import PriceBand
from rex.vocabulary import SelfTradePrevention, Side, TimeInForce

from .events import Record
from .marketdata import Depth, PriceLevel
from .orders import Command


class RestingOrder(Protocol):
    """An order in a book, as a caller may read it (the book alone changes it)."""

    @property
    def order_id(self) -> int: ...
    @property
    def member(self) -> str: ...
    @property
    def client_order_id(self) -> str: ...
    @property
    def side(self) -> Side: ...
    @property
    def price(self) -> int | None: ...
    @property
    def quantity(self) -> int: ...  # total, the filled part included
    @property
    def remaining(self) -> int: ...
    @property
    def filled(self) -> int: ...
    @property
    def time_in_force(self) -> TimeInForce: ...
    @property
    def expire_time(self) -> int | None: ...
    @property
    def post_only(self) -> bool: ...
    @property
    def stp(self) -> SelfTradePrevention: ...


class Book(Protocol):
    """One product's price-time book: commands in, records out."""

    @property
    def product(self) -> Product: ...
    @property
    def status(self) -> TradingStatus: ...
    @property
    def band(self) -> PriceBand: ...  # the prices new orders and replaces may have
    @property
    def sequence(self) -> int: ...  # the last record's sequence number; gapless from 1
    @property
    def trade_sequence(self) -> int: ...  # the last trade's number; gapless from 1

    def apply(self, command: Command) -> list[Record]:
        """Apply a command; its records, each stamped with the command's timestamp."""
        ...

    def order(self, order_id: int) -> RestingOrder | None:
        """The resting order with that id, if it is in the book."""
        ...

    def orders(self) -> Iterator[RestingOrder]:
        """Resting orders in acceptance order (a replace that loses priority counts as a
        new acceptance)."""
        ...

    def best_bid(self) -> PriceLevel | None: ...
    def best_ask(self) -> PriceLevel | None: ...

    def depth(self, levels: int = 10) -> Depth:
        """The top `levels` price levels of each side, best first, as of `sequence`."""
        ...

    def queue(self, side: Side, price: int) -> list[int]:
        """Order ids resting at one price, in time priority."""
        ...
