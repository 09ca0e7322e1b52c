"""Rate limits: a token bucket per member, and one shared by every request that names no
member (no `user_id`, or a login that is not a member's), on an injected clock."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field


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

    def allow(self, member: str) -> bool:
        bucket = self._buckets.get(member)
        return bucket is not None and bucket.take(self._clock())

    def allow_unattributed(self) -> bool:
        """A request that names no member: within the shared bucket?"""
        return self._unattributed.take(self._clock())
