"""Post-only: rest as a maker or be rejected; never take liquidity."""

from __future__ import annotations

import pytest

from engine.book_protocol import Book
from engine.events import LevelChanged, OrderAccepted, OrderRejected, Trade
from engine.marketdata import PriceLevel
from rex.vocabulary import OrderType, Reason, Side, TimeInForce
from tests.engine.helpers import REF, TICK, buy, only, run, sell, state


def test_post_only_order_that_does_not_cross_rests(book: Book) -> None:
    run(book, sell(1, 100, REF + TICK, member="beta"))

    events = run(book, buy(2, 300, REF, post_only=True, timestamp=7))

    assert events == [
        OrderAccepted(3, 7, 2, "alpha", "", Side.BUY, REF, 300),
        LevelChanged(4, 7, Side.BUY, REF, 300, 1),
    ]


@pytest.mark.parametrize(
    ("resting_price", "incoming_price"),
    [(REF, REF), (REF, REF + TICK)],
    ids=["touching", "through"],
)
def test_post_only_buy_that_would_take_is_rejected(
    book: Book, resting_price: int, incoming_price: int
) -> None:
    run(book, sell(1, 100, resting_price, member="beta"))
    before = state(book)

    events = run(book, buy(2, 100, incoming_price, post_only=True))

    assert events == [OrderRejected(3, 0, 2, "alpha", Reason.POST_ONLY_WOULD_TAKE)]
    assert state(book) == before
    assert book.trade_sequence == 0


@pytest.mark.parametrize(
    ("resting_price", "incoming_price"),
    [(REF, REF), (REF, REF - TICK)],
    ids=["touching", "through"],
)
def test_post_only_sell_that_would_take_is_rejected(
    book: Book, resting_price: int, incoming_price: int
) -> None:
    run(book, buy(1, 100, resting_price, member="beta"))
    before = state(book)

    events = run(book, sell(2, 100, incoming_price, post_only=True))

    assert events == [OrderRejected(3, 0, 2, "alpha", Reason.POST_ONLY_WOULD_TAKE)]
    assert state(book) == before


def test_post_only_would_take_even_against_own_order(book: Book) -> None:
    run(book, sell(1, 100, REF, member="alpha"))

    events = run(book, buy(2, 100, REF, post_only=True))

    assert events == [OrderRejected(3, 0, 2, "alpha", Reason.POST_ONLY_WOULD_TAKE)]


@pytest.mark.parametrize(
    "kwargs",
    [
        {"time_in_force": TimeInForce.IOC},
        {"time_in_force": TimeInForce.FOK},
        {"price": None, "order_type": OrderType.MARKET},
    ],
    ids=["IOC", "FOK", "market"],
)
def test_post_only_is_not_allowed_on_orders_that_never_rest(
    book: Book, kwargs: dict[str, object]
) -> None:
    fields: dict[str, object] = {"price": REF} | kwargs
    price = fields.pop("price")
    assert price is None or isinstance(price, int)

    events = run(book, buy(1, 100, price, post_only=True, **fields))

    assert events == [OrderRejected(1, 0, 1, "alpha", Reason.POST_ONLY_NOT_ALLOWED)]


def test_post_only_gtd_order_rests(book: Book) -> None:
    events = run(
        book,
        buy(
            1, 100, REF, post_only=True, time_in_force=TimeInForce.GTD, expire_time=50, timestamp=1
        ),
    )

    assert [e.kind for e in events] == ["accepted", "level"]
    assert book.best_bid() == PriceLevel(REF, 100, 1)


def test_resting_post_only_order_trades_as_maker(book: Book) -> None:
    run(book, sell(1, 200, REF, post_only=True))

    trades = only(run(book, buy(2, 200, REF + TICK, member="beta")), Trade)

    assert [(t.maker_order_id, t.taker_order_id, t.price, t.aggressor) for t in trades] == [
        (1, 2, REF, Side.BUY)
    ]
