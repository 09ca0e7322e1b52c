"""Bills in the settlement flow, on SQLite and PostgreSQL: issued at booking, held bills
endorsed to pay later trades, a member's endorsement and discount, maturity, dishonour with
recourse paid through the payments, bill disputes, statements, `rex bills`, and reconcile
finding what is wrong.

The shipped configuration: ganzhou-magnet pays with 180-day BOC Ganzhou bills, which
baotou-metals takes (at most 500,000.00 CNY a bill); baotou-metals pays with 90-day ICBC
Baotou bills; inner-mongolia-trading takes any bank's bills for half an obligation;
xinyu-pvc takes any bill; ganzhou-magnet takes none.
"""

from __future__ import annotations

import csv
import datetime as dt
import json
import re
import time
from collections.abc import Callable, Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from cli.main import main as rex
from settlement_worker.bills import operations as bill_ops
from settlement_worker.bills import sql as bill_store
from settlement_worker.bills.commands import main as bills_cli
from settlement_worker.bills.holidays import load_calendar
from settlement_worker.bills.operations import (
    BillDesk,
    BillDone,
    DiscountDone,
    DiscountParams,
    DishonourDone,
    DishonourParams,
    EndorseParams,
    MatureParams,
)
from settlement_worker.bills.operator_requests import bill_operator_kinds
from settlement_worker.bills.requests import bill_request_kinds
from settlement_worker.codes import RuleViolation
from settlement_worker.disputes.operations import open_in_store, resolve_in_store
from settlement_worker.disputes.rules import Actor, SubjectType
from settlement_worker.payments import rules as pm
from settlement_worker.payments.banks import BankOutcome, BankRequestKind, BankResult
from settlement_worker.payments.operations import move_payment
from settlement_worker.payments.sql import load_payment
from settlement_worker.reports.reconcile import reconcile
from settlement_worker.reports.statement import build_statement, write_csv
from settlement_worker.requests.desk import RequestKind
from settlement_worker.store import ConcurrentUpdate, Store
from tests.settlement_worker.helpers import (
    BACKENDS,
    BUYER,
    CONFIG,
    MEMBERS,
    SELLER,
    SETTINGS,
    T0,
    Opened,
    opened_store,
    run_worker,
    trade,
)
from tests.settlement_worker.operator_cli import as_account, noon

DESK = BillDesk(CONFIG, load_calendar(SETTINGS.config_dir / "holidays.toml"))
TRADE_DAY = dt.date(2026, 11, 18)
BILL = "bill-obl-PRND-OX-1-0"  # trade 1: ganzhou-magnet pays baotou-metals 415,000.00 CNY
FACE = 41_500_000
DUE = TRADE_DAY + dt.timedelta(days=180)  # 2027-05-17
# baotou-metals pays inner-mongolia-trading 830,000.00 CNY, half by bill: the bill it holds.
PAID_ON = trade(2, quantity=2_000, buyer=SELLER, seller="inner-mongolia-trading")
LATER = T0 + 10**12


@pytest.fixture(params=BACKENDS)
def opened(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Opened]:
    with opened_store(request.param, tmp_path) as o:
        run_worker(o.store, [trade(1)])
        yield o


def bills(store: Store) -> list[tuple[str, str, str]]:
    return [
        (r[0], r[1], r[2])
        for r in store.query("SELECT bill_id, holder, state FROM bills ORDER BY bill_id")
    ]


def balance(store: Store, owner: str, kind: str) -> int:
    return store.balances().get((owner, kind, "CNY"), 0)


def audit(store: Store, subject: str) -> list[tuple[str, str]]:
    rows = store.query(
        "SELECT actor, action FROM audit_log WHERE subject_id = ? ORDER BY seq", [subject]
    )
    return [(r[0], r[1]) for r in rows]


def events(store: Store, subject: str) -> list[str]:
    rows = store.query(
        "SELECT routing_key FROM outbox WHERE event_id LIKE ? ORDER BY seq", [f"{subject}/%"]
    )
    return [r[0] for r in rows]


def clean(store: Store) -> None:
    # No publisher drains this outbox: its rows wait by design, unaged.
    report = reconcile(store, max_unpublished_age_s=None)
    assert report.clean, [str(d) for d in report.differences]
    assert all(total == 0 for total in store.totals_by_currency().values())


def confirm(store: Store, payment_id: str) -> None:
    """The payment as the payer would take it through a bank that pays."""
    policy = pm.RetryPolicy()
    now = time.time_ns() + 10**12
    with store.transaction() as tx:
        loaded = load_payment(tx, payment_id)
        assert loaded is not None
        payment, version = loaded
        sent = pm.tick(payment, now, policy).payment
        result = BankResult(
            BankRequestKind.SEND, payment_id, sent.bank, sent.send_no, BankOutcome.PAID
        )
        paid = pm.on_result(sent, result, now, policy).payment
        assert paid.state is pm.PaymentState.CONFIRMED
        move_payment(tx, payment, version, paid)


def refused(code: str, action: Callable[[], object]) -> None:
    with pytest.raises(RuleViolation) as error:
        action()
    assert error.value.code == code, error.value


# ------------------------------------------------------------------------- booking


def test_booking_issues_the_plans_bill_and_settles_the_obligation(opened: Opened) -> None:
    store = opened.store
    assert bills(store) == [(BILL, SELLER, "accepted")]
    row = store.query(
        "SELECT kind, drawer, payee, acceptor, acceptor_city, face, issue_date, due_date,"
        " accepted_on, obligation_id FROM bills"
    )
    assert row == [
        (
            "bank_acceptance",
            BUYER,
            SELLER,
            "boc-ganzhou",
            "Ganzhou",
            FACE,
            "2026-11-18",
            DUE.isoformat(),
            "2026-11-18",
            "obl-PRND-OX-1",
        )
    ]
    assert balance(store, BUYER, "bills_payable") == -FACE
    assert balance(store, SELLER, "bills_receivable") == FACE
    assert balance(store, BUYER, "payables") == 0 and balance(store, SELLER, "receivables") == 0
    assert store.query("SELECT state FROM obligations") == [("settled",)]
    assert [a for _, a in audit(store, "obl-PRND-OX-1")] == ["created", "settled", "paid_by_bills"]
    assert audit(store, BILL) == [("settlement", "issued"), ("settlement", "accepted")]
    assert events(store, BILL) == [f"{BUYER}.bill_issued", f"{SELLER}.bill_issued"]
    assert store.query("SELECT COUNT(*) FROM payments") == [(0,)]  # nothing in cash
    clean(store)


def test_a_trade_delivered_again_books_its_bills_once(opened: Opened) -> None:
    run_worker(opened.store, [trade(1), trade(1)])
    assert bills(opened.store) == [(BILL, SELLER, "accepted")]
    clean(opened.store)


def test_a_held_bill_pays_a_later_trade_by_endorsement(opened: Opened) -> None:
    store = opened.store
    run_worker(store, [PAID_ON])
    assert bills(store) == [(BILL, "inner-mongolia-trading", "endorsed")]  # no new bill
    assert store.query(
        "SELECT seq, from_holder, to_holder, kind, endorsed_on, obligation_id"
        " FROM bill_endorsements"
    ) == [(1, SELLER, "inner-mongolia-trading", "transfer", "2026-11-18", "obl-PRND-OX-2")]
    assert balance(store, SELLER, "bills_receivable") == 0
    assert balance(store, "inner-mongolia-trading", "bills_receivable") == FACE
    # The other half is cash: open until its payment is confirmed.
    assert store.query("SELECT payment_id, amount FROM payments") == [("pay-obl-PRND-OX-2-1", FACE)]
    assert dict(store.query("SELECT trade_id, state FROM obligations"))["PRND-OX-2"] == "open"
    assert events(store, BILL)[-2:] == [
        f"{SELLER}.bill_endorsed",
        "inner-mongolia-trading.bill_endorsed",
    ]
    clean(store)
    confirm(store, "pay-obl-PRND-OX-2-1")
    assert dict(store.query("SELECT trade_id, state FROM obligations"))["PRND-OX-2"] == "settled"
    assert balance(store, SELLER, "payables") == 0
    assert balance(store, "inner-mongolia-trading", "receivables") == 0
    clean(store)


def test_a_bill_received_in_a_batch_pays_a_later_trade_of_the_same_batch(
    tmp_path: Path,
) -> None:
    with opened_store("sqlite", tmp_path) as o:
        run_worker(o.store, [trade(1), PAID_ON])
        assert bills(o.store) == [(BILL, "inner-mongolia-trading", "endorsed")]
        clean(o.store)


def test_a_frozen_bill_stays_with_its_holder(opened: Opened) -> None:
    store = opened.store
    with store.transaction() as tx:
        open_in_store(tx, SubjectType.BILL, BILL, Actor.member(SELLER), "forged?", T0 + 1)
    run_worker(store, [PAID_ON])
    assert bills(store) == [
        (BILL, SELLER, "accepted"),
        ("bill-obl-PRND-OX-2-0", "inner-mongolia-trading", "accepted"),  # drawn instead
    ]
    refused("bill_frozen", lambda: endorse(store, "xinyu-pvc"))
    clean(store)


# ------------------------------------------------------------------ member requests


def endorse(store: Store, to: str, by: str = SELLER, on: dt.date = TRADE_DAY) -> BillDone:
    with store.transaction() as tx:
        return DESK.endorse(tx, by, EndorseParams(BILL, to, on), T0 + 5)


def discount_(store: Store, bank: str = "icbc-baotou", by: str = SELLER) -> DiscountDone:
    params = DiscountParams(BILL, bank, Decimal("0.0135"), dt.date(2026, 12, 1))
    with store.transaction() as tx:
        return DESK.discount(tx, by, params, T0 + 6)


def test_a_member_endorses_a_bill_it_holds(opened: Opened) -> None:
    store = opened.store
    refused("not_holder", lambda: endorse(store, "xinyu-pvc", by=BUYER))
    refused("receipt_limits", lambda: endorse(store, "ganzhou-magnet"))  # refuses bills
    refused("unknown_member", lambda: endorse(store, "icbc-baotou"))
    refused("self_endorsement", lambda: endorse(store, SELLER))
    refused("backdated", lambda: endorse(store, "xinyu-pvc", on=dt.date(2026, 11, 17)))
    endorse(store, "xinyu-pvc")
    assert bills(store) == [(BILL, "xinyu-pvc", "endorsed")]
    assert balance(store, "xinyu-pvc", "bills_receivable") == FACE
    assert balance(store, SELLER, "bills_receivable") == 0
    assert balance(store, SELLER, "payables") == 0  # not in payment of an obligation
    assert audit(store, BILL)[-1] == (f"member:{SELLER}", "endorsed")
    with store.transaction() as tx:
        chain = DESK.chain(tx, BUYER, BILL)  # the drawer is a party: it sees the chain
        with pytest.raises(RuleViolation) as error:
            DESK.chain(tx, "ningbo-alloy", BILL)
    assert [(c.from_holder, c.to_holder) for c in chain] == [(SELLER, "xinyu-pvc")]
    assert error.value.code == "not_a_party"
    clean(store)


def test_discount_then_maturity(opened: Opened) -> None:
    store = opened.store
    refused("unknown_bank", lambda: discount_(store, bank="nowhere"))
    refused("not_holder", lambda: discount_(store, by="xinyu-pvc"))
    done = discount_(store)
    result = done.result
    assert result.other_city  # a Ganzhou acceptor, a Baotou bank: 3 more days
    assert result.interest.minor + result.proceeds.minor == FACE
    assert bills(store) == [(BILL, "icbc-baotou", "discounted")]
    assert balance(store, SELLER, "bills_receivable") == 0
    assert balance(store, SELLER, "discount_interest") == result.interest.minor
    assert balance(store, "exchange", "bank_settlement") == result.proceeds.minor
    assert events(store, BILL)[-1] == f"{SELLER}.bill_discounted"
    refused("already_discounted", lambda: discount_(store))
    clean(store)

    with store.transaction() as tx:
        early = DESK.mature(tx, "li", MatureParams(DUE - dt.timedelta(days=1)), LATER)
    assert early.paid == ()
    with store.transaction() as tx:
        run = DESK.mature(tx, "li", MatureParams(DUE), LATER)
    assert [b.bill_id for b in run.paid] == [BILL]
    assert bills(store) == [(BILL, "icbc-baotou", "paid")]
    assert balance(store, BUYER, "bills_payable") == 0
    # The bank advanced the proceeds and was paid the face: it earned the interest.
    assert balance(store, "exchange", "bank_settlement") == -result.interest.minor
    assert events(store, BILL)[-1] == f"{BUYER}.bill_paid"  # the bank gets no event
    assert audit(store, BILL)[-1] == ("operator:li", "paid")
    clean(store)


def test_maturity_pays_the_holder_and_skips_a_frozen_bill(opened: Opened) -> None:
    store = opened.store
    run_worker(store, [trade(3, quantity=500)])  # another bill, same due date
    with store.transaction() as tx:
        open_in_store(tx, SubjectType.BILL, BILL, Actor.member(BUYER), "dispute", T0 + 1)
    with store.transaction() as tx:
        run = DESK.mature(tx, "li", MatureParams(DUE + dt.timedelta(days=3)), LATER)
    assert [b.bill_id for b in run.paid] == ["bill-obl-PRND-OX-3-0"]
    assert run.frozen == (BILL,)
    assert run.paid[0].closed_on == DUE + dt.timedelta(days=3)
    assert balance(store, SELLER, "bills_receivable") == FACE  # only the frozen one left
    clean(store)


# ------------------------------------------------------------------------ dishonour


def dishonour(store: Store, recourse_to: str | None = None, on: dt.date = DUE) -> DishonourDone:
    with store.transaction() as tx:
        return DESK.dishonour(tx, "li", DishonourParams(BILL, on, recourse_to), LATER)


def test_dishonour_claims_from_the_drawer_through_a_payment(opened: Opened) -> None:
    store = opened.store
    refused("not_due", lambda: dishonour(store, on=DUE - dt.timedelta(days=1)))
    done = dishonour(store)
    claims = done.claims
    assert [(c.recourse_id, c.creditor, c.debtor, c.amount.minor) for c in claims] == [
        (f"rec-{BILL}-1", SELLER, BUYER, FACE)
    ]
    assert store.query(
        "SELECT payment_id, obligation_id, payer, payee, amount, bank FROM payments"
    ) == [(f"pay-rec-{BILL}-1-0", f"rec-{BILL}-1", BUYER, SELLER, FACE, "boc-ganzhou")]
    assert bills(store) == [(BILL, SELLER, "dishonoured")]
    assert balance(store, SELLER, "receivables") == FACE  # owed by the drawer now
    assert balance(store, BUYER, "payables") == -FACE
    assert balance(store, BUYER, "bills_payable") == 0
    assert [a for _, a in audit(store, BILL)][-2:] == ["dishonoured", "recourse"]
    assert set(events(store, BILL)[-2:]) == {
        f"{SELLER}.bill_dishonoured",
        f"{BUYER}.bill_dishonoured",
    }
    clean(store)
    confirm(store, f"pay-rec-{BILL}-1-0")
    assert balance(store, SELLER, "receivables") == 0 and balance(store, BUYER, "payables") == 0
    clean(store)


def test_recourse_to_an_endorser_who_claims_from_the_drawer(opened: Opened) -> None:
    store = opened.store
    endorse(store, "xinyu-pvc")
    refused("not_recourse_party", lambda: dishonour(store, recourse_to="ningbo-alloy"))
    done = dishonour(store, recourse_to=SELLER)
    assert [(c.creditor, c.debtor) for c in done.claims] == [
        ("xinyu-pvc", SELLER),
        (SELLER, BUYER),
    ]
    clean(store)
    for number in (1, 2):
        confirm(store, f"pay-rec-{BILL}-{number}-0")
    for member in (BUYER, SELLER, "xinyu-pvc"):
        for kind in ("receivables", "payables", "bills_receivable", "bills_payable"):
            assert balance(store, member, kind) == 0, (member, kind)
    clean(store)


def test_a_discounting_bank_is_paid_its_recourse_through_bank_settlement(opened: Opened) -> None:
    store = opened.store
    result = discount_(store).result
    done = dishonour(store, recourse_to=SELLER)  # the bank claims from the member who sold it
    assert [(c.creditor, c.debtor, c.creditor_is_bank) for c in done.claims] == [
        ("icbc-baotou", SELLER, True),
        (SELLER, BUYER, False),
    ]
    clean(store)
    confirm(store, f"pay-rec-{BILL}-1-0")
    confirm(store, f"pay-rec-{BILL}-2-0")
    assert balance(store, "exchange", "bank_settlement") == -result.interest.minor
    assert store.balances().get(("icbc-baotou", "receivables", "CNY")) is None  # no bank account
    clean(store)


# -------------------------------------------------------------------------- disputes


def test_upholding_a_bill_dispute_in_the_store_cancels_the_bill_and_reopens_its_obligation(
    opened: Opened,
) -> None:
    """resolve_in_store itself cancels the bill: there is no way to reverse a bill's
    entries and leave its row live (reconcile would flag it)."""
    store = opened.store
    endorse(store, "xinyu-pvc")
    with store.transaction() as tx:
        dispute = open_in_store(tx, SubjectType.BILL, BILL, Actor.member(BUYER), "forged", T0 + 7)
    with store.transaction() as tx:
        result = resolve_in_store(tx, dispute.dispute_id, Actor.operator("li"), True, "yes", T0 + 8)
    assert sorted(result.reversals) == [f"reverse-endorse-{BILL}-1", f"reverse-issue-{BILL}"]
    assert bills(store) == [(BILL, "xinyu-pvc", "cancelled")]  # its chain kept
    assert store.query("SELECT state FROM obligations") == [("open",)]
    assert audit(store, "obl-PRND-OX-1")[-1] == ("operator:li", "reopened")
    # The trade debt is back; nothing of the bill is left.
    assert balance(store, BUYER, "payables") == -FACE
    assert balance(store, "xinyu-pvc", "bills_receivable") == 0
    assert [a for _, a in audit(store, BILL)][-2:] == ["reversed", "cancelled"]
    clean(store)


def test_rex_dispute_resolve_cancels_the_bill(
    opened: Opened, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("REX_DATABASE_URL", raising=False)
    with opened.store.transaction() as tx:
        open_in_store(tx, SubjectType.BILL, BILL, Actor.member(BUYER), "forged", T0 + 7)
    # As the worker applies `rex dispute resolve`'s request (disputes/requests.py).
    with opened.store.transaction() as tx:
        resolve_in_store(tx, "D-1", Actor.operator("li"), True, "yes", T0 + 8)
    assert bills(opened.store) == [(BILL, SELLER, "cancelled")]
    assert opened.store.query("SELECT state FROM obligations") == [("open",)]
    clean(opened.store)


def test_a_paid_bill_cannot_be_cancelled_by_a_dispute(opened: Opened) -> None:
    store = opened.store
    with store.transaction() as tx:
        DESK.mature(tx, "li", MatureParams(DUE), LATER)
        dispute = open_in_store(tx, SubjectType.BILL, BILL, Actor.member(BUYER), "x", LATER)
    with pytest.raises(RuleViolation) as error, store.transaction() as tx:
        resolve_in_store(tx, dispute.dispute_id, Actor.operator("li"), True, "yes", LATER + 1)
    assert error.value.code == "bill_not_cancellable"
    assert store.query("SELECT state FROM disputes") == [("open",)]  # nothing was written
    with store.transaction() as tx:
        resolve_in_store(tx, dispute.dispute_id, Actor.operator("li"), False, "paid", LATER + 1)
    clean(store)


# ------------------------------------------------------------- statement, commands


def test_the_statement_lists_the_members_bills(opened: Opened, tmp_path: Path) -> None:
    store = opened.store
    endorse(store, "xinyu-pvc")
    seller = build_statement(store, SELLER, dt.date(2026, 11, 1), dt.date(2026, 11, 30))
    assert seller.bills is not None
    assert [(b.bill_id, b.role, b.held, b.owed) for b in seller.bills] == [
        (BILL, "endorser+payee", False, False)
    ]
    buyer = build_statement(store, BUYER, dt.date(2026, 11, 1), dt.date(2026, 11, 30))
    assert [(b.role, b.owed, b.state, b.holder) for b in buyer.bills or []] == [
        ("drawer", True, "endorsed", "xinyu-pvc")
    ]
    assert build_statement(store, BUYER, dt.date(2026, 10, 1), dt.date(2026, 10, 31)).bills == []
    path = tmp_path / "statement.csv"
    write_csv(buyer, path)
    rows = [r for r in csv.DictReader(path.open()) if r["section"] == "bill"]
    assert rows == [
        {
            "section": "bill",
            "date": "2026-11-18",
            "entry_id": BILL,
            "kind": "endorsed",
            "reference": "drawer",
            "account": f"due {DUE}",
            "currency": "CNY",
            "debit": "",
            "credit": "415000.00",
            "balance": "",
        }
    ]


def bill_kinds() -> dict[str, RequestKind]:
    enabled = [m.id for m in MEMBERS.values() if m.enabled]
    return {**bill_request_kinds(DESK, enabled), **bill_operator_kinds(DESK)}


def test_rex_bills_command(
    opened: Opened, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """list and show read the store; the four changes go to the worker's desk as the
    operator account (here `settle`), dated by the desk: the account is what the audit
    names."""
    monkeypatch.delenv("REX_DATABASE_URL", raising=False)
    today = [dt.date(2026, 11, 20)]
    sent = as_account(monkeypatch, opened.store, bill_kinds(), clock=lambda: noon(today[0]))

    def run(*args: str) -> tuple[int, str, str]:
        reading = args[0] in ("list", "show")  # the others open no store
        status = bills_cli([*args, *(opened.cli if reading else [])])
        out = capsys.readouterr()
        return status, out.out, out.err

    status, out, _ = run("list", "--member", SELLER)
    assert status == 0 and BILL in out and "holder+payee" in out
    status, out, _ = run("show", BILL, "--member", BUYER)
    assert status == 0 and "issued" in out and "accepted" in out
    assert re.search(r"\n  \d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+08:00  ", out)  # audit, exchange time
    status, _, err = run("show", BILL, "--member", "ningbo-alloy")
    assert status == 1 and "not_a_party" in err
    status, out, err = run(
        "endorse", BILL, "--member", SELLER, "--to", "xinyu-pvc", "--on", "2026-11-20"
    )
    assert status == 0 and out.startswith(f"endorsed {BILL} to xinyu-pvc: "), err
    assert sent[-1] == (
        "endorse_bill",
        {
            "member": SELLER,
            "bill_id": BILL,
            "to": "xinyu-pvc",
            "on": "2026-11-20",
            "reason": "at the member's request",
        },
    )
    assert audit(opened.store, BILL)[-1] == ("operator:settle", "endorsed")
    # A step dated another day than the desk's today is refused, as for the member.
    status, out, err = run(
        "discount", BILL, "--member", "xinyu-pvc", "--bank", "icbc-baotou", "--rate", "0.015",
        "--on", "2026-12-01",
    )  # fmt: skip
    assert (status, out) == (1, "") and "refused (bill_rule: not_today)" in err
    today[0] = dt.date(2026, 12, 1)
    status, out, err = run(
        "discount", BILL, "--member", "xinyu-pvc", "--bank", "icbc-baotou", "--rate", "0.015"
    )
    assert status == 0 and "proceeds" in out and "days at 0.015" in out, err
    assert audit(opened.store, BILL)[-1] == ("operator:settle", "discounted")
    today[0] = dt.date(2026, 12, 2)
    status, _, err = run("dishonour", BILL)
    assert status == 1 and "refused (bill_rule: not_due)" in err
    status, _, err = run("dishonour", BILL, "--on", "2026-12-03")  # after the desk's today
    assert status == 1 and "refused (bill_rule: date_out_of_range)" in err
    today[0] = DUE
    status, out, _ = run("mature", "--on", (DUE - dt.timedelta(days=1)).isoformat())
    assert status == 0 and out.endswith(f"0 bills paid on {DUE - dt.timedelta(days=1)}\n")
    status, out, _ = run("mature")
    assert status == 0 and out.startswith(f"paid {BILL}  ") and "1 bill paid" in out
    assert audit(opened.store, BILL)[-1] == ("operator:settle", "paid")
    assert sent[-1] == ("bill_mature", {"reason": "maturity run"})
    assert run("discount", BILL, "--member", SELLER, "--bank", "b", "--rate", "x")[0] == 2
    assert run("mature", "--on", "2027-02-30")[0] == 2
    clean(opened.store)


@pytest.mark.parametrize(
    "argv",
    [
        ["mature", "--operator", "li"],
        ["dishonour", BILL, "--operator", "li"],
        ["dishonour", BILL, "--operator"],
        ["endorse", BILL, "--member", SELLER, "--to", "xinyu-pvc", "--actor", "li"],
        ["discount", BILL, "--member", SELLER, "--bank", "icbc-baotou", "--rate", "0.01",
         "--operator", "li"],
    ],
)  # fmt: skip
def test_rex_bills_refuses_a_named_actor_and_sends_nothing(
    opened: Opened,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    argv: list[str],
) -> None:
    """Before: `--operator li` was what the audit recorded. Now who acts is the login."""
    sent = as_account(monkeypatch, opened.store, bill_kinds())
    before = opened.store.query("SELECT * FROM audit_log ORDER BY seq")
    assert bills_cli(argv) == 2
    err = capsys.readouterr().err
    assert "is refused: rex bills" in err and "$REX_OPERATOR_URL" in err
    assert sent == []
    assert opened.store.query("SELECT * FROM audit_log ORDER BY seq") == before


@pytest.mark.parametrize("account", ["market", "audit", "gone"])
def test_rex_bills_as_an_account_without_settlement_ops_changes_nothing(
    opened: Opened,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    account: str,
) -> None:
    as_account(monkeypatch, opened.store, bill_kinds(), account)
    before = opened.store.query("SELECT * FROM bills")
    for argv in (
        ["endorse", BILL, "--member", SELLER, "--to", "xinyu-pvc"],
        ["discount", BILL, "--member", SELLER, "--bank", "icbc-baotou", "--rate", "0.01"],
        ["mature"],
        ["dishonour", BILL],
    ):
        assert bills_cli(argv) == 1, argv
        assert "refused (not_permitted): " in capsys.readouterr().err
    assert opened.store.query("SELECT * FROM bills") == before


def test_a_bill_moved_meanwhile_is_tried_again_on_fresh_reads(
    opened: Opened, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another writer moved the bill between the request's read and its write: the desk
    rolls that attempt back and runs the request again (before, `rex bills` wrote the store
    itself and said so)."""
    as_account(monkeypatch, opened.store, bill_kinds(), clock=lambda: noon(TRADE_DAY))
    real_save = bill_store.save_bill
    raced = []

    def save_once_raced(*args: Any) -> None:
        real_save(*args)  # written, then found moved: the transaction must roll it back
        if not raced:
            raced.append(args)
            raise ConcurrentUpdate(f"{BILL} changed since it was read")

    monkeypatch.setattr(bill_ops, "save_bill", save_once_raced)
    endorse = ["endorse", BILL, "--member", SELLER, "--to", "xinyu-pvc"]
    assert bills_cli(endorse) == 0, capsys.readouterr().err
    assert raced
    assert opened.store.query(
        "SELECT COUNT(*) FROM bill_endorsements WHERE bill_id = ?", (BILL,)
    ) == [(1,)]
    assert bills(opened.store) == [(BILL, "xinyu-pvc", "endorsed")]


def test_rex_bills_runs_through_the_rex_command(
    opened: Opened, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("REX_DATABASE_URL", raising=False)
    assert rex(["bills", "--help"]) == 0
    assert "endorse" in capsys.readouterr().out
    assert rex(["bills", "list", "--member", SELLER, *opened.cli]) == 0
    out = capsys.readouterr().out
    assert BILL in out and "1 bill" in out


# ------------------------------------------------------------------ reconciliation


def diffs(store: Store) -> list[str]:
    # No publisher drains this outbox: its rows wait by design, unaged.
    return [
        str(d)
        for d in reconcile(store, max_unpublished_age_s=None).differences
        if d.check == "bills"
    ]


def inject(store: Store, sql: str, params: tuple[object, ...] = ()) -> None:
    with store.transaction() as tx:
        tx.execute(sql, params)


def test_reconcile_finds_a_holder_the_postings_do_not_know(opened: Opened) -> None:
    inject(opened.store, "UPDATE bills SET holder = 'xinyu-pvc', state = 'endorsed'")
    assert diffs(opened.store)[0].startswith(f"[bills] {BILL}: invalid bill (chain_broken)")


def test_reconcile_finds_a_state_the_postings_do_not_know(opened: Opened) -> None:
    inject(opened.store, "UPDATE bills SET state = 'paid', closed_on = ?", (DUE.isoformat(),))
    assert diffs(opened.store) == [
        f"[bills] {BILL}: paid, held by {SELLER}: its bill postings should net to nothing; "
        f"they net to {SELLER}:bills_receivable 415,000.00 CNY, "
        f"{BUYER}:bills_payable -415,000.00 CNY",
        f"[bills] {BILL}: paid but has no entry maturity-{BILL}",
        f"[bills] {SELLER}:bills_receivable: balance 415,000.00 CNY; the outstanding bills say "
        "0.00 CNY",
        f"[bills] {BUYER}:bills_payable: balance -415,000.00 CNY; the outstanding bills say "
        "0.00 CNY",
        f"[bills] {BILL}: paid bill has no 'paid' audit row",
    ]


def test_reconcile_finds_a_bill_part_without_its_bill(opened: Opened) -> None:
    store = opened.store
    inject(store, "DELETE FROM bills")
    found = diffs(store)
    assert (
        "[bills] obl-PRND-OX-1: its plan pays 415,000.00 CNY by bill; bills issued or endorsed "
        "for it come to 0.00 CNY"
    ) in found
    assert (
        f"[bills] issue-{BILL}: moves bills_payable, bills_receivable but is about {BILL!r},"
        " not a bill"
    ) in found


def test_reconcile_finds_a_recourse_claim_without_its_payment(opened: Opened) -> None:
    store = opened.store
    dishonour(store)
    inject(store, "DELETE FROM payment_events")
    inject(store, "DELETE FROM payments")
    assert diffs(store) == [f"[bills] rec-{BILL}-1: recourse claim without its payment"]


def test_reconcile_audit_rows_in_json(opened: Opened) -> None:
    # The plan check reads the obligation's `created` audit row on both backends.
    rows = opened.store.query(
        "SELECT detail FROM audit_log WHERE subject_id = 'obl-PRND-OX-1' AND action = 'created'"
    )
    detail = rows[0][0]
    data = json.loads(detail) if isinstance(detail, str) else detail
    assert data["bill_minor"] == FACE
