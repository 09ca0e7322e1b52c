"""Stores for the dispute, offline, reconcile and statement tests: SQLite in a temporary
directory, or PostgreSQL in a schema of its own (dropped afterwards), as in
store/test_store.py; plus the command-line arguments that reach the same store."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from rex import topology
from rex.bus import Envelope
from rex.bus.memory import MemoryBroker, MemoryBus
from rex.config import ProcessConfig
from rex.environment import REX_TEST_DATABASE_URL
from rex.protocol import TradeMessage, encode
from settlement_worker.configuration import load_settlement
from settlement_worker.service import SettlementService
from settlement_worker.store import Store
from settlement_worker.store.postgres import PostgresStore
from settlement_worker.store.sqlite import SqliteStore

SETTINGS = ProcessConfig.from_env({})
PRODUCTS = SETTINGS.products()
MEMBERS = SETTINGS.members()
ENABLED = frozenset(m.id for m in MEMBERS.values() if m.enabled)
CONFIG = load_settlement(SETTINGS.config_dir / "settlement.toml", PRODUCTS, MEMBERS)
FEES = CONFIG.fees

DATABASE_URL = REX_TEST_DATABASE_URL.get()
BACKENDS = ["sqlite", pytest.param("postgres", marks=pytest.mark.database)]

BUYER = "ganzhou-magnet"
SELLER = "baotou-metals"
#: 2026-11-18 10:13:20 UTC, 18:13:20 in Beijing: trade date 2026-11-18.
T0 = 1_795_000_000_000_000_000


class Opened:
    """A migrated store and the `--database-url`/`--data-dir` arguments naming it."""

    def __init__(self, store: Store, cli: list[str]) -> None:
        self.store = store
        self.cli = cli


@contextmanager
def opened_store(kind: str, tmp_path: Path) -> Iterator[Opened]:
    schema = None
    if kind == "sqlite":
        store: Store = SqliteStore(tmp_path / "settlement.sqlite3")
        cli = ["--data-dir", str(tmp_path)]
    else:
        schema = f"rex_test_{uuid.uuid4().hex[:10]}"
        store = PostgresStore(DATABASE_URL, schema=schema)
        cli = ["--database-url", f"{DATABASE_URL}?options=-csearch_path%3D{schema}"]
    store.migrate()
    try:
        yield Opened(store, cli)
    finally:
        if schema is not None:
            with store.transaction() as tx:
                tx.execute(f'DROP SCHEMA "{schema}" CASCADE')
        store.close()


def trade(
    seq: int,
    price: int = 415_000,
    quantity: int = 1_000,
    product: str = "PRND-OX",
    buyer: str = BUYER,
    seller: str = SELLER,
) -> TradeMessage:
    return TradeMessage(
        trade_id=f"{product}-{seq}",
        product=product,
        price=price,
        quantity=quantity,
        buyer=buyer,
        seller=seller,
        buy_order_id=seq,
        sell_order_id=seq + 1,
        aggressor="buy",
        sequence=seq,
        timestamp=T0 + seq,
        currency=PRODUCTS[product].currency,
    )


def trade_envelope(message: TradeMessage) -> Envelope:
    """A trade as an engine publishes it to ``rex.trades``."""
    return Envelope(
        topology.TRADES,
        message.product,
        encode(message),
        message.kind,
        message.trade_id,
        message.timestamp // 10**9,
    )


def run_worker(store: Store, trades: list[TradeMessage]) -> SettlementService:
    """The real worker, on the memory bus: publish the trades, run until idle."""
    broker = MemoryBroker()
    service = SettlementService(
        MemoryBus(broker, "rex-settlement"), store, PRODUCTS.values(), CONFIG, max_batch=3
    )
    service.start()
    engine = MemoryBus(broker, "rex-engine")
    engine.start(topology.Topology(), lambda: None)
    broker.run_until_idle()
    for message in trades:
        engine.publish(trade_envelope(message))
    broker.run_until_idle()
    return service
