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
    bucket = limits.bucket(member)
    assert bucket is not None
    return sum(bucket.take(limits.now()) for _ in range(times))


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


def test_a_member_without_limits_has_no_bucket() -> None:
    assert RateLimits({"alpha": (1, 1)}, Clock()).bucket("gamma") is None


def test_the_wait_for_a_token_is_what_the_rate_takes_to_make_one() -> None:
    clock = Clock()
    limits = RateLimits({"alpha": (4, 2)}, clock)
    bucket = limits.bucket("alpha")
    assert bucket is not None
    assert bucket.wait_s(clock.now) == 0
    allowed(limits, "alpha", 2)
    assert bucket.wait_s(clock.now) == 0.25
    clock.now += 0.1
    assert abs(bucket.wait_s(clock.now) - 0.15) < 1e-9
    clock.now += 0.15
    assert bucket.wait_s(clock.now) == 0
