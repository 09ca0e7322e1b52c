"""The request desk's pure parts: who the operators are (operator accounts, nothing else),
the answer's wire form, and a new request kind plugged in with `plain` (the way bill
requests are to be added)."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from pathlib import Path
from types import MappingProxyType
from typing import Any

import pytest

from rex.bus import MAX_SHORT_STRING_BYTES, Delivery, Envelope, envelope_problem
from rex.operators import OperatorAccount, Role
from rex.protocol import pack
from rex.settlement_protocol import MAX_MESSAGE_ID_BYTES, SettlementAnswer
from settlement_worker.codes import SettlementCode
from settlement_worker.member_settings.operations import current_config, load_stored
from settlement_worker.member_settings.requests import settings_request_kinds
from settlement_worker.requests.desk import (
    Outcome,
    RequestDesk,
    RequestKind,
    RequestRefused,
    answer_id,
    plain,
)
from settlement_worker.store import Transaction
from settlement_worker.store.sqlite import SqliteStore
from tests.settlement_worker.helpers import CONFIG, MEMBERS

#: The operator: an operator account with the role settlement_ops (operators.toml).
OPS = {"ops": OperatorAccount("ops", "Ops", frozenset({Role.SETTLEMENT_OPS}), "REX_PW_OPS")}


def test_an_answer_survives_the_wire() -> None:
    answer = SettlementAnswer(
        "answer/a/m-1/a", "m-1", "set_receipt_limits", "a", "a", "rejected", 7,
        "invalid_limits", "max_tenor_days: must be ...", "max_tenor_days", {},
    )  # fmt: skip
    assert SettlementAnswer.decode(answer.encode()) == answer
    assert not answer.accepted
    with pytest.raises(ValueError):
        SettlementAnswer.decode(pack([1]))


class Stub(Delivery):
    def __init__(self, kind: str, body: dict[str, Any], sender: str) -> None:
        self.body, self.type, self.user_id = pack(body), kind, sender
        self.message_id, self.routing_key = f"{kind}-1", f"{sender}.{kind}"
        self.exchange, self.timestamp, self.headers, self.redelivered = "x", 1, {}, False

    def ack(self, multiple: bool = False) -> None:
        pass

    def reject(self, requeue: bool = False) -> None:
        pass


def test_a_new_kind_is_a_function_of_tx_member_params_now(tmp_path: Path) -> None:
    """A handler writes in the desk's transaction; a refusal rolls its writes back."""
    seen: list[tuple[str, dict[str, Any], int]] = []

    def endorse(
        tx: Transaction, member: str, params: Mapping[str, Any], now: int
    ) -> dict[str, Any]:
        seen.append((member, dict(params), now))
        tx.audit(now, f"member:{member}", "bill", str(params["bill"]), "endorsed", {})
        if params["to"] == member:
            raise RequestRefused(SettlementCode.NOT_PERMITTED, "no endorsement to oneself")
        return {"bill": params["bill"]}

    store = SqliteStore(tmp_path / "settlement.sqlite3")
    store.migrate()
    kinds = {"endorse_bill": RequestKind("endorse_bill", plain(endorse), operators_may_act=False)}
    desk = RequestDesk(store, kinds, MEMBERS, OPS, clock=lambda: 42)
    member = "xinyu-pvc"
    good = Stub("endorse_bill", {"bill": "B-1", "to": "ganzhou-magnet", "reason": "pay"}, member)
    assert desk.handle(good) is Outcome.ANSWERED
    assert seen == [(member, {"bill": "B-1", "to": "ganzhou-magnet"}, 42)]
    bad = Stub("endorse_bill", {"bill": "B-2", "to": member, "reason": "pay"}, member)
    bad.message_id = "endorse_bill-2"
    assert desk.handle(bad) is Outcome.ANSWERED
    assert store.query("SELECT subject_id FROM audit_log") == [("B-1",)]  # B-2 rolled back
    by_operator = Stub("endorse_bill", {"bill": "B-3", "to": "x", "member": member}, "ops")
    assert desk.handle(by_operator) is Outcome.ANSWERED
    statuses = store.query(
        "SELECT sender, message_id, status, reason FROM settlement_requests"
        " ORDER BY sender, message_id"
    )
    assert statuses == [
        ("ops", "endorse_bill-1", "rejected", "not_permitted"),
        (member, "endorse_bill-1", "accepted", None),
        (member, "endorse_bill-2", "rejected", "not_permitted"),
    ]
    assert len(seen) == 2  # the operator's request never reached the handler
    store.close()


def test_settings_the_file_no_longer_admits_give_way_to_the_file(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A bank removed from the file after a member listed it: booking uses the file's
    limits (and says so in the log); the member's next change starts from the file's."""
    store = SqliteStore(tmp_path / "settlement.sqlite3")
    store.migrate()
    member = "inner-mongolia-trading"
    listed = {"changes": {"accepted_acceptors": ["ccb-ningbo"]}, "reason": "ok", "member": member}
    before = RequestDesk(store, settings_request_kinds(CONFIG), MEMBERS, OPS)
    assert before.handle(Stub("set_receipt_limits", listed, "ops")) is Outcome.ANSWERED
    banks = {k: v for k, v in CONFIG.banks.items() if k != "ccb-ningbo"}
    smaller = dataclasses.replace(CONFIG, banks=MappingProxyType(banks))
    with store.transaction() as tx:
        in_force = current_config(tx, smaller)
    assert in_force.limits_for(member) == smaller.limits_for(member)
    assert "no longer valid" in caplog.text
    after = RequestDesk(store, settings_request_kinds(smaller), MEMBERS, OPS)
    change = {"changes": {"max_tenor_days": 30}, "reason": "risk", "member": member}
    request = Stub("set_receipt_limits", change, "ops")
    request.message_id = "second"
    assert after.handle(request) is Outcome.ANSWERED
    with store.transaction() as tx:
        stored = load_stored(tx, member)
        in_force = current_config(tx, smaller)
    assert stored is not None and stored.version == 2
    assert stored.receives == {"max_tenor_days": 30}  # the stale acceptor list is gone
    assert in_force.limits_for(member).max_tenor_days == 30
    store.close()


# ------------------------------------------------------------ named deployments


def _desk_of(tmp_path: Path, deployment: str) -> tuple[RequestDesk, SqliteStore, list[str]]:
    """A desk whose one kind records the member it acted for."""
    acted: list[str] = []

    def note(tx: Transaction, member: str, params: Mapping[str, Any], now: int) -> dict[str, Any]:
        acted.append(member)
        return {}

    store = SqliteStore(tmp_path / "settlement.sqlite3")
    store.migrate()
    kinds = {"note": RequestKind("note", plain(note), changes=False)}
    return RequestDesk(store, kinds, MEMBERS, OPS, deployment=deployment), store, acted


def test_a_members_scoped_login_acts_as_its_member_id(tmp_path: Path) -> None:
    desk, store, acted = _desk_of(tmp_path, "prod")
    request = Stub("note", {}, "prod.xinyu-pvc")
    request.routing_key = "xinyu-pvc.note"  # routing keys carry the member id
    assert desk.handle(request) is Outcome.ANSWERED
    assert acted == ["xinyu-pvc"]
    assert store.query("SELECT sender, member, status FROM settlement_requests") == [
        ("xinyu-pvc", "xinyu-pvc", "accepted")
    ]
    assert store.query("SELECT routing_key FROM outbox") == [("xinyu-pvc.settlement_answer",)]
    store.close()


@pytest.mark.parametrize("login", ["xinyu-pvc", "test.xinyu-pvc", "prod.a.b"])
def test_a_login_not_of_this_deployment_is_dead_lettered_unrecorded(
    tmp_path: Path, login: str
) -> None:
    """No answer: by its name it could reach a member's queue (xinyu-pvc's, here)."""
    desk, store, acted = _desk_of(tmp_path, "prod")
    assert desk.handle(Stub("note", {}, login)) is Outcome.DEAD_LETTER
    assert acted == []
    assert store.query("SELECT COUNT(*) FROM settlement_requests") == [(0,)]
    assert store.query("SELECT COUNT(*) FROM outbox") == [(0,)]
    store.close()


def test_an_operator_account_logs_in_as_deployment_dot_name(tmp_path: Path) -> None:
    desk, store, acted = _desk_of(tmp_path, "prod")
    request = Stub("note", {"member": "xinyu-pvc"}, "prod.ops")
    request.routing_key = "ops.note"  # routing keys carry the account's name
    assert desk.handle(request) is Outcome.ANSWERED
    assert acted == ["xinyu-pvc"]
    assert store.query("SELECT sender, member FROM settlement_requests") == [("ops", "xinyu-pvc")]
    store.close()


@pytest.mark.parametrize("login", ["guest", "rex-svc"])
def test_a_login_that_is_no_account_nor_member_may_not_act_for_a_member(
    tmp_path: Path, login: str
) -> None:
    """The broker's user (guest), or a login REX_OPERATORS used to name: no operator
    account, so no operator; refused as a member unknown to this exchange."""
    desk, store, acted = _desk_of(tmp_path, "")
    assert desk.handle(Stub("note", {"member": "xinyu-pvc"}, login)) is Outcome.ANSWERED
    assert acted == []
    assert store.query("SELECT sender, status, reason FROM settlement_requests") == [
        (login, "rejected", "unknown_member")
    ]
    store.close()


def test_in_a_named_deployment_such_a_login_is_dead_lettered(tmp_path: Path) -> None:
    desk, store, acted = _desk_of(tmp_path, "prod")
    assert desk.handle(Stub("note", {"member": "xinyu-pvc"}, "guest")) is Outcome.DEAD_LETTER
    assert acted == []
    assert store.query("SELECT COUNT(*) FROM settlement_requests") == [(0,)]
    store.close()


# ------------------------------------------------------------ bounded ids


def test_a_message_id_over_the_bound_is_refused_and_its_answer_fits_amqp(
    tmp_path: Path,
) -> None:
    """The case of issue 12: a 250-character message_id made a 289-byte answer id, which
    AMQP cannot carry. The request is refused with its own code, and the refusal is sent
    under a digest id; its request_id is the message_id whole, so the member matches it."""
    desk, store, acted = _desk_of(tmp_path, "")
    request = Stub("note", {}, "xinyu-pvc")
    request.message_id = "m" * 250
    assert desk.handle(request) is Outcome.ANSWERED
    assert acted == []
    assert store.query("SELECT status, reason FROM settlement_requests") == [
        ("rejected", "message_id_too_long")
    ]
    ((event_id, exchange, routing_key, kind, body, timestamp),) = store.query(
        "SELECT event_id, exchange, routing_key, type, body, timestamp FROM outbox"
    )
    answer = SettlementAnswer.decode(bytes(body))
    assert (answer.status, answer.reason, answer.request_id) == (
        "rejected",
        "message_id_too_long",
        "m" * 250,
    )
    assert answer.text == (
        "message_id is 250 bytes; at most 128 are taken. Send the request again with a"
        " shorter message_id (a UUID is 36)."
    )
    assert event_id == answer.answer_id
    assert event_id.startswith("answer/xinyu-pvc/sha1-") and event_id.endswith("/xinyu-pvc")
    envelope = Envelope(exchange, routing_key, bytes(body), kind, event_id, timestamp)
    assert envelope_problem(envelope) is None
    store.close()


def test_a_message_id_at_the_bound_is_taken(tmp_path: Path) -> None:
    desk, store, acted = _desk_of(tmp_path, "")
    request = Stub("note", {}, "xinyu-pvc")
    request.message_id = "é" * 64  # 128 bytes of UTF-8
    assert desk.handle(request) is Outcome.ANSWERED
    assert acted == ["xinyu-pvc"]
    assert store.query("SELECT event_id FROM outbox") == [
        (f"answer/xinyu-pvc/{'é' * 64}/xinyu-pvc",)
    ]
    store.close()


def test_the_longest_answer_id_fits_an_amqp_short_string() -> None:
    longest = answer_id("o" * 32, "é" * (MAX_MESSAGE_ID_BYTES // 2), "m" * 32)
    assert len(longest.encode()) == 201 <= MAX_SHORT_STRING_BYTES
    assert len(answer_id("o" * 32, "x" * 255, "m" * 32).encode()) <= MAX_SHORT_STRING_BYTES
    assert answer_id("a", "x" * 129, "a") == answer_id("a", "x" * 129, "a")  # stable
    assert answer_id("a", "x" * 129, "a") != answer_id("a", "x" * 130, "a")
