"""Self-trade prevention: two orders of one member never trade; the incoming order's mode
decides what is cancelled."""

from __future__ import annotations

import pytest

from engine.book_protocol import Book
from engine.events import LevelChanged, OrderAccepted, OrderCancelled, Trade
from engine.marketdata import PriceLevel
from engine.orders import ReplaceOrder
from rex.vocabulary import Reason, SelfTradePrevention, Side
from tests.engine.helpers import REF, TICK, buy, only, random_commands, run, sell

NEWEST = SelfTradePrevention.CANCEL_NEWEST
OLDEST = SelfTradePrevention.CANCEL_OLDEST
BOTH = SelfTradePrevention.CANCEL_BOTH


def test_cancel_newest_is_the_default_mode(book: Book) -> None:
    run(book, sell(1, 100, REF, member="alpha"))

    events = run(book, buy(2, 100, REF, member="alpha"))  # no stp given

    assert [(e.order_id, e.reason) for e in only(events, OrderCancelled)] == [
        (2, Reason.SELF_TRADE)
    ]
    assert book.queue(Side.SELL, REF) == [1]


def test_cancel_newest_cancels_the_incoming_order_and_keeps_the_resting_one(
    book: Book,
) -> None:
    run(book, sell(1, 300, REF, member="alpha"))

    events = run(book, buy(2, 200, REF, member="alpha", timestamp=4))

    assert events == [
        OrderAccepted(3, 4, 2, "alpha", "", Side.BUY, REF, 200),
        OrderCancelled(4, 4, 2, "alpha", "", Side.BUY, REF, 200, 0, Reason.SELF_TRADE),
    ]
    assert book.best_ask() == PriceLevel(REF, 300, 1)
    assert book.best_bid() is None


def test_cancel_newest_keeps_trades_made_before_reaching_the_own_order(
    book: Book,
) -> None:
    run(book, sell(1, 100, REF, member="beta"))
    run(book, sell(2, 100, REF, member="alpha"))
    run(book, sell(3, 100, REF, member="gamma"))

    events = run(book, buy(4, 300, REF, member="alpha"))

    assert events == [
        OrderAccepted(7, 0, 4, "alpha", "", Side.BUY, REF, 300),
        Trade(8, 0, 1, REF, 100, Side.BUY, 4, "alpha", "", 100, 200, 1, "beta", "", 100, 0),
        LevelChanged(9, 0, Side.SELL, REF, 200, 2),
        OrderCancelled(10, 0, 4, "alpha", "", Side.BUY, REF, 200, 100, Reason.SELF_TRADE),
    ]
    assert book.queue(Side.SELL, REF) == [2, 3]


def test_cancel_oldest_cancels_the_resting_order_and_matching_goes_on(
    book: Book,
) -> None:
    run(book, sell(1, 100, REF, member="alpha", client_order_id="old"))
    run(book, sell(2, 300, REF, member="beta"))

    events = run(book, buy(3, 200, REF, member="alpha", stp=OLDEST))

    assert events == [
        OrderAccepted(5, 0, 3, "alpha", "", Side.BUY, REF, 200),
        OrderCancelled(6, 0, 1, "alpha", "old", Side.SELL, REF, 100, 0, Reason.SELF_TRADE),
        Trade(7, 0, 1, REF, 200, Side.BUY, 3, "alpha", "", 200, 0, 2, "beta", "", 200, 100),
        LevelChanged(8, 0, Side.SELL, REF, 100, 1),
    ]
    assert book.order(1) is None


def test_cancel_oldest_incoming_order_rests_after_cancelling_own_orders(
    book: Book,
) -> None:
    run(book, sell(1, 100, REF, member="alpha"))

    events = run(book, buy(2, 200, REF, member="alpha", stp=OLDEST))

    assert [e.kind for e in events] == ["accepted", "cancelled", "level", "level"]
    assert book.best_ask() is None
    assert book.best_bid() == PriceLevel(REF, 200, 1)


def test_cancel_both_cancels_the_resting_and_the_incoming_order(book: Book) -> None:
    run(book, sell(1, 100, REF, member="alpha"))
    run(book, sell(2, 300, REF, member="beta"))

    events = run(book, buy(3, 200, REF, member="alpha", stp=BOTH))

    assert events == [
        OrderAccepted(5, 0, 3, "alpha", "", Side.BUY, REF, 200),
        OrderCancelled(6, 0, 1, "alpha", "", Side.SELL, REF, 100, 0, Reason.SELF_TRADE),
        LevelChanged(7, 0, Side.SELL, REF, 300, 1),
        OrderCancelled(8, 0, 3, "alpha", "", Side.BUY, REF, 200, 0, Reason.SELF_TRADE),
    ]
    assert book.queue(Side.SELL, REF) == [2]
    assert book.best_bid() is None


def test_incoming_orders_mode_decides_not_the_resting_orders(book: Book) -> None:
    run(book, sell(1, 100, REF, member="alpha", stp=OLDEST))

    events = run(book, buy(2, 100, REF, member="alpha", stp=NEWEST))

    assert [(e.order_id, e.reason) for e in only(events, OrderCancelled)] == [
        (2, Reason.SELF_TRADE)
    ]
    assert book.queue(Side.SELL, REF) == [1]


def test_self_trade_prevention_applies_to_market_orders(book: Book) -> None:
    run(book, sell(1, 100, REF, member="alpha"))

    events = run(book, buy(2, 100, member="alpha"))

    assert only(events, Trade) == []
    assert only(events, OrderCancelled)[0].reason is Reason.SELF_TRADE
    assert book.queue(Side.SELL, REF) == [1]


def test_replaced_order_that_crosses_own_order_is_stopped_by_self_trade_prevention(
    book: Book,
) -> None:
    run(book, sell(1, 100, REF, member="alpha"))
    run(book, buy(2, 100, REF - TICK, member="alpha"))

    events = run(book, ReplaceOrder(2, "alpha", price=REF))

    assert [e.kind for e in events] == ["replaced", "level", "cancelled"]
    cancelled = only(events, OrderCancelled)[0]
    assert (cancelled.order_id, cancelled.reason) == (2, Reason.SELF_TRADE)
    assert book.order(2) is None
    assert book.queue(Side.SELL, REF) == [1]


@pytest.mark.parametrize("stp", list(SelfTradePrevention))
def test_two_orders_of_one_member_never_trade(book: Book, stp: SelfTradePrevention) -> None:
    run(book, sell(1, 100, REF, member="alpha"))
    run(book, sell(2, 100, REF + TICK, member="beta"))

    events = run(book, buy(3, 200, REF + TICK, member="alpha", stp=stp))

    assert all(t.maker_member != "alpha" for t in only(events, Trade))


@pytest.mark.parametrize("seed", [11, 12, 13])
def test_two_orders_of_one_member_never_trade_in_a_mixed_stream(seed: int, book: Book) -> None:
    trades = [t for c in random_commands(seed, 2000) for t in only(run(book, c), Trade)]

    assert len(trades) > 100
    assert [t for t in trades if t.taker_member == t.maker_member] == []
