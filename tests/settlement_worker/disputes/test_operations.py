"""Disputes in the settlement store, on SQLite and PostgreSQL: freezing, upholding (reversal,
cancellation), rejecting, the audit trail, and `rex dispute`."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from cli.main import main as rex
from settlement_worker.codes import RuleViolation
from settlement_worker.disputes.operations import (
    history,
    list_disputes,
    open_in_store,
    resolve_in_store,
)
from settlement_worker.disputes.requests import dispute_request_kinds
from settlement_worker.disputes.rules import Actor, DisputeState, SubjectType
from settlement_worker.reports.reconcile import reconcile
from settlement_worker.store import EntryRow, PostingRow, Store
from tests.settlement_worker.helpers import (
    BACKENDS,
    BUYER,
    SELLER,
    T0,
    Opened,
    opened_store,
    run_worker,
    trade,
)
from tests.settlement_worker.operator_cli import as_account

OPERATOR = Actor.operator("li")


@pytest.fixture(params=BACKENDS)
def opened(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Opened]:
    with opened_store(request.param, tmp_path) as o:
        run_worker(o.store, [trade(1), trade(2)])
        yield o


def open_one(store: Store, trade_id: str = "PRND-OX-1", by: str = BUYER) -> str:
    with store.transaction() as tx:
        return open_in_store(
            tx, SubjectType.TRADE, trade_id, Actor.member(by), "wrong grade", T0 + 10
        ).dispute_id


def resolve(store: Store, dispute_id: str, upheld: bool) -> tuple[str, ...]:
    with store.transaction() as tx:
        return resolve_in_store(
            tx, dispute_id, OPERATOR, upheld, "assay report 2026-118", T0 + 20
        ).reversals


def audit(store: Store) -> list[tuple[str, str, str, str]]:
    rows = store.query("SELECT actor, subject_type, subject_id, action FROM audit_log ORDER BY seq")
    return [r for r in rows if r[0] != "settlement"]  # not what booking the trades wrote


def test_the_migration_adds_disputes_and_offline_trades(opened: Opened) -> None:
    versions = [r[0] for r in opened.store.query("SELECT version FROM schema_migrations")]
    assert 3 in versions
    assert opened.store.has_table("disputes") and opened.store.has_table("offline_trades")


def test_an_open_dispute_freezes_the_trade_until_resolved(opened: Opened) -> None:
    store = opened.store
    dispute_id = open_one(store)
    with store.transaction() as tx:
        assert tx.is_frozen("trade", "PRND-OX-1")
        assert tx.frozen_among("trade", ["PRND-OX-1", "PRND-OX-2"]) == {"PRND-OX-1"}
    resolve(store, dispute_id, upheld=False)
    with store.transaction() as tx:
        assert not tx.is_frozen("trade", "PRND-OX-1")


def test_the_database_allows_one_open_dispute_per_subject(opened: Opened) -> None:
    open_one(opened.store)
    with pytest.raises(RuleViolation) as error:
        open_one(opened.store, by=SELLER)
    assert error.value.code == "already_disputed"
    with pytest.raises(Exception), opened.store.transaction() as tx:  # noqa: B017 - driver error
        tx.execute(
            "INSERT INTO disputes VALUES ('D-9', 'trade', 'PRND-OX-1', ?, 'r', 1, 'open',"
            " NULL, NULL, NULL)",
            [SELLER],
        )


def test_only_a_party_to_a_settled_trade_may_open(opened: Opened) -> None:
    with pytest.raises(RuleViolation) as error:
        open_one(opened.store, by="ningbo-alloy")
    assert error.value.code == "not_a_party"
    with pytest.raises(RuleViolation) as error:
        open_one(opened.store, trade_id="PRND-OX-99")
    assert error.value.code == "unknown_subject"


def test_uphold_reverses_the_trade_cancels_the_obligation_and_keeps_the_ledger_at_zero(
    opened: Opened,
) -> None:
    store = opened.store
    before = store.balances()
    reversals = resolve(store, open_one(store), upheld=True)
    assert reversals == ("reverse-trade-PRND-OX-1", "reverse-fees-PRND-OX-1")
    # Both trades were paid by bills at booking (the buyer pays with bank bills, the seller
    # takes them), so both obligations were settled.
    assert store.query("SELECT obligation_id, state FROM obligations ORDER BY trade_id") == [
        ("obl-PRND-OX-1", "cancelled"),
        ("obl-PRND-OX-2", "settled"),
    ]
    assert store.totals_by_currency() == {"CNY": 0}
    after = store.balances()
    # 415,000 CNY/t x 1 t = 41,500,000 fen a trade, fees 2 bp = 8,300 fen a side. The bills
    # settled the receivables; trade 1's bill stands (a bill may have moved on), so with the
    # trade reversed the seller owes the buyer its face back: a credit on its receivables.
    assert before[(SELLER, "receivables", "CNY")] == 0
    assert after[(SELLER, "receivables", "CNY")] == -41_500_000
    assert after[(SELLER, "bills_receivable", "CNY")] == 83_000_000
    assert after[(BUYER, "fees", "CNY")] == 8_300
    assert after[("exchange", "fee_income", "CNY")] == -16_600
    rows = store.query(
        "SELECT entry_id, kind, reference, corrects FROM journal_entries"
        " WHERE entry_id LIKE ? ORDER BY entry_id",
        ["reverse-%"],
    )
    assert rows == [
        ("reverse-fees-PRND-OX-1", "dispute_reversal", "PRND-OX-1", "fees-PRND-OX-1"),
        ("reverse-trade-PRND-OX-1", "dispute_reversal", "PRND-OX-1", "trade-PRND-OX-1"),
    ]
    assert reconcile(store).clean


def test_every_state_change_is_audited_with_who_and_why(opened: Opened) -> None:
    store = opened.store
    first = open_one(store)
    resolve(store, first, upheld=False)
    second = open_one(store, by=SELLER)
    resolve(store, second, upheld=True)
    assert audit(store) == [
        ("member:ganzhou-magnet", "dispute", "D-1", "opened"),
        ("member:ganzhou-magnet", "trade", "PRND-OX-1", "frozen"),
        ("operator:li", "dispute", "D-1", "rejected"),
        ("operator:li", "trade", "PRND-OX-1", "unfrozen"),
        ("member:baotou-metals", "dispute", "D-2", "opened"),
        ("member:baotou-metals", "trade", "PRND-OX-1", "frozen"),
        ("operator:li", "dispute", "D-2", "upheld"),
        ("operator:li", "trade", "PRND-OX-1", "reversed"),
        ("operator:li", "obligation", "obl-PRND-OX-1", "cancelled"),
    ]
    with store.transaction() as tx:
        trail = history(tx, second)
    assert all(row.detail.get("reason") for row in trail if row.action != "created")
    cancelled = next(r for r in trail if r.action == "cancelled")
    assert cancelled.detail == {
        "dispute_id": "D-2",
        "previous_state": "settled",  # paid by its bill at booking
        "reason": "assay report 2026-118",
    }


def test_a_dispute_is_resolved_once_even_by_two_operators(opened: Opened) -> None:
    dispute_id = open_one(opened.store)
    resolve(opened.store, dispute_id, upheld=True)
    with pytest.raises(RuleViolation) as error:
        resolve(opened.store, dispute_id, upheld=True)
    assert error.value.code == "already_resolved"
    # trade-, fees- and issue- (its bill) of two trades, and the two reversals
    assert opened.store.query("SELECT COUNT(*) FROM journal_entries") == [(8,)]


def test_list_filters_by_state_member_and_subject(opened: Opened) -> None:
    store = opened.store
    resolve(store, open_one(store), upheld=False)
    open_one(store, trade_id="PRND-OX-2", by=SELLER)
    with store.transaction() as tx:
        assert [d.dispute_id for d in list_disputes(tx)] == ["D-1", "D-2"]
        assert [d.dispute_id for d in list_disputes(tx, DisputeState.OPEN)] == ["D-2"]
        assert [d.dispute_id for d in list_disputes(tx, member=BUYER)] == ["D-1", "D-2"]
        assert list_disputes(tx, member="ningbo-alloy") == []
        assert [d.dispute_id for d in list_disputes(tx, subject_id="PRND-OX-1")] == ["D-1"]


def test_a_bill_dispute_reverses_the_bills_entries(opened: Opened) -> None:
    store = opened.store
    before = store.balances()
    with store.transaction() as tx:
        tx.append_entry(
            EntryRow(
                "bill-B-7",
                "bill",
                "B-7",
                "2026-11-18",
                T0,
                (
                    PostingRow(SELLER, "bills_receivable", "CNY", 41_500_000),
                    PostingRow(BUYER, "bills_payable", "CNY", -41_500_000),
                ),
            )
        )
        dispute = open_in_store(
            tx, SubjectType.BILL, "B-7", Actor.member(SELLER), "forged acceptance", T0
        )
    with store.transaction() as tx:
        result = resolve_in_store(tx, dispute.dispute_id, OPERATOR, True, "forged", T0 + 1)
    assert result.reversals == ("reverse-bill-B-7",)
    after = store.balances()
    assert after[(SELLER, "bills_receivable", "CNY")] == before[(SELLER, "bills_receivable", "CNY")]
    assert ("operator:li", "bill", "B-7", "cancelled") in audit(store)


def run(opened: Opened, *args: str) -> int:
    """`rex dispute ARGS`; list and show read the store the test opened."""
    return rex(["dispute", *args, *(opened.cli if args[0] in ("list", "show") else [])])


def test_rex_dispute_open_resolve_list_show(
    opened: Opened, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("REX_DATABASE_URL", raising=False)
    sent = as_account(monkeypatch, opened.store, dispute_request_kinds())
    assert run(opened, "open", "--member", BUYER, "--trade", "PRND-OX-1", "--reason", "grade") == 0
    assert capsys.readouterr().out == (
        "opened D-1: trade PRND-OX-1 is frozen until an operator resolves it\n"
    )
    assert sent == [("open_dispute", {"member": BUYER, "trade_id": "PRND-OX-1", "reason": "grade"})]
    assert run(opened, "open", "--member", SELLER, "--trade", "PRND-OX-1", "--reason", "x") == 1
    assert "refused (already_disputed)" in capsys.readouterr().err
    # The dispute is the member's; the audit names the account that sent it.
    with opened.store.transaction() as tx:
        assert list_disputes(tx)[0].opened_by == BUYER
    assert audit(opened.store)[:2] == [
        ("operator:settle", "dispute", "D-1", "opened"),
        ("operator:settle", "trade", "PRND-OX-1", "frozen"),
    ]
    # Nobody is named by hand: --operator is refused, and nothing is sent.
    assert run(opened, "open", "--member", BUYER, "--trade", "PRND-OX-2", "--reason", "x",
               "--operator", "li") == 2  # fmt: skip
    assert "--operator is refused: rex dispute open acts as the operator account" in (
        capsys.readouterr().err
    )
    assert len(sent) == 2
    # Resolving is the worker's, as the operator's login (tests/system/test_operator_settlement.py):
    # the command takes no name of who acts.
    assert run(opened, "resolve", "D-1", "--operator", "li", "--uphold", "--note", "x") == 2
    assert "unrecognized arguments: --operator" in capsys.readouterr().err
    with opened.store.transaction() as tx:
        result = resolve_in_store(tx, "D-1", Actor.operator("li"), True, "agreed", time.time_ns())
    assert "reverse-trade-PRND-OX-1" in result.reversals
    assert run(opened, "list", "--state", "upheld") == 0
    assert "D-1  upheld" in capsys.readouterr().out
    assert run(opened, "show", "D-1") == 0
    shown = capsys.readouterr().out
    assert "operator:li" in shown and json.dumps("agreed") in shown
    assert re.search(r"  \d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+08:00  ", shown)  # exchange time
    assert run(opened, "resolve", "D-1", "--note", "x") == 2  # no verdict
    assert rex(["reconcile", *opened.cli]) == 0


@pytest.mark.parametrize("account", ["market", "audit", "gone"])
def test_rex_dispute_open_without_settlement_ops_changes_nothing(
    opened: Opened,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    account: str,
) -> None:
    as_account(monkeypatch, opened.store, dispute_request_kinds(), account)
    assert run(opened, "open", "--member", BUYER, "--trade", "PRND-OX-1", "--reason", "x") == 1
    assert "refused (not_permitted): " in capsys.readouterr().err
    assert opened.store.query("SELECT COUNT(*) FROM disputes") == [(0,)]
