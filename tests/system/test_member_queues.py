"""Each member's requests on a queue of its own, taken at the member's rate (gateway/lanes.py),
through real RabbitMQ: a member over its rate is served later, not refused, and delays
nobody else; requests sent within the rate while the gateway was down are all served.

"slow" may send 2 requests a second, 2 at once (tests/system/conftest.py). The bounds below
are on how many of its requests the gateway may have taken in a time, so a slow machine
(more time passing) only loosens them; none asserts that anything is fast.
"""

from __future__ import annotations

import signal
import time
from collections.abc import Iterator

import pytest

from rex.client import Client
from rex.protocol import ExecutionReport, NewOrderRequest
from rex.vocabulary import Side, TimeInForce
from tests.system.conftest import Exchange, wait_for_answer

pytestmark = pytest.mark.broker

SLOW_RATE_PER_S, SLOW_BURST = 2, 2


def start_gateway(exchange: Exchange) -> None:
    exchange.start("gateway", "gateway", "--tick-interval", "0.5", "--metrics-port", "0")


@pytest.fixture(scope="module")
def running(exchange: Exchange) -> Iterator[Exchange]:
    start_gateway(exchange)
    exchange.start("engine-main", "engine", "--group", "main", "--metrics-port", "0")
    with exchange.client("gamma") as gamma:
        try:
            wait_for_answer(gamma, "PRND-OX")
        except TimeoutError:
            pytest.fail("exchange did not come up:\n" + exchange.log_tail())
    yield exchange


def ioc_bid(client: Client, cid: str) -> str:
    """A harmless order (an IOC bid far below any ask), published with a confirm."""
    return client.send(
        NewOrderRequest(cid, "PRND-OX", Side.BUY, 100, price=455_000, time_in_force=TimeInForce.IOC)
    )


def answers(
    client: Client, cids: set[str], timeout: float
) -> dict[str, tuple[ExecutionReport, float]]:
    """The first answer to each of ``cids`` and when it came, until all came or ``timeout``."""
    got: dict[str, tuple[ExecutionReport, float]] = {}
    deadline = time.monotonic() + timeout
    while len(got) < len(cids) and time.monotonic() < deadline:
        for r in client.executions(timeout=0.2):
            if r.client_order_id in cids and r.client_order_id not in got:
                got[str(r.client_order_id)] = (r, time.monotonic())
    return got


def test_a_burst_over_the_rate_is_served_at_the_rate_not_refused(running: Exchange) -> None:
    with running.client("slow") as slow:
        time.sleep(1.0)  # a full bucket
        cids = [f"burst-{n}" for n in range(5)]
        for cid in cids:
            ioc_bid(slow, cid)
        got = answers(slow, set(cids), timeout=30)
    assert sorted(got) == sorted(cids), running.log_tail()
    assert {(r.status, r.reason) for r, _ in got.values()} == {("cancelled", "immediate_or_cancel")}
    # Two at once, then one each half second: the fifth comes at least 1.5 s after the
    # first (less a little for the bucket refilling while the first two were taken).
    times = sorted(at for _, at in got.values())
    assert times[-1] - times[0] >= 1.2


def test_requests_sent_within_the_rate_while_the_gateway_was_down_are_all_served(
    running: Exchange,
) -> None:
    running.kill("gateway", signal.SIGTERM)
    with running.client("slow") as slow:
        cids = [f"down-{n}" for n in range(4)]
        for cid in cids:  # at the member's rate: one each half second
            ioc_bid(slow, cid)
            time.sleep(1 / SLOW_RATE_PER_S)
        start_gateway(running)
        got = answers(slow, set(cids), timeout=60)
    assert sorted(got) == sorted(cids), running.log_tail()
    # Before member queues the gateway took all four at once after its restart, with a
    # bucket of two, and refused two as rate_limited.
    assert [(got[c][0].status, got[c][0].reason) for c in cids] == [
        ("cancelled", "immediate_or_cancel")
    ] * 4


def test_a_flooding_member_delays_nobody_else(running: Exchange) -> None:
    """Run last: slow's queue is left with a backlog the module's teardown removes."""
    flood = 200
    with running.client("slow") as slow, running.client("alpha") as alpha:
        time.sleep(1.0)
        started = time.monotonic()
        for n in range(flood):
            ioc_bid(slow, f"flood-{n}")
        answer = alpha.place("PRND-OX", "buy", 100, 456_000, time_in_force=TimeInForce.IOC, wait=30)
        elapsed = time.monotonic() - started
        assert isinstance(answer, ExecutionReport), answer
        assert (answer.status, answer.reason) == ("cancelled", "immediate_or_cancel")
        taken = answers(slow, {f"flood-{n}" for n in range(flood)}, timeout=0.5)
        elapsed_s = time.monotonic() - started
    # alpha's order was answered while slow's flood still waited in slow's own queue: the
    # gateway had taken no more of it than slow's rate allows in the time. Before member
    # queues, alpha's order waited behind all 200 (198 of them refused rate_limited).
    allowed = SLOW_BURST + SLOW_RATE_PER_S * elapsed_s + 1
    assert len(taken) <= allowed, (len(taken), elapsed, elapsed_s)
    assert all(r.reason != "rate_limited" for r, _ in taken.values())
