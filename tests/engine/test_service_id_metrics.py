"""The engine shows how much its markets remember (`rex_engine_dedupe_ids`,
`rex_engine_client_order_ids`, by product): every product's series from the start, each
the size of its market's window after every input-log message."""

from __future__ import annotations

import re
from pathlib import Path

from engine.market import CLIENT_IDS_MAX
from rex import metrics
from tests.embedded import PRODUCTS, Exchange

ALERTS = Path(__file__).parents[2] / "config" / "prometheus" / "alerts.yml"


def sizes() -> dict[tuple[str, str], float]:
    """(metric, product) -> value."""
    return {
        (s.name, s.labels["product"]): s.value
        for gauge in (metrics.ENGINE_DEDUPE_IDS, metrics.ENGINE_CLIENT_ORDER_IDS)
        for family in gauge.collect()
        for s in family.samples
    }


def test_the_sizes_of_what_each_market_remembers_are_gauges(exchange: Exchange) -> None:
    alpha, beta = exchange.traders["alpha"], exchange.traders["beta"]
    alpha.order("a1", "buy", 100, 499_000)
    alpha.order("a2", "buy", 100, 499_000)
    beta.order("b1", "sell", 100, 501_000)
    exchange.run()
    found = sizes()
    assert found["rex_engine_dedupe_ids", "PRND-OX"] == 3
    assert found["rex_engine_client_order_ids", "PRND-OX"] == 3
    for product in PRODUCTS:
        if product.symbol != "PRND-OX":
            assert found["rex_engine_dedupe_ids", product.symbol] == 0
            assert found["rex_engine_client_order_ids", product.symbol] == 0


def test_the_alert_fires_at_80_percent_of_the_client_order_id_cap() -> None:
    rules = ALERTS.read_text()
    [threshold] = re.findall(r"rex_engine_client_order_ids\) > (\d+)", rules)
    assert int(threshold) == CLIENT_IDS_MAX * 8 // 10
