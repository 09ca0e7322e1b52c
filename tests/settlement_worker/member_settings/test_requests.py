"""Settlement requests through the real worker on the memory bus, on SQLite and PostgreSQL:
members change their own receipt limits and payment method, an operator any member's;
every bad request is answered with its reason and changes nothing; a redelivered request
is applied once; booking uses the settings in force."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from rex import topology
from rex.bus import Delivery, Subscription
from rex.protocol import pack, unpack
from rex.vocabulary import Side
from settlement_worker.offline.operations import confirm_in_store, report_in_store
from settlement_worker.store import Store
from tests.settlement_worker.helpers import (
    BACKENDS,
    CONFIG,
    ENABLED,
    PRODUCTS,
    T0,
    opened_store,
)
from tests.settlement_worker.helpers import trade as make_trade
from tests.settlement_worker.request_helpers import OPERATOR, Worker

SELLER = "ganzhou-magnet"  # refuses bills in the file
BUYER = "baotou-metals"  # pays with ICBC Baotou bills, 90 days


@pytest.fixture(params=BACKENDS)
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    with opened_store(request.param, tmp_path) as opened:
        yield opened.store


def limits_request(changes: Any, reason: Any = "credit committee 2026-11") -> dict[str, Any]:
    return {"changes": changes, "reason": reason}


def settings_rows(store: Store) -> list[tuple[Any, ...]]:
    return store.query("SELECT member, version FROM member_settings ORDER BY member")


# --------------------------------------------------------------------------- changes


def test_a_member_changes_its_own_receipt_limits_on_record(store: Store) -> None:
    worker = Worker(store)
    request_id = worker.send(
        SELLER,
        "set_receipt_limits",
        limits_request({"accept_bills": True, "max_bill_face_minor": 20_000_000}),
    )
    answer = worker.answer(SELLER, request_id)
    assert answer.accepted and answer.reason is None
    assert answer.sender == SELLER and answer.member == SELLER
    assert answer.detail["version"] == 1
    assert answer.detail["receives"]["accept_bills"] is True
    assert answer.detail["receives"]["max_bill_face_minor"] == 20_000_000
    assert answer.detail["receives"]["max_tenor_days"] == 183  # the file's, unchanged
    assert answer.detail["pays"]["method"] == "bank_acceptance"
    assert settings_rows(store) == [(SELLER, 1)]
    history = store.query(
        "SELECT member, version, actor, request_id, reason FROM member_settings_history"
    )
    assert history == [(SELLER, 1, f"member:{SELLER}", request_id, "credit committee 2026-11")]
    audit = store.query(
        "SELECT actor, subject_type, subject_id, action FROM audit_log"
        " WHERE subject_type = 'member_settings'"
    )
    assert audit == [(f"member:{SELLER}", "member_settings", SELLER, "receipt_limits_changed")]
    requests = store.query("SELECT sender, message_id, kind, status FROM settlement_requests")
    assert requests == [(SELLER, request_id, "set_receipt_limits", "accepted")]


def test_booking_uses_the_limits_in_force(store: Store) -> None:
    worker = Worker(store)
    # TB-OX, 100 kg at 5,800,000 CNY/t: 580,000.00 CNY; the buyer pays with 90-day bills.
    first = make_trade(
        1, price=5_800_000, quantity=100, product="TB-OX", buyer=BUYER, seller=SELLER
    )
    worker.book(first)
    worker.send(SELLER, "set_receipt_limits", limits_request({"accept_bills": True}))
    second = make_trade(
        2, price=5_800_000, quantity=100, product="TB-OX", buyer=BUYER, seller=SELLER
    )
    worker.book(second)
    cash = dict(
        store.query("SELECT obligation_id, SUM(amount) FROM payments GROUP BY obligation_id")
    )
    assert cash["obl-TB-OX-1"] == 58_000_000  # before: all cash (the seller refused bills)
    assert "obl-TB-OX-2" not in cash  # after: all by bill, nothing to transfer
    assert store.query("SELECT COUNT(*) FROM obligations") == [(2,)]


def test_an_offline_trade_confirmed_after_a_change_is_booked_with_it(store: Store) -> None:
    worker = Worker(store)
    worker.send(SELLER, "set_receipt_limits", limits_request({"accept_bills": True}))
    with store.transaction() as tx:
        pending = report_in_store(
            tx, SELLER, BUYER, PRODUCTS["TB-OX"], Side.SELL, 5_800_000, 100, "deal-1",
            at=T0, members=ENABLED,
        )  # fmt: skip
        _, message = confirm_in_store(
            tx, pending.offline_id, BUYER, 5_800_000, 100,
            products=PRODUCTS, config=CONFIG, at=T0 + 1,
        )  # fmt: skip
    assert message.trade_id == "OTC-TB-OX-1"
    assert store.query("SELECT COUNT(*) FROM payments") == [(0,)]  # all by bill, as allowed now


def test_a_member_changes_its_payment_method_and_pays_cash_from_then_on(store: Store) -> None:
    worker = Worker(store)
    worker.send(SELLER, "set_receipt_limits", limits_request({"accept_bills": True}))
    request_id = worker.send(
        BUYER, "set_payment_method", {"pays": {"method": "cash"}, "reason": "bill line closed"}
    )
    answer = worker.answer(BUYER, request_id)
    assert answer.accepted and answer.detail["pays"] == {"method": "cash"}
    worker.book(
        make_trade(1, price=5_800_000, quantity=100, product="TB-OX", buyer=BUYER, seller=SELLER)
    )
    assert store.query("SELECT SUM(amount) FROM payments") == [(58_000_000,)]


def test_an_operator_changes_any_members_limits_and_both_are_answered(store: Store) -> None:
    worker = Worker(store)
    request_id = worker.send(
        OPERATOR,
        "set_receipt_limits",
        {"member": SELLER, "changes": {"max_tenor_days": 90}, "reason": "risk: rating cut"},
    )
    to_operator = worker.answer(OPERATOR, request_id)
    to_member = worker.answer(SELLER, request_id)
    assert to_operator.accepted and to_member.accepted
    assert to_operator.answer_id != to_member.answer_id
    assert to_member.sender == OPERATOR and to_member.member == SELLER
    assert to_member.detail["receives"]["max_tenor_days"] == 90
    actor = store.query("SELECT actor FROM member_settings_history")
    assert actor == [(f"operator:{OPERATOR}",)]


def test_versions_count_changes_and_if_version_guards_against_a_lost_update(store: Store) -> None:
    worker = Worker(store)
    one = worker.send(SELLER, "set_receipt_limits", limits_request({"accept_bills": True}))
    two = worker.send(
        OPERATOR,
        "set_receipt_limits",
        {"member": SELLER, "changes": {"max_tenor_days": 60}, "reason": "risk", "if_version": 1},
    )
    stale = worker.send(
        SELLER,
        "set_receipt_limits",
        {"changes": {"max_tenor_days": 120}, "reason": "mine", "if_version": 1},
    )
    assert worker.answer(SELLER, one).detail["version"] == 1
    assert worker.answer(OPERATOR, two).detail["version"] == 2
    refused = worker.answer(SELLER, stale)
    assert (refused.status, refused.reason) == ("rejected", "version_mismatch")
    shown = worker.answer(SELLER, worker.send(SELLER, "show_settlement_settings", {}))
    assert shown.detail["version"] == 2
    assert shown.detail["receives"]["accept_bills"] is True  # version 1's change kept
    assert shown.detail["receives"]["max_tenor_days"] == 60


def test_show_before_any_change_gives_the_files_settings_at_version_0(store: Store) -> None:
    worker = Worker(store)
    shown = worker.answer(BUYER, worker.send(BUYER, "show_settlement_settings", {}))
    assert shown.accepted and shown.detail["version"] == 0
    assert shown.detail["pays"] == {
        "method": "bank_acceptance",
        "acceptor": "icbc-baotou",
        "tenor_days": 90,
        "min_tenor_days": 1,
    }
    assert shown.detail["receives"]["max_bill_face_minor"] == 50_000_000
    assert settings_rows(store) == []


def test_a_redelivered_request_is_applied_and_answered_once(store: Store) -> None:
    worker = Worker(store)
    body = limits_request({"accept_bills": True})
    worker.send(SELLER, "set_receipt_limits", body, message_id="same-id")
    worker.send(SELLER, "set_receipt_limits", body, message_id="same-id")
    assert [a.request_id for a in worker.answers(SELLER)] == ["same-id"]
    assert settings_rows(store) == [(SELLER, 1)]
    # A rejected one too: answered once.
    worker.send(SELLER, "set_receipt_limits", {"changes": {}}, message_id="bad-id")
    worker.send(SELLER, "set_receipt_limits", {"changes": {}}, message_id="bad-id")
    assert [a.request_id for a in worker.answers(SELLER)] == ["same-id", "bad-id"]


# --------------------------------------------------------------------------- rejections

REJECTIONS: list[tuple[str, str, str, Any, dict[str, Any], str, str | None]] = [
    # (id, sender, kind, body, send options, reason, field)
    ("not msgpack", SELLER, "set_receipt_limits", b"\xc1\xc1", {}, "malformed", None),
    ("not a map", SELLER, "set_receipt_limits", pack([1, 2]), {}, "malformed", None),
    (
        "routing key of another",
        SELLER,
        "set_receipt_limits",
        limits_request({"accept_bills": True}),
        {"routing_key": f"{BUYER}.set_receipt_limits"},
        "malformed",
        None,
    ),
    (
        "no message id",
        SELLER,
        "set_receipt_limits",
        limits_request({"accept_bills": True}),
        {"message_id": ""},
        "malformed",
        None,
    ),
    (
        "unknown field",
        SELLER,
        "set_receipt_limits",
        {**limits_request({"accept_bills": True}), "colour": "red"},
        {},
        "malformed",
        None,
    ),
    ("changes not a map", SELLER, "set_receipt_limits", limits_request([1]), {}, "malformed", None),
    ("no changes", SELLER, "set_receipt_limits", {"reason": "x"}, {}, "malformed", None),
    (
        "if_version not an integer",
        SELLER,
        "set_receipt_limits",
        {**limits_request({"accept_bills": True}), "if_version": "1"},
        {},
        "malformed",
        None,
    ),
    ("unknown kind", SELLER, "discount_everything", {"reason": "x"}, {}, "unknown_request", None),
    (
        "not a member, under a member's key",
        "stranger",
        "set_receipt_limits",
        limits_request({"accept_bills": True}),
        {"routing_key": f"{SELLER}.set_receipt_limits"},
        "malformed",
        None,
    ),
    (
        "for another member",
        SELLER,
        "set_receipt_limits",
        {**limits_request({"accept_bills": True}), "member": BUYER},
        {},
        "not_permitted",
        None,
    ),
    (
        "operator names nobody",
        OPERATOR,
        "set_receipt_limits",
        limits_request({"accept_bills": True}),
        {},
        "malformed",
        None,
    ),
    (
        "operator names a non-member",
        OPERATOR,
        "set_receipt_limits",
        {**limits_request({"accept_bills": True}), "member": "nobody"},
        {},
        "unknown_member",
        None,
    ),
    (
        "no reason",
        SELLER,
        "set_receipt_limits",
        {"changes": {"accept_bills": True}},
        {},
        "reason_required",
        None,
    ),
    (
        "blank reason",
        SELLER,
        "set_receipt_limits",
        limits_request({"accept_bills": True}, "  "),
        {},
        "reason_required",
        None,
    ),
    (
        "reason too long",
        SELLER,
        "set_receipt_limits",
        limits_request({"accept_bills": True}, "x" * 501),
        {},
        "reason_required",
        None,
    ),
    (
        "reason not text",
        SELLER,
        "set_receipt_limits",
        limits_request({"accept_bills": True}, 7),
        {},
        "malformed",
        None,
    ),
    (
        "tenor above the law",
        SELLER,
        "set_receipt_limits",
        limits_request({"max_tenor_days": 200}),
        {},
        "invalid_limits",
        "max_tenor_days",
    ),
    (
        "share as a float",
        SELLER,
        "set_receipt_limits",
        limits_request({"max_bill_share_bps": 50.0}),
        {},
        "invalid_limits",
        "max_bill_share_bps",
    ),
    (
        "flag as a number",
        SELLER,
        "set_receipt_limits",
        limits_request({"accept_bills": 1}),
        {},
        "invalid_limits",
        "accept_bills",
    ),
    (
        "negative face",
        SELLER,
        "set_receipt_limits",
        limits_request({"max_bill_face_minor": -5}),
        {},
        "invalid_limits",
        "max_bill_face_minor",
    ),
    (
        "unknown acceptor",
        SELLER,
        "set_receipt_limits",
        limits_request({"accepted_acceptors": ["hsbc-hk"]}),
        {},
        "invalid_limits",
        "accepted_acceptors",
    ),
    (
        "unknown limit",
        SELLER,
        "set_receipt_limits",
        limits_request({"max_bills": 3}),
        {},
        "invalid_limits",
        "max_bills",
    ),
    (
        "empty changes",
        SELLER,
        "set_receipt_limits",
        limits_request({}),
        {},
        "nothing_to_change",
        None,
    ),
    (
        "same as now",
        SELLER,
        "set_receipt_limits",
        limits_request({"accept_bills": False}),
        {},
        "nothing_to_change",
        None,
    ),
    (
        "version ahead",
        SELLER,
        "set_receipt_limits",
        {**limits_request({"accept_bills": True}), "if_version": 3},
        {},
        "version_mismatch",
        None,
    ),
    (
        "cash with a tenor",
        BUYER,
        "set_payment_method",
        {"pays": {"method": "cash", "tenor_days": 30}, "reason": "x"},
        {},
        "invalid_payment_method",
        "tenor_days",
    ),
    (
        "unknown acceptor bank",
        BUYER,
        "set_payment_method",
        {
            "pays": {"method": "bank_acceptance", "acceptor": "hsbc-hk", "tenor_days": 30},
            "reason": "x",
        },
        {},
        "invalid_payment_method",
        "acceptor",
    ),
    (
        "no method",
        BUYER,
        "set_payment_method",
        {"pays": {"tenor_days": 30}, "reason": "x"},
        {},
        "invalid_payment_method",
        "method",
    ),
    (
        "same method",
        BUYER,
        "set_payment_method",
        {
            "pays": {"method": "bank_acceptance", "acceptor": "icbc-baotou", "tenor_days": 90},
            "reason": "x",
        },
        {},
        "nothing_to_change",
        None,
    ),
    (
        "show with a field",
        SELLER,
        "show_settlement_settings",
        {"changes": {}},
        {},
        "malformed",
        None,
    ),
]


@pytest.mark.parametrize(
    ("sender", "kind", "body", "options", "reason", "field"),
    [pytest.param(*case[1:], id=case[0]) for case in REJECTIONS],
)
def test_each_bad_request_is_rejected_with_its_reason_and_changes_nothing(
    store: Store,
    sender: str,
    kind: str,
    body: dict[str, Any] | bytes,
    options: dict[str, Any],
    reason: str,
    field: str | None,
) -> None:
    worker = Worker(store)
    request_id = worker.send(sender, kind, body, **options)
    listener = sender if sender in worker.inbox else None
    recorded = store.query("SELECT status, reason FROM settlement_requests")
    assert recorded == [("rejected", reason)]
    assert settings_rows(store) == []
    assert store.query("SELECT COUNT(*) FROM member_settings_history") == [(0,)]
    assert store.query("SELECT COUNT(*) FROM audit_log") == [(0,)]
    if listener is None:
        return  # "stranger" has no log; its answer went to the outbox all the same
    (answer,) = worker.answers(listener)
    assert answer.request_id == (request_id or answer.request_id)
    assert (answer.status, answer.reason, answer.field) == ("rejected", reason, field)
    assert answer.text


def test_a_request_without_user_id_is_dead_lettered_unanswered(store: Store) -> None:
    worker = Worker(store)
    dead: list[Delivery] = []
    worker.bus("ops").consume(Subscription(topology.DEAD_LETTERS, dead.append))
    worker.send(SELLER, "set_receipt_limits", limits_request({"accept_bills": True}), user_id=None)
    assert [unpack(d.body)["changes"] for d in dead] == [{"accept_bills": True}]
    assert worker.answers(SELLER) == []
    assert store.query("SELECT COUNT(*) FROM settlement_requests") == [(0,)]
