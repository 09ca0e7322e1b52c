"""The settlement store behaves the same on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from settlement_worker.store import (
    EntryRow,
    ObligationRow,
    PostingRow,
    Store,
)
from settlement_worker.store.migrations import MIGRATIONS
from tests.settlement_worker.helpers import BACKENDS, opened_store


@pytest.fixture(params=BACKENDS)
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    with opened_store(request.param, tmp_path) as opened:
        yield opened.store


def entry(entry_id: str, amount: int, corrects: str | None = None) -> EntryRow:
    return EntryRow(
        entry_id,
        "obligation",
        "PRND-OX-1",
        "2026-11-22",
        1,
        (
            PostingRow("buyer", "payables", "CNY", -amount),
            PostingRow("seller", "receivables", "CNY", amount),
        ),
        corrects,
    )


def test_migrations_apply_once(store: Store) -> None:
    assert store.migrate() == []
    assert [r[0] for r in store.query("SELECT version FROM schema_migrations")] == [
        v for v, _ in MIGRATIONS
    ]


def test_a_trade_is_marked_processed_once(store: Store) -> None:
    with store.transaction() as tx:
        assert not tx.trade_processed("PRND-OX-1")
        tx.mark_processed("PRND-OX-1", "obl-PRND-OX-1", 1)
        assert tx.trade_processed("PRND-OX-1")
    with pytest.raises(Exception), store.transaction() as tx:  # noqa: B017 - driver-specific
        tx.mark_processed("PRND-OX-1", "obl-PRND-OX-1", 2)


def test_a_failed_transaction_writes_nothing(store: Store) -> None:
    with pytest.raises(RuntimeError), store.transaction() as tx:
        tx.append_entry(entry("e1", 500))
        raise RuntimeError("crash mid-batch")
    assert store.balances() == {}


def test_balances_are_derived_from_postings_and_sum_to_zero(store: Store) -> None:
    with store.transaction() as tx:
        tx.append_entry(entry("e1", 623_250_00))
        tx.append_entry(entry("e2", 100, corrects=None))
        tx.append_entry(entry("e2-rev", -100, corrects="e2"))
    assert store.balances() == {
        ("buyer", "payables", "CNY"): -623_250_00,
        ("seller", "receivables", "CNY"): 623_250_00,
    }
    assert store.totals_by_currency() == {"CNY": 0}


def test_obligation_rows_round_trip(store: Store) -> None:
    row = ObligationRow(
        "obl-T-1", "T-1", "PRND-OX", "b", "s", "CNY", 4_200_000, "open", "2026-11-22", 7
    )
    with store.transaction() as tx:
        tx.add_obligation(row)
        tx.set_obligation_state("obl-T-1", "settled")
    assert store.query("SELECT state, amount FROM obligations") == [("settled", 4_200_000)]


def test_audit_log_keeps_who_what_why(store: Store) -> None:
    with store.transaction() as tx:
        tx.audit(5, "operator:li", "dispute", "d-1", "opened", {"reason": "wrong grade"})
    rows = store.query("SELECT actor, subject_type, subject_id, action FROM audit_log")
    assert rows == [("operator:li", "dispute", "d-1", "opened")]
