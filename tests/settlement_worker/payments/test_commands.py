"""`rex payments`: the review queue, mark-paid and history, on a SQLite store (release and
resolve go to the worker: tests/system/test_operator_settlement.py)."""

from __future__ import annotations

import json

import pytest

from settlement_worker.payments import commands as cli_payments
from settlement_worker.payments import rules as pm
from settlement_worker.payments.operations import move_payment
from settlement_worker.payments.payer import mark_paid, release_payment
from settlement_worker.payments.sql import insert_payment, load_payment
from settlement_worker.store import Store

from .conftest import T0, make_payments


@pytest.fixture
def in_review(store: Store) -> Store:
    """Two payments in manual review, one still new."""
    payments = make_payments(3, T0)
    with store.transaction() as tx:
        for p in payments:
            insert_payment(tx, p)
        for p in payments[:2]:
            old, version = load_payment(tx, p.payment_id)  # type: ignore[misc]
            move_payment(tx, old, version, pm.hold_for_review(old, T0, "line closed").payment)
    return store


def run(store: Store, capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = cli_payments.main(list(argv), store=store)
    out, err = capsys.readouterr()
    return code, out, err


def test_counts_by_state(in_review: Store, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(in_review, capsys, "--json")
    assert code == 0 and json.loads(out) == {"manual_review": 2, "new": 1}


def test_review_lists_the_queue(in_review: Store, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(in_review, capsys, "--review")
    assert code == 0
    assert "manual review: 2" in out and "pay-obl-PRND-OX-0-0" in out
    assert "1,000.00 CNY" in out and "last_error=line closed" in out
    data = json.loads(run(in_review, capsys, "--review", "--json")[1])
    assert [p["payment_id"] for p in data["manual_review"]] == [
        "pay-obl-PRND-OX-0-0",
        "pay-obl-PRND-OX-1-0",
    ]
    assert data["unknown"] == []


def test_release_and_mark_paid(in_review: Store, capsys: pytest.CaptureFixture[str]) -> None:
    # --release is the worker's, as the operator's login (tests/system/test_operator_settlement.py).
    released = release_payment(in_review, "pay-obl-PRND-OX-0-0", "abc-hohhot", "li")
    assert released.state is pm.PaymentState.NEW and released.bank == "abc-hohhot"
    # --mark-paid too (payment_mark_paid): here, the store operation it is served with.
    mark_paid(in_review, "pay-obl-PRND-OX-1-0", "li", "R1")
    assert json.loads(run(in_review, capsys, "--json")[1]) == {"new": 2, "paid_manually": 1}
    code, out, _ = run(in_review, capsys, "--show", "pay-obl-PRND-OX-0-0")
    assert code == 0
    assert [line.split()[1] for line in out.splitlines()[1:]] == [
        "created",
        "manual_review",
        "released",
    ]
    assert "actor=li" in out.splitlines()[-1]


def test_operator_mistakes_are_refused(
    in_review: Store, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(pm.PaymentError, match="only a payment in review is released"):
        release_payment(in_review, "pay-obl-PRND-OX-2-0", "x", "li")
    with pytest.raises(pm.PaymentError, match="only a payment in review is marked"):
        mark_paid(in_review, "pay-obl-PRND-OX-2-0", "li", "R")
    code, _, err = run(in_review, capsys, "--show", "pay-nope")
    assert code == 1 and "no payment pay-nope" in err
    with pytest.raises(SystemExit):
        run(in_review, capsys, "--release", "pay-obl-PRND-OX-0-0")  # no --bank


def test_show_prints_times_in_exchange_time(
    store: Store, capsys: pytest.CaptureFixture[str]
) -> None:
    """A send's deadline was printed as raw nanoseconds; now as an ISO time, Beijing."""
    (payment,) = make_payments(1, T0)
    sent = pm.tick(payment, T0, pm.RetryPolicy()).payment  # deadline: 5 s after
    with store.transaction() as tx:
        insert_payment(tx, payment)
        old, version = load_payment(tx, payment.payment_id)  # type: ignore[misc]
        move_payment(tx, old, version, sent)
    code, out, _ = run(store, capsys, "--show", payment.payment_id)
    assert code == 0
    lines = out.splitlines()
    assert lines[0].endswith("updated=2027-01-15T16:00:00.000+08:00")
    assert lines[1].startswith("  2027-01-15T16:00:00.000+08:00  created")
    assert lines[-1].startswith("  2027-01-15T16:00:00.000+08:00  sent")
    assert lines[-1].endswith("deadline=2027-01-15T16:00:05.000+08:00")
    history = json.loads(run(store, capsys, "--show", payment.payment_id, "--json")[1])["history"]
    assert history[-1]["deadline"] == "2027-01-15T16:00:05.000+08:00"
