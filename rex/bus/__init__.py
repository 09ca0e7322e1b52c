"""The message bus: one interface, two implementations.

`rex.bus.amqp.AmqpBus` talks to RabbitMQ through pika's asynchronous `SelectConnection`:
publisher confirms are pipelined (a callback per publish, never a blocking wait), consumers
ack only when the service says the work is durable, and the connection comes back after a
broker restart. `rex.bus.memory.MemoryBus` has the same semantics in one process — topic
routing, streams read by offset, acks, redelivery of unacked messages — for unit tests and
the embedded demo.

Both run callbacks on one thread (the bus's loop): a service is a set of handlers and needs
no locks.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Final

from rex.topology import Topology

ConfirmCallback = Callable[[bool], None]
"""Called once per publish: True when the broker has the message safely (confirmed and
routed to at least one queue), False when it was refused or could not be routed."""


@dataclass(slots=True)
class Envelope:
    """A message to publish. Every REX message is persistent and carries these properties."""

    exchange: str
    routing_key: str
    body: bytes
    type: str  # the message kind
    message_id: str
    timestamp: int  # AMQP timestamp: seconds since the epoch
    user_id: str | None = None  # the publisher's login; the broker rejects any other
    headers: dict[str, Any] | None = None
    mandatory: bool = True  # an unroutable message counts as not confirmed


#: The longest an AMQP 0-9-1 short string may be, in bytes of UTF-8: an exchange, a routing
#: key, a message's type, message_id and user_id, a header's name.
MAX_SHORT_STRING_BYTES: Final = 255


class Unpublishable(ValueError):
    """`publish` refuses an envelope that AMQP cannot carry as it is (a short string over
    `MAX_SHORT_STRING_BYTES`, text that is not UTF-8, a header value AMQP has no type for).
    Sending it again can never succeed: the publisher must set it aside, not retry it."""


def envelope_problem(envelope: Envelope) -> str | None:
    """Why AMQP cannot carry ``envelope``'s short strings, or None. Both buses refuse what
    this names (raising `Unpublishable`), so the memory bus fails where RabbitMQ would."""
    fields = [
        ("exchange", envelope.exchange),
        ("routing_key", envelope.routing_key),
        ("type", envelope.type),
        ("message_id", envelope.message_id),
        ("user_id", envelope.user_id),
    ]
    for name, value in (envelope.headers or {}).items():
        if isinstance(value, float):  # pika 1.4 has no AMQP type for it (module amqp)
            return f"header {name!r} is a float; AMQP headers here take integers, text, bytes"
    fields += [("header name", name) for name in envelope.headers or {}]
    for name, value in fields:
        if value is None:
            continue
        if not isinstance(value, str):
            return f"{name} is a {type(value).__name__}, not text"
        try:
            size_bytes = len(value.encode("utf-8"))
        except UnicodeEncodeError:
            return f"{name} is not valid UTF-8 text"
        if size_bytes > MAX_SHORT_STRING_BYTES:
            return (
                f"{name} is {size_bytes} bytes; AMQP carries at most {MAX_SHORT_STRING_BYTES}"
                f" (starts {value[:40]!r})"
            )
    return None


class Delivery(ABC):
    """A received message. Exactly one of ack/reject must be called, once."""

    body: bytes
    type: str | None
    message_id: str | None
    user_id: str | None
    routing_key: str
    exchange: str
    timestamp: int | None
    headers: dict[str, Any]
    redelivered: bool

    @property
    def stream_offset(self) -> int | None:
        """The message's offset when it was read from a stream."""
        value = self.headers.get("x-stream-offset")
        return value if isinstance(value, int) else None

    @abstractmethod
    def ack(self, multiple: bool = False) -> None:
        """Done with it (and with every earlier unacked delivery on this consumer if
        `multiple`)."""

    @abstractmethod
    def reject(self, requeue: bool = False) -> None:
        """Refuse it; without requeue a work queue dead-letters it."""


Handler = Callable[[Delivery], None]


@dataclass(slots=True)
class Subscription:
    queue: str
    handler: Handler
    prefetch: int = 100
    arguments: dict[str, Any] = field(default_factory=dict)  # e.g. {"x-stream-offset": 42}
    exclusive: bool = False


@dataclass(slots=True)
class BusStats:
    """What a bus has done since it was made, for the service's metrics (rex.metrics
    exports them at scrape time). Counts only grow."""

    published: int = 0
    nacked: int = 0  # publishes the broker refused (Basic.Nack)
    confirm_timeouts: int = 0  # publishes failed because no confirm came within the bound
    connections_lost: int = 0  # losses the bus did not ask for (a node died, the network)


class Bus(ABC):
    """Connect, declare, publish with confirms, consume with acks; callbacks on one loop."""

    @abstractmethod
    def start(self, topology: Topology, on_ready: Callable[[], None]) -> None:
        """Connect and declare `topology`; then call `on_ready`, and again after every
        reconnect (consumers are lost with the connection; `on_ready` sets them up)."""

    @abstractmethod
    def publish(self, envelope: Envelope, on_confirm: ConfirmCallback | None = None) -> None:
        """Publish persistently. `on_confirm` runs once with the broker's verdict; if the
        connection is lost first, it runs with False. Raises `Unpublishable` (and calls
        no `on_confirm`) for an envelope AMQP cannot carry."""

    @abstractmethod
    def consume(self, subscription: Subscription) -> None:
        """Start a consumer (call from `on_ready`)."""

    @abstractmethod
    def cancel(self, subscription: Subscription) -> None:
        """Stop the consumer started with `subscription`: its handler is called no more,
        and what it has not acked goes back to the queue (a stream has nothing to return)."""

    @abstractmethod
    def hold_lock(self, name: str, on_acquired: Callable[[], None], retry: float = 1.0) -> None:
        """Become the one holder of `name` among all processes on the broker (an exclusive
        queue), retrying every `retry` seconds; `on_acquired` runs once it is held. The lock
        dies with the connection, so a dead holder frees it for a standby; after a reconnect
        the holder must take it again (from `on_ready`)."""

    @abstractmethod
    def call_later(self, delay: float, callback: Callable[[], None]) -> None:
        """Run `callback` on the loop after `delay` seconds."""

    @abstractmethod
    def call_soon(self, callback: Callable[[], None]) -> None:
        """Run `callback` on the loop as soon as possible. Safe from another thread or a
        signal handler: `signal.signal(SIGTERM, lambda *_: bus.call_soon(bus.stop))`."""

    @abstractmethod
    def run(self) -> None:
        """Run the loop until `stop()` has finished."""

    @abstractmethod
    def stop(self) -> None:
        """Stop consuming, let confirms in flight arrive (bounded wait), close."""

    @property
    @abstractmethod
    def connected(self) -> bool:
        """True while the bus can publish."""

    #: Counts for the metrics; a bus that confirms at once (the memory bus) keeps zeros but
    #: the publishes.
    stats: BusStats

    @property
    def unconfirmed(self) -> int:
        """Publishes waiting for their confirm."""
        return 0

    @property
    def oldest_unconfirmed_s(self) -> float:
        """How long the oldest of them has waited, in seconds (0 if none)."""
        return 0.0


class InOrderAcks:
    """Acks one consumer's deliveries in arrival order, with multiple=True.

    A delivery is acked once it and every delivery that arrived before it are finished, so
    one frame -- and for a quorum queue one settle command -- covers a whole run of them.
    A rejected delivery is settled at once on its own. Work finishing out of order (a
    reject answered before an earlier forward is confirmed) is still acked only when done.
    """

    _PENDING, _DONE, _SETTLED = 0, 1, 2

    def __init__(self) -> None:
        self._slots: deque[list[Any]] = deque()  # [delivery, state]

    def arrived(self, delivery: Delivery) -> list[Any]:
        """The delivery's slot: ``[delivery, state, these acks]`` (the last so that whoever
        holds a slot can settle it without knowing which consumer it came from)."""
        slot = [delivery, self._PENDING, self]
        self._slots.append(slot)
        return slot

    @staticmethod
    def owner(slot: list[Any]) -> InOrderAcks:
        """The acks a slot belongs to."""
        owner: InOrderAcks = slot[2]
        return owner

    def done(self, slot: list[Any]) -> None:
        slot[1] = self._DONE
        self._drain()

    def reject(self, slot: list[Any], requeue: bool) -> None:
        slot[0].reject(requeue=requeue)
        slot[1] = self._SETTLED
        self._drain()

    def reset(self) -> None:
        """The connection went: its deliveries will come again."""
        self._slots.clear()

    def _drain(self) -> None:
        last = None
        slots = self._slots
        while slots and slots[0][1] != self._PENDING:
            slot = slots.popleft()
            if slot[1] == self._DONE:
                last = slot[0]
        if last is not None:
            last.ack(multiple=True)
