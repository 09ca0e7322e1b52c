"""The settlement worker: trades in, obligations and ledger entries out, exactly once.

It consumes `rex.settlement.trades` (a quorum queue) and settles trades in batches: every
trade that arrived in one turn of the loop (up to `max_batch`) is booked in one database
transaction, and the messages are acked -- in order, with multiple acks -- only after that
commit. A trade id already booked is skipped, so a redelivery after a crash, or the same
trade published twice by an engine take-over, settles once.

Booking a trade also creates the payments of its obligation's cash parts (booking.py). With
bank adapters, the service runs the payer too (settlement_worker.payer), behind the bus
lock ``payer``: in each process the worker books, but only the lock's holder pays; a
standby takes over when the holder's connection dies. Without banks (``--no-payer``) the
payments wait in the store for a process that pays.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from rex import metrics, topology
from rex.bus import Bus, Delivery, InOrderAcks, Subscription
from rex.config import Product
from rex.protocol import TradeMessage, decode_message

from . import payments as pm
from .banks import BankAdapter
from .banks.amqp import AmqpBankClient
from .booking import trade_rows, write_rows
from .outbox import OutboxPublisher
from .payer import Payer
from .settings import SettlementConfig
from .store import Store

log = logging.getLogger("rex.settlement")


@dataclass(slots=True)
class _Pending:
    slot: list[Any]
    trade: TradeMessage | None  # None: undecodable, dead-lettered


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
    ) -> None:
        """``banks``: the payer's bank adapters (None: no payer in this process);
        ``bank_client``: the AMQP client owning them, whose reply queue the service
        declares and consumes."""
        self.bus = bus
        self.store = store
        self.products = {p.symbol: p for p in products}
        self.config = config
        self.fees = config.fees
        self.prefetch = prefetch
        self.max_batch = max_batch
        self.settled = 0
        self._acks = InOrderAcks()
        self.outbox = OutboxPublisher(bus, store)
        self._batch: list[_Pending] = []
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
        wanted = topology.for_settlement()
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
        self.bus.consume(
            Subscription(topology.SETTLEMENT_TRADES, self._on_trade, prefetch=self.prefetch)
        )
        self.outbox.start()
        if self.payer is not None:
            self.payer.stop()  # the lock went with the old connection: pay once held again
            self.bus.hold_lock("payer", self._on_payer_lock)

    def _on_payer_lock(self) -> None:
        assert self.payer is not None
        log.info("holding the payer lock: this process pays")
        if self.bank_client is not None:
            self.bank_client.on_ready()  # the banks' replies: only the payer reads them
        self.payer.start()

    def _on_trade(self, delivery: Delivery) -> None:
        slot = self._acks.arrived(delivery)
        try:
            trade = decode_message(delivery.type or "", delivery.body, TradeMessage)
            if trade.product not in self.products:
                raise ValueError(f"unknown product {trade.product!r}")
        except (ValueError, TypeError, KeyError) as error:
            log.error("undecodable trade message_id=%s: %s", delivery.message_id, error)
            self._acks.reject(slot, requeue=False)  # to rex.dead, for an operator
            return
        self._batch.append(_Pending(slot, trade))
        if len(self._batch) >= self.max_batch:
            self.flush()
        elif not self._flush_scheduled:
            self._flush_scheduled = True
            self.bus.call_soon(self._scheduled_flush)

    def _scheduled_flush(self) -> None:
        self._flush_scheduled = False
        self.flush()

    def flush(self) -> None:
        """Book the batch in one transaction, then ack it."""
        batch, self._batch = self._batch, []
        if not batch:
            return
        now = self.clock()
        started = time.monotonic()
        trades = [p.trade for p in batch if p.trade is not None]
        with self.store.transaction() as tx:
            done = tx.processed_among([t.trade_id for t in trades])
            rows = []
            for trade in trades:
                if trade.trade_id in done:
                    continue  # settled before: a redelivery or a republished trade
                done.add(trade.trade_id)
                rows.append(trade_rows(trade, self.products[trade.product], self.config, now))
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
