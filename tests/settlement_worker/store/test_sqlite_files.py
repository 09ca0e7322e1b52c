"""The settlement store on SQLite is its owner's alone: the directory 0700, the file and its
-wal and -shm 0600, whatever the umask."""

from __future__ import annotations

from pathlib import Path

from settlement_worker.store.opening import open_store
from tests.file_modes import modes, private, typical_umask


def test_the_settlement_store_is_owner_only(tmp_path: Path) -> None:
    with typical_umask():
        store = open_store(None, tmp_path / "data")  # as the worker and the rex command do
        store.migrate()
        found, expected = modes(tmp_path), private(tmp_path)
        store.close()
    assert {"data/settlement.sqlite3-wal", "data/settlement.sqlite3-shm"} <= set(found), found
    assert found == expected
