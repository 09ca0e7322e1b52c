"""open_store: the URL names the backend; without one, SQLite under the data folder."""

from __future__ import annotations

from pathlib import Path

import pytest

from settlement_worker.store.opening import open_store
from settlement_worker.store.postgres import PostgresStore
from settlement_worker.store.sqlite import SqliteStore
from tests.settlement_worker.helpers import DATABASE_URL


@pytest.mark.parametrize("url", [None, ""])
def test_without_a_postgresql_url_the_store_is_sqlite_under_the_data_folder(
    url: str | None, tmp_path: Path
) -> None:
    store = open_store(url, tmp_path / "data")
    try:
        assert isinstance(store, SqliteStore)
        assert (tmp_path / "data" / "settlement.sqlite3").is_file()
    finally:
        store.close()


@pytest.mark.database
def test_a_postgresql_url_opens_postgresql(tmp_path: Path) -> None:
    store = open_store(DATABASE_URL, tmp_path)
    try:
        assert isinstance(store, PostgresStore)
        assert store.query("SELECT 1") == [(1,)]
        assert not (tmp_path / "settlement.sqlite3").exists()
    finally:
        store.close()
