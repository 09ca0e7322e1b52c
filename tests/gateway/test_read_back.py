"""The gateway finishes a request only once its batch is read back from the input log, and
sends a confirmed batch again when the log does not have it (gateway/read_back.py): a later
batch of its writer is there and it is not, or it is not there within the bound. The broker
that confirms and loses is the memory broker with one input-log message dropped after its
confirm; on a real cluster: tests/cluster/test_node_kills.py."""

from __future__ import annotations

from collections.abc import Callable

from gateway.read_back import ReadBack
from gateway.service import READ_BACK_TIMEOUT_S
from rex import metrics, topology
from rex.bus import Envelope
from rex.protocol import WRITER_HEADER
from tests.embedded import Exchange


def test_a_batch_read_back_is_done_and_the_earlier_ones_missing_are_sent_again() -> None:
    rb: ReadBack[str] = ReadBack()
    for n in (1, 2, 3):
        rb.sent(n, f"b{n}", now=0.0)
        rb.confirmed(n, attempt=1)
    done, lost = rb.read(3, now=1.0)
    assert done == "b3"
    assert [(s.sequence, s.attempt, s.sent_at, s.confirmed) for s in lost] == [
        (1, 2, 1.0, False),
        (2, 2, 1.0, False),
    ]
    assert rb.read(1, now=1.1) == ("b1", [])  # the copy sent again
    assert rb.failed(2, attempt=1) is None  # the first attempt's late refusal: stale
    assert rb.failed(2, attempt=2) == "b2"
    assert len(rb) == 0


def test_only_a_confirmed_batch_is_overdue_and_each_is_sent_again_once_per_bound() -> None:
    rb: ReadBack[str] = ReadBack()
    rb.sent(1, "b1", now=0.0)
    rb.sent(2, "b2", now=0.0)
    rb.confirmed(2, attempt=1)
    assert [s.sequence for s in rb.overdue(now=6.0, bound_s=5.0)] == [2]
    assert rb.overdue(now=7.0, bound_s=5.0) == []  # sent again at 6, not confirmed since
    assert rb.clear() == ["b1", "b2"]


def losing_one_forward(exchange: Exchange) -> list[Envelope]:
    """Make the broker confirm the gateway's next forward and keep it out of the log."""
    lost: list[Envelope] = []
    enqueue: Callable[[str, Envelope], None] = exchange.broker.enqueue

    def lossy(queue: str, envelope: Envelope) -> None:
        ours = envelope.headers and WRITER_HEADER in envelope.headers
        if not lost and ours and queue.startswith(topology.engine_input_queue("")):
            lost.append(envelope)
            return
        enqueue(queue, envelope)

    exchange.broker.enqueue = lossy  # type: ignore[method-assign]
    exchange.gateway.read_back_clock = lambda: exchange.broker.now
    return lost


def resent() -> float:
    return float(metrics.GATEWAY_FORWARDS_RESENT.labels("PRND-OX")._value.get())


def test_a_forward_lost_before_a_later_one_is_sent_again_and_answered(exchange: Exchange) -> None:
    lost = losing_one_forward(exchange)
    before = resent()
    alpha = exchange.traders["alpha"]
    alpha.order("first", "buy", 100, 450_000)
    exchange.run(0.1)
    assert len(lost) == 1 and alpha.answers("first") == []
    alpha.order("second", "buy", 100, 451_000)
    exchange.run(0.1)
    assert resent() == before + 1
    assert [r["status"] for r in alpha.answers("first")] == ["new"]
    assert [r["status"] for r in alpha.answers("second")] == ["new"]


def test_the_last_forward_lost_is_sent_again_after_the_bound(exchange: Exchange) -> None:
    lost = losing_one_forward(exchange)
    before = resent()
    alpha = exchange.traders["alpha"]
    alpha.order("only", "buy", 100, 450_000)
    exchange.run(READ_BACK_TIMEOUT_S / 2)
    assert len(lost) == 1 and alpha.answers("only") == [] and resent() == before
    exchange.run(READ_BACK_TIMEOUT_S)
    assert resent() == before + 1
    assert [r["status"] for r in alpha.answers("only")] == ["new"]
