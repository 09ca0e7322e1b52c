"""bills/records.py's pure part: a bill as events and audit rows show it."""

from __future__ import annotations

import datetime as dt

from rex.money import Money
from settlement_worker.bills.records import bill_detail
from settlement_worker.bills.rules import BillKind, accept, endorse, issue


def test_a_bill_shows_its_parties_face_in_minor_units_and_iso_dates() -> None:
    bill = issue(
        "B-1",
        BillKind.BANK_ACCEPTANCE,
        "ganzhou-magnet",
        "baotou-metals",
        "icbc-baotou",
        "Baotou",
        Money(41_500_000, "CNY"),
        dt.date(2026, 11, 19),
        dt.date(2027, 2, 17),
    )
    assert bill_detail(bill) == {
        "kind": "bank_acceptance",
        "drawer": "ganzhou-magnet",
        "payee": "baotou-metals",
        "acceptor": "icbc-baotou",
        "face": 41_500_000,
        "currency": "CNY",
        "issue_date": "2026-11-19",
        "due_date": "2027-02-17",
        "holder": "baotou-metals",
        "state": "issued",
    }


def test_the_detail_follows_the_bill_to_its_holder_and_state() -> None:
    bill = issue(
        "B-2",
        BillKind.COMMERCIAL_ACCEPTANCE,
        "ningbo-alloy",
        "xinyu-pvc",
        "ningbo-alloy",
        "Ningbo",
        Money(600, "CNY"),
        dt.date(2026, 11, 19),
        dt.date(2027, 1, 18),
    )
    accepted = accept(bill, "ningbo-alloy", dt.date(2026, 11, 19))
    moved = endorse(accepted, "xinyu-pvc", "baotou-metals", dt.date(2026, 12, 1))
    detail = bill_detail(moved)
    assert (detail["holder"], detail["state"]) == ("baotou-metals", "endorsed")
    assert detail["drawer"] == "ningbo-alloy" and detail["face"] == 600
