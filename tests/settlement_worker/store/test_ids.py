"""Dispute, offline-report and OTC trade ids taken by concurrent processes: each its own
number, none twice, none skipped, and a concurrent duplicate refused by the rule rather
than by a database error. Every writer has its own connection and holds its transaction
open a while after taking its id, which is when counting rows used to hand two writers
the same number on PostgreSQL. SQLite serialises writers, and must give the same ids."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TypeVar

import pytest

from rex.vocabulary import Side
from settlement_worker.codes import RuleViolation
from settlement_worker.disputes.operations import open_in_store
from settlement_worker.disputes.rules import Actor, SubjectType
from settlement_worker.offline.operations import confirm_in_store, report_in_store
from settlement_worker.reports.reconcile import reconcile
from settlement_worker.store import Store, Transaction
from settlement_worker.store.postgres import PostgresStore
from settlement_worker.store.sqlite import SqliteStore
from tests.settlement_worker.helpers import (
    BACKENDS,
    BUYER,
    CONFIG,
    ENABLED,
    PRODUCTS,
    SELLER,
    T0,
    Opened,
    opened_store,
    run_worker,
    trade,
)

WRITERS = 6
HOLD = 0.05  # seconds each writer keeps its transaction open after writing
T = TypeVar("T")


@pytest.fixture(params=BACKENDS)
def opened(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Opened]:
    with opened_store(request.param, tmp_path) as o:
        yield o


def connect(opened: Opened) -> Store:
    """Another connection to the same store, as another process would have."""
    option, where = opened.cli
    if option == "--data-dir":
        return SqliteStore(Path(where) / "settlement.sqlite3")
    return PostgresStore(where)


def concurrently(opened: Opened, work: Callable[[Transaction, int], T]) -> list[T | Exception]:
    """Run ``work(tx, n)`` for n in 0..WRITERS-1 at once, each in a transaction of its own
    connection, all starting together; each result, or the exception it raised."""
    stores = [connect(opened) for _ in range(WRITERS)]
    start = threading.Barrier(WRITERS)

    def one(n: int) -> T | Exception:
        start.wait()
        try:
            with stores[n].transaction() as tx:
                result = work(tx, n)
                time.sleep(HOLD)  # still uncommitted: the others must not reuse the number
            return result
        except Exception as error:
            return error

    try:
        with ThreadPoolExecutor(WRITERS) as pool:
            return list(pool.map(one, range(WRITERS)))
    finally:
        for store in stores:
            store.close()


def test_concurrent_disputes_get_distinct_numbers(opened: Opened) -> None:
    run_worker(opened.store, [trade(n) for n in range(1, WRITERS + 1)])

    def dispute(tx: Transaction, n: int) -> str:
        opened_dispute = open_in_store(
            tx, SubjectType.TRADE, f"PRND-OX-{n + 1}", Actor.member(BUYER), "assay", T0 + n
        )
        return opened_dispute.dispute_id

    ids = concurrently(opened, dispute)
    assert sorted(ids, key=str) == sorted(f"D-{n}" for n in range(1, WRITERS + 1))
    assert opened.store.query("SELECT COUNT(*) FROM disputes") == [(WRITERS,)]


def test_concurrent_disputes_of_one_trade_open_one_and_refuse_the_rest_by_rule(
    opened: Opened,
) -> None:
    run_worker(opened.store, [trade(1)])

    def dispute(tx: Transaction, n: int) -> str:
        party = Actor.member(BUYER if n % 2 else SELLER)
        return open_in_store(tx, SubjectType.TRADE, "PRND-OX-1", party, "assay", T0 + n).dispute_id

    results = concurrently(opened, dispute)
    assert [r for r in results if isinstance(r, str)] == ["D-1"]
    refused = [r for r in results if not isinstance(r, str)]
    assert len(refused) == WRITERS - 1
    assert all(isinstance(r, RuleViolation) and r.code == "already_disputed" for r in refused)
    # The refused writers' numbers were rolled back: the next dispute is D-2.
    run_worker(opened.store, [trade(2)])
    with opened.store.transaction() as tx:
        later = open_in_store(tx, SubjectType.TRADE, "PRND-OX-2", Actor.member(BUYER), "x", T0)
    assert later.dispute_id == "D-2"


def report(tx: Transaction, ref: str) -> str:
    return report_in_store(
        tx,
        SELLER,
        BUYER,
        PRODUCTS["PRND-OX"],
        Side.SELL,
        415_000,
        1_300,
        ref,
        at=T0,
        members=ENABLED,
    ).offline_id


def test_concurrent_offline_reports_get_distinct_numbers(opened: Opened) -> None:
    ids = concurrently(opened, lambda tx, n: report(tx, f"deal-{n}"))
    assert sorted(ids, key=str) == sorted(f"OFF-{n}" for n in range(1, WRITERS + 1))


def test_the_same_report_sent_concurrently_is_one_report_without_a_gap(opened: Opened) -> None:
    ids = concurrently(opened, lambda tx, n: report(tx, "deal-same"))
    assert ids == ["OFF-1"] * WRITERS
    assert opened.store.query("SELECT COUNT(*) FROM offline_trades") == [(1,)]
    with opened.store.transaction() as tx:
        assert report(tx, "deal-next") == "OFF-2"  # no number lost to the duplicates


def test_concurrent_confirmations_book_distinct_otc_trades(opened: Opened) -> None:
    with opened.store.transaction() as tx:
        pending = [report(tx, f"deal-{n}") for n in range(WRITERS)]

    def confirm(tx: Transaction, n: int) -> str:
        _, message = confirm_in_store(
            tx, pending[n], BUYER, 415_000, 1_300, products=PRODUCTS, config=CONFIG, at=T0 + n
        )
        return message.trade_id

    ids = concurrently(opened, confirm)
    assert sorted(ids, key=str) == sorted(f"OTC-PRND-OX-{n}" for n in range(1, WRITERS + 1))
    assert opened.store.query("SELECT COUNT(*) FROM obligations") == [(WRITERS,)]
    # No publisher drains this outbox: its rows wait by design, unaged.
    assert reconcile(opened.store, max_unpublished_age_s=None).clean


def test_the_counters_start_after_ids_used_before_the_migration(tmp_path: Path) -> None:
    """A store with disputes and offline trades from before v0006 continues their series."""
    store = SqliteStore(tmp_path / "settlement.sqlite3")
    try:
        store.migrate()
        with store.transaction() as tx:
            tx.execute("DELETE FROM id_counters")
            tx.execute("DELETE FROM schema_migrations WHERE version = 6")
            for table in (
                "id_counters",
                "member_settings_history",
                "member_settings",
                "settlement_requests",
            ):
                tx.execute(f"DROP TABLE {table}")
            tx.execute(
                "INSERT INTO offline_trades (offline_id, reporter, counterparty, product, side,"
                " price, quantity, ref, reported_at, state, trade_id) VALUES"
                " ('OFF-7', ?, ?, 'PRND-OX', 'sell', 415000, 1300, 'old', 1, 'confirmed',"
                " 'OTC-PRND-OX-3')",
                [SELLER, BUYER],
            )
        assert store.migrate() == [6]
        with store.transaction() as tx:
            counters = dict(tx.execute("SELECT name, last FROM id_counters"))
        assert counters == {"dispute": 0, "offline": 7, "otc:PRND-OX": 3}
        with store.transaction() as tx:
            assert report(tx, "new") == "OFF-8"
    finally:
        store.close()
