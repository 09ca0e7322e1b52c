"""The gateway's seen-ids store is its owner's alone: the directory 0700, the SQLite file and
its -wal and -shm 0600, whatever the umask."""

from __future__ import annotations

from pathlib import Path

from gateway.store import SqliteSeen
from tests.file_modes import modes, private, typical_umask


def test_the_gateways_store_is_owner_only(tmp_path: Path) -> None:
    with typical_umask():
        seen = SqliteSeen(tmp_path / "data" / "gateway.sqlite3")  # as gateway/__main__.py
        seen.remember_all([("M1", "m-1", "c-1")])
        found, expected = modes(tmp_path), private(tmp_path)
        seen.close()
    assert {"data/gateway.sqlite3-wal", "data/gateway.sqlite3-shm"} <= set(found), found
    assert found == expected
