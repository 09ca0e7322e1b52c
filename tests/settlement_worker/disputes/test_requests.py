"""``open_dispute``, a member's settlement request, through the worker's request desk on
SQLite: a party opens a dispute for itself, an operator account with settlement_ops for a
party, the audit naming who sent it; every other sender and every bad body is refused with
its code and opens nothing.

Trades 1 and 2 (the shipped configuration): ganzhou-magnet buys PRND-OX from
baotou-metals; trade 1 is paid with the bill ``bill-obl-PRND-OX-1-0``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from settlement_worker.disputes.operations import list_disputes
from settlement_worker.disputes.requests import dispute_request_kinds
from settlement_worker.requests.desk import RequestDesk
from settlement_worker.store.sqlite import SqliteStore
from tests.settlement_worker.helpers import BUYER, SELLER, run_worker, trade
from tests.settlement_worker.operator_cli import desk_for, send

OUTSIDER = "ningbo-alloy"  # no party to either trade
BILL = "bill-obl-PRND-OX-1-0"


@pytest.fixture
def desk(tmp_path: Path) -> RequestDesk:
    store = SqliteStore(tmp_path / "settlement.sqlite3")
    store.migrate()
    run_worker(store, [trade(1), trade(2)])
    return desk_for(store, dispute_request_kinds())


def audit(desk: RequestDesk) -> list[tuple[str, str, str, str]]:
    rows = desk.store.query(
        "SELECT actor, subject_type, subject_id, action FROM audit_log"
        " WHERE action IN ('opened', 'frozen') ORDER BY seq"
    )
    return [(r[0], r[1], r[2], r[3]) for r in rows]


def test_a_party_opens_a_dispute_for_itself(desk: RequestDesk) -> None:
    answer = send(desk, BUYER, "open_dispute", {"trade_id": "PRND-OX-1", "reason": "grade"})
    assert (answer.status, answer.detail) == (
        "accepted",
        {"dispute_id": "D-1", "state": "open", "subject_type": "trade", "subject_id": "PRND-OX-1"},
    )
    assert audit(desk) == [
        (f"member:{BUYER}", "dispute", "D-1", "opened"),
        (f"member:{BUYER}", "trade", "PRND-OX-1", "frozen"),
    ]


def test_settlement_ops_opens_one_for_a_party_audited_as_the_account(desk: RequestDesk) -> None:
    body = {"member": SELLER, "bill_id": BILL, "reason": "forged acceptance"}
    answer = send(desk, "settle", "open_dispute", body)
    assert answer.status == "accepted", answer
    assert (answer.sender, answer.member) == ("settle", SELLER)
    with desk.store.transaction() as tx:
        [dispute] = list_disputes(tx)
    assert (dispute.opened_by, dispute.subject_id) == (SELLER, BILL)
    assert audit(desk) == [
        ("operator:settle", "dispute", "D-1", "opened"),
        ("operator:settle", "bill", BILL, "frozen"),
    ]


OPEN = {"trade_id": "PRND-OX-1", "reason": "grade"}


@pytest.mark.parametrize(
    ("sender", "body", "reason", "text"),
    [
        # who may send it
        (BUYER, {**OPEN, "member": SELLER}, "not_permitted", f"{BUYER} may not act for member"),
        ("market", {**OPEN, "member": BUYER}, "not_permitted", "needs the role settlement_ops"),
        ("audit", {**OPEN, "member": BUYER}, "not_permitted", "needs the role settlement_ops"),
        ("gone", {**OPEN, "member": BUYER}, "not_permitted", "operator account 'gone' is disabled"),
        ("settle", OPEN, "malformed", "an operator must name the member"),
        ("settle", {**OPEN, "member": "nobody"}, "unknown_member", "no member 'nobody'"),
        # the body
        (BUYER, {"reason": "x"}, "malformed", "give one of trade_id and bill_id"),
        (BUYER, {**OPEN, "bill_id": BILL}, "malformed", "give one of trade_id and bill_id"),
        (BUYER, {**OPEN, "trade_id": 7}, "malformed", "trade_id must be 1-128 characters"),
        (BUYER, {**OPEN, "trade_id": "T" * 129}, "malformed", "trade_id must be 1-128"),
        (BUYER, {**OPEN, "trade_id": "PRND\nOX-1"}, "malformed", "trade_id must be 1-128"),
        (BUYER, {**OPEN, "actor": "member:x"}, "malformed", "unknown fields ['actor']"),
        (BUYER, {"trade_id": "PRND-OX-1"}, "reason_required", "needs a reason"),
        (BUYER, {**OPEN, "reason": "x" * 501}, "reason_required", "needs a reason"),
        # the rules
        (BUYER, {**OPEN, "trade_id": "PRND-OX-9"}, "unknown_subject", "no settled trade"),
        (OUTSIDER, OPEN, "not_a_party", f"member:{OUTSIDER} is not a party to trade"),
        (OUTSIDER, {"bill_id": BILL, "reason": "x"}, "unknown_subject", f"no bill {BILL} of"),
        (BUYER, {"bill_id": "bill-x", "reason": "x"}, "unknown_subject", "no bill bill-x of"),
    ],
)
def test_each_refusal_is_answered_with_its_code_and_opens_nothing(
    desk: RequestDesk, sender: str, body: dict[str, Any], reason: str, text: str
) -> None:
    answer = send(desk, sender, "open_dispute", body)
    assert (answer.status, answer.reason) == ("rejected", reason)
    assert text in str(answer.text)
    assert desk.store.query("SELECT COUNT(*) FROM disputes") == [(0,)]
    assert audit(desk) == []


def test_a_second_dispute_on_the_subject_is_refused(desk: RequestDesk) -> None:
    assert send(desk, BUYER, "open_dispute", OPEN).status == "accepted"
    answer = send(desk, SELLER, "open_dispute", {**OPEN, "reason": "me too"})
    assert (answer.reason, answer.detail) == ("already_disputed", {"trade_id": "PRND-OX-1"})
    assert desk.store.query("SELECT COUNT(*) FROM disputes") == [(1,)]
