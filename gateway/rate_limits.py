"""Per-member rate limits: a token bucket each, on an injected clock."""

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


class RateLimits:
    """One bucket per member, sized from its configuration."""

    def __init__(
        self, limits: dict[str, tuple[int, int]], clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._buckets = {
            member: TokenBucket(rate, burst) for member, (rate, burst) in limits.items()
        }
        self._clock = clock

    def allow(self, member: str) -> bool:
        bucket = self._buckets.get(member)
        return bucket is not None and bucket.take(self._clock())
