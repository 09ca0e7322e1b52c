"""`rex reconcile` on SQLite and PostgreSQL: clean on what the real worker writes, and each
kind of injected difference is reported (exit 1) in words that name it."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from cli.main import main as rex
from rex.exchange_time import format_ns
from settlement_worker.disputes.operations import open_in_store, resolve_in_store
from settlement_worker.disputes.rules import Actor, SubjectType
from settlement_worker.reports.reconcile import format_report, reconcile
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

TRADES = [
    trade(1),
    trade(2, price=415_050, quantity=200),
    trade(3, product="PRND-OX-USD", price=57_500, quantity=100),
    trade(4, product="TB-OX", price=5_800_000, quantity=100, buyer="ningbo-alloy"),
]


@pytest.fixture(params=BACKENDS)
def opened(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Opened]:
    with opened_store(request.param, tmp_path) as o:
        run_worker(o.store, TRADES)
        yield o


def differences(store: Store) -> list[str]:
    return [str(d) for d in reconcile(store).differences]


def cli(opened: Opened, capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    status = rex(["reconcile", *opened.cli])
    return status, capsys.readouterr().out


def inject(store: Store, sql: str, params: tuple[object, ...] = ()) -> None:
    with store.transaction() as tx:
        tx.execute(sql, params)


def test_clean_on_what_the_worker_wrote(
    opened: Opened, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("REX_DATABASE_URL", raising=False)
    assert opened.store.query("SELECT COUNT(*) FROM obligations") == [(4,)]
    status, out = cli(opened, capsys)
    assert status == 0, out
    assert "clean: no differences" in out
    # trade- and fees- of each trade, and the issue- of the bill paying each of trades 1 and 2
    assert "4 obligations" in out and "10 entries" in out and "2 currencies" in out
    assert "2 bills, 2 outstanding" in out


def test_clean_after_disputes_upheld_and_rejected(opened: Opened) -> None:
    store = opened.store
    for trade_id, upheld in (("PRND-OX-1", True), ("PRND-OX-USD-3", False)):
        with store.transaction() as tx:
            dispute = open_in_store(
                tx, SubjectType.TRADE, trade_id, Actor.member(BUYER), "grade", T0 + 1
            )
            resolve_in_store(tx, dispute.dispute_id, Actor.operator("li"), upheld, "n", T0 + 2)
    assert differences(store) == []


def test_a_deleted_posting_row(opened: Opened, capsys: pytest.CaptureFixture[str]) -> None:
    inject(opened.store, "DELETE FROM postings WHERE entry_id = 'trade-PRND-OX-1' AND line = 1")
    assert differences(opened.store) == [
        "[trades] PRND-OX-1: entry trade-PRND-OX-1 should be "
        "baotou-metals:receivables 415,000.00 CNY, ganzhou-magnet:payables -415,000.00 CNY; "
        "it is baotou-metals:receivables 415,000.00 CNY",
        "[entries] trade-PRND-OX-1: has 1 posting(s); needs two or more",
        "[entries] trade-PRND-OX-1: CNY debits and credits differ by 415,000.00 CNY (should be 0)",
        "[ledger] CNY: postings sum to 415,000.00 CNY, not 0",
    ]
    status, out = cli(opened, capsys)
    assert status == 1
    assert "4 differences:" in out and "trades     DIFFERENCES" in out


def test_an_unbalanced_posting_added(opened: Opened) -> None:
    inject(
        opened.store,
        "INSERT INTO postings (entry_id, line, owner, account_kind, currency, amount)"
        " VALUES ('fees-PRND-OX-USD-3', 9, 'ganzhou-magnet', 'cash', 'USD', 1)",
    )
    assert differences(opened.store) == [
        "[trades] PRND-OX-USD-3: entry fees-PRND-OX-USD-3 should debit fees of "
        "ganzhou-magnet/baotou-metals and credit exchange fee income with the total; it has "
        "baotou-metals:fees 1.15 USD, exchange:fee_income -2.30 USD, ganzhou-magnet:cash "
        "0.01 USD, ganzhou-magnet:fees 1.15 USD",
        "[entries] fees-PRND-OX-USD-3: USD debits and credits differ by 0.01 USD (should be 0)",
        "[ledger] USD: postings sum to 0.01 USD, not 0",
    ]


def test_an_obligation_without_entries(opened: Opened) -> None:
    inject(
        opened.store,
        "INSERT INTO obligations VALUES ('obl-PRND-OX-77', 'PRND-OX-77', 'PRND-OX', ?, ?, 'CNY',"
        " 500, 'open', '2026-11-18', 1)",
        (BUYER, SELLER),
    )
    assert differences(opened.store) == [
        "[trades] PRND-OX-77: obligation obl-PRND-OX-77 has no processed trade",
        "[trades] PRND-OX-77: obligation obl-PRND-OX-77 (5.00 CNY) has no entry trade-PRND-OX-77",
        "[audit] obl-PRND-OX-77: obligation has no audit row for 'created'",
    ]


def test_a_processed_trade_without_its_obligation(opened: Opened) -> None:
    inject(opened.store, "INSERT INTO processed_trades VALUES ('PRND-OX-9', 'obl-PRND-OX-9', 1)")
    assert differences(opened.store) == ["[trades] PRND-OX-9: processed, but it has no obligation"]


def test_an_entry_without_its_trade(opened: Opened) -> None:
    with opened.store.transaction() as tx:
        tx.append_entry(
            EntryRow(
                "trade-GHOST-1",
                "trade",
                "GHOST-1",
                "2026-11-18",
                1,
                (
                    PostingRow(SELLER, "receivables", "CNY", 5),
                    PostingRow(BUYER, "payables", "CNY", -5),
                ),
            )
        )
    assert differences(opened.store) == [
        "[trades] trade-GHOST-1: entry about 'GHOST-1' has no obligation"
    ]


def test_a_cancelled_obligation_whose_entries_stand(opened: Opened) -> None:
    inject(opened.store, "UPDATE obligations SET state = 'cancelled' WHERE trade_id = 'PRND-OX-2'")
    assert differences(opened.store) == [
        "[trades] PRND-OX-2: obligation is cancelled but trade-PRND-OX-2, fees-PRND-OX-2 "
        "not reversed"
    ]


def test_an_entry_reversed_twice_and_an_obligation_still_open(opened: Opened) -> None:
    store = opened.store
    with store.transaction() as tx:
        for entry_id in ("reverse-trade-PRND-OX-2", "undo-trade-PRND-OX-2"):
            tx.append_entry(
                EntryRow(
                    entry_id,
                    "correction",
                    "PRND-OX-2",
                    "2026-11-19",
                    2,
                    (
                        PostingRow(SELLER, "receivables", "CNY", -8_301_000),
                        PostingRow(BUYER, "payables", "CNY", 8_301_000),
                    ),
                    "trade-PRND-OX-2",
                )
            )
    assert differences(store) == [
        "[trades] PRND-OX-2: trade-PRND-OX-2 reversed but the obligation is 'settled', "
        "not 'cancelled'",
        "[entries] trade-PRND-OX-2: is reversed 2 times: reverse-trade-PRND-OX-2, "
        "undo-trade-PRND-OX-2",
    ]


def test_an_upheld_dispute_whose_trade_was_not_reversed(opened: Opened) -> None:
    inject(
        opened.store,
        "INSERT INTO disputes VALUES ('D-1', 'trade', 'PRND-OX-1', ?, 'r', 1, 'upheld', 'li',"
        " 'n', 2)",
        (BUYER,),
    )
    found = differences(opened.store)
    assert "[disputes] D-1: upheld, but trade-PRND-OX-1 is not reversed" in found
    assert "[audit] D-1: dispute has no audit row for 'opened'" in found
    assert "[audit] D-1: dispute is upheld without an audit row" in found


def test_a_confirmed_offline_trade_not_booked(opened: Opened) -> None:
    inject(
        opened.store,
        "INSERT INTO offline_trades VALUES ('OFF-1', ?, ?, 'PRND-OX', 'buy', 415000, 100, 'r',"
        " 1, 'confirmed', 'OTC-PRND-OX-1', 2)",
        (BUYER, SELLER),
    )
    assert differences(opened.store) == [
        "[offline] OFF-1: confirmed as OTC-PRND-OX-1 but not booked",
        "[audit] OFF-1: offline_trade has no audit row for 'reported'",
    ]


def add_payment(store: Store, payment_id: str, obligation_id: str, state: str) -> None:
    inject(
        store,
        "INSERT INTO payments (payment_id, obligation_id, payer, payee, amount, currency, bank,"
        " state, attempts, next_attempt_at, updated_at, fallbacks, send_no, deadline, queries,"
        " last_error, created_at, version) VALUES (?, ?, ?, ?, 41500000, 'CNY', 'icbc-baotou',"
        " ?, 1, NULL, 1, '', 1, NULL, 0, '', ?, 1)",
        (payment_id, obligation_id, BUYER, SELLER, state, T0),
    )


def book(store: Store, entry_id: str, reference: str) -> None:
    with store.transaction() as tx:
        tx.append_entry(
            EntryRow(
                entry_id,
                "payment",
                reference,
                "2026-11-19",
                3,
                (
                    PostingRow(BUYER, "payables", "CNY", 41_500_000),
                    PostingRow(BUYER, "cash", "CNY", -41_500_000),
                ),
            )
        )


def test_payments_confirmed_by_a_bank_are_booked_once(opened: Opened) -> None:
    store = opened.store
    add_payment(store, "pay-obl-PRND-OX-1-1", "obl-PRND-OX-1", "confirmed")  # not booked
    add_payment(store, "pay-obl-PRND-OX-1-2", "obl-PRND-OX-1", "confirmed")  # booked twice
    book(store, "e1", "pay-obl-PRND-OX-1-2")
    book(store, "e2", "pay-obl-PRND-OX-1-2")
    add_payment(store, "pay-obl-PRND-OX-1-3", "obl-PRND-OX-1", "sent")  # booked, not paid
    book(store, "e3", "pay-obl-PRND-OX-1-3")
    add_payment(store, "pay-obl-PRND-OX-2-1", "obl-PRND-OX-2", "confirmed")  # fine
    book(store, "e4", "pay-obl-PRND-OX-2-1")
    assert differences(store) == [
        "[payments] pay-obl-PRND-OX-1-1: confirmed (415,000.00 CNY) but booked 0 times, not once",
        "[payments] pay-obl-PRND-OX-1-2: confirmed (415,000.00 CNY) but booked 2 times, not "
        "once: e1, e2",
        "[payments] pay-obl-PRND-OX-1-3: sent but booked: e3",
    ]


def test_a_payment_confirmed_twice_or_paid_on_a_cancelled_obligation(opened: Opened) -> None:
    store = opened.store
    add_payment(store, "p1", "obl-PRND-OX-1", "confirmed")
    book(store, "e1", "p1")
    for seq in (1, 2):
        inject(
            store,
            "INSERT INTO payment_events (payment_id, at, kind, from_state, to_state, actor,"
            " detail) VALUES ('p1', ?, 'result', 'sent', 'confirmed', 'payer', '{}')",
            (seq,),
        )
    with store.transaction() as tx:
        dispute = open_in_store(tx, SubjectType.TRADE, "PRND-OX-1", Actor.member(BUYER), "r", T0)
        resolve_in_store(tx, dispute.dispute_id, Actor.operator("li"), True, "n", T0 + 1)
    assert differences(store) == [
        "[payments] p1: confirmed (415,000.00 CNY) for cancelled obligation obl-PRND-OX-1: "
        "refund due",
        "[payments] p1: confirmed by the bank 2 times",
    ]


def test_without_payments_tables_payments_are_not_checked(opened: Opened) -> None:
    inject(opened.store, "DROP TABLE payment_events")
    inject(opened.store, "DROP TABLE payments")
    for table in ("bill_recourse", "bill_endorsements", "bills"):
        inject(opened.store, f"DROP TABLE {table}")
    report = reconcile(opened.store)
    assert report.clean
    text = format_report(report, "here")
    assert "payments   not checked  no payments table" in text
    assert "bills      not checked  no bills table" in text


def test_usage_errors_exit_2_and_a_store_that_cannot_be_opened_8(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("REX_DATABASE_URL", raising=False)
    assert rex(["reconcile", "--no-such-option"]) == 2
    assert rex(["reconcile", "--data-dir", str(tmp_path / "nowhere")]) == 8
    assert f"no settlement store at sqlite {tmp_path / 'nowhere'}" in capsys.readouterr().err
    assert rex(["reconcile", "--database-url", "postgresql://nobody@127.0.0.1:1/x"]) == 8
    err = capsys.readouterr().err
    assert "cannot use postgresql 127.0.0.1:1/x: connection failed" in err
    assert "check $REX_DATABASE_URL (or --database-url) and that PostgreSQL runs there" in err


def plant_event(store: Store, event_id: str, at: int) -> None:
    inject(
        store,
        "INSERT INTO outbox (event_id, exchange, routing_key, type, body, timestamp)"
        " VALUES (?, 'rex.settlement', 'ganzhou-magnet.obligation_created', 'settlement_event',"
        " ?, ?)",
        (event_id, b"\x80", at),
    )


def test_a_quarantined_outbox_row_is_a_difference(
    opened: Opened, capsys: pytest.CaptureFixture[str]
) -> None:
    plant_event(opened.store, "e" * 300, time.time_ns())
    inject(
        opened.store,
        "UPDATE outbox SET quarantined_at = ?, quarantine_reason = ? WHERE event_id = ?",
        (T0, "Unpublishable: message_id is 300 bytes; AMQP carries at most 255", "e" * 300),
    )
    status, out = cli(opened, capsys)
    assert status == 1, out
    assert "clean" not in out
    assert "outbox     DIFFERENCES" in out and "1 quarantined" in out
    assert (
        f"[outbox] {'e' * 77}...: quarantined at {format_ns(T0)}, never published"
        " (to ganzhou-magnet.obligation_created): Unpublishable: message_id is 300 bytes;"
        " AMQP carries at most 255"
    ) in out


def test_an_outbox_row_unpublished_past_the_bound_is_a_difference(
    opened: Opened, capsys: pytest.CaptureFixture[str]
) -> None:
    now = time.time_ns()
    plant_event(opened.store, "obl-9/created/ganzhou-magnet", now - 61 * 10**9)
    plant_event(opened.store, "obl-9/created/baotou-metals", now - 5 * 10**9)  # on its way
    (found,) = reconcile(opened.store, now_ns=now).differences
    assert str(found) == (
        "[outbox] obl-9/created/ganzhou-magnet: unpublished for 61 s (written "
        f"{format_ns(now - 61 * 10**9)}, to ganzhou-magnet.obligation_created; the bound is"
        " 60 s): is the worker publishing?"
    )
    assert reconcile(opened.store, now_ns=now, max_unpublished_age_s=120).clean
    assert reconcile(opened.store, now_ns=now, max_unpublished_age_s=None).clean  # not aged
    status, out = cli(opened, capsys)
    assert status == 1 and "1 unpublished over 60 s" in out, out
    status = rex(["reconcile", *opened.cli, "--max-unpublished-age", "3600"])
    out = capsys.readouterr().out
    assert status == 0 and "clean: no differences" in out, out


def test_the_outbox_bound_must_be_whole_seconds(
    opened: Opened, capsys: pytest.CaptureFixture[str]
) -> None:
    assert rex(["reconcile", *opened.cli, "--max-unpublished-age", "0.5"]) == 2
    assert "'0.5' is not a whole number of seconds, 1 or more (e.g. 60)" in capsys.readouterr().err
