"""Quantity conservation: for every order, filled + remaining + cancelled == quantity, where
quantity is the latest total (a replace sets a new one) and cancelled counts what cancels,
self-trade prevention, IOC/FOK ends, mass cancels and expiries took out."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

import pytest

from engine.book_protocol import Book
from engine.events import (
    Event,
    OrderAccepted,
    OrderCancelled,
    OrderExpired,
    OrderReplaced,
    Trade,
)
from engine.orders import AdvanceTime, CancelOrder, ReplaceOrder
from rex.vocabulary import SelfTradePrevention, TimeInForce
from tests.engine.helpers import REF, TICK, buy, random_commands, run, sell


@dataclass
class Ledger:
    """What the events say about each order."""

    quantity: dict[int, int]
    filled: defaultdict[int, int]
    cancelled: defaultdict[int, int]

    @classmethod
    def empty(cls) -> Ledger:
        return cls({}, defaultdict(int), defaultdict(int))

    def post(self, events: list[Event]) -> None:
        for e in events:
            if isinstance(e, OrderAccepted):
                self.quantity[e.order_id] = e.quantity
            elif isinstance(e, OrderReplaced):
                self.quantity[e.order_id] = e.quantity
                assert e.quantity == e.filled + e.remaining
            elif isinstance(e, Trade):
                self.filled[e.taker_order_id] += e.quantity
                self.filled[e.maker_order_id] += e.quantity
                assert e.taker_filled == self.filled[e.taker_order_id]
                assert e.maker_filled == self.filled[e.maker_order_id]
            elif isinstance(e, OrderCancelled | OrderExpired):
                self.cancelled[e.order_id] += e.cancelled_quantity
                assert e.filled == self.filled[e.order_id]

    def check(self, book: Book) -> None:
        for order_id, quantity in self.quantity.items():
            resting = book.order(order_id)
            remaining = 0 if resting is None else resting.remaining
            filled, cancelled = self.filled[order_id], self.cancelled[order_id]
            assert filled + remaining + cancelled == quantity, (
                f"order {order_id}: {filled} + {remaining} + {cancelled} != {quantity}"
            )
            if resting is not None:
                assert resting.filled == filled
                assert resting.quantity == quantity
                assert cancelled == 0  # a resting order has lost nothing to cancels


def test_filled_remaining_and_cancelled_add_up_through_fills_replaces_and_cancel(
    book: Book,
) -> None:
    ledger = Ledger.empty()
    ledger.post(run(book, buy(1, 1000, REF)))
    ledger.post(run(book, sell(2, 300, REF, member="beta")))  # 1 filled 300
    ledger.post(run(book, ReplaceOrder(1, "alpha", quantity=800)))  # keeps priority
    ledger.post(run(book, sell(3, 200, REF, member="gamma")))  # 1 filled 500
    ledger.post(run(book, ReplaceOrder(1, "alpha", price=REF + TICK, quantity=900)))
    ledger.check(book)
    resting = book.order(1)
    assert resting is not None
    assert (resting.quantity, resting.filled, resting.remaining) == (900, 500, 400)

    ledger.post(run(book, CancelOrder(1, "alpha")))

    assert (ledger.quantity[1], ledger.filled[1], ledger.cancelled[1]) == (900, 500, 400)
    ledger.check(book)


def test_ioc_and_stp_remainders_count_as_cancelled(book: Book) -> None:
    ledger = Ledger.empty()
    ledger.post(run(book, sell(1, 200, REF, member="beta")))
    ledger.post(run(book, sell(2, 200, REF, member="alpha")))
    ledger.post(run(book, buy(3, 700, REF, time_in_force=TimeInForce.IOC)))  # STP stops it
    ledger.post(run(book, buy(4, 700, REF, member="beta", stp=SelfTradePrevention.CANCEL_OLDEST)))

    assert (ledger.filled[3], ledger.cancelled[3]) == (200, 500)
    assert (ledger.filled[2], ledger.cancelled[2]) == (200, 0)
    ledger.check(book)


def test_expired_remainder_counts_as_cancelled(book: Book) -> None:
    ledger = Ledger.empty()
    ledger.post(
        run(book, sell(1, 500, REF, time_in_force=TimeInForce.GTD, expire_time=100, timestamp=1))
    )
    ledger.post(run(book, buy(2, 100, REF, member="beta", timestamp=2)))
    ledger.post(run(book, AdvanceTime(100)))

    assert (ledger.quantity[1], ledger.filled[1], ledger.cancelled[1]) == (500, 100, 400)
    ledger.check(book)


@pytest.mark.parametrize("seed", [31, 32, 33, 34])
def test_every_order_conserves_quantity_in_a_mixed_stream(seed: int, book: Book) -> None:
    ledger = Ledger.empty()
    for command in random_commands(seed, 2000):
        ledger.post(run(book, command))
        ledger.check(book)
    assert sum(ledger.filled.values()) > 0
    assert sum(ledger.cancelled.values()) > 0
