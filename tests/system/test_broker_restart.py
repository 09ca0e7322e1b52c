"""A RabbitMQ restart mid-session: gateway and engine reconnect by themselves, the book
survives (it is rebuilt from the input log), and trading resumes. The broker restarted is a
node of the test run's own (tests/conftest.py, `own_broker_node`), never the machine's
default node, which every other test shares."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator

import pytest

from loadtest.broker_nodes import BrokerNode
from rex.protocol import ExecutionReport
from tests.system.conftest import Exchange, open_exchange, wait_for_answer

pytestmark = [pytest.mark.broker, pytest.mark.cluster, pytest.mark.slow]


def port_open(port: int) -> bool:
    with socket.socket() as probe:
        probe.settimeout(0.5)
        return probe.connect_ex(("127.0.0.1", port)) == 0


def restart(node: BrokerNode) -> None:
    node.ctl("stop_app")
    assert not port_open(node.ports.amqp)
    node.ctl("start_app")
    node.ctl("await_startup")
    deadline = time.monotonic() + 60
    while not (port_open(node.ports.amqp) and port_open(node.ports.management)):
        assert time.monotonic() < deadline, "RabbitMQ did not come back"
        time.sleep(0.2)


@pytest.fixture(scope="module")
def running(
    own_broker_node: BrokerNode, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Exchange]:
    node = own_broker_node
    with open_exchange(
        tmp_path_factory, lambda vhost: node.amqp_url(vhost=vhost), node.admin_url
    ) as exchange:
        exchange.start("gateway", "gateway", "--tick-interval", "0.5")
        exchange.start("engine", "engine")
        with exchange.client("gamma") as gamma:
            wait_for_answer(gamma, "PRND-OX")
        yield exchange


def test_services_reconnect_after_a_broker_restart_and_trading_resumes(
    running: Exchange, own_broker_node: BrokerNode
) -> None:
    with running.client("alpha") as alpha:
        ask = alpha.place("PRND-OX", "sell", 500, 505_000, client_order_id="rs-ask")
        assert isinstance(ask, ExecutionReport) and ask.status == "new"
    restart(own_broker_node)
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
