"""Event stream: gapless sequences, timestamps, determinism, level-2 data and snapshots."""

from __future__ import annotations

import hashlib

import pytest

from engine.book_protocol import Book
from engine.events import (
    LevelChanged,
    OrderAccepted,
    OrderCancelled,
    OrderExpired,
    OrderRejected,
    OrderReplaced,
    Record,
    StatusChanged,
    Trade,
    encode_records,
    record_of,
    typed,
)
from engine.marketdata import Depth, DepthMirror, PriceLevel
from engine.orders import AdvanceTime, CancelOrder, ReplaceOrder, SetTradingStatus
from rex.config import TradingStatus
from rex.vocabulary import Side, TimeInForce
from tests.engine.helpers import (
    REF,
    SYMBOL,
    TICK,
    NewBook,
    buy,
    only,
    random_commands,
    records_of,
    run,
    sell,
)

SEEDS = [21, 22, 23]


def _all_records(
    new_book: NewBook, seed: int, count: int = 2000
) -> tuple[Book, list[list[Record]]]:
    book = new_book()
    return book, records_of(book, random_commands(seed, count))


@pytest.mark.parametrize("seed", SEEDS)
def test_event_sequence_is_gapless_per_product(seed: int, new_book: NewBook) -> None:
    book, per_command = _all_records(new_book, seed)
    records = [r for rs in per_command for r in rs]

    assert [r[1] for r in records] == list(range(1, len(records) + 1))
    assert book.sequence == len(records)
    # The stream exercised every kind of event.
    seen = {r[0] for r in records}
    assert seen == {
        OrderAccepted,
        OrderRejected,
        Trade,
        OrderCancelled,
        OrderExpired,
        OrderReplaced,
        LevelChanged,
        StatusChanged,
    }


def test_event_sequence_is_gapless_in_a_hand_made_scenario(book: Book) -> None:
    events = [
        *run(book, sell(1, 100, REF, member="beta")),
        *run(book, sell(2, 100, REF + TICK, member="beta")),
        *run(book, buy(3, 300, REF + TICK)),  # two trades, remainder rests
        *run(book, CancelOrder(99, "alpha")),  # rejected
        *run(book, ReplaceOrder(3, "alpha", quantity=400)),  # loses priority: re-rests
        *run(book, SetTradingStatus(TradingStatus.HALTED)),
        *run(book, buy(4, 100, REF)),  # rejected: halted
    ]

    assert [(e.sequence, e.kind) for e in events] == list(
        enumerate(
            [
                "accepted",
                "level",
                "accepted",
                "level",
                "accepted",
                "trade",
                "level",
                "trade",
                "level",
                "level",
                "rejected",
                "replaced",
                "level",
                "level",
                "status",
                "rejected",
            ],
            start=1,
        )
    )
    assert book.sequence == events[-1].sequence


@pytest.mark.parametrize("seed", SEEDS)
def test_trade_sequence_is_gapless_and_counts_trades_only(seed: int, new_book: NewBook) -> None:
    book, per_command = _all_records(new_book, seed)
    trades = [typed(r) for rs in per_command for r in rs if r[0] is Trade]

    assert [t.trade_sequence for t in only(trades, Trade)] == list(range(1, len(trades) + 1))
    assert book.trade_sequence == len(trades)
    assert book.trade_sequence < book.sequence


def test_trade_sequence_is_separate_from_event_sequence(book: Book) -> None:
    run(book, sell(1, 100, REF, member="beta"))
    run(book, sell(2, 100, REF, member="gamma"))

    trades = only(run(book, buy(3, 200, REF)), Trade)

    assert [(t.sequence, t.trade_sequence) for t in trades] == [(6, 1), (7, 2)]


@pytest.mark.parametrize("seed", SEEDS)
def test_events_carry_their_commands_timestamp(seed: int, book: Book) -> None:
    for command in random_commands(seed, 1500):
        records = book.apply(command)
        assert {r[2] for r in records} <= {command.timestamp}


def test_expiry_events_carry_the_timestamp_of_the_command_that_triggers_them(
    book: Book,
) -> None:
    run(book, sell(1, 100, REF, time_in_force=TimeInForce.GTD, expire_time=100, timestamp=1))

    events = run(book, buy(2, 100, REF - TICK, member="beta", timestamp=250))

    assert [(e.kind, e.timestamp) for e in events] == [
        ("expired", 250),
        ("level", 250),
        ("accepted", 250),
        ("level", 250),
    ]


@pytest.mark.parametrize("seed", SEEDS)
def test_same_commands_give_byte_identical_events(seed: int, new_book: NewBook) -> None:
    _, first = _all_records(new_book, seed)
    _, second = _all_records(new_book, seed)

    first_bytes = encode_records([r for rs in first for r in rs])
    second_bytes = encode_records([r for rs in second for r in rs])

    assert len(first_bytes) > 10_000
    assert hashlib.sha256(first_bytes).hexdigest() == hashlib.sha256(second_bytes).hexdigest()
    assert first_bytes == second_bytes


def test_typed_and_record_of_are_inverses(book: Book) -> None:
    run(book, sell(1, 100, REF, member="beta"))
    records = book.apply(buy(2, 200, REF))

    assert [record_of(typed(r)) for r in records] == records


@pytest.mark.parametrize("seed", SEEDS)
def test_level_changes_rebuild_the_same_depth(seed: int, book: Book) -> None:
    mirror = DepthMirror(SYMBOL)
    for command in random_commands(seed, 2000):
        mirror.apply(book.apply(command))
        assert mirror.depth(1000) == book.depth(1000), f"after {command}"


def test_depth_lists_bids_best_first_and_asks_best_first(book: Book) -> None:
    for order_id, price in enumerate((REF - 3 * TICK, REF - TICK, REF - 2 * TICK), start=1):
        run(book, buy(order_id, 100 * order_id, price, member="beta"))
    for order_id, price in enumerate((REF + 2 * TICK, REF + 3 * TICK, REF + TICK), start=4):
        run(book, sell(order_id, 100 * order_id, price, member="gamma"))

    assert book.depth() == Depth(
        SYMBOL,
        12,
        (
            PriceLevel(REF - TICK, 200, 1),
            PriceLevel(REF - 2 * TICK, 300, 1),
            PriceLevel(REF - 3 * TICK, 100, 1),
        ),
        (
            PriceLevel(REF + TICK, 600, 1),
            PriceLevel(REF + 2 * TICK, 400, 1),
            PriceLevel(REF + 3 * TICK, 500, 1),
        ),
    )


def test_depth_is_cut_to_the_top_n_levels(book: Book) -> None:
    for i in range(5):
        run(book, buy(i + 1, 100, REF - (i + 1) * TICK, member="beta"))
        run(book, sell(i + 11, 100, REF + (i + 1) * TICK, member="gamma"))

    depth = book.depth(2)

    assert [level.price for level in depth.bids] == [REF - TICK, REF - 2 * TICK]
    assert [level.price for level in depth.asks] == [REF + TICK, REF + 2 * TICK]
    assert len(book.depth(10).bids) == 5
    assert book.depth(0) == Depth(SYMBOL, 20, (), ())


def test_depth_level_sums_quantity_and_counts_orders(book: Book) -> None:
    run(book, buy(1, 100, REF, member="beta"))
    run(book, buy(2, 300, REF, member="gamma"))
    run(book, buy(3, 500, REF, member="delta"))
    run(book, CancelOrder(2, "gamma"))

    assert book.depth().bids == (PriceLevel(REF, 600, 2),)


def test_depth_snapshot_carries_the_books_sequence(book: Book) -> None:
    run(book, buy(1, 100, REF))
    run(book, CancelOrder(5, "alpha"))

    assert book.depth().sequence == 3 == book.sequence


def test_best_bid_and_best_ask_are_the_top_levels(book: Book) -> None:
    assert (book.best_bid(), book.best_ask()) == (None, None)

    run(book, buy(1, 100, REF - 2 * TICK, member="beta"))
    run(book, buy(2, 200, REF - TICK, member="beta"))
    run(book, buy(3, 300, REF - TICK, member="gamma"))
    run(book, sell(4, 400, REF + TICK, member="gamma"))
    run(book, sell(5, 500, REF + 2 * TICK, member="beta"))

    assert book.best_bid() == PriceLevel(REF - TICK, 500, 2)
    assert book.best_ask() == PriceLevel(REF + TICK, 400, 1)
    assert book.depth().best_bid == book.best_bid()
    assert book.depth().best_ask == book.best_ask()

    run(book, CancelOrder(4, "gamma"))
    assert book.best_ask() == PriceLevel(REF + 2 * TICK, 500, 1)


def test_level_changed_reports_the_total_after_the_command(book: Book) -> None:
    run(book, sell(1, 100, REF, member="beta"))

    events = run(book, sell(2, 300, REF, member="gamma", timestamp=3))

    assert events[-1] == LevelChanged(4, 3, Side.SELL, REF, 400, 2)


def test_status_change_is_an_event(book: Book) -> None:
    assert run(book, SetTradingStatus(TradingStatus.HALTED, timestamp=9)) == [
        StatusChanged(1, 9, TradingStatus.HALTED)
    ]


def test_advance_time_with_nothing_due_emits_nothing(book: Book) -> None:
    run(book, buy(1, 100, REF, time_in_force=TimeInForce.GTD, expire_time=500, timestamp=1))

    assert run(book, AdvanceTime(499)) == []
    assert book.sequence == 2
