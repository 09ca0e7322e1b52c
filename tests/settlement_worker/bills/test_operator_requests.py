"""The bill steps an operator sends through the worker's request desk on SQLite:
``bill_mature`` and ``bill_dishonour`` (operator actions, role settlement_ops, for no
member) and ``endorse_bill`` / ``discount_bill`` for a member (settlement_ops acting for
it). Allowed, the store's audit names the account; every other sender, every bad body and
every date outside the allowed range is refused with its code and changes nothing.

Trade 1 (the shipped configuration): ganzhou-magnet pays baotou-metals with the 180-day BOC
Ganzhou bill ``bill-obl-PRND-OX-1-0``, due 2027-05-17, held by baotou-metals."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest

from settlement_worker.bills.holidays import load_calendar
from settlement_worker.bills.operations import BillDesk
from settlement_worker.bills.operator_requests import MAX_DAYS_BACK, bill_operator_kinds
from settlement_worker.bills.requests import bill_request_kinds
from settlement_worker.requests.desk import RequestDesk
from settlement_worker.store.sqlite import SqliteStore
from tests.settlement_worker.helpers import (
    BUYER,
    CONFIG,
    ENABLED,
    SELLER,
    SETTINGS,
    run_worker,
    trade,
)
from tests.settlement_worker.operator_cli import desk_for, noon, send

DESK = BillDesk(CONFIG, load_calendar(SETTINGS.config_dir / "holidays.toml"))
BILL = "bill-obl-PRND-OX-1-0"
DUE = dt.date(2027, 5, 17)


class World:
    def __init__(self, tmp_path: Path) -> None:
        self.store = SqliteStore(tmp_path / "settlement.sqlite3")
        self.store.migrate()
        run_worker(self.store, [trade(1)])
        self.today = DUE
        kinds = {**bill_request_kinds(DESK, ENABLED), **bill_operator_kinds(DESK)}
        self.desk: RequestDesk = desk_for(self.store, kinds, lambda: noon(self.today))

    def state(self) -> tuple[object, ...]:
        return (
            self.store.query("SELECT * FROM bills"),
            self.store.query("SELECT * FROM audit_log ORDER BY seq"),
            self.store.query("SELECT COUNT(*) FROM payments"),
            self.store.query("SELECT COUNT(*) FROM journal_entries"),
        )

    def actors(self) -> list[tuple[str, str]]:
        rows = self.store.query(
            "SELECT actor, action FROM audit_log WHERE subject_id = ? ORDER BY seq", [BILL]
        )
        return [(r[0], r[1]) for r in rows]


@pytest.fixture
def world(tmp_path: Path) -> World:
    return World(tmp_path)


def test_settlement_ops_matures_the_bills_due_audited_as_the_account(world: World) -> None:
    answer = send(world.desk, "settle", "bill_mature", {"reason": "maturity run"})
    assert (answer.status, answer.member) == ("accepted", "settle")
    assert answer.detail == {
        "on": DUE.isoformat(),
        "paid": [{"bill_id": BILL, "holder": SELLER, "face": 41_500_000, "currency": "CNY"}],
        "paid_count": 1,
        "frozen": [],
        "frozen_count": 0,
    }
    assert world.actors()[-1] == ("operator:settle", "paid")


def test_settlement_ops_dishonours_a_bill_with_recourse_in_its_name(world: World) -> None:
    body = {"bill_id": BILL, "on": DUE.isoformat(), "reason": "BOC did not pay"}
    answer = send(world.desk, "settle", "bill_dishonour", body)
    assert answer.status == "accepted", answer
    assert answer.detail["bill"]["state"] == "dishonoured"
    [claim] = answer.detail["claims"]
    assert (claim["debtor"], claim["creditor"], claim["amount"]) == (BUYER, SELLER, 41_500_000)
    assert ("operator:settle", "dishonoured") in world.actors()
    [(actor,)] = world.store.query(
        "SELECT actor FROM payment_events WHERE payment_id = ?", [claim["payment_id"]]
    )
    assert actor == "operator:settle"


def test_settlement_ops_endorses_and_discounts_for_the_holder(world: World) -> None:
    world.today = dt.date(2026, 11, 20)
    endorse = {"member": SELLER, "bill_id": BILL, "to": "xinyu-pvc", "reason": "invoice 7"}
    assert send(world.desk, "settle", "endorse_bill", endorse).status == "accepted"
    discount = {"member": "xinyu-pvc", "bill_id": BILL, "bank": "icbc-baotou",
                "annual_rate": "0.015", "reason": "cash"}  # fmt: skip
    answer = send(world.desk, "settle", "discount_bill", discount)
    assert answer.status == "accepted", answer
    assert world.actors()[-2:] == [
        ("operator:settle", "endorsed"),
        ("operator:settle", "discounted"),
    ]


MATURE = {"reason": "maturity run"}
DISHONOUR = {"bill_id": BILL, "reason": "not paid"}


@pytest.mark.parametrize(
    ("sender", "kind", "body", "reason", "text"),
    [
        # who may send them
        ("market", "bill_mature", MATURE, "not_permitted",
         "bill_mature needs the role settlement_ops; operator 'market' has market_ops"),
        ("audit", "bill_dishonour", DISHONOUR, "not_permitted",
         "bill_dishonour needs the role settlement_ops; operator 'audit' has audit"),
        ("gone", "bill_mature", MATURE, "not_permitted", "operator account 'gone' is disabled"),
        (SELLER, "bill_mature", MATURE, "not_permitted", "bill_mature is for operators only"),
        (SELLER, "bill_dishonour", DISHONOUR, "not_permitted", "is for operators only"),
        ("settle", "bill_mature", {**MATURE, "member": SELLER}, "malformed", "names no member"),
        ("market", "endorse_bill", {"member": SELLER, "bill_id": BILL, "to": "xinyu-pvc",
                                    "reason": "x"}, "not_permitted",
         "endorse_bill needs the role settlement_ops"),
        (BUYER, "endorse_bill", {"member": SELLER, "bill_id": BILL, "to": BUYER, "reason": "x"},
         "not_permitted", f"{BUYER} may not act for member"),
        # the body
        ("settle", "bill_mature", {"on": DUE.isoformat()}, "reason_required", "needs a reason"),
        ("settle", "bill_mature", {**MATURE, "actor": "operator:li"}, "malformed",
         "unknown field 'actor'"),
        ("settle", "bill_mature", {**MATURE, "on": "17/05/2027"}, "malformed", "YYYY-MM-DD"),
        ("settle", "bill_mature", {**MATURE, "on": "2027-02-30"}, "malformed", "no such date"),
        ("settle", "bill_dishonour", {"reason": "x"}, "malformed", "'bill_id' is required"),
        ("settle", "bill_dishonour", {**DISHONOUR, "bill_id": 7}, "malformed", "not a bill id"),
        ("settle", "bill_dishonour", {**DISHONOUR, "bill_id": "b" * 129}, "malformed",
         "not a bill id"),
        ("settle", "bill_dishonour", {**DISHONOUR, "recourse_to": "r" * 65}, "malformed",
         "recourse_to must be"),
        ("settle", "bill_dishonour", {**DISHONOUR, "operator": "li"}, "malformed",
         "unknown field 'operator'"),
        # the dates and the rules
        ("settle", "bill_mature", {**MATURE, "on": "2027-05-18"}, "bill_rule",
         "on must be from 2027-04-16 to today, 2027-05-17; not 2027-05-18"),
        ("settle", "bill_dishonour", {**DISHONOUR, "on": "2027-04-15"}, "bill_rule",
         "not 2027-04-15"),
        ("settle", "bill_dishonour", {**DISHONOUR, "on": "2027-05-16"}, "bill_rule",
         "cannot be dishonoured before 2027-05-17"),
        ("settle", "bill_dishonour", {**DISHONOUR, "bill_id": "bill-x"}, "bill_rule",
         "no bill bill-x"),
        ("settle", "bill_dishonour", {**DISHONOUR, "recourse_to": "xinyu-pvc"}, "bill_rule",
         "'xinyu-pvc' is not before the holder"),
    ],
)  # fmt: skip
def test_each_refusal_is_answered_with_its_code_and_changes_nothing(
    world: World, sender: str, kind: str, body: dict[str, Any], reason: str, text: str
) -> None:
    before = world.state()
    answer = send(world.desk, sender, kind, body)
    assert (answer.status, answer.reason) == ("rejected", reason), answer
    assert text in str(answer.text)
    if reason == "bill_rule":
        assert answer.detail["rule"] in {
            "date_out_of_range", "not_due", "unknown_bill", "not_recourse_party"
        }  # fmt: skip
    assert world.state() == before


def test_the_earliest_date_allowed_is_max_days_back(world: World) -> None:
    earliest = DUE - dt.timedelta(days=MAX_DAYS_BACK)
    answer = send(world.desk, "settle", "bill_mature", {**MATURE, "on": earliest.isoformat()})
    assert (answer.status, answer.detail["paid_count"]) == ("accepted", 0)  # not due by then
