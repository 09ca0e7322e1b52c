"""README's hot standby on one host: a second engine of the group finds the default metrics
port taken and serves on a free one instead of crashing, and each exporter shows only its
own service's series."""

from __future__ import annotations

import re
import time
import urllib.request
from collections.abc import Iterator

import pytest

from tests.system.conftest import Exchange

pytestmark = pytest.mark.broker


@pytest.fixture(scope="module")
def default_ports(exchange: Exchange) -> Iterator[Exchange]:
    exchange.env.pop("REX_METRICS_PORT", None)  # as an operator runs them: default ports
    yield exchange


def metrics_port(exchange: Exchange, name: str, timeout_s: float = 30) -> int:
    """The port the process logged it serves its metrics on."""
    log = exchange.logs / f"{name}.log"
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        found = re.search(r"metrics service=engine port=(\d+)", log.read_text())
        if found:
            return int(found.group(1))
        assert exchange.processes[name].poll() is None, exchange.log_tail()
        time.sleep(0.1)
    raise AssertionError(f"{name} logged no metrics port:\n{exchange.log_tail()}")


def scrape(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        text: str = response.read().decode()
    return text


def test_a_hot_standby_on_the_same_host_serves_its_metrics_on_a_free_port(
    default_ports: Exchange,
) -> None:
    exchange = default_ports
    exchange.start("engine-1", "engine", "--group", "main")
    first = metrics_port(exchange, "engine-1")
    exchange.start("engine-2", "engine", "--group", "main")
    second = metrics_port(exchange, "engine-2")
    assert second != first
    standby_log = (exchange.logs / "engine-2.log").read_text()
    assert "default port 9102 is taken" in standby_log
    assert f"serving on free port {second} instead" in standby_log
    deadline = time.monotonic() + 30
    while 'rex_engine_active{group="main"} 1.0' not in scrape(first).splitlines():
        assert time.monotonic() < deadline, exchange.log_tail()
        time.sleep(0.2)
    standby = scrape(second)
    assert 'rex_engine_active{group="main"} 0.0' in standby.splitlines()
    assert all(p.poll() is None for p in exchange.processes.values()), exchange.log_tail()
    assert "rex_gateway_" not in standby and "rex_settlement_" not in standby
    assert 'rex_engine_rejects_total{product="DY-OX",reason="product_halted"} 0.0' in standby
