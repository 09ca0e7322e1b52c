"""A member's lane (gateway/lanes.py): deliveries let through on the member's tokens, in
the order they came; the rest wait, and say how long until the next may go."""

from __future__ import annotations

from gateway.lanes import LOOK_INTERVAL_S, Lane
from gateway.rate_limits import TokenBucket


def lane(rate: float = 2, burst: float = 2) -> Lane[str]:
    return Lane("alpha", "rex.gateway.requests.alpha", TokenBucket(rate, burst))


def test_a_burst_goes_at_once_and_the_rest_waits_in_order() -> None:
    paced = lane()
    assert [paced.offer(x, 0.0) for x in "abcd"] == [True, True, False, False]
    assert list(paced.held) == ["c", "d"]


def test_waiting_deliveries_go_as_tokens_come_oldest_first() -> None:
    paced = lane()
    for x in "abcde":
        paced.offer(x, 0.0)
    assert paced.release(0.25) == []  # half a token
    assert paced.release(0.5) == ["c"]
    assert paced.release(1.5) == ["d", "e"]
    assert paced.release(10.0) == []


def test_one_arriving_behind_waiting_ones_waits_even_with_a_token() -> None:
    paced = lane()
    for x in "abc":
        paced.offer(x, 0.0)
    # A token is back at 0.5 s, but "c" came first: "d" may not overtake it.
    assert not paced.offer("d", 0.5)
    assert paced.release(0.5) == ["c"]


def test_the_wait_is_never_shorter_than_the_look_interval() -> None:
    paced = lane(rate=1_000, burst=1)
    paced.offer("a", 0.0)
    paced.offer("b", 0.0)
    assert paced.wait_s(0.0) == LOOK_INTERVAL_S  # a token in 1 ms; looked at in 10
    idle = lane()
    assert idle.wait_s(0.0) == 0.0  # nothing waits


def test_the_old_shared_queue_is_not_paced() -> None:
    draining: Lane[str] = Lane("", "rex.gateway.requests", None)
    assert all(draining.offer(x, 0.0) for x in "abcdef")


def test_a_reset_forgets_what_waited() -> None:
    paced = lane()
    for x in "abcd":
        paced.offer(x, 0.0)
    paced.reset()
    assert not paced.held and not paced.resume_scheduled
