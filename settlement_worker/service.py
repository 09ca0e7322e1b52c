"""The settlement worker: trades in, obligations and ledger entries out, exactly once.

It consumes `rex.settlement.trades` (a quorum queue) and settles trades in batches: every
trade that arrived in one turn of the loop (up to `max_batch`) is booked in one database
transaction, and the messages are acked -- in order, with multiple acks -- only after that
commit. A trade id already booked is skipped, so a redelivery after a crash, or the same
trade published twice by an engine take-over, settles once.

Booking a trade also creates the payments of its obligation's cash parts (booking.py). With
bank adapters, the service runs the payer too (settlement_worker.payments.payer), behind the bus
lock ``payer``: in each process the worker books, but only the lock's holder pays; a
standby takes over when the holder's connection dies. Without banks (``--no-payer``) the
payments wait in the store for a process that pays.

With a request desk (settlement_worker.requests.desk) the service also consumes settlement
requests: each member's from its own queue (``rex.settlement.member-requests.<member>``),
the operator accounts' from the shared ``rex.settlement.member-requests``, each queue with a
prefetch of `REQUEST_PREFETCH`, so one member's backlog has at most that many requests
ahead of another member's; one transaction each, acked after the commit; their answers go
out through the outbox. Booking uses the
settings in force: the file's, with the run-time changes in the store
(settlement_worker.member_settings.operations), looked up once per batch, so a change made through
any worker process applies from the next batch on.
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from rex import metrics, topology
from rex.bus import Bus, Delivery, InOrderAcks, Subscription
from rex.config import Product
from rex.protocol import TradeMessage, decode_messages
from settlement_worker.booking.operations import trade_rows, write_rows
from settlement_worker.configuration import SettlementConfig
from settlement_worker.member_settings.operations import current_config, settings_mark
from settlement_worker.outbox import OutboxPublisher
from settlement_worker.payments import rules as pm
from settlement_worker.payments.banks import BankAdapter
from settlement_worker.payments.banks.amqp import AmqpBankClient
from settlement_worker.payments.payer import Payer
from settlement_worker.requests.desk import Outcome, RequestDesk
from settlement_worker.requests.pacing import Pacing
from settlement_worker.store import Store, Transaction

log = logging.getLogger("rex.settlement")

#: Unacked settlement requests per request queue (a member's, or the operators'). The
#: broker hands each consumer at most this many, so however long one member's queue is,
#: at most this many of its requests come before the next member's; more buys nothing, as
#: the worker answers one request at a time.
REQUEST_PREFETCH = 2


@dataclass(slots=True)
class _Pending:
    slot: list[Any]
    trades: list[TradeMessage]  # one delivery: one trade or an engine's batch of them


class SettlementService:
    def __init__(
        self,
        bus: Bus,
        store: Store,
        products: Iterable[Product],
        config: SettlementConfig,
        *,
        banks: Mapping[str, BankAdapter] | None = None,
        bank_client: AmqpBankClient | None = None,
        policy: pm.RetryPolicy | None = None,
        clock: Callable[[], int] = time.time_ns,
        prefetch: int = 2000,
        max_batch: int = 500,
        desk: RequestDesk | None = None,
        rate_clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """``banks``: the payer's bank adapters (None: no payer in this process);
        ``bank_client``: the AMQP client owning them, whose reply queue the service
        declares and consumes; ``desk``: answers settlement requests (None: not here);
        ``rate_clock``: seconds, for pacing members' settlement requests."""
        self.bus = bus
        self.store = store
        self.products = {p.symbol: p for p in products}
        metrics.start_at_zero(metrics.SETTLEMENT_TRADES, list(self.products))
        #: The file's settings, and those in force (with the store's run-time changes).
        self.file_config = config
        self.config = config
        self._settings_mark = -1  # none seen yet: the first batch loads them
        self.desk = desk
        self.rate_clock = rate_clock
        members, _ = self._request_senders()
        self.pacing: Pacing[Delivery] = Pacing(members)
        self._release_scheduled: set[str] = set()
        metrics.start_at_zero(metrics.SETTLEMENT_REQUESTS_PACED, members)
        self.fees = config.fees
        self.prefetch = prefetch
        self.max_batch = max_batch
        self.settled = 0
        self._acks = InOrderAcks()
        self.outbox = OutboxPublisher(bus, store, clock=clock)
        self._batch: list[_Pending] = []
        self._batched = 0  # trades in self._batch
        self._flush_scheduled = False
        self.clock = clock
        self.bank_client = bank_client
        self.payer: Payer | None = None
        if banks is not None:
            self.payer = Payer(store, bus, banks, policy, clock)
            if bank_client is not None:
                bank_client.on_unmatched = self.payer.on_result

    def start(self) -> None:
        self.store.migrate()
        wanted = topology.for_settlement(*self._request_senders())
        if self.bank_client is not None:
            wanted = wanted + self.bank_client.topology
        self.bus.start(wanted, self._on_ready)

    def stop(self) -> None:
        if self.payer is not None:
            self.payer.stop()
        self.bus.stop()

    def _on_ready(self) -> None:
        self._acks.reset()
        self._batch.clear()
        self._batched = 0
        self.bus.consume(
            Subscription(topology.SETTLEMENT_TRADES, self._on_trade, prefetch=self.prefetch)
        )
        members, _ = self._request_senders()
        self.pacing.reset()
        self._release_scheduled.clear()
        if self.desk is not None:
            self.bus.consume(
                Subscription(
                    topology.SETTLEMENT_REQUEST_QUEUE, self._on_request, prefetch=REQUEST_PREFETCH
                )
            )
            for member in members:
                self.bus.consume(
                    Subscription(
                        topology.member_settlement_queue(member),
                        functools.partial(self._on_member_request, member),
                        prefetch=REQUEST_PREFETCH,
                    )
                )
        self.outbox.start()
        if self.payer is not None:
            self.payer.stop()  # the lock went with the old connection: pay once held again
            self.bus.hold_lock(topology.PAYER_LOCK, self._on_payer_lock)

    def _request_senders(self) -> tuple[tuple[str, ...], tuple[str, ...]]:
        """The members and operator accounts whose settlement requests this worker takes
        (none without a desk): each member's queue, and the operators' bindings."""
        if self.desk is None:
            return (), ()
        return tuple(self.desk.members), tuple(self.desk.accounts)

    def _on_payer_lock(self) -> None:
        assert self.payer is not None
        log.info("holding the payer lock: this process pays")
        if self.bank_client is not None:
            self.bank_client.on_ready()  # the banks' replies: only the payer reads them
        self.payer.start()

    def _on_trade(self, delivery: Delivery) -> None:
        slot = self._acks.arrived(delivery)
        try:
            trades = decode_messages(delivery.type or "", delivery.body, TradeMessage)
            for trade in trades:
                if trade.product not in self.products:
                    raise ValueError(f"unknown product {trade.product!r}")
        except (ValueError, TypeError, KeyError) as error:
            log.error("undecodable trade message_id=%s: %s", delivery.message_id, error)
            self._acks.reject(slot, requeue=False)  # to rex.dead, for an operator
            return
        self._batch.append(_Pending(slot, trades))
        self._batched += len(trades)
        if self._batched >= self.max_batch:
            self.flush()
        elif not self._flush_scheduled:
            self._flush_scheduled = True
            self.bus.call_soon(self._scheduled_flush)

    def _on_member_request(self, member: str, delivery: Delivery) -> None:
        """A request from ``member``'s own queue: handled now if the member's rate allows,
        else when its turn comes (settlement_worker/requests/pacing.py)."""
        if self.pacing.offer(member, delivery, self.rate_clock()):
            self._on_request(delivery)
            return
        metrics.SETTLEMENT_REQUESTS_PACED.labels(member).inc()
        self._schedule_release(member)

    def _schedule_release(self, member: str) -> None:
        if member in self._release_scheduled:
            return
        self._release_scheduled.add(member)
        wait_s = self.pacing.wait_s(member, self.rate_clock())
        self.bus.call_later(wait_s, functools.partial(self._release, member))

    def _release(self, member: str) -> None:
        self._release_scheduled.discard(member)
        for delivery in self.pacing.release(member, self.rate_clock()):
            self._on_request(delivery)
        if self.pacing.waiting(member):
            self._schedule_release(member)

    def _on_request(self, delivery: Delivery) -> None:
        """One settlement request: committed with its answer, then acked. Trouble outside
        the request (the store) requeues it after a second; RabbitMQ dead-letters a request
        that failed `DELIVERY_LIMIT` times, so none can loop for ever."""
        assert self.desk is not None
        try:
            outcome = self.desk.handle(delivery)
        except Exception:
            log.exception("settlement request failed message_id=%s", delivery.message_id)
            metrics.SETTLEMENT_REQUESTS.labels("unknown", "failed").inc()
            self.bus.call_later(1.0, lambda: delivery.reject(requeue=True))
            return
        if outcome is Outcome.DEAD_LETTER:
            delivery.reject(requeue=False)
            return
        delivery.ack()
        if outcome is Outcome.ANSWERED:
            self.outbox.drain()

    def _settings_in_force(self, tx: Transaction) -> SettlementConfig:
        """The settings to book with: reloaded only when a change was committed since."""
        mark = settings_mark(tx)
        if mark != self._settings_mark:
            self.config = current_config(tx, self.file_config)
            self._settings_mark = mark
        return self.config

    def _scheduled_flush(self) -> None:
        self._flush_scheduled = False
        self.flush()

    def flush(self) -> None:
        """Book the batch in one transaction, then ack it."""
        batch, self._batch = self._batch, []
        self._batched = 0
        if not batch:
            return
        now = self.clock()
        started = time.monotonic()
        trades = [trade for p in batch for trade in p.trades]
        with self.store.transaction() as tx:
            done = tx.processed_among([t.trade_id for t in trades])
            config = self._settings_in_force(tx)
            rows = []
            for trade in trades:
                if trade.trade_id in done:
                    continue  # settled before: a redelivery or a republished trade
                done.add(trade.trade_id)
                rows.append(trade_rows(trade, self.products[trade.product], config, now))
            write_rows(tx, rows)
        booked = len(rows)
        metrics.SETTLEMENT_BATCH.observe(time.monotonic() - started)
        metrics.SETTLEMENT_DUPLICATES.inc(len(trades) - booked)
        for r in rows:
            metrics.SETTLEMENT_TRADES.labels(r.obligation.product).inc()
        self.settled += booked
        for pending in batch:
            self._acks.done(pending.slot)
        self.outbox.drain()  # the events of what was just booked
        if self.payer is not None:
            self.payer.schedule(p for r in rows for p in r.payments)
