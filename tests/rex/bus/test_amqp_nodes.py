"""The AMQP bus and the SDK given several broker addresses (rex/broker_addresses.py),
through the real RabbitMQ: a node that does not answer is skipped, and after losing its
connection the bus goes to the next node of the list.

One broker stands in for a cluster's nodes here: the same node under two names
(127.0.0.1 and localhost) and a port where nothing listens. The three-node cluster of
issue 13 is not built yet."""

from __future__ import annotations

import logging
import socket
import urllib.parse

import pytest

from rex.bus.amqp import AmqpBus
from rex.client import Client
from rex.environment import REX_BROKER_URL
from rex.topology import Topology
from tests.rex.bus.helpers import run_until, stop_bus
from tests.rex.bus.test_contract import connection_pid, rabbitmqctl

pytestmark = pytest.mark.broker

BROKER_URL = REX_BROKER_URL.get()


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _on(url: str, host: str, port: int | None = None) -> str:
    parts = urllib.parse.urlsplit(url)
    userinfo = parts.netloc.rsplit("@", 1)[0] + "@" if "@" in parts.netloc else ""
    return urllib.parse.urlunsplit(
        parts._replace(netloc=f"{userinfo}{host}:{port or parts.port or 5672}")
    )


def test_the_bus_skips_a_node_that_does_not_answer_and_after_a_loss_takes_the_next(
    caplog: pytest.LogCaptureFixture,
) -> None:
    dead = _on(BROKER_URL, "127.0.0.1", _closed_port())
    first, second = _on(BROKER_URL, "127.0.0.1"), _on(BROKER_URL, "localhost")
    name = f"rex-test-nodes-{_closed_port()}"
    bus = AmqpBus(f"{dead}, {first}, {second}", name=name, reconnect_delay=0.2)
    readies: list[str] = []
    bus.start(Topology((), (), ()), on_ready=lambda: readies.append(bus._where))
    try:
        with caplog.at_level(logging.INFO, "rex.bus"):
            assert run_until(bus, lambda: len(readies) == 1 and bus.connected)
            assert readies[0].startswith("127.0.0.1:")  # the dead node skipped
            failed = [r.getMessage() for r in caplog.records if "connect failed" in r.getMessage()]
            assert len(failed) == 1 and f":{urllib.parse.urlsplit(dead).port}" in failed[0]
            rabbitmqctl("close_connection", connection_pid(name), "node lost, in a test")
            assert run_until(bus, lambda: len(readies) == 2 and bus.connected)
        assert readies[1].startswith("localhost:")  # the next node, not the one it lost
    finally:
        stop_bus(bus)


def test_the_sdk_connects_to_the_first_node_that_answers() -> None:
    dead = _on(BROKER_URL, "127.0.0.1", _closed_port())
    parts = urllib.parse.urlsplit(BROKER_URL)
    user = urllib.parse.unquote(parts.username or "guest")
    password = urllib.parse.unquote(parts.password or "guest")
    client = Client(user, password, f"{dead}, {BROKER_URL}")  # it reads no log yet
    with client:
        assert client._connection.is_open
