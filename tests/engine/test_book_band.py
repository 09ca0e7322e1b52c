"""An operator's price band on both books (engine/book_protocol.py): new orders and
replaces are checked against the band in force, orders resting outside a new band stay
(they trade and may be cancelled or reduced), and the change is an event of its own."""

from __future__ import annotations

import pytest

from engine.book_protocol import Book
from engine.events import BandChanged, OrderAccepted, OrderExpired, OrderRejected, Trade
from engine.orders import CancelOrder, ReplaceOrder, SetPriceBand
from rex.price_band import PriceBand
from rex.vocabulary import Reason, TimeInForce
from tests.engine.helpers import BAND_HIGH, BAND_LOW, TICK, buy, only, run, sell, state

# A band above products.toml's 450 000..550 000, overlapping it.
NEW_LOW, NEW_HIGH = 520_000, 600_000


def _reason(book: Book, command: object) -> Reason | None:
    events = run(book, command)  # type: ignore[arg-type]
    rejected = only(events, OrderRejected)
    return rejected[0].reason if rejected else None


def test_a_book_starts_with_the_products_band(book: Book) -> None:
    assert book.band == PriceBand(BAND_LOW, BAND_HIGH)


def test_the_band_change_is_an_event_and_changes_nothing_else(book: Book) -> None:
    run(book, buy(1, 100, 500_000))
    before = state(book)[:-1]
    events = run(book, SetPriceBand(NEW_LOW, NEW_HIGH, timestamp=7))
    assert events == [BandChanged(3, 7, NEW_LOW, NEW_HIGH)]
    assert book.band == PriceBand(NEW_LOW, NEW_HIGH)
    assert state(book)[:-1] == before
    assert book.sequence == 3


def test_a_new_order_is_checked_against_the_new_band(book: Book) -> None:
    run(book, SetPriceBand(NEW_LOW, NEW_HIGH))
    # Inside the old band, below the new one.
    assert _reason(book, buy(1, 100, 500_000)) is Reason.OUTSIDE_PRICE_BAND
    assert _reason(book, sell(2, 100, NEW_HIGH + TICK)) is Reason.OUTSIDE_PRICE_BAND
    # Outside the old band, inside the new one: accepted, and rests.
    events = run(book, sell(3, 100, 580_000))
    assert [type(e) for e in events][:1] == [OrderAccepted]
    assert book.order(3) is not None
    # Both limits are inside.
    assert _reason(book, buy(4, 100, NEW_LOW)) is None
    assert _reason(book, sell(5, 100, NEW_HIGH)) is None


def test_an_order_resting_outside_a_new_band_stays_and_trades(book: Book) -> None:
    run(book, sell(1, 300, 500_000))  # inside the old band only
    run(book, SetPriceBand(NEW_LOW, NEW_HIGH))
    assert book.order(1) is not None and book.order(1).remaining == 300  # type: ignore[union-attr]
    # A buy inside the new band crosses it: it trades at the resting order's price.
    [trade] = only(run(book, buy(2, 100, NEW_LOW, member="beta")), Trade)
    assert (trade.price, trade.quantity) == (500_000, 100)
    # Its owner may still reduce it (no price given) and cancel it.
    assert _reason(book, ReplaceOrder(1, "alpha", None, 200)) is None  # 100 filled
    assert _reason(book, ReplaceOrder(1, "alpha", 500_000, 200)) is Reason.OUTSIDE_PRICE_BAND
    assert _reason(book, CancelOrder(1, "alpha")) is None
    assert book.order(1) is None


def test_a_replace_to_a_price_outside_the_band_is_rejected(book: Book) -> None:
    run(book, buy(1, 100, 530_000))
    run(book, SetPriceBand(NEW_LOW, NEW_HIGH))
    before = state(book)
    assert _reason(book, ReplaceOrder(1, "alpha", 510_000, None)) is Reason.OUTSIDE_PRICE_BAND
    assert state(book) == before
    assert _reason(book, ReplaceOrder(1, "alpha", 590_000, None)) is None  # was above the old


@pytest.mark.parametrize("narrower", [True, False])
def test_a_band_change_first_expires_the_gtd_orders_due(book: Book, narrower: bool) -> None:
    run(book, buy(1, 100, 500_000, time_in_force=TimeInForce.GTD, expire_time=5))
    low, high = (490_000, 510_000) if narrower else (400_000, 600_000)
    events = run(book, SetPriceBand(low, high, timestamp=5))
    assert type(events[0]) is OrderExpired
    assert events[-1] == BandChanged(events[-2].sequence + 1, 5, low, high)


def test_bands_follow_one_another(book: Book) -> None:
    run(book, SetPriceBand(NEW_LOW, NEW_HIGH))
    run(book, SetPriceBand(BAND_LOW, BAND_HIGH))
    assert _reason(book, buy(1, 100, 500_000)) is None
    assert _reason(book, sell(2, 100, 580_000)) is Reason.OUTSIDE_PRICE_BAND
