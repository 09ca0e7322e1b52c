"""The payer on the memory bus: loop time is the clock, so minutes of retries take
milliseconds. Payments are stored in SQLite (test_sql.py covers PostgreSQL)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from rex.bus.memory import MemoryBroker, MemoryBus
from rex.money import Money
from settlement_worker.payments import rules as pm
from settlement_worker.payments.payer import Payer
from settlement_worker.payments.rules import SECOND
from settlement_worker.store import Store
from settlement_worker.store.sqlite import SqliteStore

T0 = 1_800_000_000 * SECOND  # the loop's time 0, as ns since the epoch


@pytest.fixture
def broker() -> MemoryBroker:
    return MemoryBroker()


@pytest.fixture
def bus(broker: MemoryBroker) -> MemoryBus:
    return MemoryBus(broker)


@pytest.fixture
def clock(broker: MemoryBroker) -> Callable[[], int]:
    return lambda: T0 + int(broker.now * SECOND)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    opened = SqliteStore(tmp_path / "settlement.sqlite3")
    opened.migrate()
    try:
        yield opened
    finally:
        opened.close()


def submit_later(payer: Payer, batch: list[pm.Payment]) -> Callable[[], None]:
    """A timer callback that submits `batch`."""

    def submit() -> None:
        payer.submit(batch)

    return submit


def make_payments(
    count: int, now: int, bank: str = "icbc-baotou", fallbacks: tuple[str, ...] = ("boc-ganzhou",)
) -> list[pm.Payment]:
    return [
        pm.new_payment(
            pm.payment_id_for(f"obl-PRND-OX-{i}", 0),
            f"obl-PRND-OX-{i}",
            "ganzhou-magnet",
            "baotou-metals",
            Money(100_000 + i, "CNY"),
            bank,
            now,
            fallbacks,
        )
        for i in range(count)
    ]
