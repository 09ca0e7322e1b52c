"""Requests through gateway and engine on the memory bus (the same flow runs on RabbitMQ in
tests/system/test_exchange.py)."""

from __future__ import annotations

from tests.embedded import Exchange


def test_two_members_trade_and_both_get_reports(exchange: Exchange) -> None:
    alpha, beta = exchange.traders["alpha"], exchange.traders["beta"]
    alpha.order("a1", "sell", 1000, 500_000)
    exchange.run()
    beta.order("b1", "buy", 400, 500_050)
    exchange.run()
    assert [r["status"] for r in alpha.answers("a1")] == ["new", "partially_filled"]
    assert [r["status"] for r in beta.answers("b1")] == ["filled"]
    fill = beta.answers("b1")[0]
    assert (fill["last_price"], fill["last_quantity"], fill["leaves_quantity"]) == (500_000, 400, 0)
    assert len(exchange.trades) == 1
    trade = exchange.trades[0]
    assert (trade["buyer"], trade["seller"], trade["price"], trade["quantity"]) == (
        "beta",
        "alpha",
        500_000,
        400,
    )
    assert trade["sequence"] == 1 and trade["trade_id"] == "PRND-OX-1"
    public = [body for key, body in exchange.public if key == "PRND-OX.trade"]
    assert len(public) == 1
    assert "alpha" not in repr(public) and "beta" not in repr(public)
    books = [body for key, body in exchange.public if key == "PRND-OX.book"]
    assert books[-1]["asks"] == [[500_000, 600, 1]]


def test_request_without_user_id_is_dead_lettered_not_answered(exchange: Exchange) -> None:
    alpha = exchange.traders["alpha"]
    alpha.send("new_order", {"client_order_id": "x", "product": "PRND-OX"}, user_id=None)
    exchange.run()
    assert alpha.reports == []
    assert len(exchange.dead) == 1


def test_malformed_body_is_rejected_with_reason_malformed(exchange: Exchange) -> None:
    alpha = exchange.traders["alpha"]
    alpha.send("new_order", {}, raw=b"\xc1not msgpack")
    alpha.send(
        "new_order",
        {
            "client_order_id": "m2",
            "product": "PRND-OX",
            "side": "up",
            "quantity": 100,
            "price": 500_000,
        },
    )
    exchange.run()
    assert [(r["status"], r["reason"]) for r in alpha.reports] == [
        ("rejected", "malformed"),
        ("rejected", "malformed"),
    ]
    assert alpha.reports[1]["client_order_id"] == "m2"
    assert "side" in alpha.reports[1]["text"]


def test_each_gateway_reject_reason_is_reported(exchange: Exchange) -> None:
    alpha = exchange.traders["alpha"]
    alpha.order("t1", "buy", 100, 500_010)  # off tick
    alpha.order("t2", "buy", 150, 500_000)  # off lot
    alpha.order("t3", "buy", 100, 600_000)  # outside band: the engine's, which knows it
    alpha.order("t4", "buy", 100, 500_000, product="XX-OX")  # unknown product
    alpha.order("t5", "buy", 0, 500_000)
    exchange.run()
    # The gateway answers at once; the engine answers t3 a little later.
    assert {r["client_order_id"]: r["reason"] for r in alpha.reports} == {
        "t1": "price_not_on_tick",
        "t2": "quantity_not_on_lot",
        "t3": "outside_price_band",
        "t4": "unknown_product",
        "t5": "quantity_out_of_range",
    }
    assert len(alpha.reports) == 5
    assert all(r["status"] == "rejected" and r["leaves_quantity"] == 0 for r in alpha.reports)


def test_client_order_id_is_used_once_whatever_the_answer(exchange: Exchange) -> None:
    alpha = exchange.traders["alpha"]
    alpha.order("c1", "buy", 100, 500_010)  # rejected: off tick
    exchange.run()
    alpha.order("c1", "buy", 100, 500_000)
    alpha.order("c2", "buy", 100, 500_000)
    alpha.order("c2", "buy", 100, 500_000)
    exchange.run()
    # The gateway answers a duplicate at once, the engine answers the original a little later:
    # the two reports may arrive in either order.
    answers = sorted((r["client_order_id"], r["status"], r["reason"] or "") for r in alpha.reports)
    assert answers == [
        ("c1", "rejected", "duplicate_client_order_id"),
        ("c1", "rejected", "price_not_on_tick"),
        ("c2", "new", ""),
        ("c2", "rejected", "duplicate_client_order_id"),
    ]


def test_redelivered_request_is_not_applied_twice(exchange: Exchange) -> None:
    alpha = exchange.traders["alpha"]
    alpha.order("r1", "buy", 100, 500_000)
    exchange.run()
    message_id = "alpha-m1"
    alpha.send(
        "new_order",
        {
            "client_order_id": "r1",
            "product": "PRND-OX",
            "side": "buy",
            "quantity": 100,
            "price": 500_000,
        },
        message_id=message_id,
    )
    exchange.run()
    assert [r["status"] for r in alpha.reports] == ["new"]


def test_member_cannot_cancel_another_members_order(exchange: Exchange) -> None:
    alpha, beta = exchange.traders["alpha"], exchange.traders["beta"]
    alpha.order("a1", "buy", 100, 500_000)
    exchange.run()
    beta.send(
        "cancel", {"client_order_id": "b-cx", "orig_client_order_id": "a1", "product": "PRND-OX"}
    )
    exchange.run()
    assert beta.reports[-1]["reason"] == "unknown_order"
    assert [r["status"] for r in alpha.reports] == ["new"]


def test_cancel_and_replace_answers_carry_both_client_ids(exchange: Exchange) -> None:
    alpha = exchange.traders["alpha"]
    alpha.order("o1", "buy", 300, 500_000)
    exchange.run()
    alpha.send(
        "replace",
        {
            "client_order_id": "o2",
            "orig_client_order_id": "o1",
            "product": "PRND-OX",
            "quantity": 200,
        },
    )
    exchange.run()
    alpha.send(
        "cancel", {"client_order_id": "o3", "orig_client_order_id": "o2", "product": "PRND-OX"}
    )
    exchange.run()
    replaced, cancelled = alpha.reports[1], alpha.reports[2]
    assert (
        replaced["status"],
        replaced["client_order_id"],
        replaced["orig_client_order_id"],
        replaced["quantity"],
        replaced["leaves_quantity"],
    ) == ("replaced", "o2", "o1", 200, 200)
    assert (
        cancelled["status"],
        cancelled["client_order_id"],
        cancelled["orig_client_order_id"],
        cancelled["leaves_quantity"],
    ) == ("cancelled", "o3", "o2", 0)
    assert replaced["order_id"] == cancelled["order_id"] == alpha.reports[0]["order_id"]


def test_requests_over_the_rate_wait_their_turn_and_are_not_refused(exchange: Exchange) -> None:
    slow = exchange.traders["slow"]  # 2 a second, 2 at once
    for i in range(5):
        slow.order(f"s{i}", "buy", 100, 500_000 - 50 * i)
    exchange.run(0.1)
    assert [r["client_order_id"] for r in slow.reports] == ["s0", "s1"]  # the burst
    exchange.run(0.9)  # one more each half second
    assert [r["client_order_id"] for r in slow.reports] == ["s0", "s1", "s2", "s3"]
    exchange.run(1.0)
    assert [(r["client_order_id"], r["status"]) for r in slow.reports] == [
        (f"s{i}", "new") for i in range(5)
    ]


def test_a_member_over_its_rate_delays_nobody_else(exchange: Exchange) -> None:
    slow, alpha = exchange.traders["slow"], exchange.traders["alpha"]
    for i in range(40):
        slow.order(f"s{i}", "buy", 100, 500_000 - 50 * (i % 10))
    alpha.order("a1", "sell", 100, 510_000)
    exchange.run(0.1)
    assert [r["status"] for r in alpha.answers("a1")] == ["new"]
    assert len(slow.reports) == 2  # the rest wait in its own queue


def test_halted_product_rejects_orders_and_keeps_the_book(exchange: Exchange) -> None:
    from rex import topology
    from rex.bus import Envelope
    from rex.protocol import ENGINE_INPUT, EngineInput, InputKind, encode_inputs

    alpha = exchange.traders["alpha"]
    alpha.order("h1", "buy", 100, 500_000)
    exchange.run()
    exchange.gateway_bus.publish(
        Envelope(
            topology.ENGINE,
            "PRND-OX",
            encode_inputs([EngineInput(InputKind.STATUS, "PRND-OX", 1, status="halted")]),
            ENGINE_INPUT,
            "halt-1",
            0,
        )
    )
    exchange.run()
    alpha.order("h2", "buy", 100, 500_000)
    exchange.run()
    assert alpha.reports[-1]["reason"] == "product_halted"
    books = [b for k, b in exchange.public if k == "PRND-OX.book"]
    assert books[-1]["bids"] == [[500_000, 100, 1]]


def test_standby_engine_takes_over_without_losing_or_doubling_a_trade(exchange: Exchange) -> None:
    from engine.service import EngineService
    from rex.bus.memory import MemoryBus
    from tests.embedded import PRODUCTS

    standby_bus = MemoryBus(exchange.broker, "rex-engine-2")
    standby = EngineService(standby_bus, PRODUCTS, "main", checkpoint_interval=0.05)
    standby.start()
    alpha, beta = exchange.traders["alpha"], exchange.traders["beta"]
    alpha.order("a1", "sell", 1000, 500_000)
    beta.order("b1", "buy", 300, 500_000)
    exchange.run()
    assert exchange.engine.active and not standby.active
    assert len(exchange.trades) == 1
    exchange.engine_bus.disconnect()  # the active engine dies
    exchange.run(3)
    assert standby.active
    beta.order("b2", "buy", 300, 500_000)
    exchange.run()
    assert [t["trade_id"] for t in exchange.trades] == ["PRND-OX-1", "PRND-OX-2"]
    assert [r["status"] for r in beta.answers("b2")] == ["filled"]
    assert [r["status"] for r in alpha.answers("a1")] == [
        "new",
        "partially_filled",
        "partially_filled",
    ]
