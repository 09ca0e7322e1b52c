"""Gaps in the gateways' numbers on an input log (engine/input_sequences.py), and the engine
counting them (rex_engine_input_gaps_total) from the headers of what it reads, on the memory
bus. Through a real cluster: tests/cluster/test_node_kills.py."""

from __future__ import annotations

from engine.input_sequences import MAX_OPEN_GAPS, MAX_WRITERS, InputSequences, SequenceVerdict
from rex import metrics, topology
from rex.bus import Envelope
from rex.protocol import (
    ENGINE_INPUT,
    SEQUENCE_HEADER,
    WRITER_HEADER,
    EngineInput,
    InputKind,
    encode_inputs,
)
from tests.embedded import Exchange


def verdicts(sequences: InputSequences, writer: str, numbers: list[int]) -> list[str]:
    return [sequences.see(writer, n).verdict.value for n in numbers]


def test_numbers_in_order_a_gap_a_late_batch_filling_it_and_a_repeat() -> None:
    s = InputSequences()
    assert verdicts(s, "w", [1, 2, 3]) == ["next", "next", "next"]
    gap = s.see("w", 6)
    assert (gap.verdict, gap.missing) == (SequenceVerdict.GAP, (4, 5))
    assert s.open_gaps == 2
    assert verdicts(s, "w", [5, 5, 7, 2]) == ["filled", "repeat", "next", "repeat"]
    assert s.open_gaps == 1


def test_a_writer_first_met_starts_its_run_where_it_is_met() -> None:
    s = InputSequences()  # as after an image: the writer's earlier batches were before it
    assert verdicts(s, "w", [41, 42]) == ["next", "next"]
    assert verdicts(s, "other", [1, 3]) == ["next", "gap"]


def test_writers_and_their_gaps_are_bounded() -> None:
    s = InputSequences()
    for i in range(MAX_WRITERS + 10):
        s.see(f"w{i}", 1)
    assert verdicts(s, "w0", [5]) == ["next"]  # forgotten, so met anew
    big = s.see(f"w{MAX_WRITERS + 9}", 3 * MAX_OPEN_GAPS)
    assert len(big.missing) == MAX_OPEN_GAPS
    assert s.open_gaps == MAX_OPEN_GAPS


def gaps(product: str) -> tuple[float, float, float]:
    return (
        metrics.ENGINE_INPUT_GAPS.labels(product)._value.get(),
        metrics.ENGINE_INPUT_GAPS_FILLED.labels(product)._value.get(),
        metrics.ENGINE_INPUT_OPEN_GAPS.labels(product)._value.get(),
    )


def forward(exchange: Exchange, writer: str, sequence: int) -> None:
    entry = EngineInput(InputKind.TICK, "PRND-OX", 1_000 + sequence)
    exchange.gateway_bus.publish(
        Envelope(
            topology.ENGINE,
            "PRND-OX",
            encode_inputs([entry]),
            ENGINE_INPUT,
            f"{writer}-{sequence}",
            0,
            headers={WRITER_HEADER: writer, SEQUENCE_HEADER: sequence},
        )
    )
    exchange.run()


def test_the_engine_counts_a_gap_in_a_writers_numbers_and_its_filling(
    exchange: Exchange,
) -> None:
    gaps_before, filled_before, _ = gaps("PRND-OX")
    for n in (1, 2, 5):
        forward(exchange, "gw-test.1", n)
    assert gaps("PRND-OX") == (gaps_before + 2, filled_before, 2)
    forward(exchange, "gw-test.1", 3)
    assert gaps("PRND-OX") == (gaps_before + 2, filled_before + 1, 1)


def test_the_gateways_forwards_carry_their_writer_and_numbers(exchange: Exchange) -> None:
    before = gaps("PRND-OX")
    alpha = exchange.traders["alpha"]
    for i in range(5):
        alpha.order(f"o{i}", "buy", 100, 450_000)
        exchange.run()
    assert gaps("PRND-OX") == before  # numbered 1..5, none missing
    numbered = [
        m.envelope.headers
        for m in exchange.broker.queues[topology.engine_input_queue("PRND-OX")].log
        if m is not None and m.envelope.headers and WRITER_HEADER in m.envelope.headers
    ]
    assert [h[SEQUENCE_HEADER] for h in numbered] == [1, 2, 3, 4, 5]
    assert len({h[WRITER_HEADER] for h in numbered}) == 1
