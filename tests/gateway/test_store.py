"""What the gateway remembers (gateway/store.py): answered requests by message id and used
client order ids, each per member, in memory and in SQLite, where they outlive a restart."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from gateway.store import MemorySeen, Seen, SqliteSeen


@pytest.fixture(params=["memory", "sqlite"])
def seen(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Seen]:
    if request.param == "memory":
        yield MemorySeen()
        return
    store = SqliteSeen(tmp_path / "gateway" / "seen.sqlite3")
    try:
        yield store
    finally:
        store.close()


def test_an_answered_request_and_its_client_order_id_are_remembered(seen: Seen) -> None:
    seen.remember_all([("alpha", "m-1", "c-1")])
    assert seen.has_request("alpha", "m-1")
    assert seen.has_client_id("alpha", "c-1")
    assert not seen.has_request("alpha", "m-2")
    assert not seen.has_client_id("alpha", "c-2")


def test_each_member_has_its_own_ids(seen: Seen) -> None:
    seen.remember_all([("alpha", "m-1", "c-1")])
    assert not seen.has_request("beta", "m-1")
    assert not seen.has_client_id("beta", "c-1")


def test_a_request_without_a_readable_client_order_id_is_remembered_by_message_id(
    seen: Seen,
) -> None:
    seen.remember_all([("alpha", "m-1", None)])
    assert seen.has_request("alpha", "m-1")


def test_remembering_an_id_again_changes_nothing(seen: Seen) -> None:
    seen.remember_all([("alpha", "m-1", "c-1"), ("alpha", "m-1", "c-1")])
    seen.remember_all([("alpha", "m-1", "c-1")])
    assert seen.has_request("alpha", "m-1") and seen.has_client_id("alpha", "c-1")


def test_sqlite_remembers_across_a_restart(tmp_path: Path) -> None:
    path = tmp_path / "seen.sqlite3"
    first = SqliteSeen(path)
    first.remember_all([("alpha", "m-1", "c-1"), ("beta", "m-2", None)])
    first.close()
    again = SqliteSeen(path)
    try:
        assert again.has_request("alpha", "m-1") and again.has_client_id("alpha", "c-1")
        assert again.has_request("beta", "m-2")
        assert not again.has_client_id("beta", "m-2")
    finally:
        again.close()


# ------------------------------------------------------------------ the dedupe window

HOUR_NS = 3600 * 1_000_000_000


class Clock:
    """Exchange time the test moves."""

    def __init__(self) -> None:
        self.now_ns = 1_700_000_000 * 1_000_000_000

    def __call__(self) -> int:
        return self.now_ns


def window(
    kind: str, tmp_path: Path, clock: Clock, *, max_rows: int = 1000, batch: int = 10_000
) -> MemorySeen:
    options = {
        "horizon_ns": 24 * HOUR_NS,
        "max_rows_per_member": max_rows,
        "prune_batch_rows": batch,
        "clock_ns": clock,
    }
    if kind == "memory":
        return MemorySeen(**options)  # type: ignore[arg-type]
    return SqliteSeen(tmp_path / "seen.sqlite3", **options)  # type: ignore[arg-type]


@pytest.mark.parametrize("kind", ["memory", "sqlite"])
def test_an_id_inside_the_horizon_is_never_pruned(kind: str, tmp_path: Path) -> None:
    clock = Clock()
    seen = window(kind, tmp_path, clock)
    seen.remember_all([("alpha", "m-1", "c-1")])
    clock.now_ns += 24 * HOUR_NS - 1  # one nanosecond short of the horizon
    pruned = seen.prune()
    assert (pruned.expired, pruned.capped, pruned.rows) == (0, 0, 2)
    assert seen.has_request("alpha", "m-1") and seen.has_client_id("alpha", "c-1")


@pytest.mark.parametrize("kind", ["memory", "sqlite"])
def test_an_id_older_than_the_horizon_is_forgotten(kind: str, tmp_path: Path) -> None:
    clock = Clock()
    seen = window(kind, tmp_path, clock)
    seen.remember_all([("alpha", "m-1", "c-1")])
    clock.now_ns += 12 * HOUR_NS
    seen.remember_all([("alpha", "m-2", "c-2")])
    clock.now_ns += 12 * HOUR_NS + 1
    pruned = seen.prune()
    assert (pruned.expired, pruned.rows) == (2, 2)
    assert not seen.has_request("alpha", "m-1") and not seen.has_client_id("alpha", "c-1")
    assert seen.has_request("alpha", "m-2") and seen.has_client_id("alpha", "c-2")


def test_a_clock_step_back_never_prunes_a_younger_id_early(tmp_path: Path) -> None:
    """Oldest first, the scan stops at the first young id: one remembered after the clock
    stepped back is kept, and so is everything after it, until they all expire."""
    clock = Clock()
    seen = window("memory", tmp_path, clock)
    seen.remember_all([("alpha", "m-1", None)])
    clock.now_ns -= HOUR_NS
    seen.remember_all([("alpha", "m-0", None)])
    clock.now_ns += 24 * HOUR_NS + HOUR_NS // 2  # m-0 is 23.5 h old, m-1 24.5 h
    seen.prune()
    assert seen.has_request("alpha", "m-0")


@pytest.mark.parametrize("kind", ["memory", "sqlite"])
def test_a_member_over_its_cap_loses_its_own_oldest_ids_only(kind: str, tmp_path: Path) -> None:
    clock = Clock()
    seen = window(kind, tmp_path, clock, max_rows=3)
    seen.remember_all([("beta", "b-1", None)])
    for n in range(5):
        seen.remember_all([("alpha", f"m-{n}", None)])
    pruned = seen.prune()
    assert (pruned.capped, pruned.expired, pruned.rows) == (2, 0, 4)
    assert [seen.has_request("alpha", f"m-{n}") for n in range(5)] == [False, False] + [True] * 3
    assert seen.has_request("beta", "b-1")


@pytest.mark.parametrize("kind", ["memory", "sqlite"])
def test_a_prune_stops_at_its_batch_and_says_there_is_more(kind: str, tmp_path: Path) -> None:
    clock = Clock()
    seen = window(kind, tmp_path, clock, batch=3)
    seen.remember_all([("alpha", f"m-{n}", None) for n in range(5)])
    clock.now_ns += 25 * HOUR_NS
    first, second = seen.prune(), seen.prune()
    assert (first.expired, first.more) == (3, True)
    assert (second.expired, second.more, second.rows) == (2, False, 0)


def test_sqlite_rows_are_pruned_from_the_file_too(tmp_path: Path) -> None:
    clock = Clock()
    seen = window("sqlite", tmp_path, clock, max_rows=100_000, batch=100_000)
    assert isinstance(seen, SqliteSeen)
    seen.remember_all([("alpha", f"m-{n:06}", f"c-{n:06}") for n in range(20_000)])
    clock.now_ns += 12 * HOUR_NS
    seen.remember_all([("alpha", "young", None)])
    grown = seen.file_bytes()
    clock.now_ns += 12 * HOUR_NS + 1
    pruned = seen.prune()
    assert pruned.rows == seen.table_rows() == 1
    assert pruned.file_bytes < grown / 2  # pages went back to the file system
    seen.close()
    again = window("sqlite", tmp_path, clock)
    assert again.has_request("alpha", "young") and not again.has_request("alpha", "m-000001")


def test_a_file_from_before_the_window_keeps_its_ids_a_whole_horizon(tmp_path: Path) -> None:
    """The old schema had no time per id: an upgrade keeps every id one horizon from the
    upgrade, then forgets them."""
    import sqlite3

    path = tmp_path / "seen.sqlite3"
    old = sqlite3.connect(path)
    old.execute(
        "CREATE TABLE requests (member TEXT, message_id TEXT,"
        " PRIMARY KEY (member, message_id)) WITHOUT ROWID"
    )
    old.execute(
        "CREATE TABLE client_ids (member TEXT, client_order_id TEXT,"
        " PRIMARY KEY (member, client_order_id)) WITHOUT ROWID"
    )
    old.execute("INSERT INTO requests VALUES ('alpha', 'm-1')")
    old.execute("INSERT INTO client_ids VALUES ('alpha', 'c-1')")
    old.commit()
    old.close()
    clock = Clock()
    seen = window("sqlite", tmp_path, clock)
    assert seen.has_request("alpha", "m-1") and seen.has_client_id("alpha", "c-1")
    clock.now_ns += 24 * HOUR_NS - 1
    assert seen.prune().rows == 2
    clock.now_ns += 2
    assert seen.prune().rows == 0
