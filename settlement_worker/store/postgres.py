"""The store on PostgreSQL, through psycopg 3; batches of plain inserts go in as COPY."""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from settlement_worker.store import Store, Transaction


class _PostgresTransaction(Transaction):
    def __init__(self, cursor: Any) -> None:
        self._cursor = cursor

    def execute(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        self._cursor.execute(sql.replace("?", "%s"), params)
        if self._cursor.description is None:
            return []
        rows: list[tuple[Any, ...]] = self._cursor.fetchall()
        return rows

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        if not rows:
            return
        insert = _PLAIN_INSERT.fullmatch(sql.strip())
        if insert is not None and len(rows) >= _COPY_FROM_ROWS:
            # A batch of plain inserts goes in as one COPY: one round trip, no per-row
            # statement; same rows, same constraints, same transaction.
            table, columns = insert.group(1), insert.group(2)
            with self._cursor.copy(f"COPY {table} ({columns}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
            return
        self._cursor.executemany(sql.replace("?", "%s"), rows)


_PLAIN_INSERT = re.compile(r"INSERT INTO (\w+) \(([\w, ]+)\)\s+VALUES \([?, ]+\)", re.S)
_COPY_FROM_ROWS = 20


class PostgresStore(Store):
    backend = "postgres"

    def __init__(self, url: str, schema: str | None = None) -> None:
        import psycopg  # only needed with PostgreSQL

        self._connection = psycopg.connect(url)
        if schema is not None:  # tests: one schema per run
            with self._connection.transaction():
                self._connection.execute(f'CREATE SCHEMA IF NOT EXISTS "{schema}"')
            self._connection.execute(f'SET search_path TO "{schema}"')
            self._connection.commit()

    @contextmanager
    def transaction(self) -> Iterator[Transaction]:
        with self._connection.transaction(), self._connection.cursor() as cursor:
            yield _PostgresTransaction(cursor)

    def close(self) -> None:
        self._connection.close()
