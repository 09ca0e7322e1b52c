"""A RabbitMQ restart mid-session: gateway and engine reconnect by themselves, the book
survives (it is rebuilt from the input log), and trading resumes."""

from __future__ import annotations

import socket
import subprocess
import time
from collections.abc import Iterator

import pytest

from rex.protocol import ExecutionReport
from tests.system.conftest import Exchange, wait_for_answer

pytestmark = [pytest.mark.broker, pytest.mark.slow]


def port_open(port: int) -> bool:
    with socket.socket() as probe:
        probe.settimeout(0.5)
        return probe.connect_ex(("127.0.0.1", port)) == 0


def restart_rabbitmq() -> None:
    subprocess.run(["rabbitmqctl", "stop_app"], check=True, capture_output=True, timeout=120)
    assert not port_open(5672)
    subprocess.run(["rabbitmqctl", "start_app"], check=True, capture_output=True, timeout=120)
    subprocess.run(["rabbitmqctl", "await_startup"], check=True, capture_output=True, timeout=120)
    deadline = time.monotonic() + 60
    while not (port_open(5672) and port_open(15672)):
        assert time.monotonic() < deadline, "RabbitMQ did not come back"
        time.sleep(0.2)


@pytest.fixture(scope="module")
def running(exchange: Exchange) -> Iterator[Exchange]:
    exchange.start("gateway", "gateway", "--tick-interval", "0.5")
    exchange.start("engine", "engine")
    with exchange.client("gamma") as gamma:
        wait_for_answer(gamma, "PRND-OX")
    yield exchange


def test_services_reconnect_after_a_broker_restart_and_trading_resumes(running: Exchange) -> None:
    with running.client("alpha") as alpha:
        ask = alpha.place("PRND-OX", "sell", 500, 505_000, client_order_id="rs-ask")
        assert isinstance(ask, ExecutionReport) and ask.status == "new"
    restart_rabbitmq()
    assert all(p.poll() is None for p in running.processes.values()), running.log_tail()
    deadline = time.monotonic() + 90
    while True:  # the member reconnects too; harmless IOC orders until one is answered
        try:
            with running.client("gamma") as gamma:
                wait_for_answer(gamma, "PRND-OX", timeout=10)
            break
        except Exception:
            if time.monotonic() > deadline:
                raise AssertionError("trading did not resume:\n" + running.log_tail()) from None
            time.sleep(1)
    with running.client("beta") as beta:
        fill = beta.place("PRND-OX", "buy", 200, 505_000, client_order_id="rs-bid", wait=20)
    assert isinstance(fill, ExecutionReport), fill
    # The resting ask from before the restart is still in the book, and trades.
    assert (fill.status, fill.last_price, fill.last_quantity) == ("filled", 505_000, 200)
