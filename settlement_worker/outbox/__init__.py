"""The outbox: settlement events are written in the same transaction as the booking they
report, and published from here afterwards, with confirms. A crash between the commit and
the publish loses nothing: unpublished rows are published on the next drain. A row is marked
published only after the broker confirmed it, so an event may go out twice (same event_id,
same bytes) but never zero times.

A row that can never be published -- its publish raises an error retrying cannot cure
(settlement_worker.outbox.rules: an AMQP short string over 255 bytes, ...) -- is
quarantined (``quarantined_at``, ``quarantine_reason``), counted in
``rex_settlement_outbox_quarantined_total`` and logged at ERROR, and the rows behind it
are published: one bad message never holds up the others. `rex reconcile` lists
quarantined rows and rows left unpublished too long."""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from rex import metrics
from rex.bus import Bus, Envelope
from settlement_worker.outbox.rules import is_permanent, quarantine_reason
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


@dataclass(slots=True)
class _Drain:
    """One batch of rows in flight: which still await their confirm, and whether any failed."""

    ids: list[str]  # the rows published, to mark once all are confirmed
    pending: set[str]
    failed: bool = False


class OutboxPublisher:
    def __init__(
        self,
        bus: Bus,
        store: Store,
        interval: float = 1.0,
        clock: Callable[[], int] = time.time_ns,
    ) -> None:
        self.bus = bus
        self.store = store
        self.interval = interval
        self.clock = clock
        self.published = 0
        self.quarantined = 0
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
        """Publish the oldest rows not yet published nor quarantined, up to `DRAIN_BATCH`;
        when all are confirmed, mark them and drain again. A row whose publish raises an
        error retrying cannot cure is quarantined on the spot and the rest go on; any other
        failure leaves the rows for the next drain."""
        if self._in_flight or not self.bus.connected:
            return
        rows = self.store.query(
            "SELECT event_id, exchange, routing_key, type, body, timestamp FROM outbox"
            " WHERE published = 0 AND quarantined_at IS NULL ORDER BY seq LIMIT ?",
            (DRAIN_BATCH,),
        )
        if not rows:
            return
        self._in_flight = True
        batch = _Drain([], {row[0] for row in rows})
        for index, (event_id, exchange, routing_key, kind, body, timestamp) in enumerate(rows):
            envelope = Envelope(
                exchange,
                routing_key,
                bytes(body),
                kind,
                event_id,
                int(timestamp) // 1_000_000_000,
                mandatory=False,
            )
            try:
                self.bus.publish(envelope, functools.partial(self._confirmed, batch, event_id))
            except Exception as error:
                if not is_permanent(error):
                    log.warning("outbox: publish failed event_id=%s: %r; retrying", event_id, error)
                    self._give_up(batch, rows[index:])
                    return
                try:
                    self._quarantine(event_id, error)
                except Exception:  # the store failed: nothing stays in flight for ever
                    self._give_up(batch, rows[index:])
                    raise
                self._settled(batch, event_id)
                continue
            batch.ids.append(event_id)

    def _give_up(self, batch: _Drain, unsent: Sequence[tuple[Any, ...]]) -> None:
        """The rest of the batch was not sent: the next drain tries it again."""
        batch.failed = True
        for row in unsent:
            self._settled(batch, row[0])

    def _confirmed(self, batch: _Drain, event_id: str, ok: bool) -> None:
        batch.failed = batch.failed or not ok
        self._settled(batch, event_id)

    def _settled(self, batch: _Drain, event_id: str) -> None:
        """``event_id`` needs nothing more in this batch; the batch's last one ends it."""
        batch.pending.discard(event_id)
        if batch.pending:
            return
        self._in_flight = False
        if batch.failed:
            log.warning("outbox: some events were not confirmed; retrying next drain")
            return
        ids = batch.ids
        if ids:
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

    def _quarantine(self, event_id: str, error: Exception) -> None:
        """Set the row aside for good: it can never be published as it is."""
        reason = quarantine_reason(error)
        with self.store.transaction() as tx:
            tx.execute(
                "UPDATE outbox SET quarantined_at = ?, quarantine_reason = ? WHERE event_id = ?",
                (self.clock(), reason, event_id),
            )
        self.quarantined += 1
        metrics.SETTLEMENT_OUTBOX_QUARANTINED.inc()
        log.error(
            "outbox: quarantined event_id=%s: it can never be published as it is (%s);"
            " the rows behind it go on. `rex reconcile` lists it (docs/operators/runbook.md)",
            event_id if len(event_id) <= 80 else event_id[:77] + "...",
            reason,
        )
