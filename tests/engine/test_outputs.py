"""engine/outputs.py: the market's results as envelopes -- addressed, encoded, those for one
destination out of one input as one batch message -- and the tally the metrics count."""

from __future__ import annotations

import msgpack
import pytest

from engine.market import MASS_CANCELLED
from engine.outputs import MAX_BATCH, Tally, batched, outputs
from rex import topology
from rex.bus import Envelope
from rex.protocol import (
    BookSnapshot,
    ExecStatus,
    ExecutionReport,
    PublicTrade,
    TradeMessage,
    decode_messages,
    encode,
    join_bodies,
    unpack_messages,
)
from rex.vocabulary import Reason, Side

S = 1_000_000_000  # ns


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


# ----------------------------------------------------------------------- from results


def trade(n: int = 7) -> TradeMessage:
    return TradeMessage(
        f"PRND-OX-{n}", "PRND-OX", 500_000, 300, "m1", "m2", 11, 12, Side.SELL, n, 3 * S + 5, "CNY"
    )


def ended(n: int, status: str, reason: Reason, member: str = "m1") -> ExecutionReport:
    return ExecutionReport(f"X-{n}", member, "PRND-OX", status, 2 * S, reason=reason)


def test_a_report_goes_to_its_members_routing_key_under_its_exec_id() -> None:
    r = ExecutionReport("PRND-OX-3", "m1", "PRND-OX", "new", 9 * S + 999, order_id=1)
    [envelope] = outputs([r]).envelopes
    assert envelope == Envelope(
        topology.EXECUTIONS, "m1.PRND-OX", encode(r), "execution", "PRND-OX-3", 9, mandatory=False
    )


def test_a_trade_goes_to_settlement_and_without_names_to_the_public_tape() -> None:
    t = trade()
    private, public = outputs([t]).envelopes
    assert private == Envelope(topology.TRADES, "PRND-OX", encode(t), "trade", "PRND-OX-7", 3)
    assert private.mandatory  # settlement's queue must get it: unroutable stops the engine
    assert (public.exchange, public.routing_key, public.type, public.message_id) == (
        topology.MARKETDATA,
        "PRND-OX.trade",
        "public_trade",
        "PRND-OX-7.public",
    )
    assert (public.timestamp, public.mandatory) == (3, False)
    tape = decode_messages(public.type, public.body, PublicTrade)
    assert tape == [PublicTrade("PRND-OX-7", "PRND-OX", 500_000, 300, Side.SELL, 7, 3 * S + 5)]
    assert b"m1" not in public.body and b"m2" not in public.body


def test_a_snapshot_goes_last_to_the_books_routing_key_by_its_sequence() -> None:
    snapshot = BookSnapshot("PRND-OX", 42, [[499_000, 100, 1]], [], 4 * S)
    out = outputs([report(1)], snapshot).envelopes
    assert [e.type for e in out] == ["execution", "book"]
    assert out[1] == Envelope(
        topology.MARKETDATA,
        "PRND-OX.book",
        encode(snapshot),
        "book",
        "PRND-OX-book-42",
        4,
        mandatory=False,
    )


def test_one_inputs_results_are_batched_per_destination_in_order() -> None:
    first, second, other = report(1), report(2), report(3, "m2")
    out = outputs([first, trade(1), second, trade(2), other]).envelopes
    assert [(e.type, e.routing_key, e.message_id) for e in out] == [
        ("execution_batch", "m1.PRND-OX", "X-1..X-2"),
        ("trade_batch", "PRND-OX", "PRND-OX-1..PRND-OX-2"),
        ("public_trade_batch", "PRND-OX.trade", "PRND-OX-1.public..PRND-OX-2.public"),
        ("execution", "m2.PRND-OX", "X-3"),
    ]
    assert decode_messages(out[0].type, out[0].body, ExecutionReport) == [first, second]


def test_the_tally_counts_reports_trades_and_why_orders_were_refused_or_ended() -> None:
    results: list[ExecutionReport | TradeMessage] = [
        report(1),  # new: a report, no reason
        ended(2, ExecStatus.REJECTED, Reason.UNKNOWN_ORDER),
        ended(3, ExecStatus.REJECTED, Reason.UNKNOWN_ORDER, member="m2"),
        ended(4, ExecStatus.CANCELLED, Reason.SELF_TRADE),
        ended(5, ExecStatus.EXPIRED, Reason.EXPIRED),
        ExecutionReport("X-6", "m1", "PRND-OX", MASS_CANCELLED, 2 * S, text="0 open order(s)"),
        trade(1),
    ]
    assert outputs(results).tally == Tally(
        reports=6,
        trades=1,
        reasons={
            (ExecStatus.REJECTED, Reason.UNKNOWN_ORDER): 2,
            (ExecStatus.CANCELLED, Reason.SELF_TRADE): 1,
            (ExecStatus.EXPIRED, Reason.EXPIRED): 1,
        },
    )


def test_no_results_publish_nothing_and_count_nothing() -> None:
    out = outputs([])
    assert (out.envelopes, out.tally) == ([], Tally())
