"""The offline-trade settlement requests through the worker's request desk on SQLite:
a member reports, its counterparty confirms (booking the trade) or declines, the reporter
cancels -- each for itself, or by an operator account with settlement_ops for it, the
audit naming who sent it; every other sender and every bad body is refused with its code
and changes nothing."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from settlement_worker.offline.requests import offline_request_kinds
from settlement_worker.requests.desk import RequestDesk
from settlement_worker.store.sqlite import SqliteStore
from tests.settlement_worker.helpers import BUYER, CONFIG, ENABLED, PRODUCTS, SELLER, run_worker
from tests.settlement_worker.operator_cli import desk_for, send

OUTSIDER = "ningbo-alloy"
REPORT = {
    "counterparty": BUYER,
    "product": "PRND-OX",
    "side": "sell",
    "price": 415_000,
    "quantity": 1_000,
    "ref": "deal-1",
    "reason": "agreed by phone",
}
REP, CON, DEC, CAN = (
    f"{step}_offline_trade" for step in ("report", "confirm", "decline", "cancel")
)
TERMS = {"offline_id": "OFF-1", "price": 415_000, "quantity": 1_000, "reason": "agreed"}


@pytest.fixture
def desk(tmp_path: Path) -> RequestDesk:
    store = SqliteStore(tmp_path / "settlement.sqlite3")
    store.migrate()
    run_worker(store, [])
    return desk_for(store, offline_request_kinds(PRODUCTS, CONFIG, ENABLED))


def state(desk: RequestDesk) -> tuple[object, ...]:
    return (
        desk.store.query("SELECT * FROM offline_trades ORDER BY offline_id"),
        desk.store.query("SELECT COUNT(*) FROM obligations"),
        desk.store.query("SELECT actor, action FROM audit_log ORDER BY seq"),
    )


def trail(desk: RequestDesk) -> list[tuple[str, str]]:
    rows = desk.store.query(
        "SELECT actor, action FROM audit_log WHERE subject_type = 'offline_trade' ORDER BY seq"
    )
    return [(r[0], r[1]) for r in rows]


def test_members_report_and_confirm_for_themselves(desk: RequestDesk) -> None:
    reported = send(desk, SELLER, "report_offline_trade", REPORT)
    assert reported.status == "accepted", reported
    assert reported.detail["offline_trade"]["offline_id"] == "OFF-1"
    again = send(desk, SELLER, "report_offline_trade", REPORT)  # same ref, same terms
    assert again.detail == reported.detail
    confirmed = send(desk, BUYER, "confirm_offline_trade", TERMS)
    assert confirmed.status == "accepted", confirmed
    assert confirmed.detail["offline_trade"]["trade_id"] == "OTC-PRND-OX-1"
    assert confirmed.detail["obligation"] == {
        "payer": BUYER,
        "payee": SELLER,
        "amount": 41_500_000,
        "currency": "CNY",
        "text": "415,000.00 CNY",
    }
    assert trail(desk) == [(f"member:{SELLER}", "reported"), (f"member:{BUYER}", "confirmed")]


def test_settlement_ops_acts_for_each_party_audited_as_the_account(desk: RequestDesk) -> None:
    for n in (1, 2):
        body = {**REPORT, "member": SELLER, "ref": f"deal-{n}"}
        assert send(desk, "settle", "report_offline_trade", body).status == "accepted"
    declined = send(
        desk,
        "settle",
        "decline_offline_trade",
        {"offline_id": "OFF-1", "member": BUYER, "reason": "no"},
    )
    assert (declined.status, declined.detail["offline_trade"]["state"]) == ("accepted", "declined")
    cancelled = send(
        desk,
        "settle",
        "cancel_offline_trade",
        {"offline_id": "OFF-2", "member": SELLER, "reason": "typo"},
    )
    assert (cancelled.status, cancelled.member) == ("accepted", SELLER)
    assert trail(desk) == [
        ("operator:settle", "reported"),
        ("operator:settle", "reported"),
        ("operator:settle", "declined"),
        ("operator:settle", "cancelled"),
    ]


@pytest.mark.parametrize(
    ("sender", "kind", "body", "reason", "text"),
    [
        # who may send it
        (SELLER, REP, {**REPORT, "member": BUYER}, "not_permitted", "may not act for"),
        ("market", REP, {**REPORT, "member": SELLER}, "not_permitted", "settlement_ops"),
        ("audit", CON, {**TERMS, "member": BUYER}, "not_permitted", "settlement_ops"),
        ("gone", DEC, {"offline_id": "OFF-1", "member": BUYER, "reason": "x"},
         "not_permitted", "disabled"),
        (BUYER, DEC, {"offline_id": "OFF-1", "member": SELLER, "reason": "x"},
         "not_permitted", "may not act for"),
        ("settle", CAN, {"offline_id": "OFF-1", "reason": "x"}, "malformed",
         "an operator must name the member"),
        # the body
        (SELLER, REP, {**REPORT, "price": "415000"}, "malformed", "price must be"),
        (SELLER, REP, {**REPORT, "price": True}, "malformed", "price must be"),
        (SELLER, REP, {**REPORT, "quantity": 0}, "malformed", "quantity must be"),
        (SELLER, REP, {**REPORT, "quantity": 2**63}, "malformed", "quantity must"),
        (SELLER, REP, {**REPORT, "side": "short"}, "malformed", "side must be"),
        (SELLER, REP, {**REPORT, "ref": "r" * 65}, "malformed", "ref must be"),
        (SELLER, REP, {**REPORT, "counterparty": "c" * 65}, "malformed",
         "counterparty must be"),
        (SELLER, REP, {**REPORT, "actor": "x"}, "malformed", "unknown fields"),
        (SELLER, REP, {k: v for k, v in REPORT.items() if k != "ref"},
         "malformed", "'ref' is required"),
        (SELLER, REP, {k: v for k, v in REPORT.items() if k != "reason"},
         "reason_required", "needs a reason"),
        (BUYER, CON, {**TERMS, "offline_id": ""}, "malformed", "offline_id"),
        # the rules
        (SELLER, REP, {**REPORT, "product": "XX"}, "unknown_product", "XX"),
        (SELLER, REP, {**REPORT, "counterparty": "nobody"}, "unknown_member",
         "not a trading member"),
        (SELLER, REP, {**REPORT, "counterparty": SELLER}, "self_trade", "itself"),
        (SELLER, REP, {**REPORT, "ref": " x"}, "invalid_ref", "bad reference"),
        (SELLER, REP, {**REPORT, "price": 415_001}, "offline_rule_violation",
         "price_not_on_tick"),
        (SELLER, REP, {**REPORT, "price": 415_050}, "duplicate_ref",
         "other terms"),
        (SELLER, CON, TERMS, "not_counterparty", "only ganzhou-magnet"),
        (BUYER, CON, {**TERMS, "price": 416_000}, "terms_mismatch", "416000"),
        (BUYER, CAN, {"offline_id": "OFF-1", "reason": "x"}, "not_reporter",
         ""),
        (OUTSIDER, DEC, {"offline_id": "OFF-1", "reason": "x"},
         "unknown_offline_trade", "no offline trade OFF-1 of ningbo-alloy's"),
        (BUYER, DEC, {"offline_id": "OFF-9", "reason": "x"},
         "unknown_offline_trade", "no offline trade OFF-9"),
    ],
)  # fmt: skip
def test_each_refusal_is_answered_with_its_code_and_changes_nothing(
    desk: RequestDesk, sender: str, kind: str, body: dict[str, Any], reason: str, text: str
) -> None:
    assert send(desk, SELLER, "report_offline_trade", REPORT).status == "accepted"  # OFF-1
    before = state(desk)
    answer = send(desk, sender, kind, body)
    assert (answer.status, answer.reason) == ("rejected", reason), answer
    assert text in str(answer.text)
    if reason == "offline_rule_violation":
        assert answer.detail == {"rule": "price_not_on_tick"}
    assert state(desk) == before


def test_a_confirmed_report_is_not_pending(desk: RequestDesk) -> None:
    send(desk, SELLER, "report_offline_trade", REPORT)
    assert send(desk, BUYER, "confirm_offline_trade", TERMS).status == "accepted"
    answer = send(desk, BUYER, "decline_offline_trade", {"offline_id": "OFF-1", "reason": "x"})
    assert answer.reason == "not_pending"
