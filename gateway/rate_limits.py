"""Rate limits: a token bucket per member, which paces how fast the gateway takes from the
member's request queue (gateway/lanes.py), and one shared by every request that names no
member (no `user_id`, or a login that is not a member's), on an injected clock."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

#: The shortest wait for a token: a millisecond, a timer's granularity on the loop.
MIN_WAIT_S = 0.001


@dataclass(slots=True)
class TokenBucket:
    rate: float  # tokens per second
    burst: float  # bucket size
    tokens: float = field(init=False)
    updated: float = field(init=False, default=0.0)

    def __post_init__(self) -> None:
        self.tokens = self.burst

    def take(self, now: float) -> bool:
        """Spend one token if there is one."""
        elapsed = now - self.updated
        self.updated = now
        if elapsed > 0:
            self.tokens = min(self.burst, self.tokens + elapsed * self.rate)
        if self.tokens >= 1:
            self.tokens -= 1
            return True
        return False

    def wait_s(self, now: float) -> float:
        """Seconds from ``now`` until there is a token (0 if there is one); never less than
        `MIN_WAIT_S`, so a wait that rounding makes tiny still lets the clock move on."""
        tokens = min(self.burst, self.tokens + max(0.0, now - self.updated) * self.rate)
        return 0.0 if tokens >= 1 else max(MIN_WAIT_S, (1 - tokens) / self.rate)


#: Requests that name no member, per second and at once, across all senders: within it
#: they are dead-lettered to rex.dead (for an operator to look at), beyond it dropped and
#: counted (docs/operators/operations.md). They cannot be attributed to anyone, so they
#: share one bucket; it bounds what they add to rex.dead, not what they cost to drop.
UNATTRIBUTED_RATE_PER_S = 20
UNATTRIBUTED_BURST = 100


class RateLimits:
    """One bucket per member, sized from its configuration, and one for requests that
    name no member."""

    def __init__(
        self,
        limits: dict[str, tuple[int, int]],
        clock: Callable[[], float] = time.monotonic,
        unattributed: tuple[int, int] = (UNATTRIBUTED_RATE_PER_S, UNATTRIBUTED_BURST),
    ) -> None:
        self._buckets = {
            member: TokenBucket(rate, burst) for member, (rate, burst) in limits.items()
        }
        self._unattributed = TokenBucket(*unattributed)
        self._clock = clock

    def bucket(self, member: str) -> TokenBucket | None:
        """The member's bucket (None for one not configured)."""
        return self._buckets.get(member)

    def now(self) -> float:
        return self._clock()

    def allow_unattributed(self) -> bool:
        """A request that names no member: within the shared bucket?"""
        return self._unattributed.take(self._clock())
