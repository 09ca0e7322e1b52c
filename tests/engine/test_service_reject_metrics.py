"""The engine counts its rejects and cancels by product and reason
(`rex_engine_rejects_total`, `rex_engine_cancels_total`), once: a standby's replay of the
same log after a take-over does not count them again. It counts its reports and trades
(`rex_engine_reports_total`, `rex_engine_trades_total`) from what it decided, not from the
messages it sent (several travel as one batch)."""

from __future__ import annotations

from engine.service import EngineService
from rex import metrics, topology
from rex.bus import Envelope
from rex.bus.memory import MemoryBus
from rex.protocol import ENGINE_INPUT, EngineInput, InputKind, encode_inputs
from tests.embedded import PRODUCTS, Exchange


def counted() -> dict[tuple[str, str, str], float]:
    """Every engine reject and cancel series: (metric, product, reason) -> value."""
    out = {}
    for metric in (metrics.ENGINE_REJECTS, metrics.ENGINE_CANCELS):
        for family in metric.collect():
            for s in family.samples:
                if s.name.endswith("_total"):
                    out[s.name, s.labels["product"], s.labels["reason"]] = s.value
    return out


def changes(
    before: dict[tuple[str, str, str], float], after: dict[tuple[str, str, str], float]
) -> dict[tuple[str, str, str], float]:
    return {k: v - before.get(k, 0.0) for k, v in after.items() if v != before.get(k, 0.0)}


def halt(exchange: Exchange, symbol: str) -> None:
    entry = EngineInput(InputKind.STATUS, symbol, 1, status="halted")
    envelope = Envelope(
        topology.ENGINE, symbol, encode_inputs([entry]), ENGINE_INPUT, f"halt-{symbol}", 0
    )
    exchange.gateway_bus.publish(envelope)
    exchange.run()


def test_engine_rejects_and_cancels_are_counted_by_product_and_reason(
    exchange: Exchange,
) -> None:
    alpha, beta = exchange.traders["alpha"], exchange.traders["beta"]
    before = counted()
    alpha.send(
        "cancel", {"client_order_id": "c1", "product": "PRND-OX", "orig_client_order_id": "nope"}
    )
    alpha.order("rest", "sell", 100, 500_000)
    alpha.order("self", "buy", 100, 500_000)  # would trade with alpha's own order
    beta.order("ioc", "buy", 100, 499_000, time_in_force="IOC", product="PRND-OX")
    exchange.run()
    halt(exchange, "DY-OX")
    beta.order("halted", "buy", 100, 1_800_000, product="DY-OX")
    exchange.run()
    assert [r["reason"] for r in alpha.answers("c1")] == ["unknown_order"]
    assert [r["reason"] for r in beta.answers("halted")] == ["product_halted"]
    assert changes(before, counted()) == {
        ("rex_engine_rejects_total", "PRND-OX", "unknown_order"): 1,
        ("rex_engine_cancels_total", "PRND-OX", "self_trade"): 1,
        ("rex_engine_cancels_total", "PRND-OX", "immediate_or_cancel"): 1,
        ("rex_engine_rejects_total", "DY-OX", "product_halted"): 1,
    }


def test_a_take_over_replay_does_not_count_the_rejects_again(exchange: Exchange) -> None:
    standby = EngineService(
        MemoryBus(exchange.broker, "rex-engine-2"), PRODUCTS, "main", checkpoint_interval=0.05
    )
    standby.start()
    beta = exchange.traders["beta"]
    beta.order("first", "buy", 100, 499_000)  # the engine's first market image covers this
    exchange.run()
    beta.send(
        "cancel", {"client_order_id": "c1", "product": "PRND-OX", "orig_client_order_id": "nope"}
    )
    exchange.run()
    assert (
        exchange.engine.logs["PRND-OX"].image_through < exchange.engine.logs["PRND-OX"].last_offset
    )
    before = counted()
    exchange.engine_bus.disconnect()  # the active engine dies; the standby replays the log
    exchange.run(3)
    assert standby.active
    assert changes(before, counted()) == {}
    beta.send(
        "cancel", {"client_order_id": "c2", "product": "PRND-OX", "orig_client_order_id": "nope"}
    )
    exchange.run()
    assert changes(before, counted()) == {
        ("rex_engine_rejects_total", "PRND-OX", "unknown_order"): 1
    }


def published(symbol: str) -> tuple[float, float]:
    """rex_engine_reports_total and rex_engine_trades_total of one product."""
    values = []
    for metric in (metrics.ENGINE_REPORTS, metrics.ENGINE_TRADES):
        [value] = [
            s.value
            for family in metric.collect()
            for s in family.samples
            if s.name.endswith("_total") and s.labels["product"] == symbol
        ]
        values.append(value)
    return values[0], values[1]


def test_reports_and_trades_are_counted_one_by_one_though_they_travel_in_batches(
    exchange: Exchange,
) -> None:
    alpha, beta = exchange.traders["alpha"], exchange.traders["beta"]
    for n in range(3):
        alpha.order(f"s{n}", "sell", 100, 500_000 + 50 * n)
    exchange.run()
    before = published("PRND-OX")
    beta.order("sweep", "buy", 300, 500_100)  # one request: three trades, six reports
    exchange.run()
    assert [r["status"] for r in beta.answers("sweep")][-1] == "filled"
    reports, trades = published("PRND-OX")
    assert (reports - before[0], trades - before[1]) == (6, 3)
