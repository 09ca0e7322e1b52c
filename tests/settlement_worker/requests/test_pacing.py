"""Pacing of members' settlement requests: a member's requests are taken no faster than
its settlement rate, in order, and another member's are not held up by them."""

from __future__ import annotations

from pathlib import Path

import pytest

from rex import metrics
from rex.settlement_protocol import SHOW_SETTLEMENT_SETTINGS
from settlement_worker.requests.pacing import SETTLEMENT_BURST, SETTLEMENT_RATE_PER_S, Pacing
from settlement_worker.store import Store
from settlement_worker.store.sqlite import SqliteStore
from tests.settlement_worker.helpers import BUYER, SELLER
from tests.settlement_worker.request_helpers import Worker


def test_a_burst_goes_at_once_and_the_rest_at_the_rate_in_order() -> None:
    pacing: Pacing[int] = Pacing(("a", "b"), rate_per_s=10, burst=2)
    assert [pacing.offer("a", n, 0.0) for n in range(4)] == [True, True, False, False]
    assert pacing.offer("b", 9, 0.0)  # another member has a bucket of its own
    assert pacing.waiting("a") == 2
    assert pacing.wait_s("a", 0.0) == pytest.approx(0.1)
    assert pacing.release("a", 0.05) == []
    assert pacing.release("a", 0.1) == [2]
    assert not pacing.offer("a", 4, 0.1)  # behind the one still waiting, never before it
    assert pacing.release("a", 0.5) == [3, 4]
    assert pacing.wait_s("a", 0.5) == 0.0


def test_a_lost_connection_forgets_what_waited() -> None:
    pacing: Pacing[int] = Pacing(("a",), rate_per_s=1, burst=1)
    pacing.offer("a", 1, 0.0)
    pacing.offer("a", 2, 0.0)
    pacing.reset()
    assert pacing.waiting("a") == 0


@pytest.fixture
def store(tmp_path: Path) -> Store:
    store = SqliteStore(tmp_path / "settlement.sqlite3")
    store.migrate()
    return store


def test_a_flood_is_taken_at_the_members_rate_and_another_member_is_not_held_up(
    store: Store,
) -> None:
    worker = Worker(store)
    paced = metrics.SETTLEMENT_REQUESTS_PACED.labels(BUYER)
    paced_before = paced._value.get()
    flood = [worker.send(BUYER, SHOW_SETTLEMENT_SETTINGS, {}, run=False) for _ in range(100)]
    calm = worker.send(SELLER, SHOW_SETTLEMENT_SETTINGS, {}, run=False)
    worker.broker.run_until_idle(max_time=0.5)
    assert worker.answer(SELLER, calm).status == "accepted"
    taken = [a.request_id for a in worker.answers(BUYER)]
    # The burst at once, then the rate: in half a second of the loop's clock, no more.
    assert SETTLEMENT_BURST <= len(taken) <= SETTLEMENT_BURST + SETTLEMENT_RATE_PER_S // 2 + 1
    assert paced._value.get() > paced_before
    worker.run()
    assert [a.request_id for a in worker.answers(BUYER)] == flood  # every one, in order
    floor_s = (len(flood) - SETTLEMENT_BURST) / SETTLEMENT_RATE_PER_S
    assert worker.broker.now >= floor_s - 0.1
