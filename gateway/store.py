"""What the gateway must remember across restarts: which requests it has answered
(by AMQP message_id, so a redelivery is not applied twice) and which client order ids each
member has used (each is used once within the window, whatever the answer).

A deduplication window, not a record: an id is remembered for at least `horizon_ns` of
exchange time (the gateway's clock, default 24 h) after it was answered, then forgotten by
`prune`, which the gateway runs on its loop every few seconds and never per request. The
horizon outlasts any redelivery: RabbitMQ redelivers a request the gateway answered but did
not ack when the gateway comes back, first of its queue, so only a gateway down for longer
than the horizon could see one after its id was pruned (docs/operators/operations.md, "The
gateway's dedupe window"). Nothing inside the horizon is pruned by age: `prune` forgets an
id only once it is older than the horizon by the clock, and stops at the first younger one.

Each member also has a row cap per kind of id (`max_rows_per_member`): a member that answers
more than that many requests within the horizon loses its own oldest ids first (counted as
`cap`, an alert), so no member's volume can grow the store or shorten another's window.

SQLite under REX_DATA_DIR, WAL mode, incremental auto-vacuum (pruned pages go back to the
file system); `MemorySeen` for tests and the embedded demo.
"""

from __future__ import annotations

import contextlib
import sqlite3
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Final, Protocol

from rex.private_files import private_database

Answered = tuple[str, str, str | None]  # member, message_id, client_order_id

NS_PER_S: Final = 1_000_000_000
#: How long an answered id is remembered, in exchange time (REX_GATEWAY_SEEN_HORIZON).
HORIZON_NS: Final = 24 * 3600 * NS_PER_S
#: Per member and kind of id (message ids, client order ids) (REX_GATEWAY_SEEN_MAX_ROWS).
MAX_ROWS_PER_MEMBER: Final = 1_000_000
#: At most this many ids forgotten per kind in one prune, so one prune is a short pause
#: (about 20 ms); a prune that stops at this asks to be run again soon.
PRUNE_BATCH_ROWS: Final = 20_000
#: Pages handed back to the file system per prune.
VACUUM_PAGES: Final = 2_000


@dataclass(frozen=True, slots=True)
class Pruned:
    """What one prune forgot, and what is left."""

    expired: int  # older than the horizon
    capped: int  # inside the horizon, over a member's row cap
    rows: int  # ids remembered after it, both kinds
    file_bytes: int  # the SQLite file and its WAL (0 in memory)
    more: bool  # stopped at the batch size: run again soon


class Seen(Protocol):
    def has_request(self, member: str, message_id: str) -> bool: ...
    def has_client_id(self, member: str, client_order_id: str) -> bool: ...
    def remember_all(self, answered: list[Answered]) -> None: ...
    def prune(self) -> Pruned: ...


class _Window:
    """Ids of each member, oldest first, with the exchange time each was remembered at."""

    def __init__(self) -> None:
        self._ids: dict[str, OrderedDict[str, int]] = {}
        self.rows = 0

    def has(self, member: str, key: str) -> bool:
        ids = self._ids.get(member)
        return ids is not None and key in ids

    def add(self, member: str, key: str, at_ns: int) -> None:
        ids = self._ids.get(member)
        if ids is None:
            ids = self._ids[member] = OrderedDict()
        if key not in ids:  # remembered again: keeps its first time, like the table
            ids[key] = at_ns
            self.rows += 1

    def take_old(
        self, cutoff_ns: int, max_rows_per_member: int, limit: int
    ) -> tuple[list[tuple[str, str]], int, bool]:
        """Forget up to ``limit`` ids: first those over a member's cap (oldest first),
        then those remembered before ``cutoff_ns``. Returns them, how many were over a cap,
        and whether the limit stopped it."""
        taken: list[tuple[str, str]] = []
        capped = 0
        for member, ids in list(self._ids.items()):
            while len(ids) > max_rows_per_member and len(taken) < limit:
                key, _ = ids.popitem(last=False)
                taken.append((member, key))
                capped += 1
            # Oldest first, so the first id young enough ends the scan: an id is never
            # forgotten before the horizon, even if the clock once stepped back.
            while ids and len(taken) < limit:
                key, at_ns = next(iter(ids.items()))
                if at_ns >= cutoff_ns:
                    break
                del ids[key]
                taken.append((member, key))
            if not ids:
                del self._ids[member]
            if len(taken) >= limit:
                self.rows -= len(taken)
                return taken, capped, True
        self.rows -= len(taken)
        return taken, capped, False


class MemorySeen:
    def __init__(
        self,
        requests: Iterable[tuple[str, str]] = (),
        client_ids: Iterable[tuple[str, str]] = (),
        *,
        horizon_ns: int = HORIZON_NS,
        max_rows_per_member: int = MAX_ROWS_PER_MEMBER,
        prune_batch_rows: int = PRUNE_BATCH_ROWS,
        clock_ns: Callable[[], int] = time.time_ns,
    ) -> None:
        self.horizon_ns = horizon_ns
        self.max_rows_per_member = max_rows_per_member
        self.prune_batch_rows = prune_batch_rows
        self.clock_ns = clock_ns
        self._requests = _Window()
        self._client_ids = _Window()
        now = clock_ns()
        for member, message_id in requests:
            self._requests.add(member, message_id, now)
        for member, client_order_id in client_ids:
            self._client_ids.add(member, client_order_id, now)

    @property
    def rows(self) -> int:
        return self._requests.rows + self._client_ids.rows

    def has_request(self, member: str, message_id: str) -> bool:
        return self._requests.has(member, message_id)

    def has_client_id(self, member: str, client_order_id: str) -> bool:
        return self._client_ids.has(member, client_order_id)

    def remember_all(self, answered: list[Answered]) -> None:
        self._remember(answered, self.clock_ns())

    def _remember(self, answered: list[Answered], at_ns: int) -> None:
        for member, message_id, client_order_id in answered:
            self._requests.add(member, message_id, at_ns)
            if client_order_id is not None:
                self._client_ids.add(member, client_order_id, at_ns)

    def _take_old(self) -> tuple[list[tuple[str, str]], list[tuple[str, str]], int, bool]:
        cutoff = self.clock_ns() - self.horizon_ns
        requests, capped_r, more_r = self._requests.take_old(
            cutoff, self.max_rows_per_member, self.prune_batch_rows
        )
        client_ids, capped_c, more_c = self._client_ids.take_old(
            cutoff, self.max_rows_per_member, self.prune_batch_rows
        )
        return requests, client_ids, capped_r + capped_c, more_r or more_c

    def prune(self) -> Pruned:
        requests, client_ids, capped, more = self._take_old()
        expired = len(requests) + len(client_ids) - capped
        return Pruned(expired, capped, self.rows, 0, more)


class SqliteSeen(MemorySeen):
    """Durable: a row is committed before the request is acked."""

    def __init__(
        self,
        path: Path,
        *,
        horizon_ns: int = HORIZON_NS,
        max_rows_per_member: int = MAX_ROWS_PER_MEMBER,
        prune_batch_rows: int = PRUNE_BATCH_ROWS,
        clock_ns: Callable[[], int] = time.time_ns,
    ) -> None:
        super().__init__(
            horizon_ns=horizon_ns,
            max_rows_per_member=max_rows_per_member,
            prune_batch_rows=prune_batch_rows,
            clock_ns=clock_ns,
        )
        self._path = path
        self._db = sqlite3.connect(private_database(path), isolation_level=None)
        # Before any table exists this takes effect at once; an older file is vacuumed
        # into it below, once.
        self._db.execute("PRAGMA auto_vacuum=INCREMENTAL")
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        # The WAL is truncated back to this after a checkpoint, so a burst does not leave
        # a large file behind.
        self._db.execute(f"PRAGMA journal_size_limit={64 * 1024 * 1024}")
        now = clock_ns()
        for table, column in (("requests", "message_id"), ("client_ids", "client_order_id")):
            self._db.execute(
                f"CREATE TABLE IF NOT EXISTS {table} (member TEXT, {column} TEXT,"
                f" remembered_ns INTEGER NOT NULL, PRIMARY KEY (member, {column}))"
                " WITHOUT ROWID"
            )
            columns = {row[1] for row in self._db.execute(f"PRAGMA table_info({table})")}
            if "remembered_ns" not in columns:
                # A file from before the window: its ids get a whole horizon from now.
                self._db.execute(
                    f"ALTER TABLE {table} ADD COLUMN remembered_ns INTEGER NOT NULL"
                    f" DEFAULT {int(now)}"
                )
        if self._db.execute("PRAGMA auto_vacuum").fetchone()[0] != 2:
            self._db.execute("VACUUM")
        # Every question is answered from memory: the file is read once here, and every
        # row written is also kept. Two SQLite lookups per request were a sixth of the
        # gateway's CPU at 2,500 requests/s; memory costs ~200 bytes per id remembered.
        for member, message_id, at_ns in self._db.execute(
            "SELECT member, message_id, remembered_ns FROM requests ORDER BY remembered_ns"
        ):
            self._requests.add(member, message_id, at_ns)
        for member, client_order_id, at_ns in self._db.execute(
            "SELECT member, client_order_id, remembered_ns FROM client_ids ORDER BY remembered_ns"
        ):
            self._client_ids.add(member, client_order_id, at_ns)

    def remember_all(self, answered: list[Answered]) -> None:
        """One transaction for a whole batch."""
        at_ns = self.clock_ns()
        with self._db:
            self._db.execute("BEGIN")
            self._db.executemany(
                "INSERT OR IGNORE INTO requests VALUES (?, ?, ?)",
                [(m, i, at_ns) for m, i, _ in answered],
            )
            self._db.executemany(
                "INSERT OR IGNORE INTO client_ids VALUES (?, ?, ?)",
                [(m, c, at_ns) for m, _, c in answered if c is not None],
            )
        self._remember(answered, at_ns)

    def prune(self) -> Pruned:
        """Forget from memory and the file together: exactly the ids memory gave up."""
        requests, client_ids, capped, more = self._take_old()
        if requests or client_ids:
            with self._db:
                self._db.execute("BEGIN")
                self._db.executemany(
                    "DELETE FROM requests WHERE member = ? AND message_id = ?", requests
                )
                self._db.executemany(
                    "DELETE FROM client_ids WHERE member = ? AND client_order_id = ?",
                    client_ids,
                )
            # executescript steps the pragma to the end; execute would free one page only.
            self._db.executescript(f"PRAGMA incremental_vacuum({VACUUM_PAGES});")
            # In WAL mode the file shrinks at a checkpoint; this one also empties the WAL.
            self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()
        expired = len(requests) + len(client_ids) - capped
        return Pruned(expired, capped, self.rows, self.file_bytes(), more)

    def table_rows(self) -> int:
        """Rows in the file (both tables): what `rows` says, read from SQLite."""
        return sum(
            self._db.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
            for table in ("requests", "client_ids")
        )

    def file_bytes(self) -> int:
        total = 0
        for suffix in ("", "-wal"):
            with contextlib.suppress(FileNotFoundError):  # no WAL right after a checkpoint
                total += (self._path.parent / (self._path.name + suffix)).stat().st_size
        return total

    def close(self) -> None:
        self._db.close()
