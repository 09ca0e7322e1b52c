"""Mass cancel: the member's kill switch."""

from __future__ import annotations

import pytest

from engine.book_protocol import Book
from engine.events import LevelChanged, OrderCancelled
from engine.marketdata import PriceLevel
from engine.orders import MassCancel, SetTradingStatus
from rex.config import TradingStatus
from rex.vocabulary import Reason, Side
from tests.engine.helpers import REF, TICK, buy, run, sell, state


def _mixed_book(book: Book) -> None:
    run(book, buy(1, 100, REF - TICK, member="alpha", client_order_id="a1"))
    run(book, sell(2, 200, REF + TICK, member="beta"))
    run(book, sell(3, 300, REF + 2 * TICK, member="alpha", client_order_id="a3"))
    run(book, buy(4, 400, REF - TICK, member="beta"))
    run(book, buy(5, 500, REF - 2 * TICK, member="alpha", client_order_id="a5"))


def test_kill_switch_cancels_only_that_members_orders_in_acceptance_order(
    book: Book,
) -> None:
    _mixed_book(book)

    events = run(book, MassCancel("alpha", timestamp=77))

    mass = Reason.MASS_CANCEL
    assert events == [
        OrderCancelled(11, 77, 1, "alpha", "a1", Side.BUY, REF - TICK, 100, 0, mass),
        LevelChanged(12, 77, Side.BUY, REF - TICK, 400, 1),
        OrderCancelled(13, 77, 3, "alpha", "a3", Side.SELL, REF + 2 * TICK, 300, 0, mass),
        LevelChanged(14, 77, Side.SELL, REF + 2 * TICK, 0, 0),
        OrderCancelled(15, 77, 5, "alpha", "a5", Side.BUY, REF - 2 * TICK, 500, 0, mass),
        LevelChanged(16, 77, Side.BUY, REF - 2 * TICK, 0, 0),
    ]
    assert [o.order_id for o in book.orders()] == [2, 4]
    assert book.best_bid() == PriceLevel(REF - TICK, 400, 1)
    assert book.best_ask() == PriceLevel(REF + TICK, 200, 1)


def test_kill_switch_reports_what_was_left_of_partially_filled_orders(
    book: Book,
) -> None:
    run(book, buy(1, 500, REF, member="alpha"))
    run(book, sell(2, 200, REF, member="beta"))

    events = run(book, MassCancel("alpha"))

    assert events[0] == OrderCancelled(
        6, 0, 1, "alpha", "", Side.BUY, REF, 300, 200, Reason.MASS_CANCEL
    )


def test_kill_switch_of_a_member_without_orders_changes_nothing(book: Book) -> None:
    _mixed_book(book)
    before = state(book)

    assert run(book, MassCancel("gamma")) == []
    assert state(book) == before
    assert book.sequence == 10


@pytest.mark.parametrize("status", [TradingStatus.HALTED, TradingStatus.CLOSED])
def test_kill_switch_works_while_trading_is_not_open(book: Book, status: TradingStatus) -> None:
    _mixed_book(book)
    run(book, SetTradingStatus(status))

    events = run(book, MassCancel("beta"))

    assert [(e.order_id, e.reason) for e in events if isinstance(e, OrderCancelled)] == [
        (2, Reason.MASS_CANCEL),
        (4, Reason.MASS_CANCEL),
    ]
    assert [o.order_id for o in book.orders()] == [1, 3, 5]
