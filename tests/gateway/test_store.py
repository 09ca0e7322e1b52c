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
