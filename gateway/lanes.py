"""Lanes: each member's request queue as the gateway takes from it, no faster than the
member's rate.

Members publish to their own queues (rex.topology.member_request_queue), so a member that
floods fills its own queue and nobody else's. The gateway consumes every member's queue
with a small prefetch of its own, and takes a request off a lane only when the member's
token bucket has a token: what a member sends faster than its rate waits, unacked, in the
gateway (at most the lane's prefetch) and behind it in the member's queue, until its turn;
once that queue is at its bound the broker refuses the member's publishes. So a burst the
gateway could not serve at once -- after a restart, say -- is served at the member's rate
instead of being refused, and a flood costs the gateway only the member's rate.

Pure: no bus, no clock of its own; the gateway schedules the next look (`wait_s`).
"""

from __future__ import annotations

from collections import deque
from typing import Generic, TypeVar

from rex.bus import InOrderAcks

from .rate_limits import TokenBucket

T = TypeVar("T")

#: How often, at most, the gateway looks again at a lane that waits for tokens. Longer than
#: one token's time at high rates, so a flooding member's requests go on in runs (one
#: input-log message, one broker write, for each run) rather than one by one; a request
#: that waits its turn waits at most this much longer for it.
LOOK_INTERVAL_S = 0.01


class Lane(Generic[T]):
    """One request queue's deliveries, in arrival order, each let through on a token of
    ``bucket`` (every one at once if ``bucket`` is None: the old shared queue, draining)."""

    __slots__ = ("acks", "bucket", "held", "member", "queue", "resume_scheduled")

    def __init__(self, member: str, queue: str, bucket: TokenBucket | None) -> None:
        self.member = member  # "" for the old shared queue
        self.queue = queue
        self.bucket = bucket
        self.acks = InOrderAcks()  # per lane: a multiple ack covers one consumer only
        self.held: deque[T] = deque()
        self.resume_scheduled = False

    def offer(self, item: T, now: float) -> bool:
        """A delivery arrived: True if it may be handled now, else it waits its turn (after
        the ones already waiting, so a member's requests keep their order)."""
        if not self.held and (self.bucket is None or self.bucket.take(now)):
            return True
        self.held.append(item)
        return False

    def release(self, now: float) -> list[T]:
        """The waiting deliveries whose turn has come, oldest first."""
        ready = []
        while self.held and (self.bucket is None or self.bucket.take(now)):
            ready.append(self.held.popleft())
        return ready

    def wait_s(self, now: float) -> float:
        """Seconds until the next waiting delivery may go (0 if none waits)."""
        if not self.held or self.bucket is None:
            return 0.0
        return max(LOOK_INTERVAL_S, self.bucket.wait_s(now))

    def reset(self) -> None:
        """The connection went: everything unacked comes again."""
        self.acks.reset()
        self.held.clear()
        self.resume_scheduled = False
