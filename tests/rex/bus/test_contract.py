"""The Bus contract, run against both buses: the memory bus defines the semantics, RabbitMQ
(through AmqpBus) must show the same.

Every test declares exchanges and queues of its own (unique names, deleted afterwards on
RabbitMQ). The `amqp` parameter is marked `broker`; the broker restart test is amqp only and
marked `slow`.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Callable

import msgpack
import pytest

from loadtest.broker_nodes import BrokerNode
from rex.bus import Bus, Delivery, Envelope, Subscription, Unpublishable, envelope_problem
from rex.bus.amqp import TopologyError
from rex.topology import Binding, Exchange, Queue, Topology

from .conftest import Harness, queue_depth
from .helpers import Confirms, Inbox, envelope, run_until, settle, stop_bus

QUORUM = {"x-queue-type": "quorum"}
STREAM = {"x-queue-type": "stream"}


def start(
    h: Harness,
    topology: Topology,
    setup: Callable[[Bus], None] | None = None,
    name: str = "test",
) -> tuple[Bus, list[float]]:
    """A bus that has declared `topology` and run `setup` from on_ready; and the times at
    which on_ready ran (one per (re)connection)."""
    bus = h.bus(name)
    readies: list[float] = []

    def on_ready() -> None:
        readies.append(time.monotonic())
        if setup is not None:
            setup(bus)

    bus.start(topology, on_ready)
    assert run_until(bus, lambda: bool(readies) and bus.connected, 10), "bus not ready"
    return bus, readies


def routed(h: Harness, *queues: Queue, key: str = "#") -> tuple[Topology, Exchange]:
    """A topic exchange bound to `queues` with `key`."""
    exchange = h.exchange("x")
    topology = Topology(
        (exchange,), queues, tuple(Binding(exchange.name, q.name, key) for q in queues)
    )
    return topology, exchange


def consumer(
    queue: str, inbox: Inbox, prefetch: int = 100, **arguments: object
) -> Callable[[Bus], None]:
    """An on_ready that consumes `queue` into `inbox`."""

    def setup(bus: Bus) -> None:
        bus.consume(Subscription(queue, inbox, prefetch=prefetch, arguments=dict(arguments)))

    return setup


# --- declaring ------------------------------------------------------------------------------


def test_declaring_the_same_topology_twice_is_fine(harness: Harness) -> None:
    work = harness.queue("work", **QUORUM, **{"x-delivery-limit": 5})
    log = harness.queue("log", **STREAM, **{"x-max-age": "7D"})
    plain = harness.queue("plain")
    topology, exchange = routed(harness, work, log, plain)
    first, _ = start(harness, topology, name="first")
    second, _ = start(harness, topology, name="second")
    confirms = Confirms()
    second.publish(envelope(exchange.name, "a.b"), confirms.callback("m"))
    assert run_until(second, lambda: len(confirms) == 1)
    assert confirms.verdicts == {"m": True}
    assert first.connected and second.connected


@pytest.mark.parametrize(
    "change", ["queue arguments", "exchange type", "binding to no exchange", "binding of no queue"]
)
def test_a_topology_the_broker_refuses_stops_the_bus(harness: Harness, change: str) -> None:
    queue = harness.queue("q", **QUORUM)
    exchange = harness.exchange("x", "topic")
    start(harness, Topology((exchange,), (queue,)))
    if change == "queue arguments":
        refused = Topology(queues=(Queue(queue.name, {**QUORUM, "x-delivery-limit": 3}),))
    elif change == "exchange type":
        refused = Topology(exchanges=(Exchange(exchange.name, "direct"),))
    elif change == "binding to no exchange":
        refused = Topology(bindings=(Binding(harness.name("no-such-exchange"), queue.name, "#"),))
    else:
        refused = Topology(bindings=(Binding(exchange.name, harness.name("no-such-queue"), "#"),))
    bus = harness.bus("second")
    with pytest.raises((ValueError, TopologyError)):  # memory: from start; amqp: from run
        bus.start(refused, lambda: None)
        run_until(bus, lambda: bus.connected, 10)
    assert not bus.connected


# --- publishing -----------------------------------------------------------------------------


def test_publish_confirms_and_the_consumer_gets_every_property(harness: Harness) -> None:
    queue = harness.queue("q")
    topology, exchange = routed(harness, queue)
    inbox = Inbox(auto_ack=True)
    bus, _ = start(harness, topology, consumer(queue.name, inbox))
    headers = {"member": "m-01", "seq": 42, "big": 2**40, "flag": True, "nested": {"k": "v"}}
    body = msgpack.packb({"order": 1, "price": 12_345})
    sent = envelope(
        exchange.name,
        "m-01.PRND-OX",
        body,
        type="order.new",
        timestamp=1_700_000_123,
        user_id="guest",
        headers=headers,
    )
    confirms = Confirms()
    bus.publish(sent, confirms.callback("m"))
    assert run_until(bus, lambda: len(confirms) == 1 and len(inbox) == 1)
    assert confirms.verdicts == {"m": True}
    got = inbox.deliveries[0]
    assert got.body == body
    assert got.type == "order.new"
    assert got.message_id == sent.message_id
    assert got.timestamp == 1_700_000_123
    assert got.user_id == "guest"
    assert got.headers == headers
    assert got.routing_key == "m-01.PRND-OX"
    assert got.exchange == exchange.name
    assert got.redelivered is False
    assert got.stream_offset is None


def test_a_message_without_user_id_or_headers(harness: Harness) -> None:
    queue = harness.queue("q")
    topology, exchange = routed(harness, queue)
    inbox = Inbox(auto_ack=True)
    bus, _ = start(harness, topology, consumer(queue.name, inbox))
    bus.publish(envelope(exchange.name, "k"))
    assert run_until(bus, lambda: len(inbox) == 1)
    assert inbox.deliveries[0].user_id is None
    assert inbox.deliveries[0].headers == {}


def test_mandatory_publish_with_no_route_is_not_confirmed(harness: Harness) -> None:
    queue = harness.queue("q")
    topology, exchange = routed(harness, queue, key="a.#")
    bus, _ = start(harness, topology)
    confirms = Confirms()
    bus.publish(envelope(exchange.name, "z.z"), confirms.callback("nowhere"))
    bus.publish(envelope(exchange.name, "z.z", mandatory=False), confirms.callback("dropped"))
    bus.publish(envelope(exchange.name, "a.b"), confirms.callback("routed"))
    assert run_until(bus, lambda: len(confirms) == 3)
    assert confirms.verdicts == {"nowhere": False, "dropped": True, "routed": True}


def test_returns_are_matched_to_their_publish_when_pipelined(harness: Harness) -> None:
    # Routed messages go to a quorum queue, whose confirms come later than the returns of
    # the unroutable ones: matching returns to publishes by order would go wrong.
    queue = harness.queue("q", **QUORUM)
    topology, exchange = routed(harness, queue, key="a.#")
    bus, _ = start(harness, topology)
    confirms = Confirms()
    for i in range(60):
        key = "a.x" if i % 3 else "z.x"
        bus.publish(envelope(exchange.name, key), confirms.callback(str(i)))
    assert run_until(bus, lambda: len(confirms) == 60)
    assert confirms.verdicts == {str(i): bool(i % 3) for i in range(60)}


def test_publish_while_disconnected_is_not_confirmed_and_not_reentrant(
    harness: Harness,
) -> None:
    bus = harness.bus()  # never started
    confirms = Confirms()
    bus.publish(envelope("anywhere", "k"), confirms.callback("before"))
    assert len(confirms) == 0  # not called from inside publish
    assert run_until(bus, lambda: len(confirms) == 1)
    assert confirms.verdicts == {"before": False}


@pytest.mark.parametrize("fault", ["foreign user_id", "missing exchange"])
def test_a_refused_publish_is_not_confirmed_and_the_bus_goes_on(
    harness: Harness, fault: str
) -> None:
    # RabbitMQ closes the publishing channel for both (406 and 404).
    queue = harness.queue("q", **QUORUM)
    topology, exchange = routed(harness, queue)
    inbox = Inbox(auto_ack=True)
    bus, readies = start(harness, topology, consumer(queue.name, inbox))
    confirms = Confirms()
    if fault == "foreign user_id":
        bad = envelope(exchange.name, "k", user_id="someone-else")
    else:
        # not even a non-mandatory publish gets through
        bad = envelope(harness.name("no-such-exchange"), "k", mandatory=False)

    def retry_at_once(ok: bool) -> None:
        # publishing from the failed confirm: goes out on the reopened channel
        confirms.callback("bad")(ok)
        bus.publish(envelope(exchange.name, "k", message_id="retry"), confirms.callback("retry"))

    bus.publish(bad, retry_at_once)
    assert run_until(bus, lambda: len(confirms) == 2 and len(inbox) == 1)
    assert confirms.verdicts == {"bad": False, "retry": True}

    bus.publish(envelope(exchange.name, "k", message_id="later"), confirms.callback("later"))
    assert run_until(bus, lambda: len(confirms) == 3 and len(inbox) == 2)
    assert confirms.verdicts["later"] is True
    assert inbox.ids() == ["retry", "later"]  # the refused message went nowhere
    assert len(readies) == 1  # consumers survived: no reconnect was needed
    assert bus.connected


def test_default_exchange_routes_by_queue_name(harness: Harness) -> None:
    queue = harness.queue("q")
    inbox = Inbox(auto_ack=True)
    bus, _ = start(harness, Topology(queues=(queue,)), consumer(queue.name, inbox))
    confirms = Confirms()
    bus.publish(envelope("", queue.name), confirms.callback("direct"))
    bus.publish(envelope("", harness.name("no-such-queue")), confirms.callback("nowhere"))
    assert run_until(bus, lambda: len(confirms) == 2 and len(inbox) == 1)
    assert confirms.verdicts == {"direct": True, "nowhere": False}


def test_pipelined_publishes_all_confirm(harness: Harness) -> None:
    queue = harness.queue("q", **QUORUM)
    topology, exchange = routed(harness, queue)
    bus, _ = start(harness, topology)
    count = 1000
    confirms = Confirms()
    body = msgpack.packb({"order": 1, "side": "buy", "price": 12_345, "quantity": 10})
    began = time.perf_counter()
    for i in range(count):
        bus.publish(envelope(exchange.name, "m.p", body), confirms.callback(str(i)))
    assert run_until(bus, lambda: len(confirms) == count, 30)
    elapsed = time.perf_counter() - began
    assert all(confirms.verdicts.values())
    print(
        f"\n{harness.kind}: {count} pipelined publishes confirmed in {elapsed * 1000:.0f} ms "
        f"({count / elapsed:,.0f}/s)"
    )


def test_stop_waits_for_the_confirms_in_flight(harness: Harness) -> None:
    queue = harness.queue("q", **QUORUM)
    topology, exchange = routed(harness, queue)
    bus, _ = start(harness, topology)
    confirms = Confirms()
    for i in range(200):
        bus.publish(envelope(exchange.name, "k"), confirms.callback(str(i)))
    bus.stop()
    assert run_until(bus, lambda: len(confirms) == 200)
    assert all(confirms.verdicts.values())


# --- consuming ------------------------------------------------------------------------------


def publish_all(bus: Bus, exchange: str, count: int, key: str = "k") -> list[str]:
    confirms = Confirms()
    ids = [f"m{i}" for i in range(count)]
    for message_id in ids:
        bus.publish(envelope(exchange, key, message_id=message_id), confirms.callback(message_id))
    assert run_until(bus, lambda: len(confirms) == count)
    assert all(confirms.verdicts.values())
    return ids


def test_acked_messages_are_gone(harness: Harness) -> None:
    queue = harness.queue("q", **QUORUM)
    topology, exchange = routed(harness, queue)
    inbox = Inbox()
    bus, _ = start(harness, topology, consumer(queue.name, inbox))
    publish_all(bus, exchange.name, 3)
    assert run_until(bus, lambda: len(inbox) == 3)
    inbox.deliveries[0].ack()
    inbox.deliveries[2].ack(multiple=True)  # and the second with it
    inbox.deliveries[0].ack()  # twice: ignored
    settle(bus, 0.2)
    stop_bus(bus)

    again = Inbox()
    other, _ = start(harness, topology, consumer(queue.name, again), name="other")
    settle(other, 0.5)
    assert len(again) == 0
    if harness.amqp:
        assert queue_depth(queue.name) == 0


def test_unacked_messages_are_redelivered_to_another_bus(harness: Harness) -> None:
    queue = harness.queue("q", **QUORUM)
    topology, exchange = routed(harness, queue)
    first_inbox = Inbox()
    first, _ = start(harness, topology, consumer(queue.name, first_inbox), name="first")
    ids = publish_all(first, exchange.name, 3)
    assert run_until(first, lambda: len(first_inbox) == 3)
    assert [d.redelivered for d in first_inbox.deliveries] == [False] * 3
    stop_bus(first)
    first_inbox.deliveries[0].ack()  # its channel is gone: a no-op, not an error

    second_inbox = Inbox(auto_ack=True)
    second, _ = start(harness, topology, consumer(queue.name, second_inbox), name="second")
    assert run_until(second, lambda: len(second_inbox) == 3)
    assert second_inbox.ids() == ids
    assert [d.redelivered for d in second_inbox.deliveries] == [True] * 3
    assert [d.headers.get("x-delivery-count") for d in second_inbox.deliveries] == [1] * 3


def test_rejected_message_is_dead_lettered(harness: Harness) -> None:
    dlx = harness.exchange("dlx", "fanout")
    dead = harness.queue("dead", **QUORUM)
    work = harness.queue("work", **QUORUM, **{"x-dead-letter-exchange": dlx.name})
    exchange = harness.exchange("x")
    topology = Topology(
        (exchange, dlx),
        (dead, work),
        (Binding(exchange.name, work.name, "#"), Binding(dlx.name, dead.name, "")),
    )
    dead_inbox = Inbox(auto_ack=True)

    def refuse(delivery: Delivery) -> None:
        delivery.reject(requeue=False)

    def setup(bus: Bus) -> None:
        bus.consume(Subscription(work.name, refuse))
        bus.consume(Subscription(dead.name, dead_inbox))

    bus, _ = start(harness, topology, setup)
    sent = envelope(exchange.name, "m.p", b"poison", headers={"h": "v"})
    bus.publish(sent)
    assert run_until(bus, lambda: len(dead_inbox) == 1)
    got = dead_inbox.deliveries[0]
    assert got.message_id == sent.message_id
    assert got.body == b"poison"
    assert got.routing_key == "m.p"
    assert got.headers["h"] == "v"
    assert got.headers["x-first-death-queue"] == work.name


def test_a_publishers_stream_offset_header_does_not_turn_a_reject_into_an_ack(
    harness: Harness,
) -> None:
    # x-stream-offset is the broker's on a stream delivery; on a work queue it is whatever a
    # publisher (a member) put there, and must not make the consumer treat its queue as a
    # stream, whose reject is an ack: the message would be gone instead of dead-lettered.
    dlx = harness.exchange("dlx", "fanout")
    dead = harness.queue("dead", **QUORUM)
    work = harness.queue("work", **QUORUM, **{"x-dead-letter-exchange": dlx.name})
    exchange = harness.exchange("x")
    topology = Topology(
        (exchange, dlx),
        (dead, work),
        (Binding(exchange.name, work.name, "#"), Binding(dlx.name, dead.name, "")),
    )
    dead_inbox = Inbox(auto_ack=True)

    def refuse(delivery: Delivery) -> None:
        delivery.reject(requeue=False)

    def setup(bus: Bus) -> None:
        bus.consume(Subscription(work.name, refuse))
        bus.consume(Subscription(dead.name, dead_inbox))

    bus, _ = start(harness, topology, setup)
    forged = envelope(exchange.name, "m.p", b"forged", headers={"x-stream-offset": 3})
    after = envelope(exchange.name, "m.p", b"after")
    bus.publish(forged)
    bus.publish(after)
    assert run_until(bus, lambda: len(dead_inbox) == 2)
    assert dead_inbox.ids() == [forged.message_id, after.message_id]


def test_delivery_limit_dead_letters_a_message_requeued_too_often(harness: Harness) -> None:
    dlx = harness.exchange("dlx", "fanout")
    dead = harness.queue("dead", **QUORUM)
    work = harness.queue(
        "work", **QUORUM, **{"x-dead-letter-exchange": dlx.name, "x-delivery-limit": 2}
    )
    exchange = harness.exchange("x")
    topology = Topology(
        (exchange, dlx),
        (dead, work),
        (Binding(exchange.name, work.name, "#"), Binding(dlx.name, dead.name, "")),
    )
    attempts: list[tuple[bool, object]] = []
    dead_inbox = Inbox(auto_ack=True)

    def requeue(delivery: Delivery) -> None:
        attempts.append((delivery.redelivered, delivery.headers.get("x-delivery-count")))
        delivery.reject(requeue=True)

    def setup(bus: Bus) -> None:
        bus.consume(Subscription(work.name, requeue))
        bus.consume(Subscription(dead.name, dead_inbox))

    bus, _ = start(harness, topology, setup)
    bus.publish(envelope(exchange.name, "k"))
    assert run_until(bus, lambda: len(dead_inbox) == 1)
    settle(bus, 0.3)
    # the first delivery and `limit` more, each counting the earlier ones
    assert attempts == [(False, None), (True, 1), (True, 2)]


def test_prefetch_is_honoured(harness: Harness) -> None:
    queue = harness.queue("q", **QUORUM)
    topology, exchange = routed(harness, queue)
    inbox = Inbox()
    bus, _ = start(harness, topology, consumer(queue.name, inbox, prefetch=2))
    publish_all(bus, exchange.name, 5)
    assert run_until(bus, lambda: len(inbox) == 2)
    settle(bus, 0.5)
    assert len(inbox) == 2
    inbox.deliveries[0].ack()
    assert run_until(bus, lambda: len(inbox) == 3)
    settle(bus, 0.3)
    assert inbox.ids() == ["m0", "m1", "m2"]


def test_stream_is_read_from_an_offset(harness: Harness) -> None:
    log = harness.queue("log", **STREAM)
    topology, exchange = routed(harness, log)
    bus, _ = start(harness, topology)
    confirms = Confirms()
    for i in range(5):
        bus.publish(
            envelope(exchange.name, "k", message_id=f"m{i}", headers={"n": i}),
            confirms.callback(str(i)),
        )
    assert run_until(bus, lambda: len(confirms) == 5)
    assert all(confirms.verdicts.values())

    from_zero = Inbox(auto_ack=True)
    from_three = Inbox(auto_ack=True)
    from_first = Inbox(auto_ack=True)
    from_next = Inbox(auto_ack=True)
    for inbox, offset in (
        (from_zero, 0),
        (from_three, 3),
        (from_first, "first"),
        (from_next, "next"),
    ):
        bus.consume(
            Subscription(log.name, inbox, prefetch=10, arguments={"x-stream-offset": offset})
        )
    assert run_until(
        bus, lambda: len(from_zero) == 5 and len(from_three) == 2 and len(from_first) == 5
    )
    settle(bus, 0.3)
    assert [d.stream_offset for d in from_zero.deliveries] == [0, 1, 2, 3, 4]
    assert from_zero.ids() == ["m0", "m1", "m2", "m3", "m4"]
    assert [d.headers["n"] for d in from_zero.deliveries] == [0, 1, 2, 3, 4]
    assert [d.headers["x-stream-offset"] for d in from_three.deliveries] == [3, 4]
    assert from_three.ids() == ["m3", "m4"]
    assert from_first.ids() == from_zero.ids()
    assert len(from_next) == 0

    bus.publish(envelope(exchange.name, "k", message_id="m5"))
    assert run_until(bus, lambda: len(from_next) == 1 and len(from_zero) == 6)
    assert from_next.deliveries[0].stream_offset == 5
    assert from_next.ids() == ["m5"]


def test_stream_consumer_is_held_by_its_prefetch_until_it_acks(harness: Harness) -> None:
    # RabbitMQ 3.10 counts a stream consumer's prefetch in whole chunks: it may hand out a
    # little more than `prefetch` (the rest of a chunk), never the whole log while unacked.
    log = harness.queue("log", **STREAM)
    topology, exchange = routed(harness, log)
    inbox = Inbox()
    bus, _ = start(
        harness, topology, consumer(log.name, inbox, prefetch=2, **{"x-stream-offset": "first"})
    )
    for _ in range(8):  # one at a time: a chunk each
        publish_all(bus, exchange.name, 1)
    assert run_until(bus, lambda: len(inbox) >= 2)
    settle(bus, 0.3)
    assert 2 <= len(inbox) < 8
    acked: list[int] = []
    while len(inbox) < 8:
        acked.append(len(inbox))
        inbox.deliveries[-1].ack(multiple=True)
        assert run_until(bus, lambda: len(inbox) > acked[-1]), "acks did not free the prefetch"
    assert [d.stream_offset for d in inbox.deliveries] == list(range(8))


def test_stream_reject_and_stop_are_harmless(harness: Harness) -> None:
    # A reject on a stream, or one sent by pika for a message that arrives after its
    # consumer was cancelled, makes RabbitMQ 3.10 close the connection (540).
    log = harness.queue("log", **STREAM)
    topology, exchange = routed(harness, log)
    seen: list[Delivery] = []

    def refuse(delivery: Delivery) -> None:
        seen.append(delivery)
        delivery.reject(requeue=True)

    def setup(bus: Bus) -> None:
        bus.consume(Subscription(log.name, refuse, prefetch=1, arguments={"x-stream-offset": 0}))

    bus, readies = start(harness, topology, setup)
    publish_all(bus, exchange.name, 20)
    assert run_until(bus, lambda: len(seen) == 20)
    settle(bus, 0.2)
    assert bus.connected and len(readies) == 1

    confirms = Confirms()
    for i in range(200):
        bus.publish(envelope(exchange.name, "k"), confirms.callback(str(i)))
    bus.stop()
    assert run_until(bus, lambda: len(confirms) == 200)
    assert all(confirms.verdicts.values())


def test_a_cancelled_stream_consumer_gets_nothing_more_and_the_bus_goes_on(
    harness: Harness,
) -> None:
    log = harness.queue("log", **STREAM)
    topology, exchange = routed(harness, log)
    bus, readies = start(harness, topology)
    publish_all(bus, exchange.name, 50)
    seen: list[int | None] = []
    subscription: list[Subscription] = []

    def read_three(delivery: Delivery) -> None:
        seen.append(delivery.stream_offset)
        delivery.ack()
        if len(seen) == 3:
            bus.cancel(subscription[0])  # from inside the handler, with more on the way

    subscription.append(
        Subscription(log.name, read_three, prefetch=100, arguments={"x-stream-offset": "first"})
    )
    bus.consume(subscription[0])
    assert run_until(bus, lambda: len(seen) >= 3)
    publish_all(bus, exchange.name, 5)
    settle(bus, 0.5)
    assert seen == [0, 1, 2]
    bus.cancel(subscription[0])  # twice: nothing happens

    after = Inbox(auto_ack=True)
    bus.consume(Subscription(log.name, after, prefetch=100, arguments={"x-stream-offset": 0}))
    assert run_until(bus, lambda: len(after) == 55)
    assert bus.connected and len(readies) == 1


def test_a_cancelled_work_queue_consumer_gives_back_what_it_did_not_ack(
    harness: Harness,
) -> None:
    queue = harness.queue("q", **QUORUM)
    topology, exchange = routed(harness, queue)
    inbox = Inbox()
    subscription = Subscription(queue.name, inbox, prefetch=10)
    bus, readies = start(harness, topology, lambda b: b.consume(subscription))
    ids = publish_all(bus, exchange.name, 4)
    assert run_until(bus, lambda: len(inbox) == 4)
    inbox.deliveries[0].ack()
    bus.cancel(subscription)
    publish_all(bus, exchange.name, 1)
    settle(bus, 0.3)
    assert len(inbox) == 4

    again = Inbox(auto_ack=True)
    bus.consume(Subscription(queue.name, again, prefetch=10))
    assert run_until(bus, lambda: len(again) == 4)
    assert again.ids()[:3] == ids[1:]
    assert bus.connected and len(readies) == 1


# --- locks and the loop ---------------------------------------------------------------------


def test_lock_is_held_by_one_bus_until_it_goes(harness: Harness) -> None:
    topology = Topology()
    lock = harness.lock("engine")
    first, _ = start(harness, topology, name="first")
    second, _ = start(harness, topology, name="second")
    held: list[str] = []
    first.hold_lock(lock, lambda: held.append("first"), retry=0.1)
    assert run_until(first, lambda: held == ["first"])
    second.hold_lock(lock, lambda: held.append("second"), retry=0.1)
    settle(second, 1.0)
    assert held == ["first"]  # waits while the first holds it

    first.hold_lock(lock, lambda: held.append("first again"), retry=0.1)  # held: nothing
    settle(first, 0.3)
    assert held == ["first"]

    stop_bus(first)
    assert run_until(second, lambda: held == ["first", "second"], 5)


def test_call_soon_and_call_later_run_on_the_loop(harness: Harness) -> None:
    bus, _ = start(harness, Topology())
    ran: list[str] = []
    bus.call_later(0.2, lambda: ran.append("later"))
    bus.call_soon(lambda: ran.append("soon"))
    assert ran == []
    assert run_until(bus, lambda: len(ran) == 2, 2)
    assert ran == ["soon", "later"]


# --- connection loss (RabbitMQ only) -------------------------------------------------------


def rabbitmqctl(*args: str, check: bool = True) -> str:
    path = f"{os.environ.get('PATH', '')}:/usr/local/sbin:/usr/sbin:/sbin"
    tool = shutil.which("rabbitmqctl", path=path)
    assert tool is not None, "rabbitmqctl not found"
    done = subprocess.run([tool, *args], check=check, capture_output=True, text=True, timeout=120)
    return done.stdout


def connection_pid(connection_name: str) -> str:
    listing = rabbitmqctl(
        "list_connections", "-q", "--no-table-headers", "pid", "client_properties"
    )
    pids = [line.split()[0] for line in listing.splitlines() if f'"{connection_name}"' in line]
    assert len(pids) == 1, f"connection {connection_name}: {pids}"
    return pids[0]


def port_answers(host: str = "127.0.0.1", port: int = 5672) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


@pytest.mark.broker
def test_amqp_bus_fails_confirms_in_flight_and_reconnects_when_dropped(
    amqp_harness: Harness,
) -> None:
    h = amqp_harness
    queue = h.queue("q", **QUORUM)
    topology, exchange = routed(h, queue)
    inbox = Inbox(auto_ack=True)
    bus, readies = start(h, topology, consumer(queue.name, inbox), name="dropped")
    pid = connection_pid(h.connection_name("dropped"))
    confirms = Confirms()
    for i in range(300):  # still in the client's buffer when the broker drops the connection
        bus.publish(envelope(exchange.name, "k"), confirms.callback(str(i)))
    rabbitmqctl("close_connection", pid, "dropped by the bus contract test")
    assert run_until(bus, lambda: len(confirms) == 300)
    assert not any(confirms.verdicts.values())  # none had reached the broker
    assert run_until(bus, lambda: len(readies) == 2 and bus.connected)
    ids = publish_all(bus, exchange.name, 3)
    assert run_until(bus, lambda: inbox.ids()[-3:] == ids)


@pytest.mark.broker
@pytest.mark.cluster
@pytest.mark.slow
def test_amqp_bus_reconnects_after_a_broker_restart(
    own_node_harness: Harness, own_broker_node: BrokerNode
) -> None:
    h = own_node_harness
    node = own_broker_node
    queue = h.queue("q", **QUORUM)
    topology, exchange = routed(h, queue)
    inbox = Inbox(auto_ack=True)
    bus, readies = start(h, topology, consumer(queue.name, inbox))
    publish_all(bus, exchange.name, 1)
    assert run_until(bus, lambda: len(inbox) == 1)

    failure: list[BaseException] = []

    def restart() -> None:
        try:
            node.ctl("stop_app")
            node.ctl("start_app")
            node.ctl("await_startup")
            deadline = time.monotonic() + 60
            while not port_answers(port=node.ports.amqp) and time.monotonic() < deadline:
                time.sleep(0.2)
        except BaseException as error:
            failure.append(error)

    began = time.monotonic()
    thread = threading.Thread(target=restart, daemon=True)
    thread.start()
    try:
        assert run_until(bus, lambda: not bus.connected, 60), "the bus never saw the broker go"
        lost = time.monotonic()
        confirms = Confirms()
        bus.publish(envelope(exchange.name, "k"), confirms.callback("during"))
        assert run_until(bus, lambda: len(confirms) == 1, 5)
        assert confirms.verdicts == {"during": False}

        assert run_until(bus, lambda: len(readies) == 2 and bus.connected, 120), "no reconnect"
        back = time.monotonic()
    finally:
        thread.join(180)
        if not port_answers(port=node.ports.amqp):
            node.ctl("start_app", check=False)
    assert not failure, failure

    ids = publish_all(bus, exchange.name, 3)
    assert run_until(bus, lambda: len(inbox) == 4, 10)
    assert inbox.ids()[1:] == ids
    print(
        f"\nbroker restart: connection lost after {lost - began:.1f}s, "
        f"ready again after {back - began:.1f}s"
    )


@pytest.mark.parametrize(
    ("field", "value", "problem"),
    [
        ("message_id", "m" * 256, "message_id is 256 bytes"),
        ("routing_key", "k" * 300, "routing_key is 300 bytes"),
        ("type", "é" * 128, "type is 256 bytes"),  # 128 characters, 256 bytes of UTF-8
        ("headers", {"x-weight": 1.5}, "header 'x-weight' is a float"),
    ],
)
def test_an_envelope_amqp_cannot_carry_is_refused_and_the_bus_goes_on(
    harness: Harness, field: str, value: object, problem: str
) -> None:
    """Refused at once, with no confirm, before anything is sent: the channel stays open
    and the next publish goes out."""
    queue = harness.queue("q")
    topology, exchange = routed(harness, queue)
    inbox = Inbox(auto_ack=True)
    bus, _ = start(harness, topology, lambda b: b.consume(Subscription(queue.name, inbox)))
    confirms = Confirms()
    bad = envelope(exchange.name, "a.b")
    setattr(bad, field, value)
    with pytest.raises(Unpublishable, match=problem):
        bus.publish(bad, confirms.callback("bad"))
    bus.publish(envelope(exchange.name, "a.b", message_id="good"), confirms.callback("good"))
    assert run_until(bus, lambda: len(confirms) == 1 and len(inbox) == 1)
    settle(bus, 0.2)
    assert confirms.verdicts == {"good": True}
    assert inbox.ids() == ["good"]
    assert bus.connected


def test_the_short_strings_amqp_carries_are_255_bytes_at_most() -> None:
    fits = Envelope("x", "k" * 255, b"", "t", "é" * 127 + "m", 1, user_id="u")
    assert envelope_problem(fits) is None
    assert envelope_problem(dataclasses.replace(fits, message_id="é" * 128)) == (
        f"message_id is 256 bytes; AMQP carries at most 255 (starts {'é' * 40!r})"
    )
    assert envelope_problem(dataclasses.replace(fits, user_id="\udc80")) == (
        "user_id is not valid UTF-8 text"
    )
    assert envelope_problem(dataclasses.replace(fits, headers={"h" * 256: 1})) is not None
