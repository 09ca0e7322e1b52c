"""engine.bench: workload loading, trade checksum, replay against the shipped workload; and
engine.bench_paths, the cost of each path through the book."""

from __future__ import annotations

import gc
import hashlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import msgpack
import pytest

from engine import bench_paths
from engine.bench import (
    WORKLOAD_FORMAT,
    load_workload,
    replay_baseline,
    replay_book,
    trade_checksum,
)

WORKLOADS = Path(__file__).resolve().parents[2] / ".." / "shared" / "workloads"
HEADER: dict[str, Any] = {
    "format": WORKLOAD_FORMAT,
    "product": "PRND-OX",
    "operations": 5,
    "tick": 50,
    "lot": 100,
    "reference_price": 500_000,
}
# Hand-made: two resting sells, a cancel, a buy that sweeps both levels, a stale cancel.
OPERATIONS = [
    [0, 1, 0, 500_000, 200],  # sell 200 @ 500 000
    [0, 2, 0, 500_050, 300],  # sell 300 @ 500 050
    [0, 3, 0, 500_050, 100],  # sell 100 @ 500 050, behind 2
    [1, 2],  # cancel 2
    [0, 4, 1, 500_100, 400],  # buy 400: 200 from 1 @ 500 000, 100 from 3 @ 500 050, rest
    [1, 1],  # 1 already filled: nothing
]
# sha256 of "4 1 500000 200\n4 3 500050 100\n", computed by hand with sha256sum.
TINY_CHECKSUM = "849c5eecc1c4418de79937b2edd46b22fa72d8b3a148da8e7b997abeab75e1a9"


@pytest.fixture(autouse=True)
def _restore_gc() -> Iterator[None]:
    """The replays freeze the heap and raise GC thresholds for the process; undo that."""
    thresholds = gc.get_threshold()
    yield
    gc.unfreeze()
    gc.set_threshold(*thresholds)


def _write(path: Path, *objects: Any) -> Path:
    with path.open("wb") as stream:
        for obj in objects:
            stream.write(msgpack.packb(obj, use_bin_type=True))
    return path


@pytest.mark.parametrize(
    "header",
    [
        {**HEADER, "format": "rex-book-workload/2"},
        {key: value for key, value in HEADER.items() if key != "format"},
        ["rex-book-workload/1"],
    ],
    ids=["wrong-version", "no-format", "not-a-map"],
)
def test_load_workload_rejects_a_file_with_the_wrong_header(tmp_path: Path, header: Any) -> None:
    path = _write(tmp_path / "bad.msgpack", header, *OPERATIONS)

    with pytest.raises(ValueError, match="not a rex-book-workload/1 file"):
        load_workload(path)


def test_load_workload_reads_the_header_and_every_operation(tmp_path: Path) -> None:
    path = _write(tmp_path / "tiny.msgpack", HEADER, *OPERATIONS)

    workload = load_workload(path)

    assert workload.header == HEADER
    assert workload.operations == OPERATIONS


def test_trade_checksum_of_a_tiny_example_equals_the_hand_computed_sha256() -> None:
    checksum, count, quantity = trade_checksum([(4, 1, 500_000, 200), (4, 3, 500_050, 100)])

    assert checksum == TINY_CHECKSUM
    assert checksum == hashlib.sha256(b"4 1 500000 200\n4 3 500050 100\n").hexdigest()
    assert (count, quantity) == (2, 300)


def test_trade_checksum_of_no_trades_is_the_empty_sha256() -> None:
    assert trade_checksum([]) == (
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
        0,
        0,
    )


def test_replay_of_a_tiny_workload_gives_the_hand_computed_trades(tmp_path: Path) -> None:
    workload = load_workload(_write(tmp_path / "tiny.msgpack", HEADER, *OPERATIONS))

    book = replay_book(workload)
    baseline = replay_baseline(workload)

    assert (book.orders, book.trades, book.traded_quantity) == (6, 2, 300)
    assert book.checksum == TINY_CHECKSUM
    assert baseline.checksum == TINY_CHECKSUM


def test_replay_of_book_100k_gives_the_checksum_in_its_header() -> None:
    path = WORKLOADS / "book-100k.msgpack"
    if not path.exists():
        pytest.skip(f"{path} is not available")
    workload = load_workload(path)
    header = workload.header

    result = replay_book(workload)

    assert result.checksum == header["checksum"]
    assert (result.orders, result.trades, result.traded_quantity) == (
        header["operations"],
        header["trades"],
        header["traded_quantity"],
    )


def test_bench_paths_times_each_path_through_both_books(capsys: pytest.CaptureFixture[str]) -> None:
    assert bench_paths.main(["--orders", "600"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split()[0] for line in lines[:3]] == ["rest", "cancel", "take"]
    figures = json.loads(lines[-1])
    for book in ("rex_ns", "minimal_ns"):
        assert set(figures[book]) == {"rest", "cancel", "take"}
        assert all(ns > 0 for ns in figures[book].values())
