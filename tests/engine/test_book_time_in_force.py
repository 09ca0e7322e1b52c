"""Time in force: GTC, IOC, FOK (with self-trade prevention) and GTD expiry."""

from __future__ import annotations

import pytest

from engine.book_protocol import Book
from engine.events import (
    LevelChanged,
    OrderAccepted,
    OrderCancelled,
    OrderExpired,
    OrderRejected,
    Trade,
)
from engine.marketdata import PriceLevel
from engine.orders import (
    AdvanceTime,
    CancelOrder,
    Command,
    MassCancel,
    ReplaceOrder,
    SetTradingStatus,
)
from rex.config import TradingStatus
from rex.vocabulary import OrderType, Reason, SelfTradePrevention, Side, TimeInForce
from tests.engine.helpers import REF, TICK, buy, only, run, sell, state

GTC, IOC, FOK, GTD = TimeInForce.GTC, TimeInForce.IOC, TimeInForce.FOK, TimeInForce.GTD


# ----------------------------------------------------------------------- GTC


def test_gtc_order_rests_until_cancelled(book: Book) -> None:
    run(book, buy(1, 300, REF, time_in_force=GTC, timestamp=10))

    assert run(book, AdvanceTime(10**18)) == []
    assert book.best_bid() == PriceLevel(REF, 300, 1)

    events = run(book, CancelOrder(1, "alpha", timestamp=10**18))
    assert only(events, OrderCancelled)[0].reason is Reason.REQUESTED
    assert book.best_bid() is None


# ----------------------------------------------------------------------- IOC


def test_ioc_remainder_is_cancelled(book: Book) -> None:
    run(book, sell(1, 200, REF, member="beta"))

    events = run(book, buy(2, 500, REF, time_in_force=IOC))

    assert [t.quantity for t in only(events, Trade)] == [200]
    assert events[-1] == OrderCancelled(
        6, 0, 2, "alpha", "", Side.BUY, REF, 300, 200, Reason.IMMEDIATE_OR_CANCEL
    )
    assert book.best_bid() is None
    assert book.order(2) is None


def test_ioc_that_cannot_trade_is_cancelled_whole(book: Book) -> None:
    run(book, sell(1, 200, REF + TICK, member="beta"))

    events = run(book, buy(2, 500, REF, time_in_force=IOC))

    assert events == [
        OrderAccepted(3, 0, 2, "alpha", "", Side.BUY, REF, 500),
        OrderCancelled(4, 0, 2, "alpha", "", Side.BUY, REF, 500, 0, Reason.IMMEDIATE_OR_CANCEL),
    ]
    assert book.best_bid() is None


# ----------------------------------------------------------------------- FOK


def test_fok_fills_in_full_across_levels_when_liquidity_suffices(book: Book) -> None:
    run(book, sell(1, 200, REF, member="beta"))
    run(book, sell(2, 300, REF + TICK, member="gamma"))

    events = run(book, buy(3, 500, REF + TICK, time_in_force=FOK))

    assert [(t.maker_order_id, t.quantity) for t in only(events, Trade)] == [(1, 200), (2, 300)]
    assert only(events, OrderCancelled) == []
    assert book.best_ask() is None
    assert book.best_bid() is None


def test_fok_that_cannot_fill_in_full_trades_nothing(book: Book) -> None:
    run(book, sell(1, 200, REF, member="beta"))
    run(book, sell(2, 300, REF + 2 * TICK, member="gamma"))  # beyond the FOK's limit
    before = state(book)

    events = run(book, buy(3, 500, REF + TICK, time_in_force=FOK))

    assert events == [
        OrderAccepted(5, 0, 3, "alpha", "", Side.BUY, REF + TICK, 500),
        OrderCancelled(6, 0, 3, "alpha", "", Side.BUY, REF + TICK, 500, 0, Reason.FILL_OR_KILL),
    ]
    assert book.trade_sequence == 0
    assert state(book) == before


def test_fok_limit_that_does_not_cross_is_killed(book: Book) -> None:
    run(book, sell(1, 200, REF + TICK, member="beta"))

    events = run(book, buy(2, 100, REF, time_in_force=FOK))

    assert only(events, OrderCancelled)[0].reason is Reason.FILL_OR_KILL
    assert book.best_bid() is None


@pytest.mark.parametrize(
    "stp", [SelfTradePrevention.CANCEL_NEWEST, SelfTradePrevention.CANCEL_BOTH]
)
def test_fok_is_killed_when_self_trade_prevention_would_stop_the_fill(
    book: Book, stp: SelfTradePrevention
) -> None:
    run(book, sell(1, 200, REF, member="beta"))
    run(book, sell(2, 200, REF, member="alpha"))  # the FOK's own order, in the way
    run(book, sell(3, 500, REF, member="gamma"))  # enough liquidity behind it
    before = state(book)

    events = run(book, buy(4, 500, REF, time_in_force=FOK, stp=stp))

    assert events == [
        OrderAccepted(7, 0, 4, "alpha", "", Side.BUY, REF, 500),
        OrderCancelled(8, 0, 4, "alpha", "", Side.BUY, REF, 500, 0, Reason.FILL_OR_KILL),
    ]
    assert state(book) == before  # the own resting order is not cancelled either


def test_fok_fills_when_self_trade_prevention_stops_only_after_the_fill(
    book: Book,
) -> None:
    run(book, sell(1, 500, REF, member="beta"))
    run(book, sell(2, 200, REF, member="alpha"))  # behind the needed liquidity

    events = run(book, buy(3, 500, REF, time_in_force=FOK))

    assert [(t.maker_order_id, t.quantity) for t in only(events, Trade)] == [(1, 500)]
    assert book.queue(Side.SELL, REF) == [2]


def test_fok_with_cancel_oldest_cancels_own_order_and_fills_from_the_rest(
    book: Book,
) -> None:
    run(book, sell(1, 200, REF, member="alpha"))
    run(book, sell(2, 500, REF, member="beta"))

    events = run(book, buy(3, 500, REF, time_in_force=FOK, stp=SelfTradePrevention.CANCEL_OLDEST))

    assert [type(e).__name__ for e in events] == [
        "OrderAccepted",
        "OrderCancelled",
        "Trade",
        "LevelChanged",
    ]
    cancelled = only(events, OrderCancelled)[0]
    assert (cancelled.order_id, cancelled.reason) == (1, Reason.SELF_TRADE)
    assert [(t.maker_order_id, t.quantity) for t in only(events, Trade)] == [(2, 500)]
    assert book.best_ask() is None


def test_fok_with_cancel_oldest_that_cannot_fill_leaves_own_order_resting(
    book: Book,
) -> None:
    run(book, sell(1, 200, REF, member="alpha"))
    run(book, sell(2, 300, REF, member="beta"))
    before = state(book)

    events = run(book, buy(3, 500, REF, time_in_force=FOK, stp=SelfTradePrevention.CANCEL_OLDEST))

    assert only(events, OrderCancelled)[0].reason is Reason.FILL_OR_KILL
    assert len(events) == 2
    assert state(book) == before


def test_fok_market_order_that_cannot_fill_is_killed_as_fill_or_kill(book: Book) -> None:
    run(book, sell(1, 200, REF, member="beta"))

    events = run(book, buy(2, 300, time_in_force=FOK))

    assert events[-1] == OrderCancelled(
        4, 0, 2, "alpha", "", Side.BUY, None, 300, 0, Reason.FILL_OR_KILL
    )
    assert book.best_ask() == PriceLevel(REF, 200, 1)


def test_fok_market_order_on_an_empty_book_is_killed_as_fill_or_kill(book: Book) -> None:
    events = run(book, buy(1, 300, time_in_force=FOK))

    assert events == [
        OrderAccepted(1, 0, 1, "alpha", "", Side.BUY, None, 300),
        OrderCancelled(2, 0, 1, "alpha", "", Side.BUY, None, 300, 0, Reason.FILL_OR_KILL),
    ]


# ----------------------------------------------------------------------- GTD


def test_gtd_order_rests_until_its_expire_time(book: Book) -> None:
    run(book, sell(1, 300, REF, time_in_force=GTD, expire_time=1_000, timestamp=10))

    assert run(book, AdvanceTime(999)) == []
    assert book.best_ask() == PriceLevel(REF, 300, 1)


def test_gtd_order_expires_on_advance_time(book: Book) -> None:
    run(book, sell(1, 300, REF, time_in_force=GTD, expire_time=1_000, timestamp=10))

    events = run(book, AdvanceTime(1_000))

    assert events == [
        OrderExpired(3, 1_000, 1, "alpha", "", Side.SELL, REF, 300, 0),
        LevelChanged(4, 1_000, Side.SELL, REF, 0, 0),
    ]
    assert book.order(1) is None
    assert book.best_ask() is None


def test_gtd_orders_expire_in_expire_time_order(book: Book) -> None:
    run(book, sell(1, 100, REF, time_in_force=GTD, expire_time=3_000, timestamp=10))
    run(book, sell(2, 100, REF, time_in_force=GTD, expire_time=2_000, timestamp=11))
    run(book, sell(3, 100, REF, time_in_force=GTD, expire_time=9_000, timestamp=12))

    events = run(book, AdvanceTime(5_000))

    assert [e.order_id for e in only(events, OrderExpired)] == [2, 1]
    assert book.queue(Side.SELL, REF) == [3]


def test_partially_filled_gtd_order_expires_with_its_remainder(book: Book) -> None:
    run(book, sell(1, 500, REF, time_in_force=GTD, expire_time=1_000, timestamp=10))
    run(book, buy(2, 200, REF, member="beta", timestamp=20))

    events = run(book, AdvanceTime(1_500))

    assert only(events, OrderExpired) == [
        OrderExpired(6, 1_500, 1, "alpha", "", Side.SELL, REF, 300, 200)
    ]


def _gtd_expiry_triggers() -> list[tuple[str, Command]]:
    ts = 1_500
    return [
        ("new order", buy(9, 100, REF - 10 * TICK, member="beta", timestamp=ts)),
        ("cancel", CancelOrder(99, "beta", timestamp=ts)),
        ("replace", ReplaceOrder(99, "beta", quantity=200, timestamp=ts)),
        ("mass cancel", MassCancel("beta", timestamp=ts)),
        ("status change", SetTradingStatus(TradingStatus.OPEN, timestamp=ts)),
    ]


@pytest.mark.parametrize(
    "command", [c for _, c in _gtd_expiry_triggers()], ids=[n for n, _ in _gtd_expiry_triggers()]
)
def test_gtd_order_expires_before_a_later_command_is_processed(
    book: Book, command: Command
) -> None:
    run(book, sell(1, 300, REF, time_in_force=GTD, expire_time=1_000, timestamp=10))

    events = run(book, command)

    assert events[:2] == [
        OrderExpired(3, 1_500, 1, "alpha", "", Side.SELL, REF, 300, 0),
        LevelChanged(4, 1_500, Side.SELL, REF, 0, 0),
    ]
    assert book.order(1) is None


def test_expired_gtd_order_does_not_trade_with_the_command_that_expires_it(
    book: Book,
) -> None:
    run(book, sell(1, 300, REF, time_in_force=GTD, expire_time=1_000, timestamp=10))

    events = run(book, buy(2, 300, REF, member="beta", timestamp=1_000))

    assert [e.kind for e in events] == ["expired", "level", "accepted", "level"]
    assert book.trade_sequence == 0
    assert book.best_bid() == PriceLevel(REF, 300, 1)


def test_cancelled_gtd_order_does_not_expire_later(book: Book) -> None:
    run(book, sell(1, 300, REF, time_in_force=GTD, expire_time=1_000, timestamp=10))
    run(book, CancelOrder(1, "alpha", timestamp=20))

    assert run(book, AdvanceTime(2_000)) == []
    assert book.sequence == 4


def test_replaced_gtd_order_keeps_its_expire_time_and_expires_once(book: Book) -> None:
    run(book, sell(1, 300, REF, time_in_force=GTD, expire_time=1_000, timestamp=10))
    run(book, ReplaceOrder(1, "alpha", price=REF + TICK, quantity=400, timestamp=20))

    assert run(book, AdvanceTime(999)) == []
    events = run(book, AdvanceTime(1_000))

    assert only(events, OrderExpired) == [
        OrderExpired(6, 1_000, 1, "alpha", "", Side.SELL, REF + TICK, 400, 0)
    ]
    assert run(book, AdvanceTime(5_000)) == []


@pytest.mark.parametrize("expire_time", [999, 1_000], ids=["before", "equal"])
def test_gtd_expire_time_not_after_the_order_timestamp_is_rejected(
    book: Book, expire_time: int
) -> None:
    events = run(
        book, buy(1, 100, REF, time_in_force=GTD, expire_time=expire_time, timestamp=1_000)
    )

    assert events == [OrderRejected(1, 1_000, 1, "alpha", Reason.EXPIRE_TIME_IN_PAST)]
    assert book.best_bid() is None


def test_gtd_without_expire_time_is_rejected(book: Book) -> None:
    events = run(book, buy(1, 100, REF, time_in_force=GTD))

    assert events == [OrderRejected(1, 0, 1, "alpha", Reason.MISSING_EXPIRE_TIME)]


@pytest.mark.parametrize("tif", [GTC, IOC, FOK])
def test_expire_time_on_a_non_gtd_order_is_rejected(book: Book, tif: TimeInForce) -> None:
    events = run(book, buy(1, 100, REF, time_in_force=tif, expire_time=5_000))

    assert events == [OrderRejected(1, 0, 1, "alpha", Reason.EXPIRE_TIME_NOT_ALLOWED)]


def test_market_gtd_order_is_rejected(book: Book) -> None:
    run(book, sell(1, 100, REF, member="beta"))

    events = run(
        book,
        buy(2, 100, order_type=OrderType.MARKET, time_in_force=GTD, expire_time=5_000),
    )

    assert events == [OrderRejected(3, 0, 2, "alpha", Reason.INVALID_TIME_IN_FORCE)]
    assert book.best_ask() == PriceLevel(REF, 100, 1)
