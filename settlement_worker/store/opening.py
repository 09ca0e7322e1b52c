"""Which store a worker or a command opens: the URL decides."""

from __future__ import annotations

from pathlib import Path

from settlement_worker.store import Store
from settlement_worker.store.postgres import PostgresStore
from settlement_worker.store.sqlite import SqliteStore


def open_store(database_url: str | None, data_dir: Path) -> Store:
    """PostgreSQL if `database_url` is a postgresql:// URL, else SQLite under `data_dir`."""
    if database_url and database_url.startswith(("postgresql://", "postgres://")):
        return PostgresStore(database_url)
    return SqliteStore(data_dir / "settlement.sqlite3")
