"""Engine outputs for one destination out of one input travel as one batch message."""

from __future__ import annotations

import msgpack
import pytest

from engine.outputs import MAX_BATCH, batched
from rex import topology
from rex.bus import Envelope
from rex.protocol import (
    BookSnapshot,
    ExecutionReport,
    PublicTrade,
    decode_messages,
    encode,
    join_bodies,
    unpack_messages,
)


def report(n: int, member: str = "m1") -> ExecutionReport:
    return ExecutionReport(f"X-{n}", member, "PRND-OX", "new", 1_000 + n, order_id=n)


def envelope(r: ExecutionReport) -> Envelope:
    return Envelope(
        topology.EXECUTIONS,
        f"{r.member}.{r.product}",
        encode(r),
        r.kind,
        r.exec_id,
        1,
        mandatory=False,
    )


def book() -> Envelope:
    snapshot = BookSnapshot("PRND-OX", 9, [[1, 2, 1]], [], 5)
    return Envelope(topology.MARKETDATA, "PRND-OX.book", encode(snapshot), "book", "b-9", 1)


@pytest.mark.parametrize("count", [1, 2, 15, 16, 300, 70_000])
def test_joined_bodies_are_a_msgpack_array_of_the_messages(count: int) -> None:
    reports = [report(n) for n in range(count)]
    body = join_bodies([encode(r) for r in reports])
    assert body == msgpack.packb([msgpack.unpackb(encode(r)) for r in reports])
    assert decode_messages("execution_batch", body, ExecutionReport) == reports


def test_a_single_message_decodes_as_a_list_of_one() -> None:
    r = report(1)
    assert decode_messages("execution", encode(r), ExecutionReport) == [r]
    assert unpack_messages("execution", encode(r)) == [msgpack.unpackb(encode(r))]


def test_another_kind_is_refused() -> None:
    with pytest.raises(ValueError, match="expected 'public_trade'"):
        decode_messages("execution_batch", join_bodies([encode(report(1))]), PublicTrade)


def test_one_members_reports_become_one_batch_in_place_of_the_first() -> None:
    first, other, second, third = report(1), report(2, "m2"), report(3), report(4)
    snapshot = book()
    out = batched([envelope(first), envelope(other), snapshot, envelope(second), envelope(third)])
    assert [e.type for e in out] == ["execution_batch", "execution", "book"]
    batch = out[0]
    assert (batch.exchange, batch.routing_key, batch.mandatory) == (
        topology.EXECUTIONS,
        "m1.PRND-OX",
        False,
    )
    assert batch.message_id == "X-1..X-4"
    assert decode_messages(batch.type, batch.body, ExecutionReport) == [first, second, third]
    assert out[1].body == encode(other)  # a lone message is left as it was
    assert out[2] is snapshot  # book snapshots are never batched


def test_outputs_with_nothing_to_join_are_returned_unchanged() -> None:
    outputs = [envelope(report(1)), envelope(report(2, "m2")), book()]
    assert batched(outputs) is outputs


def test_batches_are_capped() -> None:
    out = batched([envelope(report(n)) for n in range(MAX_BATCH + 3)])
    sizes = [len(decode_messages(e.type, e.body, ExecutionReport)) for e in out]
    assert sizes == [MAX_BATCH, 3]


def test_batching_is_deterministic() -> None:
    """A take-over republishes the same outputs: the batches must be byte-identical."""
    outputs = [envelope(report(n, f"m{n % 3}")) for n in range(20)]
    assert [(e.message_id, e.body) for e in batched(list(outputs))] == [
        (e.message_id, e.body) for e in batched(list(outputs))
    ]
