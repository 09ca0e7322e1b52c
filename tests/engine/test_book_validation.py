"""New-order validation: every rule names its reason, and a reject changes nothing."""

from __future__ import annotations

from typing import Any

import pytest

from engine.book_protocol import Book
from engine.events import OrderAccepted, OrderRejected, StatusChanged, Trade
from engine.marketdata import PriceLevel
from engine.orders import Order, SetTradingStatus
from rex.config import TradingStatus
from rex.vocabulary import OrderType, Reason, Side, TimeInForce
from tests.engine.helpers import (
    BAND_HIGH,
    BAND_LOW,
    LOT,
    MAX_QUANTITY,
    REF,
    TICK,
    NewBook,
    buy,
    only,
    run,
    sell,
    state,
)


def _rejected(book: Book, command: Order) -> Reason:
    events = run(book, command)
    assert len(events) == 1
    event = events[0]
    assert isinstance(event, OrderRejected)
    return event.reason


def test_product_band_is_ten_percent_around_the_reference(book: Book) -> None:
    # The other validation tests rely on these figures.
    assert (book.product.band_low, book.product.band_high) == (BAND_LOW, BAND_HIGH)
    assert book.product.max_quantity == MAX_QUANTITY


@pytest.mark.parametrize("price", [REF + 1, REF + TICK // 2, REF - 1])
def test_price_off_tick_is_rejected(book: Book, price: int) -> None:
    assert _rejected(book, buy(1, 100, price)) is Reason.PRICE_NOT_ON_TICK


@pytest.mark.parametrize("quantity", [1, 150, LOT * 3 + 1])
def test_quantity_off_lot_is_rejected(book: Book, quantity: int) -> None:
    assert _rejected(book, buy(1, quantity, REF)) is Reason.QUANTITY_NOT_ON_LOT


@pytest.mark.parametrize("quantity", [0, -LOT], ids=["zero", "negative"])
def test_quantity_not_positive_is_rejected(book: Book, quantity: int) -> None:
    assert _rejected(book, buy(1, quantity, REF)) is Reason.QUANTITY_OUT_OF_RANGE


def test_quantity_above_product_maximum_is_rejected(book: Book) -> None:
    assert _rejected(book, buy(1, MAX_QUANTITY + LOT, REF)) is Reason.QUANTITY_OUT_OF_RANGE


def test_quantity_at_product_maximum_is_accepted(book: Book) -> None:
    events = run(book, buy(1, MAX_QUANTITY, REF))

    assert events[0] == OrderAccepted(1, 0, 1, "alpha", "", Side.BUY, REF, MAX_QUANTITY)
    assert book.best_bid() == PriceLevel(REF, MAX_QUANTITY, 1)


@pytest.mark.parametrize("price", [BAND_LOW - TICK, 0], ids=["one-tick-below", "zero"])
def test_price_below_the_band_is_rejected(book: Book, price: int) -> None:
    assert _rejected(book, buy(1, 100, price)) is Reason.OUTSIDE_PRICE_BAND


def test_price_above_the_band_is_rejected(book: Book) -> None:
    assert _rejected(book, sell(1, 100, BAND_HIGH + TICK)) is Reason.OUTSIDE_PRICE_BAND


_RESTING_KINDS: dict[str, dict[str, Any]] = {
    "GTC": {},
    "GTD": {"time_in_force": TimeInForce.GTD, "expire_time": 10**12},
    "post-only": {"post_only": True},
}


@pytest.mark.parametrize("kind", _RESTING_KINDS.values(), ids=_RESTING_KINDS.keys())
@pytest.mark.parametrize("price", [BAND_LOW, BAND_HIGH], ids=["low-edge", "high-edge"])
@pytest.mark.parametrize("side", [Side.BUY, Side.SELL])
def test_price_exactly_at_a_band_edge_is_accepted(
    book: Book, side: Side, price: int, kind: dict[str, Any]
) -> None:
    events = run(book, Order(1, "alpha", side, 100, price, **kind))

    assert [e.kind for e in events] == ["accepted", "level"]
    assert book.queue(side, price) == [1]


def test_limit_order_without_price_is_rejected(book: Book) -> None:
    assert _rejected(book, buy(1, 100, None, order_type=OrderType.LIMIT)) is Reason.MISSING_PRICE


def test_market_order_with_a_price_is_rejected(book: Book) -> None:
    command = buy(1, 100, REF, order_type=OrderType.MARKET)
    assert _rejected(book, command) is Reason.PRICE_NOT_ALLOWED


def test_duplicate_order_id_of_a_resting_order_is_rejected(book: Book) -> None:
    run(book, buy(1, 100, REF - TICK, member="alpha"))
    before = state(book)

    events = run(book, sell(1, 200, REF + TICK, member="beta"))

    assert events == [OrderRejected(3, 0, 1, "beta", Reason.DUPLICATE_ORDER_ID)]
    assert state(book) == before


def test_halt_rejects_new_orders_and_keeps_the_book(book: Book) -> None:
    run(book, buy(1, 100, REF - TICK, member="beta"))
    run(book, sell(2, 100, REF + TICK, member="beta"))
    before = state(book)

    assert run(book, SetTradingStatus(TradingStatus.HALTED, timestamp=5)) == [
        StatusChanged(5, 5, TradingStatus.HALTED)
    ]
    events = run(book, buy(3, 100, REF + TICK, timestamp=6))

    assert events == [OrderRejected(6, 6, 3, "alpha", Reason.PRODUCT_HALTED)]
    assert state(book)[:4] == before[:4]
    assert book.status is TradingStatus.HALTED


def test_trading_resumes_on_the_kept_book_after_a_halt(book: Book) -> None:
    run(book, sell(1, 100, REF + TICK, member="beta"))
    run(book, SetTradingStatus(TradingStatus.HALTED))
    run(book, SetTradingStatus(TradingStatus.OPEN))

    trades = only(run(book, buy(2, 100, REF + TICK)), Trade)

    assert [(t.maker_order_id, t.price) for t in trades] == [(1, REF + TICK)]


def test_closed_product_rejects_new_orders(book: Book) -> None:
    run(book, SetTradingStatus(TradingStatus.CLOSED))

    assert _rejected(book, buy(1, 100, REF)) is Reason.PRODUCT_CLOSED


@pytest.mark.parametrize(
    ("status", "reason"),
    [(TradingStatus.HALTED, Reason.PRODUCT_HALTED), (TradingStatus.CLOSED, Reason.PRODUCT_CLOSED)],
)
def test_book_starts_in_the_products_configured_status(
    status: TradingStatus, reason: Reason, new_book: NewBook
) -> None:
    book = new_book(status=status)

    assert book.status is status
    assert _rejected(book, buy(1, 100, REF)) is reason


def test_halt_is_checked_before_any_other_rule(book: Book) -> None:
    run(book, SetTradingStatus(TradingStatus.HALTED))

    assert _rejected(book, buy(1, 150, REF + 1)) is Reason.PRODUCT_HALTED


_BAD_ORDERS: dict[str, tuple[dict[str, Any], Reason]] = {
    "off-tick": ({"price": REF + 1}, Reason.PRICE_NOT_ON_TICK),
    "off-lot": ({"quantity": 150}, Reason.QUANTITY_NOT_ON_LOT),
    "zero-quantity": ({"quantity": 0}, Reason.QUANTITY_OUT_OF_RANGE),
    "above-max": ({"quantity": MAX_QUANTITY + LOT}, Reason.QUANTITY_OUT_OF_RANGE),
    "below-band": ({"price": BAND_LOW - TICK}, Reason.OUTSIDE_PRICE_BAND),
    "above-band": ({"price": BAND_HIGH + TICK}, Reason.OUTSIDE_PRICE_BAND),
    "limit-no-price": ({"price": None}, Reason.MISSING_PRICE),
    "market-with-price": ({"order_type": OrderType.MARKET}, Reason.PRICE_NOT_ALLOWED),
    "duplicate-id": ({"order_id": 1}, Reason.DUPLICATE_ORDER_ID),
    "gtd-no-expiry": ({"time_in_force": TimeInForce.GTD}, Reason.MISSING_EXPIRE_TIME),
    "expiry-on-gtc": ({"expire_time": 10**12}, Reason.EXPIRE_TIME_NOT_ALLOWED),
    "post-only-takes": ({"post_only": True}, Reason.POST_ONLY_WOULD_TAKE),
}


@pytest.mark.parametrize(("changes", "reason"), _BAD_ORDERS.values(), ids=_BAD_ORDERS.keys())
def test_a_reject_changes_nothing_and_leaves_no_sequence_gap(
    book: Book, changes: dict[str, Any], reason: Reason
) -> None:
    run(book, sell(1, 300, REF, member="beta"))
    run(book, buy(2, 200, REF - TICK, member="gamma"))
    before = state(book)
    sequence, trade_sequence = book.sequence, book.trade_sequence
    fields: dict[str, Any] = {
        "order_id": 9,
        "member": "alpha",
        "side": Side.BUY,
        "quantity": 200,
        "price": REF,  # would cross and trade if accepted
        "timestamp": 50,
    } | changes

    events = run(book, Order(**fields))

    assert events == [OrderRejected(sequence + 1, 50, fields["order_id"], "alpha", reason)]
    assert book.sequence == sequence + 1
    assert book.trade_sequence == trade_sequence
    assert state(book) == before
    follow_up = run(book, buy(10, 100, REF - 2 * TICK, timestamp=51))
    assert follow_up[0].sequence == sequence + 2
