"""The outbox: settlement events are written in the same transaction as the booking they
report, and published from here afterwards, with confirms. A crash between the commit and
the publish loses nothing: unpublished rows are published on the next drain. A row is marked
published only after the broker confirmed it, so an event may go out twice (same event_id,
same bytes) but never zero times."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Protocol

from rex.bus import Bus, Envelope
from settlement_worker.store import Store, Transaction

log = logging.getLogger("rex.settlement.outbox")

_MARK_CHUNK = 500  # event ids per UPDATE (well under SQLite's parameter limit)
DRAIN_BATCH = 500


class Outgoing(Protocol):
    """What the outbox stores: a settlement event, or an answer to a settlement request."""

    @property
    def event_id(self) -> str: ...

    @property
    def timestamp(self) -> int: ...

    def envelope(self) -> Envelope: ...


def add_events(tx: Transaction, events: Sequence[Outgoing]) -> None:
    tx.executemany(
        "INSERT INTO outbox (event_id, exchange, routing_key, type, body, timestamp)"
        " VALUES (?, ?, ?, ?, ?, ?)",
        [
            (e.event_id, env.exchange, env.routing_key, env.type, env.body, e.timestamp)
            for e in events
            for env in (e.envelope(),)
        ],
    )


class OutboxPublisher:
    def __init__(self, bus: Bus, store: Store, interval: float = 1.0) -> None:
        self.bus = bus
        self.store = store
        self.interval = interval
        self.published = 0
        self._in_flight = False
        self._timer = False

    def start(self) -> None:
        """Drain now and then every `interval` seconds (call from the bus's on_ready)."""
        self.drain()
        if not self._timer:
            self._timer = True
            self.bus.call_later(self.interval, self._tick)

    def _tick(self) -> None:
        self.drain()
        self.bus.call_later(self.interval, self._tick)

    def drain(self) -> None:
        if self._in_flight or not self.bus.connected:
            return
        rows = self.store.query(
            "SELECT event_id, exchange, routing_key, type, body, timestamp FROM outbox"
            " WHERE published = 0 ORDER BY seq LIMIT ?",
            (DRAIN_BATCH,),
        )
        if not rows:
            return
        self._in_flight = True
        pending = {row[0] for row in rows}
        failed = False

        def confirmed(event_id: str, ok: bool) -> None:
            nonlocal failed
            failed = failed or not ok
            pending.discard(event_id)
            if pending:
                return
            self._in_flight = False
            if failed:
                log.warning("outbox: some events were not confirmed; retrying next drain")
                return
            ids = [row[0] for row in rows]
            with self.store.transaction() as tx:
                # One statement per chunk, not one per event (a round trip each on PostgreSQL).
                for start in range(0, len(ids), _MARK_CHUNK):
                    chunk = ids[start : start + _MARK_CHUNK]
                    marks = ", ".join("?" for _ in chunk)
                    tx.execute(
                        f"UPDATE outbox SET published = 1 WHERE event_id IN ({marks})", chunk
                    )
            self.published += len(ids)
            self.drain()  # more may be waiting

        for event_id, exchange, routing_key, kind, body, timestamp in rows:
            envelope = Envelope(
                exchange,
                routing_key,
                bytes(body),
                kind,
                event_id,
                int(timestamp) // 1_000_000_000,
                mandatory=False,
            )
            self.bus.publish(envelope, lambda ok, i=event_id: confirmed(i, ok))  # type: ignore[misc]
