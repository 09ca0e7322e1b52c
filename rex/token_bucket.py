"""A token bucket on an injected clock: how fast a member's requests are taken, by the
gateway (gateway/rate_limits.py, gateway/lanes.py) and by the settlement worker
(settlement_worker/requests/pacing.py)."""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["MIN_WAIT_S", "TokenBucket"]

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
