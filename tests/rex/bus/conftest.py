"""Fixtures for the bus contract tests: the same test against the memory bus and RabbitMQ.

`harness` is parametrized over `memory` and `amqp` (marked `broker`). Every exchange and queue
a test makes through it has a unique name and, on RabbitMQ, is deleted afterwards through a
plain BlockingConnection; every bus it makes is stopped.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator
from typing import Any

import pika
import pika.exceptions
import pytest

from loadtest.broker_nodes import BrokerNode
from rex.bus import Bus
from rex.bus.amqp import AmqpBus
from rex.bus.memory import MemoryBroker, MemoryBus
from rex.environment import REX_BROKER_URL
from rex.topology import Exchange, Queue

from .helpers import stop_bus

BROKER_URL = REX_BROKER_URL.get()


class Harness:
    """Makes buses, exchanges and queues for one test, and cleans up after it."""

    def __init__(self, kind: str, url: str = BROKER_URL) -> None:
        self.kind = kind
        self.url = url  # the RabbitMQ the amqp kind uses
        self.suffix = uuid.uuid4().hex[:8]
        self.broker = MemoryBroker() if kind == "memory" else None
        self.buses: list[Bus] = []
        self.exchanges: list[str] = []
        self.queues: list[str] = []

    @property
    def amqp(self) -> bool:
        return self.kind == "amqp"

    def bus(self, name: str = "test") -> Bus:
        bus: Bus
        if self.broker is not None:
            bus = MemoryBus(self.broker)
        else:
            bus = AmqpBus(self.url, name=self.connection_name(name), reconnect_delay=0.2)
        self.buses.append(bus)
        return bus

    def connection_name(self, bus: str) -> str:
        return f"rex-test-{bus}-{self.suffix}"

    def name(self, role: str) -> str:
        return f"rex.test.{role}.{self.suffix}"

    def exchange(self, role: str, kind: str = "topic") -> Exchange:
        exchange = Exchange(self.name(role), kind)
        self.exchanges.append(exchange.name)
        return exchange

    def queue(self, role: str, **arguments: Any) -> Queue:
        queue = Queue(self.name(role), dict(arguments))
        self.queues.append(queue.name)
        return queue

    def lock(self, role: str) -> str:
        return self.name(role)  # exclusive queues go with their connection: nothing to clean

    def close(self) -> None:
        for bus in self.buses:
            with contextlib.suppress(Exception):
                stop_bus(bus)
        if self.amqp and (self.exchanges or self.queues):
            delete(self.exchanges, self.queues, self.url)


def delete(exchanges: list[str], queues: list[str], url: str = BROKER_URL) -> None:
    connection = pika.BlockingConnection(pika.URLParameters(url))
    try:
        for queue in queues:
            channel = connection.channel()
            with contextlib.suppress(pika.exceptions.ChannelClosedByBroker):
                channel.queue_delete(queue)
                channel.close()
        for exchange in exchanges:
            channel = connection.channel()
            with contextlib.suppress(pika.exceptions.ChannelClosedByBroker):
                channel.exchange_delete(exchange)
                channel.close()
    finally:
        connection.close()


def queue_depth(queue: str) -> int:
    """Messages ready in a RabbitMQ queue (not counting unacked ones)."""
    connection = pika.BlockingConnection(pika.URLParameters(BROKER_URL))
    try:
        result = connection.channel().queue_declare(queue, passive=True)
        return int(result.method.message_count)
    finally:
        connection.close()


@pytest.fixture(params=["memory", pytest.param("amqp", marks=pytest.mark.broker)])
def harness(request: pytest.FixtureRequest) -> Iterator[Harness]:
    h = Harness(request.param)
    try:
        yield h
    finally:
        h.close()


@pytest.fixture
def amqp_harness() -> Iterator[Harness]:
    """For tests of RabbitMQ only (mark them `broker`)."""
    h = Harness("amqp")
    try:
        yield h
    finally:
        h.close()


@pytest.fixture
def own_node_harness(own_broker_node: BrokerNode) -> Iterator[Harness]:
    """A RabbitMQ harness on the run's own node (tests/conftest.py), for tests that restart
    the broker (mark them `broker` and `cluster`)."""
    h = Harness("amqp", own_broker_node.amqp_url())
    try:
        yield h
    finally:
        h.close()
