"""Settlement's operator actions through the request desk (the authenticated path):
``dispute_resolve``, ``payment_release`` and ``payment_resolve``, each tried by every kind of
sender -- an operator account with ``settlement_ops`` (allowed), with ``market_ops`` or
``audit``, a disabled account, a login with no account (the broker's user), a member -- and the
store's audit naming the authenticated login, never a field of the request."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from rex.bus import Delivery
from rex.operators import OperatorAccount, Role
from rex.protocol import pack
from rex.settlement_protocol import SettlementAnswer
from settlement_worker.disputes.operations import get_dispute, open_in_store
from settlement_worker.disputes.requests import dispute_request_kinds
from settlement_worker.disputes.rules import Actor, DisputeState, SubjectType
from settlement_worker.member_settings.requests import settings_request_kinds
from settlement_worker.payments import rules as pm
from settlement_worker.payments.operations import move_payment
from settlement_worker.payments.requests import payment_request_kinds
from settlement_worker.payments.sql import insert_payment, load_history, load_payment
from settlement_worker.requests.desk import Outcome, RequestDesk
from settlement_worker.store import Store
from settlement_worker.store.sqlite import SqliteStore
from tests.settlement_worker.helpers import BUYER, CONFIG, MEMBERS, T0, run_worker, trade
from tests.settlement_worker.payments.conftest import make_payments

ACCOUNTS = {
    "settle": OperatorAccount("settle", "S", frozenset({Role.SETTLEMENT_OPS}), "E1"),
    "market": OperatorAccount("market", "M", frozenset({Role.MARKET_OPS}), "E2"),
    "audit": OperatorAccount("audit", "A", frozenset({Role.AUDIT}), "E3"),
    "gone": OperatorAccount("gone", "G", frozenset({Role.SETTLEMENT_OPS}), "E4", enabled=False),
}
LEGACY = "rex-svc"  # a login with no account (REX_OPERATORS named such logins): no operator


class Stub(Delivery):
    def __init__(self, kind: str, body: dict[str, Any], login: str, sender: str, n: int) -> None:
        self.body, self.type, self.user_id = pack(body), kind, login
        self.message_id, self.routing_key = f"{kind}-{n}", f"{sender}.{kind}"
        self.exchange, self.timestamp, self.headers, self.redelivered = "x", 1, {}, False

    def ack(self, multiple: bool = False) -> None:
        pass

    def reject(self, requeue: bool = False) -> None:
        pass


class World:
    def __init__(self, tmp_path: Path, deployment: str = "") -> None:
        self.store: Store = SqliteStore(tmp_path / "settlement.sqlite3")
        self.store.migrate()
        run_worker(self.store, [trade(1)])
        with self.store.transaction() as tx:
            self.dispute = open_in_store(
                tx, SubjectType.TRADE, "PRND-OX-1", Actor.member(BUYER), "wrong grade", T0 + 10
            ).dispute_id
            [payment] = make_payments(1, T0)
            insert_payment(tx, payment)
            old, version = load_payment(tx, payment.payment_id)  # type: ignore[misc]
            move_payment(tx, old, version, pm.hold_for_review(old, T0, "line closed").payment)
            self.payment = payment.payment_id
        kinds = {
            **settings_request_kinds(CONFIG),
            **dispute_request_kinds(),
            **payment_request_kinds(CONFIG.banks),
        }
        self.deployment = deployment
        self.desk = RequestDesk(self.store, kinds, MEMBERS, ACCOUNTS, deployment=deployment)
        self.n = 0

    def send(self, sender: str, kind: str, body: dict[str, Any]) -> tuple[str, str | None]:
        """(status, reason) of the request as the store recorded it."""
        self.n += 1
        login = f"{self.deployment}.{sender}" if self.deployment and sender != LEGACY else sender
        assert self.desk.handle(Stub(kind, body, login, sender, self.n)) is Outcome.ANSWERED
        [(status, reason)] = self.store.query(
            "SELECT status, reason FROM settlement_requests WHERE message_id = ?",
            [f"{kind}-{self.n}"],
        )
        return status, reason

    def bodies(self) -> dict[str, dict[str, Any]]:
        bank = next(iter(CONFIG.banks))
        return {
            "dispute_resolve": {"dispute_id": self.dispute, "uphold": False, "reason": "assay ok"},
            "payment_release": {"payment_id": self.payment, "bank": bank, "reason": "line back"},
            "payment_resolve": {"payment_id": self.payment, "paid": False, "reason": "bank: no"},
            "payment_mark_paid": {"payment_id": self.payment, "reference": "R1", "reason": "desk"},
        }


KINDS = ["dispute_resolve", "payment_release", "payment_resolve", "payment_mark_paid"]


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize(
    ("sender", "text"),
    [
        ("market", "{kind} needs the role settlement_ops; operator 'market' has market_ops"),
        ("audit", "{kind} needs the role settlement_ops; operator 'audit' has audit"),
        ("gone", "operator account 'gone' is disabled"),
        (BUYER, "{kind} is for operators only"),
    ],
)
def test_only_settlement_ops_may_send_the_settlement_actions(
    tmp_path: Path, kind: str, sender: str, text: str
) -> None:
    world = World(tmp_path)
    assert world.send(sender, kind, world.bodies()[kind]) == ("rejected", "not_permitted")
    [(body,)] = world.store.query(
        "SELECT body FROM outbox WHERE event_id LIKE ?", [f"answer/{sender}/{kind}-1/%"]
    )
    assert text.format(kind=kind) in str(SettlementAnswer.decode(bytes(body)).text)
    with world.store.transaction() as tx:
        assert get_dispute(tx, world.dispute).state is DisputeState.OPEN
        assert load_payment(tx, world.payment)[0].state is pm.PaymentState.MANUAL_REVIEW  # type: ignore[index]


def test_settlement_ops_resolves_a_dispute_audited_as_the_login(tmp_path: Path) -> None:
    world = World(tmp_path)
    assert world.send("settle", "dispute_resolve", world.bodies()["dispute_resolve"]) == (
        "accepted",
        None,
    )
    with world.store.transaction() as tx:
        dispute = get_dispute(tx, world.dispute)
    assert (dispute.state, dispute.resolved_by) == (DisputeState.REJECTED, "settle")
    actors = world.store.query(
        "SELECT DISTINCT actor FROM audit_log WHERE subject_id IN (?, ?)",
        [world.dispute, "PRND-OX-1"],
    )
    assert ("operator:settle",) in actors and all(
        a in {("operator:settle",), (f"member:{BUYER}",)} for a in actors
    )


@pytest.mark.parametrize("kind", ["payment_release", "payment_resolve"])
def test_settlement_ops_releases_or_resolves_a_payment_in_its_name(
    tmp_path: Path, kind: str
) -> None:
    world = World(tmp_path, deployment="prod")  # the login is prod.settle; the actor settle
    body = world.bodies()[kind]
    if kind == "payment_resolve":  # only an unknown payment is resolved: a refusal by rule
        assert world.send("settle", kind, body) == ("rejected", "invalid_state")
        return
    assert world.send("settle", kind, body) == ("accepted", None)
    with world.store.transaction() as tx:
        payment, _ = load_payment(tx, world.payment)  # type: ignore[misc]
        history = load_history(tx, world.payment)
    assert payment.state is pm.PaymentState.NEW
    event, actor = history[-1]
    assert (event.kind, actor) == ("released", "operator:settle")


@pytest.mark.parametrize(
    ("extra", "reason"),
    [
        ({"actor": "operator:someone-else"}, "malformed"),
        ({"member": BUYER}, "malformed"),
        ({"dispute_id": 7}, "malformed"),
        ({"dispute_id": "D-999"}, "unknown_dispute"),
        ({"reason": ""}, "reason_required"),
    ],
)
def test_a_bad_dispute_resolve_is_refused(
    tmp_path: Path, extra: dict[str, Any], reason: str
) -> None:
    world = World(tmp_path)
    assert world.send(
        "settle", "dispute_resolve", {**world.bodies()["dispute_resolve"], **extra}
    ) == (
        "rejected",
        reason,
    )
    assert world.store.query(
        "SELECT count(*) FROM audit_log WHERE actor = 'operator:someone-else'"
    ) == [(0,)]


def test_an_account_acts_for_a_member_only_with_settlement_ops(tmp_path: Path) -> None:
    world = World(tmp_path)
    show = {"member": BUYER}
    assert world.send("audit", "show_settlement_settings", show) == ("rejected", "not_permitted")
    assert world.send("settle", "show_settlement_settings", show) == ("accepted", None)
    # A login with no account is no operator, whatever REX_OPERATORS used to say.
    assert world.send(LEGACY, "show_settlement_settings", show) == ("rejected", "unknown_member")


@pytest.mark.parametrize("kind", KINDS)
def test_a_login_with_no_account_may_send_no_settlement_action(tmp_path: Path, kind: str) -> None:
    world = World(tmp_path)
    assert world.send(LEGACY, kind, world.bodies()[kind]) == ("rejected", "unknown_member")
    with world.store.transaction() as tx:
        assert get_dispute(tx, world.dispute).state is DisputeState.OPEN
        assert load_payment(tx, world.payment)[0].state is pm.PaymentState.MANUAL_REVIEW  # type: ignore[index]


def test_settlement_ops_marks_a_payment_paid_in_its_name(tmp_path: Path) -> None:
    world = World(tmp_path, deployment="prod")
    body = world.bodies()["payment_mark_paid"]
    assert world.send("settle", "payment_mark_paid", body) == ("accepted", None)
    with world.store.transaction() as tx:
        payment, _ = load_payment(tx, world.payment)  # type: ignore[misc]
        history = load_history(tx, world.payment)
    assert payment.state is pm.PaymentState.PAID_MANUALLY
    assert (history[-1][0].kind, history[-1][1]) == ("paid_manually", "operator:settle")


@pytest.mark.parametrize(
    "extra",
    [
        {"actor": "operator:someone-else"},
        {"reference": ""},
        {"reference": "R" * 65},
        {"reference": 7},
        {"payment_id": "P" * 65},
        {"note_extra": "x"},
    ],
)
def test_a_bad_payment_mark_paid_is_refused(tmp_path: Path, extra: dict[str, Any]) -> None:
    world = World(tmp_path)
    body = {**world.bodies()["payment_mark_paid"], **extra}
    assert world.send("settle", "payment_mark_paid", body) == ("rejected", "malformed")
    with world.store.transaction() as tx:
        assert load_payment(tx, world.payment)[0].state is pm.PaymentState.MANUAL_REVIEW  # type: ignore[index]
