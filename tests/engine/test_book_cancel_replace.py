"""Cancel and replace (cancel/replace): ownership, time priority, rejects."""

from __future__ import annotations

import pytest

from engine.book_protocol import Book
from engine.events import LevelChanged, OrderCancelled, OrderRejected, OrderReplaced, Trade
from engine.marketdata import PriceLevel
from engine.orders import CancelOrder, ReplaceOrder, SetTradingStatus
from rex.config import TradingStatus
from rex.vocabulary import Reason, Side
from tests.engine.helpers import (
    BAND_HIGH,
    BAND_LOW,
    LOT,
    MAX_QUANTITY,
    REF,
    TICK,
    buy,
    only,
    run,
    sell,
    state,
)

# ----------------------------------------------------------------------- cancel


def test_owner_cancels_a_resting_order(book: Book) -> None:
    run(book, buy(1, 300, REF, client_order_id="c-1"))
    run(book, buy(2, 200, REF, member="beta"))

    events = run(book, CancelOrder(1, "alpha", timestamp=8))

    assert events == [
        OrderCancelled(5, 8, 1, "alpha", "c-1", Side.BUY, REF, 300, 0, Reason.REQUESTED),
        LevelChanged(6, 8, Side.BUY, REF, 200, 1),
    ]
    assert book.order(1) is None
    assert book.queue(Side.BUY, REF) == [2]


def test_cancel_of_a_partially_filled_order_cancels_its_remainder(book: Book) -> None:
    run(book, buy(1, 500, REF))
    run(book, sell(2, 200, REF, member="beta"))

    events = run(book, CancelOrder(1, "alpha"))

    assert events[0] == OrderCancelled(
        6, 0, 1, "alpha", "", Side.BUY, REF, 300, 200, Reason.REQUESTED
    )


def test_cancel_by_a_non_owner_is_unknown_order_and_changes_nothing(book: Book) -> None:
    run(book, buy(1, 300, REF, member="alpha"))
    before = state(book)

    events = run(book, CancelOrder(1, "beta", timestamp=3))

    assert events == [OrderRejected(3, 3, 1, "beta", Reason.UNKNOWN_ORDER)]
    assert state(book) == before


def test_cancel_of_an_unknown_order_id_is_rejected(book: Book) -> None:
    run(book, buy(1, 300, REF))

    events = run(book, CancelOrder(42, "alpha"))

    assert events == [OrderRejected(3, 0, 42, "alpha", Reason.UNKNOWN_ORDER)]


def test_cancel_of_a_filled_order_is_unknown_order(book: Book) -> None:
    run(book, buy(1, 300, REF))
    run(book, sell(2, 300, REF, member="beta"))

    events = run(book, CancelOrder(1, "alpha"))

    assert events == [OrderRejected(6, 0, 1, "alpha", Reason.UNKNOWN_ORDER)]


def test_cancel_twice_is_unknown_order_the_second_time(book: Book) -> None:
    run(book, buy(1, 300, REF))
    run(book, CancelOrder(1, "alpha"))

    events = run(book, CancelOrder(1, "alpha"))

    assert events == [OrderRejected(5, 0, 1, "alpha", Reason.UNKNOWN_ORDER)]


@pytest.mark.parametrize("status", [TradingStatus.HALTED, TradingStatus.CLOSED])
def test_cancel_is_accepted_while_trading_is_not_open(book: Book, status: TradingStatus) -> None:
    run(book, buy(1, 300, REF))
    run(book, SetTradingStatus(status))

    events = run(book, CancelOrder(1, "alpha"))

    assert [(e.kind, getattr(e, "reason", None)) for e in events] == [
        ("cancelled", Reason.REQUESTED),
        ("level", None),
    ]
    assert book.best_bid() is None


def test_cancelled_order_in_the_middle_of_a_queue_is_skipped_by_matching(
    book: Book,
) -> None:
    for order_id, member in ((1, "beta"), (2, "gamma"), (3, "delta")):
        run(book, sell(order_id, 100, REF, member=member))
    run(book, CancelOrder(2, "gamma"))

    trades = only(run(book, buy(4, 200, REF)), Trade)

    assert [t.maker_order_id for t in trades] == [1, 3]
    assert book.best_ask() is None


def test_cancelled_orders_never_trade_even_in_a_long_queue(book: Book) -> None:
    # Enough cancels in the middle of one queue that the level compacts its dead entries.
    for order_id in range(1, 201):
        run(book, sell(order_id, 100, REF, member=f"m{order_id}"))
    for order_id in range(2, 200):
        if order_id % 3:
            run(book, CancelOrder(order_id, f"m{order_id}"))
    live = [1, *range(3, 200, 3), 200]

    assert book.queue(Side.SELL, REF) == live
    assert book.best_ask() == PriceLevel(REF, 100 * len(live), len(live))
    trades = only(run(book, buy(1000, 100 * len(live), REF)), Trade)
    assert [t.maker_order_id for t in trades] == live
    assert book.best_ask() is None


# ----------------------------------------------------------------------- replace: priority


def _queue_of_three(book: Book) -> None:
    run(book, sell(1, 300, REF, member="alpha"))
    run(book, sell(2, 300, REF, member="beta"))
    run(book, sell(3, 300, REF, member="gamma"))


def test_quantity_down_keeps_time_priority(book: Book) -> None:
    _queue_of_three(book)

    events = run(book, ReplaceOrder(1, "alpha", quantity=200, timestamp=5))

    assert events == [
        OrderReplaced(7, 5, 1, "alpha", "", Side.SELL, REF, 200, 200, 0, True),
        LevelChanged(8, 5, Side.SELL, REF, 800, 3),
    ]
    assert book.queue(Side.SELL, REF) == [1, 2, 3]
    trades = only(run(book, buy(4, 200, REF, member="delta")), Trade)
    assert [(t.maker_order_id, t.quantity) for t in trades] == [(1, 200)]


def test_quantity_up_loses_time_priority(book: Book) -> None:
    _queue_of_three(book)

    events = run(book, ReplaceOrder(1, "alpha", quantity=400, timestamp=5))

    assert events == [
        OrderReplaced(7, 5, 1, "alpha", "", Side.SELL, REF, 400, 400, 0, False),
        LevelChanged(8, 5, Side.SELL, REF, 600, 2),
        LevelChanged(9, 5, Side.SELL, REF, 1000, 3),
    ]
    assert book.queue(Side.SELL, REF) == [2, 3, 1]
    trades = only(run(book, buy(4, 300, REF, member="delta")), Trade)
    assert [t.maker_order_id for t in trades] == [2]


def test_quantity_up_in_the_middle_of_a_queue_moves_the_order_to_the_back(
    book: Book,
) -> None:
    _queue_of_three(book)
    run(book, ReplaceOrder(2, "beta", quantity=500))

    trades = only(run(book, buy(4, 1100, REF, member="delta")), Trade)

    assert [(t.maker_order_id, t.quantity) for t in trades] == [(1, 300), (3, 300), (2, 500)]
    assert book.best_ask() is None


def test_price_change_loses_time_priority(book: Book) -> None:
    run(book, sell(1, 300, REF + TICK, member="alpha"))
    run(book, sell(2, 300, REF, member="beta"))

    events = run(book, ReplaceOrder(1, "alpha", price=REF))

    assert events == [
        OrderReplaced(5, 0, 1, "alpha", "", Side.SELL, REF, 300, 300, 0, False),
        LevelChanged(6, 0, Side.SELL, REF + TICK, 0, 0),
        LevelChanged(7, 0, Side.SELL, REF, 600, 2),
    ]
    assert book.queue(Side.SELL, REF) == [2, 1]


def test_price_change_with_smaller_quantity_still_loses_time_priority(
    book: Book,
) -> None:
    _queue_of_three(book)
    run(book, ReplaceOrder(1, "alpha", price=REF + TICK))

    run(book, ReplaceOrder(1, "alpha", price=REF, quantity=100))

    assert book.queue(Side.SELL, REF) == [2, 3, 1]


def test_replaced_order_that_crosses_trades_at_once_as_aggressor(book: Book) -> None:
    run(book, sell(1, 200, REF + TICK, member="beta"))
    run(book, buy(2, 500, REF, member="alpha"))

    events = run(book, ReplaceOrder(2, "alpha", price=REF + 2 * TICK, timestamp=9))

    assert events == [
        OrderReplaced(5, 9, 2, "alpha", "", Side.BUY, REF + 2 * TICK, 500, 500, 0, False),
        LevelChanged(6, 9, Side.BUY, REF, 0, 0),
        Trade(7, 9, 1, REF + TICK, 200, Side.BUY, 2, "alpha", "", 200, 300, 1, "beta", "", 200, 0),
        LevelChanged(8, 9, Side.SELL, REF + TICK, 0, 0),
        LevelChanged(9, 9, Side.BUY, REF + 2 * TICK, 300, 1),
    ]
    assert book.best_bid() == PriceLevel(REF + 2 * TICK, 300, 1)


def test_replace_keeps_the_filled_quantity(book: Book) -> None:
    run(book, buy(1, 500, REF))
    run(book, sell(2, 200, REF, member="beta"))

    events = run(book, ReplaceOrder(1, "alpha", quantity=800))

    assert only(events, OrderReplaced) == [
        OrderReplaced(6, 0, 1, "alpha", "", Side.BUY, REF, 800, 600, 200, False)
    ]
    resting = book.order(1)
    assert resting is not None
    assert (resting.quantity, resting.remaining, resting.filled) == (800, 600, 200)


def test_quantity_down_on_a_partially_filled_order_cuts_its_remainder(
    book: Book,
) -> None:
    run(book, buy(1, 500, REF))
    run(book, sell(2, 200, REF, member="beta"))

    events = run(book, ReplaceOrder(1, "alpha", quantity=300))

    assert events == [
        OrderReplaced(6, 0, 1, "alpha", "", Side.BUY, REF, 300, 100, 200, True),
        LevelChanged(7, 0, Side.BUY, REF, 100, 1),
    ]


# ----------------------------------------------------------------------- replace: rejects


@pytest.mark.parametrize("quantity", [200, 100], ids=["equal", "below"])
def test_replace_quantity_at_or_below_filled_is_rejected(book: Book, quantity: int) -> None:
    run(book, buy(1, 500, REF))
    run(book, sell(2, 200, REF, member="beta"))
    before = state(book)

    events = run(book, ReplaceOrder(1, "alpha", quantity=quantity))

    assert events == [OrderRejected(6, 0, 1, "alpha", Reason.QUANTITY_BELOW_FILLED)]
    assert state(book) == before


@pytest.mark.parametrize(
    ("price", "quantity"),
    [(None, None), (REF, None), (None, 300), (REF, 300)],
    ids=["nothing", "same-price", "same-quantity", "same-both"],
)
def test_replace_that_changes_nothing_is_rejected(
    book: Book, price: int | None, quantity: int | None
) -> None:
    run(book, buy(1, 300, REF))
    before = state(book)

    events = run(book, ReplaceOrder(1, "alpha", price=price, quantity=quantity))

    assert events == [OrderRejected(3, 0, 1, "alpha", Reason.NOTHING_TO_REPLACE)]
    assert state(book) == before


@pytest.mark.parametrize(
    ("status", "reason"),
    [(TradingStatus.HALTED, Reason.PRODUCT_HALTED), (TradingStatus.CLOSED, Reason.PRODUCT_CLOSED)],
)
def test_replace_is_rejected_while_trading_is_not_open(
    book: Book, status: TradingStatus, reason: Reason
) -> None:
    run(book, buy(1, 300, REF))
    run(book, SetTradingStatus(status))
    before = state(book)

    events = run(book, ReplaceOrder(1, "alpha", quantity=200))

    assert events == [OrderRejected(4, 0, 1, "alpha", reason)]
    assert state(book) == before


def test_replace_by_a_non_owner_is_unknown_order(book: Book) -> None:
    run(book, buy(1, 300, REF, member="alpha"))
    before = state(book)

    events = run(book, ReplaceOrder(1, "beta", quantity=200))

    assert events == [OrderRejected(3, 0, 1, "beta", Reason.UNKNOWN_ORDER)]
    assert state(book) == before


def test_replace_of_an_unknown_order_is_rejected(book: Book) -> None:
    events = run(book, ReplaceOrder(7, "alpha", quantity=200))

    assert events == [OrderRejected(1, 0, 7, "alpha", Reason.UNKNOWN_ORDER)]


def test_post_only_replace_that_would_take_is_rejected(book: Book) -> None:
    run(book, sell(1, 100, REF + TICK, member="beta"))
    run(book, buy(2, 300, REF, post_only=True))
    before = state(book)

    events = run(book, ReplaceOrder(2, "alpha", price=REF + TICK))

    assert events == [OrderRejected(5, 0, 2, "alpha", Reason.POST_ONLY_WOULD_TAKE)]
    assert state(book) == before


def test_post_only_replace_to_a_price_that_does_not_cross_is_accepted(
    book: Book,
) -> None:
    run(book, sell(1, 100, REF + 2 * TICK, member="beta"))
    run(book, buy(2, 300, REF, post_only=True))

    events = run(book, ReplaceOrder(2, "alpha", price=REF + TICK))

    assert [e.kind for e in events] == ["replaced", "level", "level"]
    assert book.best_bid() == PriceLevel(REF + TICK, 300, 1)


@pytest.mark.parametrize("price", [BAND_LOW, BAND_HIGH], ids=["low-edge", "high-edge"])
def test_replace_to_a_price_exactly_at_a_band_edge_is_accepted(book: Book, price: int) -> None:
    run(book, sell(1, 300, REF))

    events = run(book, ReplaceOrder(1, "alpha", price=price))

    assert [e.kind for e in events] == ["replaced", "level", "level"]
    assert book.queue(Side.SELL, price) == [1]


@pytest.mark.parametrize(
    ("price", "quantity", "reason"),
    [
        (REF + TICK // 2, None, Reason.PRICE_NOT_ON_TICK),
        (BAND_LOW - TICK, None, Reason.OUTSIDE_PRICE_BAND),
        (BAND_HIGH + TICK, None, Reason.OUTSIDE_PRICE_BAND),
        (None, 250, Reason.QUANTITY_NOT_ON_LOT),
        (None, 0, Reason.QUANTITY_OUT_OF_RANGE),
        (None, -LOT, Reason.QUANTITY_OUT_OF_RANGE),
        (None, MAX_QUANTITY + LOT, Reason.QUANTITY_OUT_OF_RANGE),
    ],
    ids=["off-tick", "below-band", "above-band", "off-lot", "zero", "negative", "above-max"],
)
def test_replace_applies_the_new_order_price_and_quantity_rules(
    book: Book, price: int | None, quantity: int | None, reason: Reason
) -> None:
    run(book, buy(1, 300, REF))
    before = state(book)

    events = run(book, ReplaceOrder(1, "alpha", price=price, quantity=quantity))

    assert events == [OrderRejected(3, 0, 1, "alpha", reason)]
    assert state(book) == before
