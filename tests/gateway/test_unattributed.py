"""Requests that name no member (no user_id, or a login that is not a member's) share one
rate limit (gateway/rate_limits.py): within it they go to rex.dead for an operator, beyond
it they are dropped and counted, so a flood of them cannot fill rex.dead."""

from __future__ import annotations

from gateway.rate_limits import UNATTRIBUTED_BURST, RateLimits
from rex import metrics
from tests.embedded import Exchange


def dropped() -> float:
    return metrics.GATEWAY_UNATTRIBUTED_DROPPED._value.get()


def test_a_flood_without_user_id_reaches_rex_dead_only_up_to_the_shared_bucket(
    exchange: Exchange,
) -> None:
    alpha = exchange.traders["alpha"]
    before = dropped()
    for n in range(2_000):
        alpha.send("new_order", {"client_order_id": f"x{n}", "product": "PRND-OX"}, user_id=None)
    exchange.run(2.0)  # alpha's queue is taken at alpha's rate: 1,000 at once, 1,000 a second
    # The shared bucket refills meanwhile (20 a second), so a few more than the burst pass.
    assert UNATTRIBUTED_BURST <= len(exchange.dead) < UNATTRIBUTED_BURST + 50
    assert dropped() - before == 2_000 - len(exchange.dead)
    assert alpha.reports == []


def test_the_shared_bucket_refills_at_its_rate() -> None:
    now = [0.0]
    limits = RateLimits({}, lambda: now[0], unattributed=(10, 5))
    assert sum(limits.allow_unattributed() for _ in range(20)) == 5
    now[0] += 1.0
    assert sum(limits.allow_unattributed() for _ in range(20)) == 5  # 10 a second, 5 at once
    assert limits.bucket("nobody") is None  # and a login has no bucket of its own
