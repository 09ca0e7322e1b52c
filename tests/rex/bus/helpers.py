"""Driving either bus from a test: run its loop until something has happened.

The memory bus runs on loop time (timers fire as soon as nothing else is pending), so a
"timeout" there costs nothing; the AMQP bus runs on the wall clock.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from rex.bus import Bus, Delivery, Envelope
from rex.bus.amqp import AmqpBus
from rex.bus.memory import MemoryBus

_MEMORY_STEP = 0.05  # loop seconds per slice when driving the memory broker


def run_until(bus: Bus, predicate: Callable[[], bool], timeout: float = 10.0) -> bool:
    """Run `bus`'s loop until `predicate()` holds or `timeout` seconds have passed (or, for
    the AMQP bus, until its `stop()` has finished). The AMQP bus is paused, not closed:
    call again to go on. Returns `predicate()`."""
    if predicate():
        return True
    if isinstance(bus, MemoryBus):
        broker = bus.broker
        for _ in range(int(timeout / _MEMORY_STEP) + 1):
            broker.run_until_idle(max_time=_MEMORY_STEP)
            if predicate():
                return True
        return False
    assert isinstance(bus, AmqpBus)
    deadline = time.monotonic() + timeout
    finished = False

    def check() -> None:
        if finished:
            return  # left over from an earlier run_until that ended otherwise
        if predicate() or time.monotonic() >= deadline:
            bus.ioloop.stop()
        else:
            bus.call_later(0.005, check)

    bus.call_later(0, check)
    try:
        bus.run()
    finally:
        finished = True
    return predicate()


def settle(bus: Bus, seconds: float = 0.5) -> None:
    """Run the loop for a while, to see that something does NOT happen."""
    run_until(bus, lambda: False, seconds)


def stop_bus(bus: Bus, timeout: float = 15.0) -> None:
    """The bus goes away: its consumers and locks go, unacked messages are requeued."""
    if isinstance(bus, MemoryBus):
        bus.disconnect()
        bus.broker.run_until_idle(max_time=0)
        return
    assert isinstance(bus, AmqpBus)
    if bus.stopped:
        return
    bus.stop()
    run_until(bus, lambda: bus.stopped, timeout)
    assert bus.stopped, "the AMQP bus did not stop in time"


def envelope(exchange: str, routing_key: str, body: bytes = b"\x80", **kwargs: Any) -> Envelope:
    """An envelope with a fresh message id and a fixed timestamp."""
    kwargs.setdefault("type", "test.message")
    kwargs.setdefault("message_id", uuid.uuid4().hex)
    kwargs.setdefault("timestamp", 1_700_000_000)
    return Envelope(exchange, routing_key, body, **kwargs)


@dataclass
class Confirms:
    """Collects confirm verdicts by key."""

    verdicts: dict[str, bool] = field(default_factory=dict)

    def callback(self, key: str) -> Callable[[bool], None]:
        def record(ok: bool) -> None:
            assert key not in self.verdicts, f"confirm for {key} called twice"
            self.verdicts[key] = ok

        return record

    def __len__(self) -> int:
        return len(self.verdicts)


@dataclass
class Inbox:
    """A handler that keeps what it receives, acking it when `auto_ack`."""

    auto_ack: bool = False
    deliveries: list[Delivery] = field(default_factory=list)

    def __call__(self, delivery: Delivery) -> None:
        self.deliveries.append(delivery)
        if self.auto_ack:
            delivery.ack()

    def __len__(self) -> int:
        return len(self.deliveries)

    def ids(self) -> list[str | None]:
        return [d.message_id for d in self.deliveries]
