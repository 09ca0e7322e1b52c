"""Pacing: each member's settlement requests, taken no faster than the member's settlement
rate.

Each member's settlement requests come from a queue of its own (rex.topology
.member_settlement_queue), taken in turn, so one member's backlog never sits ahead of
another's. Pacing bounds what a flooding member costs the worker besides: a request is
handled only on a token of the member's bucket (`SETTLEMENT_RATE_PER_S` a second,
`SETTLEMENT_BURST` at once); the rest wait, unacked and in order, in the worker (at most the
queue's prefetch) and behind it in the member's queue, whose bound makes the broker refuse
the member's publishes once it is full. A clerk or a portal page sends a few requests a
second at most, so the rate only ever slows a flood. The operators' shared queue is not
paced: operators are accounts of the exchange's own people.

Pure: no bus, no clock of its own; the service schedules the next look (`wait_s`).
"""

from __future__ import annotations

from collections import deque
from typing import Final, Generic, TypeVar

from rex.token_bucket import TokenBucket

__all__ = ["SETTLEMENT_BURST", "SETTLEMENT_RATE_PER_S", "Pacing"]

T = TypeVar("T")

#: A member's settlement requests a second, and at once (docs/members/protocol.md).
SETTLEMENT_RATE_PER_S: Final = 20
SETTLEMENT_BURST: Final = 40


class Pacing(Generic[T]):
    """The members' buckets and their waiting requests; only ``members`` are paced (the
    worker consumes no other member's queue, so nothing here grows past them)."""

    __slots__ = ("_buckets", "_held")

    def __init__(
        self,
        members: tuple[str, ...],
        rate_per_s: float = SETTLEMENT_RATE_PER_S,
        burst: float = SETTLEMENT_BURST,
    ) -> None:
        self._buckets = {m: TokenBucket(rate_per_s, burst) for m in members}
        self._held: dict[str, deque[T]] = {m: deque() for m in members}

    def offer(self, member: str, item: T, now: float) -> bool:
        """A request of ``member`` arrived: True if it may be handled now; else it waits
        its turn, after the ones already waiting (a member's requests keep their order)."""
        held = self._held[member]
        if not held and self._buckets[member].take(now):
            return True
        held.append(item)
        return False

    def release(self, member: str, now: float) -> list[T]:
        """The member's waiting requests whose turn has come, oldest first."""
        held, bucket = self._held[member], self._buckets[member]
        ready = []
        while held and bucket.take(now):
            ready.append(held.popleft())
        return ready

    def wait_s(self, member: str, now: float) -> float:
        """Seconds until the member's next waiting request may go (0 if none waits)."""
        if not self._held[member]:
            return 0.0
        return self._buckets[member].wait_s(now)

    def waiting(self, member: str) -> int:
        return len(self._held[member])

    def reset(self) -> None:
        """The connection went: every unacked request comes again."""
        for held in self._held.values():
            held.clear()
