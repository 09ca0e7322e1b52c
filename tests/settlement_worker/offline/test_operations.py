"""Offline (negotiated) trades in the settlement store, on SQLite and PostgreSQL: reported,
confirmed by the counterparty, booked through settle_trade exactly once."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from cli import main as rex_cli
from rex.vocabulary import Side
from settlement_worker.codes import RuleViolation
from settlement_worker.offline import commands as cli_offline
from settlement_worker.offline.operations import (
    confirm_in_store,
    list_offline,
    report_in_store,
    withdraw_in_store,
)
from settlement_worker.offline.requests import offline_request_kinds
from settlement_worker.offline.rules import OfflineState, OfflineTrade
from settlement_worker.reports.reconcile import reconcile
from settlement_worker.requests.desk import RequestKind
from settlement_worker.store import Store
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
)
from tests.settlement_worker.operator_cli import as_account


@pytest.fixture(params=BACKENDS)
def opened(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Opened]:
    with opened_store(request.param, tmp_path) as o:
        yield o


def report(
    store: Store, ref: str = "deal-1", price: int = 415_000, side: Side = Side.SELL
) -> OfflineTrade:
    with store.transaction() as tx:
        return report_in_store(
            tx,
            SELLER,
            BUYER,
            PRODUCTS["PRND-OX"],
            side,
            price,
            1_300,
            ref,
            at=T0,
            members=ENABLED,
        )


def confirm(store: Store, offline_id: str, price: int = 415_000) -> str:
    with store.transaction() as tx:
        _, message = confirm_in_store(
            tx, offline_id, BUYER, price, 1_300, products=PRODUCTS, config=CONFIG, at=T0 + 5
        )
    return message.trade_id


def test_a_confirmed_offline_trade_settles_like_a_matched_one(opened: Opened) -> None:
    store = opened.store
    pending = report(store)
    assert store.query("SELECT COUNT(*) FROM obligations") == [(0,)]
    assert confirm(store, pending.offline_id) == "OTC-PRND-OX-1"
    # 415,000 CNY/t x 1,300 kg = 539,500.00 CNY; the reporter sold, so the buyer owes it, and
    # pays it as for a matched trade: by two bank bills (the seller's face limit is 500,000).
    assert store.query("SELECT trade_id, payer, payee, amount, state FROM obligations") == [
        ("OTC-PRND-OX-1", BUYER, SELLER, 53_950_000, "settled")
    ]
    assert store.query("SELECT trade_id FROM processed_trades") == [("OTC-PRND-OX-1",)]
    entries = store.query("SELECT entry_id FROM journal_entries ORDER BY entry_id")
    assert entries == [
        ("fees-OTC-PRND-OX-1",),
        ("issue-bill-obl-OTC-PRND-OX-1-0",),
        ("issue-bill-obl-OTC-PRND-OX-1-1",),
        ("trade-OTC-PRND-OX-1",),
    ]
    assert store.totals_by_currency() == {"CNY": 0}
    # No publisher drains this outbox: its rows wait by design, unaged.
    assert reconcile(store, max_unpublished_age_s=None).clean


def test_the_worker_skips_an_offline_trade_published_again(opened: Opened) -> None:
    store = opened.store
    pending = report(store)
    with store.transaction() as tx:
        _, message = confirm_in_store(
            tx, pending.offline_id, BUYER, 415_000, 1_300, products=PRODUCTS, config=CONFIG, at=T0
        )
    assert run_worker(store, [message]).settled == 0
    assert store.query("SELECT COUNT(*) FROM obligations") == [(1,)]


def test_otc_trade_ids_count_per_product(opened: Opened) -> None:
    store = opened.store
    first, second = report(store, "a"), report(store, "b", price=415_050)
    assert [confirm(store, second.offline_id, 415_050), confirm(store, first.offline_id)] == [
        "OTC-PRND-OX-1",
        "OTC-PRND-OX-2",
    ]


def test_the_same_report_twice_is_one_report(opened: Opened) -> None:
    store = opened.store
    assert report(store) == report(store)
    with pytest.raises(RuleViolation) as error:
        report(store, price=415_050)
    assert error.value.code == "duplicate_ref"
    assert store.query("SELECT COUNT(*) FROM offline_trades") == [(1,)]


def test_a_refused_confirmation_books_nothing(opened: Opened) -> None:
    store = opened.store
    pending = report(store)
    with pytest.raises(RuleViolation) as error:
        confirm(store, pending.offline_id, price=415_050)
    assert error.value.code == "terms_mismatch"
    assert store.query("SELECT COUNT(*) FROM obligations") == [(0,)]
    with store.transaction() as tx:
        assert list_offline(tx, state=OfflineState.PENDING) == [pending]


def test_declined_and_cancelled_reports_are_audited_and_not_booked(opened: Opened) -> None:
    store = opened.store
    declined, cancelled = report(store, "a"), report(store, "b")
    with store.transaction() as tx:
        withdraw_in_store(
            tx, declined.offline_id, BUYER, "never agreed", at=T0 + 1, cancelling=False
        )
        withdraw_in_store(tx, cancelled.offline_id, SELLER, "typo", at=T0 + 1, cancelling=True)
    with pytest.raises(RuleViolation) as error:
        confirm(store, declined.offline_id)
    assert error.value.code == "not_pending"
    actions = store.query(
        "SELECT actor, subject_id, action FROM audit_log WHERE subject_type = 'offline_trade'"
        " ORDER BY seq"
    )
    assert actions == [
        (f"member:{SELLER}", "OFF-1", "reported"),
        (f"member:{SELLER}", "OFF-2", "reported"),
        (f"member:{BUYER}", "OFF-1", "declined"),
        (f"member:{SELLER}", "OFF-2", "cancelled"),
    ]
    assert store.query("SELECT COUNT(*) FROM obligations") == [(0,)]
    # No publisher drains this outbox: its rows wait by design, unaged.
    assert reconcile(store, max_unpublished_age_s=None).clean


def offline_kinds() -> dict[str, RequestKind]:
    return offline_request_kinds(PRODUCTS, CONFIG, ENABLED)


def test_the_offline_command_reports_and_confirms(
    opened: Opened, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The steps go to the worker's desk as the operator account (`settle`) for the member;
    list reads the store."""
    monkeypatch.delenv("REX_DATABASE_URL", raising=False)
    run_worker(opened.store, [])  # a store the worker has migrated
    sent = as_account(monkeypatch, opened.store, offline_kinds())
    common = opened.cli
    args = ["--product", "PRND-OX", "--side", "buy", "--price", "415000", "--quantity", "1000"]
    assert (
        cli_offline.main(
            ["report", "--member", BUYER, "--counterparty", SELLER, *args, "--ref", "r1"]
        )
        == 0
    )
    assert capsys.readouterr().out.startswith(f"reported OFF-1  pending    {BUYER} buy 1000 ")
    assert sent[-1] == (
        "report_offline_trade",
        {
            "member": BUYER,
            "counterparty": SELLER,
            "product": "PRND-OX",
            "side": "buy",
            "price": 415000,
            "quantity": 1000,
            "ref": "r1",
            "reason": "agreed off the book",
        },
    )
    confirm_args = ["--price", "415000", "--quantity", "1000"]
    assert cli_offline.main(["confirm", "OFF-1", "--member", BUYER, *confirm_args]) == 1
    assert "refused (not_counterparty)" in capsys.readouterr().err
    assert cli_offline.main(["confirm", "OFF-1", "--member", SELLER, *confirm_args]) == 0
    assert "owes baotou-metals 415,000.00 CNY" in capsys.readouterr().out
    assert cli_offline.main(["list", "--state", "confirmed", *common]) == 0
    assert "OTC-PRND-OX-1" in capsys.readouterr().out
    assert opened.store.query(
        "SELECT actor, action FROM audit_log WHERE subject_type = 'offline_trade' ORDER BY seq"
    ) == [("operator:settle", "reported"), ("operator:settle", "confirmed")]


def test_rex_offline_runs_the_offline_command(
    opened: Opened, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """`rex offline ...` hands its arguments to the offline command, options included."""
    monkeypatch.delenv("REX_DATABASE_URL", raising=False)
    as_account(monkeypatch, opened.store, offline_kinds())
    common = opened.cli
    args = ["--product", "PRND-OX", "--side", "sell", "--price", "415000", "--quantity", "1300"]
    report = ["offline", "report", "--member", SELLER, "--counterparty", BUYER, *args]
    assert rex_cli.main([*report, "--ref", "r1"]) == 0
    assert "reported OFF-1" in capsys.readouterr().out
    confirm = ["offline", "confirm", "OFF-1", "--member", BUYER, "--price", "415000"]
    assert rex_cli.main([*confirm, "--quantity", "1300"]) == 0
    assert "booked" in capsys.readouterr().out
    assert rex_cli.main(["offline", "list", "--member", SELLER, *common]) == 0
    assert "OTC-PRND-OX-1" in capsys.readouterr().out
    assert rex_cli.main(["offline", "confirm", "OFF-1", "--member", BUYER]) == 2
    assert "--price" in capsys.readouterr().err  # argparse: a required option is missing


@pytest.mark.parametrize("step", ["report", "confirm", "decline", "cancel"])
@pytest.mark.parametrize("account", ["market", "audit", "gone", "named"])
def test_rex_offline_as_no_settlement_ops_account_changes_nothing(
    opened: Opened,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    step: str,
    account: str,
) -> None:
    """Refused by the desk for the account's role, or (`named`: `--operator li` given) by
    the command before anything is sent; nothing changes either way."""
    with opened.store.transaction() as tx:
        report_in_store(
            tx, SELLER, BUYER, PRODUCTS["PRND-OX"], Side.SELL, 415_000, 1_000, "r1",
            at=T0, members=ENABLED,
        )  # fmt: skip
    sent = as_account(
        monkeypatch, opened.store, offline_kinds(), "settle" if account == "named" else account
    )
    before = opened.store.query("SELECT * FROM offline_trades")
    member = {"report": SELLER, "cancel": SELLER}.get(step, BUYER)
    argv = {
        "report": ["report", "--counterparty", BUYER, "--product", "PRND-OX", "--side", "sell",
                   "--price", "415000", "--quantity", "1000", "--ref", "r2"],
        "confirm": ["confirm", "OFF-1", "--price", "415000", "--quantity", "1000"],
        "decline": ["decline", "OFF-1", "--reason", "no"],
        "cancel": ["cancel", "OFF-1", "--reason", "no"],
    }[step] + ["--member", member]  # fmt: skip
    if account == "named":
        assert cli_offline.main([*argv, "--operator", "li"]) == 2
        assert "--operator is refused" in capsys.readouterr().err
        assert sent == []
    else:
        assert cli_offline.main(argv) == 1
        assert "refused (not_permitted): " in capsys.readouterr().err
    assert opened.store.query("SELECT * FROM offline_trades") == before
