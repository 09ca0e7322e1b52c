"""Rate limits: a token bucket per member, which paces how fast the gateway takes from the
member's request queue (gateway/lanes.py), and one shared by every request that names no
member (no `user_id`, or a login that is not a member's), on an injected clock."""

from __future__ import annotations

import time
from collections.abc import Callable

from rex.token_bucket import TokenBucket

__all__ = ["UNATTRIBUTED_BURST", "UNATTRIBUTED_RATE_PER_S", "RateLimits", "TokenBucket"]

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
