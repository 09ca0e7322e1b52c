"""`rex statement` on SQLite and PostgreSQL: opening and closing balances computed by hand,
the postings of the period (boundaries included), CSV, payments, usage errors."""

from __future__ import annotations

import csv
import datetime as dt
from collections.abc import Iterator
from pathlib import Path

import pytest

from cli.main import main as rex
from settlement_worker.reports.statement import build_statement, format_statement
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

NOV1, NOV30 = dt.date(2026, 11, 1), dt.date(2026, 11, 30)


def entry(entry_id: str, day: str, *lines: tuple[str, str, str, int]) -> EntryRow:
    return EntryRow(
        entry_id,
        entry_id.split("-")[0],
        entry_id.split("-", 1)[1],
        day,
        int(day.replace("-", "")),  # created in date order
        tuple(PostingRow(*line) for line in lines),
    )


JOURNAL = [
    entry(
        "trade-A",
        "2026-10-30",
        (SELLER, "receivables", "CNY", 100_000),
        (BUYER, "payables", "CNY", -100_000),
    ),
    entry(
        "fees-A",
        "2026-10-31",  # the day before --from: opening
        (BUYER, "fees", "CNY", 20),
        (SELLER, "fees", "CNY", 20),
        ("exchange", "fee_income", "CNY", -40),
    ),
    entry(
        "trade-B",
        "2026-11-01",  # --from itself: in the period
        (SELLER, "receivables", "CNY", 25_005_000),
        (BUYER, "payables", "CNY", -25_005_000),
    ),
    entry(
        "trade-U",
        "2026-11-06",
        (SELLER, "receivables", "USD", 5_000),
        (BUYER, "payables", "USD", -5_000),
    ),
    entry(
        "pay-1", "2026-11-10", (BUYER, "payables", "CNY", 100_000), (BUYER, "cash", "CNY", -100_000)
    ),
    entry(
        "adj-1",
        "2026-11-30",  # --to itself: in the period
        (BUYER, "fees", "CNY", -20),
        ("exchange", "fee_income", "CNY", 20),
    ),
    entry(
        "trade-C",
        "2026-12-01",
        (SELLER, "receivables", "CNY", 777),
        (BUYER, "payables", "CNY", -777),
    ),
]


@pytest.fixture(params=BACKENDS)
def opened(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Opened]:
    with opened_store(request.param, tmp_path) as o:
        with o.store.transaction() as tx:
            tx.append_entries(JOURNAL)
        yield o


def test_opening_postings_and_closing_computed_by_hand(opened: Opened) -> None:
    s = build_statement(opened.store, BUYER, NOV1, NOV30)
    # Opening: payables -1,000.00 (trade-A), fees 0.20 (fees-A); cash and USD start at 0.
    assert s.opening == {
        ("cash", "CNY"): 0,
        ("fees", "CNY"): 20,
        ("payables", "CNY"): -100_000,
        ("payables", "USD"): 0,
    }
    assert [
        (line.date, line.entry_id, line.account_kind, line.amount, line.balance) for line in s.lines
    ] == [
        ("2026-11-01", "trade-B", "payables", -25_005_000, -25_105_000),
        ("2026-11-06", "trade-U", "payables", -5_000, -5_000),
        ("2026-11-10", "pay-1", "payables", 100_000, -25_005_000),
        ("2026-11-10", "pay-1", "cash", -100_000, -100_000),
        ("2026-11-30", "adj-1", "fees", -20, 0),
    ]
    # Closing: payables -1,000.00 - 250,050.00 + 1,000.00 = -250,050.00; trade-C is December's.
    assert s.closing == {
        ("cash", "CNY"): -100_000,
        ("fees", "CNY"): 0,
        ("payables", "CNY"): -25_005_000,
        ("payables", "USD"): -5_000,
    }
    text = format_statement(s)
    assert "-250,050.00 CNY" in text and "-50.00 USD" in text and "1,000.00 CNY" in text


def test_closing_is_opening_plus_the_period_for_every_account(opened: Opened) -> None:
    for member in (BUYER, SELLER, "exchange"):
        s = build_statement(opened.store, member, NOV1, NOV30)
        for account, closing in s.closing.items():
            moved = sum(
                line.amount for line in s.lines if (line.account_kind, line.currency) == account
            )
            assert closing == s.opening[account] + moved


def test_one_currency_only(opened: Opened) -> None:
    s = build_statement(opened.store, BUYER, NOV1, NOV30, currency="USD")
    assert (s.opening, s.closing) == ({("payables", "USD"): 0}, {("payables", "USD"): -5_000})
    assert [line.entry_id for line in s.lines] == ["trade-U"]


def test_rex_statement_prints_and_writes_csv(
    opened: Opened,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("REX_DATABASE_URL", raising=False)
    out = tmp_path / "statement.csv"
    args = ["statement", "--member", BUYER, "--from", "2026-11-01", "--to", "2026-11-30"]
    assert rex([*args, "--currency", "CNY", "--csv", str(out), *opened.cli]) == 0
    printed = capsys.readouterr().out
    assert "Statement of ganzhou-magnet, 2026-11-01 to 2026-11-30 (CNY)" in printed
    assert "250,050.00 CNY" in printed
    with out.open(newline="") as file:
        rows = list(csv.reader(file))
    assert rows == [
        [
            "section",
            "date",
            "entry_id",
            "kind",
            "reference",
            "account",
            "currency",
            "debit",
            "credit",
            "balance",
        ],
        ["opening", "2026-11-01", "", "", "", "cash", "CNY", "", "", "0.00"],
        ["opening", "2026-11-01", "", "", "", "fees", "CNY", "", "", "0.20"],
        ["opening", "2026-11-01", "", "", "", "payables", "CNY", "", "", "-1000.00"],
        [
            "posting",
            "2026-11-01",
            "trade-B",
            "trade",
            "B",
            "payables",
            "CNY",
            "",
            "250050.00",
            "-251050.00",
        ],
        [
            "posting",
            "2026-11-10",
            "pay-1",
            "pay",
            "1",
            "payables",
            "CNY",
            "1000.00",
            "",
            "-250050.00",
        ],
        ["posting", "2026-11-10", "pay-1", "pay", "1", "cash", "CNY", "", "1000.00", "-1000.00"],
        ["posting", "2026-11-30", "adj-1", "adj", "1", "fees", "CNY", "", "0.20", "0.00"],
        ["closing", "2026-11-30", "", "", "", "cash", "CNY", "", "", "-1000.00"],
        ["closing", "2026-11-30", "", "", "", "fees", "CNY", "", "", "0.00"],
        ["closing", "2026-11-30", "", "", "", "payables", "CNY", "", "", "-250050.00"],
    ]


def add_payment(store: Store, payment_id: str, created_at: int) -> None:
    with store.transaction() as tx:
        tx.execute(
            "INSERT INTO payments (payment_id, obligation_id, payer, payee, amount, currency,"
            " bank, state, attempts, next_attempt_at, updated_at, fallbacks, send_no, deadline,"
            " queries, last_error, created_at, version) VALUES (?, 'obl-PRND-OX-1', ?, ?,"
            " 41500000, 'CNY', 'icbc-baotou', 'confirmed', 1, NULL, 1, '', 1, NULL, 0, '', ?, 1)",
            (payment_id, BUYER, SELLER, created_at),
        )


def test_payments_of_the_period_in_and_out(opened: Opened) -> None:
    # T0 is 2026-11-18 18:13 in Beijing; 2026-11-30 16:00 UTC is 2026-12-01 00:00 in Beijing.
    add_payment(opened.store, "p-in-period", T0)
    add_payment(opened.store, "p-december", 1_796_054_400_000_000_000)
    paid = build_statement(opened.store, BUYER, NOV1, NOV30)
    received = build_statement(opened.store, SELLER, NOV1, NOV30)
    assert paid.payments is not None and received.payments is not None
    assert [(p.date, p.payment_id, p.incoming, p.counterparty) for p in paid.payments] == [
        ("2026-11-18", "p-in-period", False, SELLER)
    ]
    assert [(p.payment_id, p.incoming, p.counterparty) for p in received.payments] == [
        ("p-in-period", True, BUYER)
    ]
    assert "to baotou-metals  415,000.00 CNY  confirmed  icbc-baotou" in format_statement(paid)


def test_the_worker_ledger_statement_matches_the_balances(tmp_path: Path) -> None:
    with opened_store("sqlite", tmp_path) as o:
        run_worker(o.store, [trade(1), trade(2, quantity=200)])  # both on 2026-11-18
        balances = {(k, c): v for (m, k, c), v in o.store.balances().items() if m == BUYER}
        day = dt.date(2026, 11, 18)
        assert build_statement(o.store, BUYER, day, day).closing == balances
        after = build_statement(
            o.store, BUYER, day + dt.timedelta(days=1), day + dt.timedelta(days=2)
        )
        assert after.opening == after.closing == balances and after.lines == []


@pytest.mark.parametrize(
    "bad",
    [
        ["--from", "2026-11-31", "--to", "2026-12-01"],
        ["--from", "2026-12-01", "--to", "2026-11-01"],
        ["--from", "2026-11-01", "--to", "2026-11-30", "--currency", "XXX"],
        ["--from", "2026-11-01"],
    ],
)
def test_usage_errors_exit_2(opened: Opened, bad: list[str]) -> None:
    assert rex(["statement", "--member", BUYER, *bad, *opened.cli]) == 2
