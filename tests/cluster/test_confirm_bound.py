"""A publish whose confirm never comes -- to a quorum queue whose majority is down, on a
three-node cluster -- fails within the bus's bound (rex/bus/amqp.py, "Confirms are
bounded"): its publisher hears False, the bus logs it at ERROR and counts it, and once the
majority is back a publish is confirmed again. Before the bound, the publisher waited for
ever (issue 13: "the gateway stalled for good")."""

from __future__ import annotations

import functools
import logging
import time
import uuid
from collections.abc import Iterator

import pika
import pytest

from loadtest.broker_nodes import Cluster
from rex.bus import Envelope
from rex.bus.amqp import AmqpBus
from rex.topology import Topology
from tests.rex.bus.helpers import run_until, stop_bus

pytestmark = [pytest.mark.broker, pytest.mark.cluster, pytest.mark.slow]

BOUND_S = 2.0


@pytest.fixture
def queue(cluster: Cluster) -> Iterator[str]:
    """A quorum queue with a member on every node, deleted afterwards."""
    name = f"rex-test.confirm-bound.{uuid.uuid4().hex[:8]}"
    url = cluster.nodes[0].amqp_url()
    with pika.BlockingConnection(pika.URLParameters(url)) as conn:
        conn.channel().queue_declare(
            name,
            durable=True,
            arguments={"x-queue-type": "quorum", "x-quorum-initial-group-size": 3},
        )
    yield name
    for node in cluster.nodes:  # through whichever node answers
        if node.running():
            with pika.BlockingConnection(pika.URLParameters(node.amqp_url())) as conn:
                conn.channel().queue_delete(name)
            break


def publish(bus: AmqpBus, queue: str, verdicts: list[bool]) -> None:
    bus.publish(
        Envelope("", queue, b"x", "test", uuid.uuid4().hex, int(time.time())),
        verdicts.append,
    )


def answered_more(verdicts: list[bool], before: int) -> bool:
    return len(verdicts) > before


def test_a_confirm_that_does_not_come_within_the_bound_fails_is_counted_and_logged(
    cluster: Cluster, queue: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.ERROR, logger="rex.bus")
    home, *others = cluster.nodes
    bus = AmqpBus(home.amqp_url(), name="rex-test-confirm-bound", confirm_timeout=BOUND_S)
    ready: list[bool] = []
    bus.start(Topology(), lambda: ready.append(True))
    try:
        assert run_until(bus, lambda: bool(ready), 30), "bus did not connect"
        verdicts: list[bool] = []
        publish(bus, queue, verdicts)
        assert run_until(bus, lambda: len(verdicts) == 1, 10)
        assert verdicts == [True]

        for node in others:  # the queue's majority
            node.kill()
        publish(bus, queue, verdicts)
        sent = time.monotonic()
        assert run_until(bus, lambda: len(verdicts) == 2, 30), "the confirm was waited on"
        waited = time.monotonic() - sent
        assert verdicts[1] is False
        assert BOUND_S <= waited < BOUND_S + 3, waited
        assert bus.stats.confirm_timeouts == 1
        assert any("confirm timeout" in r.getMessage() for r in caplog.records)

        for node in others:
            node.start()
        # Once the majority is back, a publish is confirmed (the first ones may still race
        # the queue's leader election: retried, as a publisher would).
        deadline = time.monotonic() + 60
        while verdicts[-1] is not True:
            assert time.monotonic() < deadline, f"no confirm after the nodes came back: {verdicts}"
            before = len(verdicts)
            publish(bus, queue, verdicts)
            run_until(bus, functools.partial(answered_more, verdicts, before), 3 * BOUND_S)
        assert bus.connected
    finally:
        stop_bus(bus)
