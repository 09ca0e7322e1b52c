"""The in-process bus: RabbitMQ's semantics that REX relies on, without a broker.

One `MemoryBroker` holds exchanges, queues, streams and locks, and runs the loop that every
`MemoryBus` attached to it shares (one bus = one connection). It routes like RabbitMQ (topic,
direct, fanout), honours prefetch, requeues a consumer's unacked messages as redelivered when
its bus stops or is `disconnect`ed, dead-letters after the delivery limit, and keeps streams
as append-only logs read from an offset. For unit tests and the embedded demo only.
"""

from __future__ import annotations

import functools
import heapq
import itertools
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from rex.topology import Queue, Topology

from . import (
    Bus,
    BusStats,
    ConfirmCallback,
    Delivery,
    Envelope,
    Subscription,
    Unpublishable,
    envelope_problem,
)

_DELIVERY_COUNT = "x-delivery-count"


@functools.lru_cache(maxsize=4096)
def topic_matches(pattern: str, key: str) -> bool:
    """AMQP topic matching: `*` is exactly one word, `#` zero or more."""
    return _words_match(tuple(pattern.split(".")), tuple(key.split(".")))


def _words_match(pattern: tuple[str, ...], key: tuple[str, ...]) -> bool:
    if not pattern:
        return not key
    head = pattern[0]
    if head == "#":
        return any(_words_match(pattern[1:], key[i:]) for i in range(len(key) + 1))
    if not key:
        return False
    return (head == "*" or head == key[0]) and _words_match(pattern[1:], key[1:])


@dataclass(slots=True)
class _Message:
    envelope: Envelope
    deliveries: int = 0


@dataclass(slots=True)
class _Consumer:
    bus: MemoryBus
    subscription: Subscription
    unacked: dict[int, _Message | int] = field(default_factory=dict)  # tag -> message/offset
    next_offset: int = 0  # streams only
    active: bool = True  # until cancelled or its connection goes


@dataclass(slots=True)
class _Queue:
    spec: Queue
    messages: deque[_Message] = field(default_factory=deque)
    log: list[_Message | None] = field(default_factory=list)  # streams; None: truncated
    first_offset: int = 0  # streams: the oldest offset retention has kept
    consumers: list[_Consumer] = field(default_factory=list)
    turn: int = 0

    @property
    def is_stream(self) -> bool:
        return self.spec.is_stream


class MemoryBroker:
    """The shared state and the loop."""

    def __init__(self) -> None:
        self.exchanges: dict[str, str] = {}
        self.queues: dict[str, _Queue] = {}
        self.bindings: list[tuple[str, str, str]] = []  # exchange, queue, key
        self.locks: dict[str, MemoryBus] = {}
        self.now = 0.0  # the loop's clock, advanced by timers
        self._ready: deque[Callable[[], None]] = deque()
        self._timers: list[tuple[float, int, Callable[[], None]]] = []
        self._order = itertools.count()
        self._tags = itertools.count(1)
        self._stopping = False

    # --- the loop
    def call_soon(self, callback: Callable[[], None]) -> None:
        self._ready.append(callback)

    def call_later(self, delay: float, callback: Callable[[], None]) -> None:
        heapq.heappush(self._timers, (self.now + delay, next(self._order), callback))

    def run_until_idle(self, max_time: float | None = None) -> None:
        """Run callbacks, and timers due within `max_time` seconds of loop time."""
        deadline = None if max_time is None else self.now + max_time
        while True:
            while self._ready:
                self._ready.popleft()()
            if not self._timers or self._stopping:
                return
            when = self._timers[0][0]
            if deadline is not None and when > deadline:
                self.now = deadline
                return
            if deadline is None and not self._has_live_work():
                return
            self.now = max(self.now, when)
            _, _, callback = heapq.heappop(self._timers)
            callback()

    def _has_live_work(self) -> bool:
        # Without a deadline, run timers only while something else is pending: a periodic
        # timer alone would keep an idle loop going forever.
        return any(q.messages for q in self.queues.values())

    def stop(self) -> None:
        self._stopping = True

    # --- declarations
    def declare(self, topology: Topology) -> None:
        # Refused like RabbitMQ refuses them: 406 for a change, 404 for a missing name.
        for exchange in topology.exchanges:
            kind = self.exchanges.setdefault(exchange.name, exchange.type)
            if kind != exchange.type:
                raise ValueError(f"exchange {exchange.name} re-declared as {exchange.type}")
        for queue in topology.queues:
            existing = self.queues.get(queue.name)
            if existing is None:
                self.queues[queue.name] = _Queue(queue)
            elif existing.spec.arguments != queue.arguments:
                raise ValueError(f"queue {queue.name} re-declared with other arguments")
        for binding in topology.bindings:
            if binding.exchange not in self.exchanges:
                raise ValueError(f"binding to exchange {binding.exchange}, not declared")
            if binding.queue not in self.queues:
                raise ValueError(f"binding of queue {binding.queue}, not declared")
            entry = (binding.exchange, binding.queue, binding.routing_key)
            if entry not in self.bindings:
                self.bindings.append(entry)
        for binding in topology.unbindings:
            entry = (binding.exchange, binding.queue, binding.routing_key)
            if entry in self.bindings:
                self.bindings.remove(entry)

    # --- routing
    def route(self, envelope: Envelope) -> list[str]:
        if envelope.exchange == "":  # the default exchange: straight to the named queue
            return [envelope.routing_key] if envelope.routing_key in self.queues else []
        kind = self.exchanges.get(envelope.exchange)
        if kind is None:
            return []
        targets = []
        for exchange, queue, key in self.bindings:
            if exchange != envelope.exchange:
                continue
            if (
                kind == "fanout"
                or (kind == "direct" and key == envelope.routing_key)
                or (kind == "topic" and topic_matches(key, envelope.routing_key))
            ):
                targets.append(queue)
        return targets

    def enqueue(self, queue_name: str, envelope: Envelope) -> None:
        queue = self.queues[queue_name]
        message = _Message(envelope)
        if queue.is_stream:
            queue.log.append(message)
        else:
            queue.messages.append(message)
        self.call_soon(lambda: self.dispatch(queue))

    def dispatch(self, queue: _Queue) -> None:
        if queue.is_stream:
            for consumer in list(queue.consumers):
                self._feed_stream(queue, consumer)
            return
        while queue.messages and queue.consumers:
            ready = [c for c in queue.consumers if len(c.unacked) < c.subscription.prefetch]
            if not ready:
                return
            consumer = ready[queue.turn % len(ready)]
            queue.turn += 1
            message = queue.messages.popleft()
            message.deliveries += 1
            limit = queue.spec.arguments.get("x-delivery-limit")
            if limit is not None and message.deliveries > limit + 1:
                self._dead_letter(queue, message)
                continue
            tag = next(self._tags)
            consumer.unacked[tag] = message
            # Quorum queues tell a consumer how often a message came back before.
            returns = message.deliveries - 1
            quorum = queue.spec.arguments.get("x-queue-type") == "quorum"
            self._deliver(
                consumer,
                message,
                tag,
                redelivered=returns > 0,
                delivery_count=returns if quorum and returns > 0 else None,
            )

    def _feed_stream(self, queue: _Queue, consumer: _Consumer) -> None:
        while (
            consumer.active
            and consumer.next_offset < len(queue.log)
            and len(consumer.unacked) < consumer.subscription.prefetch
        ):
            offset = consumer.next_offset
            consumer.next_offset += 1
            message = queue.log[offset]
            if message is None:
                continue
            tag = next(self._tags)
            consumer.unacked[tag] = offset
            self._deliver(consumer, message, tag, False, offset)

    def _deliver(
        self,
        consumer: _Consumer,
        message: _Message,
        tag: int,
        redelivered: bool,
        offset: int | None = None,
        delivery_count: int | None = None,
    ) -> None:
        headers = dict(message.envelope.headers or {})
        if offset is not None:
            headers["x-stream-offset"] = offset
        if delivery_count is not None:
            headers[_DELIVERY_COUNT] = delivery_count
        delivery = MemoryDelivery(self, consumer, tag, message.envelope, headers, redelivered)
        consumer.subscription.handler(delivery)

    def _dead_letter(self, queue: _Queue, message: _Message) -> None:
        dlx = queue.spec.arguments.get("x-dead-letter-exchange")
        if dlx is None:
            return
        envelope = message.envelope
        headers = dict(envelope.headers or {})
        headers["x-first-death-queue"] = queue.spec.name
        dead = Envelope(
            dlx,
            envelope.routing_key,
            envelope.body,
            envelope.type,
            envelope.message_id,
            envelope.timestamp,
            envelope.user_id,
            headers,
            mandatory=False,
        )
        for target in self.route(dead):
            self.enqueue(target, dead)

    def settle(
        self, consumer: _Consumer, tag: int, multiple: bool, ack: bool, requeue: bool
    ) -> None:
        tags = [t for t in consumer.unacked if t <= tag] if multiple else [tag]
        queue = self.queues[consumer.subscription.queue]
        for t in tags:
            message = consumer.unacked.pop(t, None)
            if message is None or isinstance(message, int):
                continue  # streams: an ack only frees prefetch
            if not ack:
                if requeue:
                    queue.messages.appendleft(message)
                else:
                    self._dead_letter(queue, message)
        self.call_soon(lambda: self.dispatch(queue))

    def drop_consumers_of(self, bus: MemoryBus) -> None:
        """A connection went away: its unacked messages go back, marked redelivered."""
        for queue in self.queues.values():
            for consumer in [c for c in queue.consumers if c.bus is bus]:
                self._drop(queue, consumer)
            self.call_soon(lambda q=queue: self.dispatch(q))  # type: ignore[misc]
        for name in [n for n, holder in self.locks.items() if holder is bus]:
            del self.locks[name]

    def truncate_stream(self, name: str, before: int) -> None:
        """Drop a stream's entries before offset `before`, as RabbitMQ's retention drops old
        segments (for tests of what a service does when its log lost its start)."""
        queue = self.queues[name]
        for offset in range(queue.first_offset, min(before, len(queue.log))):
            queue.log[offset] = None
        queue.first_offset = max(queue.first_offset, before)

    def cancel(self, bus: MemoryBus, subscription: Subscription) -> None:
        for queue in self.queues.values():
            for consumer in queue.consumers:
                if consumer.bus is bus and consumer.subscription is subscription:
                    self._drop(queue, consumer)
                    self.call_soon(lambda q=queue: self.dispatch(q))  # type: ignore[misc]
                    return

    @staticmethod
    def _drop(queue: _Queue, consumer: _Consumer) -> None:
        consumer.active = False
        queue.consumers.remove(consumer)
        if not queue.is_stream:
            for message in reversed(list(consumer.unacked.values())):
                if isinstance(message, _Message):
                    queue.messages.appendleft(message)
        consumer.unacked.clear()


class MemoryDelivery(Delivery):
    def __init__(
        self,
        broker: MemoryBroker,
        consumer: _Consumer,
        tag: int,
        envelope: Envelope,
        headers: dict[str, Any],
        redelivered: bool,
    ) -> None:
        self._broker = broker
        self._consumer = consumer
        self._tag = tag
        self.body = envelope.body
        self.type = envelope.type
        self.message_id = envelope.message_id
        self.user_id = envelope.user_id
        self.routing_key = envelope.routing_key
        self.exchange = envelope.exchange
        self.timestamp = envelope.timestamp
        self.headers = headers
        self.redelivered = redelivered

    def ack(self, multiple: bool = False) -> None:
        self._broker.settle(self._consumer, self._tag, multiple, ack=True, requeue=False)

    def reject(self, requeue: bool = False) -> None:
        self._broker.settle(self._consumer, self._tag, False, ack=False, requeue=requeue)


class MemoryBus(Bus):
    """One connection to a `MemoryBroker`, logged in as `user` (checked against user_id)."""

    def __init__(self, broker: MemoryBroker, user: str = "guest") -> None:
        self.broker = broker
        self.user = user
        self.stats = BusStats()
        self._connected = False
        self._on_ready: Callable[[], None] | None = None

    @property
    def connected(self) -> bool:
        return self._connected

    def start(self, topology: Topology, on_ready: Callable[[], None]) -> None:
        self.broker.declare(topology)
        self._connected = True
        self._on_ready = on_ready
        self.broker.call_soon(on_ready)

    def publish(self, envelope: Envelope, on_confirm: ConfirmCallback | None = None) -> None:
        problem = envelope_problem(envelope)
        if problem is not None:
            raise Unpublishable(problem)  # as pika does, before anything is sent
        if not self._connected:
            if on_confirm is not None:
                self.broker.call_soon(lambda: on_confirm(False))
            return
        if (envelope.user_id is not None and envelope.user_id != self.user) or (
            envelope.exchange and envelope.exchange not in self.broker.exchanges
        ):
            # RabbitMQ closes the channel (406, 404); the message goes nowhere.
            if on_confirm is not None:
                self.broker.call_soon(lambda: on_confirm(False))
            return
        self.stats.published += 1
        targets = self.broker.route(envelope)
        for queue in targets:
            self.broker.enqueue(queue, envelope)
        if on_confirm is not None:
            ok = bool(targets) or not envelope.mandatory
            self.broker.call_soon(lambda: on_confirm(ok))

    def consume(self, subscription: Subscription) -> None:
        queue = self.broker.queues[subscription.queue]
        consumer = _Consumer(self, subscription)
        if queue.is_stream:
            start = subscription.arguments.get("x-stream-offset", "next")
            if start == "first":
                consumer.next_offset = queue.first_offset
            elif start == "next":
                consumer.next_offset = len(queue.log)
            elif start == "last":
                consumer.next_offset = max(len(queue.log) - 1, queue.first_offset)
            else:  # like RabbitMQ, an offset retention has dropped reads from the oldest kept
                consumer.next_offset = max(int(start), queue.first_offset)
        queue.consumers.append(consumer)
        self.broker.call_soon(lambda: self.broker.dispatch(queue))

    def cancel(self, subscription: Subscription) -> None:
        self.broker.cancel(self, subscription)

    def hold_lock(self, name: str, on_acquired: Callable[[], None], retry: float = 1.0) -> None:
        def attempt() -> None:
            if not self._connected:
                return
            holder = self.broker.locks.get(name)
            if holder is None:
                self.broker.locks[name] = self
                on_acquired()
            elif holder is not self:
                self.broker.call_later(retry, attempt)

        self.broker.call_soon(attempt)

    def call_later(self, delay: float, callback: Callable[[], None]) -> None:
        self.broker.call_later(delay, callback)

    def call_soon(self, callback: Callable[[], None]) -> None:
        self.broker.call_soon(callback)

    def run(self) -> None:
        self.broker.run_until_idle()

    def stop(self) -> None:
        self.disconnect()

    def disconnect(self) -> None:
        """Lose the connection: consumers and locks go, unacked messages are requeued."""
        self._connected = False
        self.broker.drop_consumers_of(self)

    def reconnect(self) -> None:
        """Come back after `disconnect`, as the AMQP bus does after a broker restart."""
        self._connected = True
        if self._on_ready is not None:
            self.broker.call_soon(self._on_ready)
