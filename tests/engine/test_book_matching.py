"""Matching: price-time priority, trade price, partial fills, sweeps, market orders."""

from __future__ import annotations

import pytest

from engine.book_protocol import Book
from engine.events import LevelChanged, OrderAccepted, OrderCancelled, Trade
from engine.marketdata import PriceLevel
from rex.vocabulary import Reason, Side
from tests.engine.helpers import REF, TICK, buy, only, random_commands, run, sell


def test_incoming_order_trades_against_best_price_first(book: Book) -> None:
    run(book, sell(1, 100, REF + 2 * TICK, member="beta"))
    run(book, sell(2, 100, REF, member="gamma"))
    run(book, sell(3, 100, REF + TICK, member="beta"))

    trades = only(run(book, buy(4, 100, REF + 2 * TICK)), Trade)

    assert [(t.maker_order_id, t.price, t.quantity) for t in trades] == [(2, REF, 100)]
    assert book.best_ask() == PriceLevel(REF + TICK, 100, 1)


def test_better_price_beats_earlier_time(book: Book) -> None:
    run(book, buy(1, 100, REF - TICK, member="beta"))  # earlier, worse
    run(book, buy(2, 100, REF, member="gamma"))  # later, better

    trades = only(run(book, sell(3, 100, REF - TICK)), Trade)

    assert [(t.maker_order_id, t.price) for t in trades] == [(2, REF)]
    assert book.queue(Side.BUY, REF - TICK) == [1]


def test_orders_at_one_price_fill_first_in_first_out(book: Book) -> None:
    for order_id, member in ((1, "beta"), (2, "gamma"), (3, "delta")):
        run(book, sell(order_id, 100, REF, member=member))

    trades = only(run(book, buy(4, 200, REF)), Trade)

    assert [t.maker_order_id for t in trades] == [1, 2]
    assert book.queue(Side.SELL, REF) == [3]


def test_partially_filled_maker_keeps_its_place_at_the_front(book: Book) -> None:
    run(book, sell(1, 500, REF, member="beta"))
    run(book, sell(2, 500, REF, member="gamma"))

    first = only(run(book, buy(3, 200, REF)), Trade)
    second = only(run(book, buy(4, 400, REF)), Trade)

    assert [(t.maker_order_id, t.quantity, t.maker_remaining) for t in first] == [(1, 200, 300)]
    assert [(t.maker_order_id, t.quantity, t.maker_remaining) for t in second] == [
        (1, 300, 0),
        (2, 100, 400),
    ]
    assert book.queue(Side.SELL, REF) == [2]
    resting = book.order(2)
    assert resting is not None
    assert (resting.remaining, resting.filled) == (400, 100)


def test_partially_filled_taker_rests_its_remainder(book: Book) -> None:
    run(book, sell(1, 200, REF, member="beta"))

    events = run(book, buy(2, 500, REF + TICK))

    assert only(events, Trade)[0].taker_remaining == 300
    assert events[-1] == LevelChanged(
        sequence=6, timestamp=0, side=Side.BUY, price=REF + TICK, quantity=300, orders=1
    )
    assert book.best_bid() == PriceLevel(REF + TICK, 300, 1)
    assert book.best_ask() is None


def test_trade_executes_at_resting_order_price(book: Book) -> None:
    run(book, sell(1, 100, REF, member="beta"))

    trades = only(run(book, buy(2, 100, REF + 5 * TICK)), Trade)

    assert [(t.price, t.quantity, t.aggressor) for t in trades] == [(REF, 100, Side.BUY)]


def test_trade_executes_at_resting_bid_price_when_a_seller_aggresses(book: Book) -> None:
    run(book, buy(1, 100, REF + 5 * TICK, member="beta"))

    trades = only(run(book, sell(2, 100, REF)), Trade)

    assert [(t.price, t.quantity, t.aggressor) for t in trades] == [
        (REF + 5 * TICK, 100, Side.SELL)
    ]


def test_trade_reports_taker_and_maker_with_cumulative_fills(book: Book) -> None:
    run(book, sell(1, 300, REF, member="beta", client_order_id="m-1", timestamp=5))

    events = run(book, buy(2, 500, REF, member="alpha", client_order_id="t-1", timestamp=9))

    assert events[1] == Trade(
        sequence=4,
        timestamp=9,
        trade_sequence=1,
        price=REF,
        quantity=300,
        aggressor=Side.BUY,
        taker_order_id=2,
        taker_member="alpha",
        taker_client_order_id="t-1",
        taker_filled=300,
        taker_remaining=200,
        maker_order_id=1,
        maker_member="beta",
        maker_client_order_id="m-1",
        maker_filled=300,
        maker_remaining=0,
    )


def test_sweep_takes_levels_in_price_order_and_stops_at_the_limit(book: Book) -> None:
    run(book, sell(1, 100, REF, member="beta"))
    run(book, sell(2, 200, REF + TICK, member="gamma"))
    run(book, sell(3, 300, REF + 2 * TICK, member="beta"))

    events = run(book, buy(4, 500, REF + TICK, timestamp=10))

    assert events == [
        OrderAccepted(7, 10, 4, "alpha", "", Side.BUY, REF + TICK, 500),
        Trade(8, 10, 1, REF, 100, Side.BUY, 4, "alpha", "", 100, 400, 1, "beta", "", 100, 0),
        LevelChanged(9, 10, Side.SELL, REF, 0, 0),
        Trade(
            10, 10, 2, REF + TICK, 200, Side.BUY, 4, "alpha", "", 300, 200, 2, "gamma", "", 200, 0
        ),
        LevelChanged(11, 10, Side.SELL, REF + TICK, 0, 0),
        LevelChanged(12, 10, Side.BUY, REF + TICK, 200, 1),
    ]
    assert book.best_ask() == PriceLevel(REF + 2 * TICK, 300, 1)


def test_sweep_reports_one_level_change_per_level_touched(book: Book) -> None:
    for order_id in (1, 2, 3):
        run(book, sell(order_id, 100, REF, member="beta"))

    events = run(book, buy(4, 200, REF))

    assert only(events, LevelChanged) == [LevelChanged(10, 0, Side.SELL, REF, 100, 1)]


def test_market_order_sweeps_at_any_price_and_cancels_what_is_left(book: Book) -> None:
    run(book, sell(1, 100, REF, member="beta"))
    run(book, sell(2, 200, REF + 40 * TICK, member="gamma"))

    events = run(book, buy(3, 500))

    assert [(t.maker_order_id, t.price, t.quantity) for t in only(events, Trade)] == [
        (1, REF, 100),
        (2, REF + 40 * TICK, 200),
    ]
    assert events[-1] == OrderCancelled(
        10, 0, 3, "alpha", "", Side.BUY, None, 200, 300, Reason.IMMEDIATE_OR_CANCEL
    )
    assert book.best_bid() is None
    assert book.best_ask() is None


def test_market_order_on_an_empty_side_is_cancelled_and_never_rests(book: Book) -> None:
    run(book, buy(1, 100, REF, member="beta"))  # same side: no liquidity for a buy

    events = run(book, buy(2, 300))

    assert events == [
        OrderAccepted(3, 0, 2, "alpha", "", Side.BUY, None, 300),
        OrderCancelled(4, 0, 2, "alpha", "", Side.BUY, None, 300, 0, Reason.IMMEDIATE_OR_CANCEL),
    ]
    assert book.order(2) is None
    assert book.best_bid() == PriceLevel(REF, 100, 1)


def test_market_sell_fills_against_best_bids(book: Book) -> None:
    run(book, buy(1, 100, REF - TICK, member="beta"))
    run(book, buy(2, 100, REF, member="gamma"))

    trades = only(run(book, sell(3, 200)), Trade)

    assert [(t.maker_order_id, t.price) for t in trades] == [(2, REF), (1, REF - TICK)]
    assert book.best_bid() is None


@pytest.mark.parametrize("seed", [1, 2, 3, 4, 5])
def test_book_is_never_crossed(seed: int, book: Book) -> None:
    for command in random_commands(seed, 1500):
        book.apply(command)
        bid, ask = book.best_bid(), book.best_ask()
        if bid is not None and ask is not None:
            assert bid.price < ask.price, f"crossed after {command}"
    assert book.trade_sequence > 100  # the stream did trade
