"""Per-member rate limits (gateway/rate_limits.py): a token bucket each, on a clock the test
turns."""

from __future__ import annotations

from gateway.rate_limits import RateLimits


class Clock:
    def __init__(self, now: float = 1_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def allowed(limits: RateLimits, member: str, times: int) -> int:
    return sum(limits.allow(member) for _ in range(times))


def test_a_full_bucket_allows_a_burst_then_refuses() -> None:
    limits = RateLimits({"alpha": (2, 3)}, Clock())
    assert allowed(limits, "alpha", 5) == 3


def test_tokens_come_back_at_the_rate() -> None:
    clock = Clock()
    limits = RateLimits({"alpha": (2, 3)}, clock)
    allowed(limits, "alpha", 3)
    clock.now += 0.5  # 2 a second: one token
    assert allowed(limits, "alpha", 3) == 1


def test_an_idle_member_gets_no_more_than_the_burst() -> None:
    clock = Clock()
    limits = RateLimits({"alpha": (2, 3)}, clock)
    allowed(limits, "alpha", 3)
    clock.now += 3_600
    assert allowed(limits, "alpha", 10) == 3


def test_each_member_has_its_own_bucket() -> None:
    limits = RateLimits({"alpha": (1, 1), "beta": (1, 1)}, Clock())
    assert allowed(limits, "alpha", 2) == 1
    assert allowed(limits, "beta", 2) == 1


def test_a_member_without_limits_is_refused() -> None:
    assert not RateLimits({"alpha": (1, 1)}, Clock()).allow("gamma")
