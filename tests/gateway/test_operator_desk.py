"""gateway/operator_desk.py on the memory bus: who may do what, what is appended to the
engine's input log, and the audit line and metric of every request, allowed or refused.
(tests/system/test_operator_desk.py runs the same through RabbitMQ and its permissions.)"""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest

from gateway.operator_desk import OperatorDesk
from rex import metrics, topology
from rex.bus import Delivery, Envelope, Subscription
from rex.bus.memory import MemoryBroker, MemoryBus
from rex.logs import JsonFormatter
from rex.operator_requests import decode_answer
from rex.operators import OperatorAccount, Role
from rex.protocol import decode_inputs, pack
from tests.embedded import PRODUCTS

ACCOUNTS = {
    "li-wei": OperatorAccount("li-wei", "Li Wei", frozenset({Role.MARKET_OPS}), "E1"),
    "zhang": OperatorAccount("zhang", "Zhang", frozenset({Role.SETTLEMENT_OPS}), "E2"),
    "chen": OperatorAccount("chen", "Chen", frozenset({Role.AUDIT}), "E3"),
    "gone": OperatorAccount("gone", "Gone", frozenset({Role.MARKET_OPS}), "E4", enabled=False),
}


class Desk:
    def __init__(self, deployment: str = "") -> None:
        self.broker = MemoryBroker()
        products = {p.symbol: p for p in PRODUCTS}
        topo = topology.for_gateway(products)
        for name in ACCOUNTS:
            topo = topo + topology.for_operator(name)
        self.deployment = deployment
        gateway = MemoryBus(self.broker)
        self.desk = OperatorDesk(gateway, products, ACCOUNTS, deployment, clock_ns=lambda: 7)
        gateway.start(topo, self.desk.on_ready)
        self.inputs: list[Any] = []
        self.answers: dict[str, list[Any]] = {name: [] for name in ACCOUNTS}
        reader = MemoryBus(self.broker)
        reader.start(topology.Topology(), lambda: None)
        reader.consume(Subscription(topology.engine_input_queue("PRND-OX"), self._on_input))
        for name in ACCOUNTS:
            reader.consume(Subscription(topology.operator_answers(name), self._answer_to(name)))
        self.broker.run_until_idle()

    def _on_input(self, delivery: Delivery) -> None:
        self.inputs.extend(decode_inputs(delivery.body))
        delivery.ack()

    def _answer_to(self, name: str) -> Any:
        def on_answer(delivery: Delivery) -> None:
            self.answers[name].append(decode_answer(delivery.body))
            delivery.ack()

        return on_answer

    def send(
        self,
        login: str,
        action: str,
        body: Any,
        *,
        key: str | None = None,
        message_id: str = "r-1",
        kind: str = "operator_request",
    ) -> None:
        bus = MemoryBus(self.broker, user=login)
        bus.start(topology.Topology(), lambda: None)
        name = login.removeprefix(f"{self.deployment}.") if self.deployment else login
        bus.publish(
            Envelope(
                topology.OPERATOR_REQUESTS,
                key or f"{name}.{action}",
                body if isinstance(body, bytes) else pack(body),
                kind,
                message_id,
                1,
                user_id=login,
            )
        )
        self.broker.run_until_idle()


def count(action: str, verdict: str) -> float:
    return metrics.GATEWAY_OPERATOR_ACTIONS.labels(action, verdict)._value.get()


def audit(caplog: pytest.LogCaptureFixture) -> list[dict[str, str]]:
    return [
        r.rex_fields  # type: ignore[attr-defined]
        for r in caplog.records
        if r.name == "rex.gateway.operators"
    ]


@pytest.mark.parametrize(
    ("action", "status"), [("halt", "halted"), ("resume", "open"), ("close", "closed")]
)
def test_market_ops_appends_the_status_to_the_input_log(
    action: str, status: str, caplog: pytest.LogCaptureFixture
) -> None:
    desk = Desk()
    before = count(action, "done")
    with caplog.at_level(logging.INFO, logger="rex.gateway.operators"):
        desk.send("li-wei", action, {"product": "PRND-OX"})
    [entry] = [e for e in desk.inputs if e.kind == "status"]
    assert (entry.product, entry.status) == ("PRND-OX", status)
    [answer] = desk.answers["li-wei"]
    assert (answer.request_id, answer.verdict, answer.reason) == ("r-1", "done", None)
    assert count(action, "done") - before == 1
    assert audit(caplog) == [
        {
            "actor": "operator:li-wei",
            "action": action,
            "product": "PRND-OX",
            "verdict": "done",
            "request_id": "r-1",
        }
    ]


@pytest.mark.parametrize("action", ["halt", "resume", "close"])
@pytest.mark.parametrize(
    ("login", "reason", "text"),
    [
        ("zhang", "role_required", "{action} needs the role market_ops; operator 'zhang' has "
         "settlement_ops"),
        ("chen", "role_required", "{action} needs the role market_ops; operator 'chen' has audit"),
        ("gone", "account_disabled", "the operator account is disabled in operators.toml"),
    ],
)  # fmt: skip
def test_an_account_without_the_role_is_refused_and_nothing_is_appended(
    action: str, login: str, reason: str, text: str, caplog: pytest.LogCaptureFixture
) -> None:
    desk = Desk()
    before = count(action, reason)
    with caplog.at_level(logging.INFO, logger="rex.gateway.operators"):
        desk.send(login, action, {"product": "PRND-OX"})
    assert [e for e in desk.inputs if e.kind == "status"] == []
    [answer] = desk.answers[login]
    assert (answer.verdict, answer.reason, answer.text) == (
        "refused",
        reason,
        text.format(action=action),
    )
    assert count(action, reason) - before == 1
    [line] = audit(caplog)
    assert (line["actor"], line["verdict"], line["product"]) == (f"operator:{login}", reason,
                                                                 "PRND-OX")  # fmt: skip
    assert caplog.records[-1].levelno == logging.WARNING


@pytest.mark.parametrize("login", ["guest", "alpha", "other.li-wei"])
def test_a_login_that_is_no_account_is_refused_audited_and_not_answered(
    login: str, caplog: pytest.LogCaptureFixture
) -> None:
    desk = Desk()
    before = count("halt", "not_an_operator")
    with caplog.at_level(logging.INFO, logger="rex.gateway.operators"):
        desk.send(login, "halt", {"product": "PRND-OX"}, key="li-wei.halt")
    assert desk.inputs == [] or all(e.kind != "status" for e in desk.inputs)
    assert all(a == [] for a in desk.answers.values())
    assert count("halt", "not_an_operator") - before == 1
    [line] = audit(caplog)
    assert (line["actor"], line["verdict"]) == (f"login:{login}", "not_an_operator")


def test_in_a_named_deployment_the_login_carries_its_name() -> None:
    desk = Desk(deployment="prod")
    desk.send("prod.li-wei", "halt", {"product": "PRND-OX"})
    assert [a.verdict for a in desk.answers["li-wei"]] == ["done"]
    desk.send("li-wei", "halt", {"product": "PRND-OX"}, message_id="r-2")  # not this deployment's
    assert len(desk.answers["li-wei"]) == 1


@pytest.mark.parametrize(
    ("kwargs", "body", "reason"),
    [
        ({"key": "li-wei.halt.now"}, {"product": "PRND-OX"}, "bad_request"),
        ({"kind": "new_order"}, {"product": "PRND-OX"}, "bad_request"),
        ({"message_id": "a b"}, {"product": "PRND-OX"}, "bad_request"),
        ({}, {"product": "PRND-OX", "actor": "someone-else"}, "bad_request"),
        ({}, {"product": "NO-SUCH"}, "unknown_product"),
        ({"key": "li-wei.delist"}, {"product": "PRND-OX"}, "unknown_action"),
        # A settlement action is the settlement worker's, not the gateway's.
        ({"key": "li-wei.dispute_resolve"}, {"product": "PRND-OX"}, "unknown_action"),
        ({}, b"\xc1", "bad_request"),
    ],
)
def test_a_bad_request_is_refused_with_its_reason(
    kwargs: dict[str, str], body: Any, reason: str, caplog: pytest.LogCaptureFixture
) -> None:
    desk = Desk()
    with caplog.at_level(logging.INFO, logger="rex.gateway.operators"):
        desk.send("li-wei", "halt", body, **kwargs)
    assert [e for e in desk.inputs if e.kind == "status"] == []
    [answer] = desk.answers["li-wei"]
    assert (answer.verdict, answer.reason) == ("refused", reason)
    [line] = audit(caplog)
    assert (line["actor"], line["verdict"]) == ("operator:li-wei", reason)


def test_the_audit_line_is_one_json_object_with_its_own_keys(
    caplog: pytest.LogCaptureFixture,
) -> None:
    desk = Desk()
    with caplog.at_level(logging.INFO, logger="rex.gateway.operators"):
        desk.send("chen", "halt", {"product": "PRND-OX"}, message_id="forged\nERROR")
    [record] = [r for r in caplog.records if r.name == "rex.gateway.operators"]
    line = JsonFormatter("gateway").format(record)
    assert "\n" not in line
    entry = json.loads(line)
    assert (entry["actor"], entry["action"], entry["product"], entry["verdict"]) == (
        "operator:chen",
        "halt",
        "PRND-OX",
        "bad_request",  # a message_id with a newline is no message_id
    )
    assert entry["level"] == "WARNING" and entry["logger"] == "rex.gateway.operators"


def test_a_request_whose_handling_raises_is_dead_lettered_and_the_desk_goes_on(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    import gateway.operator_desk as desk_module

    desk = Desk()
    real = desk_module.encode_answer
    calls: list[Any] = []

    def failing_once(answer: Any) -> bytes:
        calls.append(answer)
        if len(calls) == 1:
            raise RuntimeError("a bug in the answer")
        return real(answer)

    monkeypatch.setattr(desk_module, "encode_answer", failing_once)
    desk.broker.declare(
        topology.Topology(
            queues=(topology.Queue("dead"),),
            bindings=(topology.Binding(topology.DEAD, "dead", ""),),
        )
    )
    with caplog.at_level(logging.ERROR, logger="rex.gateway.operators"):
        desk.send("chen", "halt", {"product": "PRND-OX"}, message_id="r-1")
    assert "operator request handling failed" in caplog.text
    assert [m.envelope.message_id for m in desk.broker.queues["dead"].messages] == ["r-1"]
    desk.send("chen", "halt", {"product": "PRND-OX"}, message_id="r-2")
    assert [a.request_id for a in desk.answers["chen"]] == ["r-2"]
