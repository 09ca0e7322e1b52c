"""Market: input-log entries in, the exchange's results out -- reports and trades as the
protocol's objects, snapshots as BookSnapshot; nothing encoded, nothing addressed (that is
engine/outputs.py)."""

from __future__ import annotations

from engine.market import MASS_CANCELLED, Market
from rex.protocol import BookSnapshot, ExecStatus, ExecutionReport, TradeMessage
from rex.vocabulary import Reason, Side
from tests.engine.helpers import ASK, BID, PRODUCT, SYMBOL, Session


def reports(results: list[ExecutionReport | TradeMessage]) -> list[tuple[object, ...]]:
    """(member, client order id, status, cumulative, leaves, reason) of each report."""
    return [
        (r.member, r.client_order_id, r.status, r.cumulative_quantity, r.leaves_quantity, r.reason)
        for r in results
        if isinstance(r, ExecutionReport)
    ]


def test_a_resting_order_is_answered_new_with_what_it_asked() -> None:
    s = Session()
    results = Market(PRODUCT).handle(s.new("alpha", "a1", Side.BUY, 300, BID))
    assert results == [
        ExecutionReport(
            exec_id=f"{SYMBOL}-1",
            member="alpha",
            product=SYMBOL,
            status=ExecStatus.NEW,
            timestamp=s.now,
            order_id=1,
            client_order_id="a1",
            side=Side.BUY,
            price=BID,
            quantity=300,
            leaves_quantity=300,
        )
    ]


def test_a_trade_gives_the_takers_and_the_makers_report_then_the_trade() -> None:
    s = Session()
    market = Market(PRODUCT)
    market.handle(s.new("alpha", "a1", Side.BUY, 300, BID))
    results = market.handle(s.new("beta", "b1", Side.SELL, 100, BID - 1_000))
    # No `new` for beta's order: it traded at once, and the fill says so.
    assert reports(results) == [
        ("beta", "b1", ExecStatus.FILLED, 100, 0, None),
        ("alpha", "a1", ExecStatus.PARTIALLY_FILLED, 100, 200, None),
    ]
    trade = results[-1]
    assert trade == TradeMessage(
        trade_id=f"{SYMBOL}-1",
        product=SYMBOL,
        price=BID,  # the resting order's price
        quantity=100,
        buyer="alpha",
        seller="beta",
        buy_order_id=1,
        sell_order_id=2,
        aggressor=Side.SELL,
        sequence=1,
        timestamp=s.now,
        currency=PRODUCT.currency,
    )
    assert [r.trade_id for r in results] == [trade.trade_id] * 3


def test_a_used_client_order_id_is_rejected_and_a_forwarded_request_counts_once() -> None:
    s = Session()
    market = Market(PRODUCT)
    first = s.new("alpha", "a1", Side.BUY, 100, BID)
    market.handle(first)
    assert market.handle(first) == []  # the gateway forwarded it twice
    again = market.handle(s.new("alpha", "a1", Side.BUY, 100, BID))
    assert reports(again) == [
        ("alpha", "a1", ExecStatus.REJECTED, 0, 0, Reason.DUPLICATE_CLIENT_ORDER_ID)
    ]


def test_a_cancel_of_an_unknown_order_names_it() -> None:
    s = Session()
    [reject] = Market(PRODUCT).handle(s.cancel("alpha", "x1", "nope"))
    assert isinstance(reject, ExecutionReport)
    assert (reject.status, reject.reason, reject.client_order_id) == (
        ExecStatus.REJECTED,
        Reason.UNKNOWN_ORDER,
        "x1",
    )
    assert reject.orig_client_order_id == "nope"
    assert reject.text == Reason.UNKNOWN_ORDER.text


def test_a_replace_answers_under_the_new_client_order_id() -> None:
    s = Session()
    market = Market(PRODUCT)
    market.handle(s.new("alpha", "a1", Side.BUY, 300, BID))
    [replaced] = market.handle(s.replace("alpha", "a2", "a1", quantity=200))
    assert isinstance(replaced, ExecutionReport)
    assert (replaced.status, replaced.client_order_id, replaced.orig_client_order_id) == (
        ExecStatus.REPLACED,
        "a2",
        "a1",
    )
    assert (replaced.quantity, replaced.leaves_quantity) == (200, 200)
    assert ("alpha", "a2") in market.live and ("alpha", "a1") not in market.live


def test_a_mass_cancel_answers_first_then_reports_each_order() -> None:
    s = Session()
    market = Market(PRODUCT)
    market.handle(s.new("alpha", "a1", Side.BUY, 100, BID))
    market.handle(s.new("alpha", "a2", Side.SELL, 100, ASK))
    market.handle(s.new("beta", "b1", Side.SELL, 100, ASK))
    results = market.handle(s.mass_cancel("alpha", "kill"))
    answer = results[0]
    assert isinstance(answer, ExecutionReport)
    assert (answer.status, answer.client_order_id, answer.text) == (
        MASS_CANCELLED,
        "kill",
        "2 open order(s) cancelled.",
    )
    assert reports(results[1:]) == [
        ("alpha", "a1", ExecStatus.CANCELLED, 0, 0, Reason.MASS_CANCEL),
        ("alpha", "a2", ExecStatus.CANCELLED, 0, 0, Reason.MASS_CANCEL),
    ]


def test_a_snapshot_follows_a_change_of_the_book_at_most_once_an_interval() -> None:
    s = Session()
    market = Market(PRODUCT, snapshot_interval_ns=10 * 1_000_000)
    assert market.snapshot() is None  # nothing changed yet
    market.handle(s.new("alpha", "a1", Side.BUY, 100, BID))
    market.handle(s.new("beta", "b1", Side.SELL, 200, ASK))
    snapshot = market.snapshot()
    assert snapshot == BookSnapshot(SYMBOL, 4, [[BID, 100, 1]], [[ASK, 200, 1]], s.now)
    market.handle(s.new("beta", "b2", Side.SELL, 100, ASK))
    assert market.snapshot() is None  # changed, but within the interval
    market.handle(s.tick(ahead_ms=10))
    later = market.snapshot()
    assert later is not None and later.asks == [[ASK, 300, 2]]
    assert market.snapshot() is None  # nothing changed since
