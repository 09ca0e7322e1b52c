"""A status change on the input log: GTD orders due by its time expire first, and their
owners are told, as after a clock tick."""

from __future__ import annotations

from engine.market import Market
from engine.outputs import outputs
from rex.protocol import unpack
from rex.vocabulary import Side, TimeInForce
from tests.engine.helpers import ASK, PRODUCT, Session


def test_a_halt_after_a_gtd_orders_expiry_reports_it_expired() -> None:
    session = Session()
    market = Market(PRODUCT)
    expire_ms = session.now // 1_000_000 + 50
    market.handle(
        session.new(
            "alpha",
            "gtd-1",
            Side.SELL,
            100,
            ASK,
            time_in_force=TimeInForce.GTD,
            expire_time=expire_ms,
        )
    )
    session.now += 100 * 1_000_000  # no tick came in between
    out = market.handle(session.status("halted"))
    reports = [unpack(e.body) for e in outputs(out).envelopes if e.type == "execution"]
    assert [(r["client_order_id"], r["status"]) for r in reports] == [("gtd-1", "expired")]
    assert market.book.order(1) is None
    assert ("alpha", "gtd-1") not in market.live  # a cancel now says unknown_order
    assert not market.info
