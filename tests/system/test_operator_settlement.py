"""Settlement's operator actions through real RabbitMQ, against `python -m settlement_worker`
on SQLite: `dispute_resolve`, `payment_release` and `payment_resolve` sent as settlement
requests by every kind of login -- an operator account with settlement_ops (allowed), with
market_ops or audit, a disabled account, a member, the services' `guest` (refused) -- each
answered on the operator's own answer stream; a dispute resolved this way is audited in the
store with the authenticated operator."""

from __future__ import annotations

import sqlite3
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pika
import pika.exceptions
import pytest

from rex.protocol import CONTENT_TYPE, ExecutionReport, pack, unpack
from tests.system.conftest import OPERATOR_PASSWORD, PASSWORD, ROOT, Exchange, wait_for_answer

pytestmark = pytest.mark.broker

# The wire contract (docs/operators/accounts.md, docs/members/protocol.md), spelled out.
SETTLEMENT_REQUESTS = "rex.settlement.requests"
KINDS = ["dispute_resolve", "payment_release", "payment_resolve"]
SETTLEMENT_TOML = """
[fees]
default = { buyer_bps = 2, seller_bps = 2 }

[[banks]]
id = "icbc-baotou"
name = "Industrial and Commercial Bank of China, Baotou Branch"
city = "Baotou"

[payment]
bank = "icbc-baotou"
"""


@pytest.fixture(scope="module")
def running(exchange: Exchange) -> Iterator[Exchange]:
    config = Path(exchange.env["REX_CONFIG_DIR"])
    (config / "settlement.toml").write_text(SETTLEMENT_TOML)
    (config / "holidays.toml").write_text((ROOT / "config" / "holidays.toml").read_text())
    for unset in ("REX_DATABASE_URL", "REX_OPERATORS"):  # SQLite; guest is REX_OPERATORS'
        exchange.env.pop(unset, None)
    exchange.start("gateway", "gateway", "--tick-interval", "0.5")
    exchange.start("engine", "engine", "--group", "main")
    exchange.start("settlement", "settlement_worker", "--no-payer")
    with exchange.client("alpha") as alpha:
        try:
            wait_for_answer(alpha, "PRND-OX")
            alpha.settlement_settings(wait=30)
        except TimeoutError:
            pytest.fail("exchange did not come up:\n" + exchange.log_tail())
    yield exchange


def request(
    exchange: Exchange,
    user: str,
    password: str,
    sender: str,
    kind: str,
    body: dict[str, object],
    *,
    answers_of: str | None,
) -> dict[str, object] | None:
    """One settlement request as ``user`` (routing key ``<sender>.<kind>``); its answer read
    from ``answers_of``'s own answer stream (None if none came in 10 s)."""
    params = pika.URLParameters(exchange.url)
    params.credentials = pika.PlainCredentials(user, password)
    connection = pika.BlockingConnection(params)
    message_id = f"s-{uuid.uuid4().hex}"
    found: list[dict[str, object]] = []
    try:
        if answers_of is not None:
            reader = connection.channel()
            reader.basic_qos(prefetch_count=50)

            def on_answer(channel: object, method: object, props: object, raw: bytes) -> None:
                reader.basic_ack(method.delivery_tag)  # type: ignore[attr-defined]
                answer = unpack(raw)
                if props.type == "settlement_answer" and answer["request_id"] == message_id:  # type: ignore[attr-defined]
                    found.append(answer)

            reader.basic_consume(
                f"rex.operator.{answers_of}.answers",
                on_answer,
                arguments={"x-stream-offset": "next"},
            )
        channel = connection.channel()
        channel.confirm_delivery()
        channel.basic_publish(
            SETTLEMENT_REQUESTS,
            f"{sender}.{kind}",
            pack(body),
            pika.BasicProperties(
                content_type=CONTENT_TYPE,
                delivery_mode=2,
                type=kind,
                message_id=message_id,
                user_id=user,
                timestamp=int(time.time()),
            ),
            mandatory=True,
        )
        deadline = time.monotonic() + 10
        while answers_of is not None and not found and time.monotonic() < deadline:
            connection.process_data_events(time_limit=0.1)
        return found[0] if found else None
    finally:
        if connection.is_open:
            connection.close()


def body_of(kind: str, dispute: str = "D-999") -> dict[str, object]:
    return {
        "dispute_resolve": {"dispute_id": dispute, "uphold": False, "reason": "assay ok"},
        "payment_release": {"payment_id": "P-none", "bank": "icbc-baotou", "reason": "line back"},
        "payment_resolve": {"payment_id": "P-none", "paid": False, "reason": "bank: no"},
    }[kind]


def as_operator(
    exchange: Exchange, short: str, kind: str, body: dict[str, object]
) -> dict[str, object]:
    name = exchange.operators[short]
    answer = request(exchange, name, OPERATOR_PASSWORD, name, kind, body, answers_of=name)
    assert answer is not None, "no answer on the operator's stream:\n" + exchange.log_tail()
    return answer


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize(("short", "role"), [("market", "market_ops"), ("audit", "audit")])
def test_an_operator_without_settlement_ops_is_refused(
    running: Exchange, kind: str, short: str, role: str
) -> None:
    answer = as_operator(running, short, kind, body_of(kind))
    name = running.operators[short]
    assert (answer["status"], answer["reason"], answer["text"]) == (
        "rejected",
        "not_permitted",
        f"{kind} needs the role settlement_ops; operator {name!r} has {role}",
    )


@pytest.mark.parametrize("kind", KINDS)
def test_settlement_ops_gets_through_to_the_rules(running: Exchange, kind: str) -> None:
    """Allowed: the request reaches its handler, which finds nothing of that id."""
    answer = as_operator(running, "settle", kind, body_of(kind))
    assert (answer["status"], answer["reason"]) == (
        "rejected",
        "unknown_dispute" if kind == "dispute_resolve" else "unknown_subject",
    )
    assert answer["sender"] == running.operators["settle"]


@pytest.mark.parametrize("kind", KINDS)
def test_a_member_and_guest_may_not(running: Exchange, kind: str) -> None:
    member = running.members["alpha"]
    # A member may send it (its own key), and is refused by the desk: for operators only.
    request(running, member, PASSWORD, member, kind, body_of(kind), answers_of=None)
    # guest, the services' login, is REX_OPERATORS' operator here: it has no account.
    request(running, "guest", "guest", "guest", kind, body_of(kind), answers_of=None)
    # A member may not publish under an operator's name.
    with pytest.raises(pika.exceptions.ChannelClosedByBroker) as refused:
        settle = running.operators["settle"]
        request(running, member, PASSWORD, settle, kind, body_of(kind), answers_of=None)
    assert refused.value.reply_code == 403
    rows = settlement_requests(running, kind)
    assert (member, "rejected", "not_permitted") in rows
    assert ("guest", "rejected", "not_permitted") in rows


@pytest.mark.parametrize("kind", KINDS)
def test_a_disabled_account_cannot_log_in(running: Exchange, kind: str) -> None:
    name = running.operators["gone"]
    with pytest.raises(pika.exceptions.ProbableAuthenticationError):
        request(running, name, OPERATOR_PASSWORD, name, kind, body_of(kind), answers_of=None)


def settlement_requests(exchange: Exchange, kind: str) -> list[tuple[str, str, str | None]]:
    """(sender, status, reason) of every request of ``kind`` the worker recorded."""
    path = Path(exchange.env["REX_DATA_DIR"]) / "settlement.sqlite3"
    deadline = time.monotonic() + 10
    while True:
        with sqlite3.connect(path) as db:
            rows = db.execute(
                "SELECT sender, status, reason FROM settlement_requests WHERE kind = ?", [kind]
            ).fetchall()
        if len(rows) >= 2 or time.monotonic() > deadline:
            return [tuple(r) for r in rows]
        time.sleep(0.2)


def test_settlement_ops_resolves_a_dispute_audited_as_the_login(running: Exchange) -> None:
    with running.client("alpha") as alpha, running.client("beta") as beta:
        ask = alpha.place("PRND-OX", "sell", 100, 500_000, wait=10)
        bid = beta.place("PRND-OX", "buy", 100, 500_000, wait=10)
    assert isinstance(ask, ExecutionReport) and isinstance(bid, ExecutionReport)
    trade_id = bid.trade_id
    assert trade_id is not None, bid
    member = running.members["beta"]
    deadline = time.monotonic() + 20
    while True:  # the trade must be booked before it can be disputed
        opened = running.rex(
            "dispute", "open", "--member", member, "--trade", trade_id, "--reason", "wrong grade"
        )
        if opened.returncode == 0 or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert opened.returncode == 0, opened.stderr
    dispute = opened.stdout.split()[1].rstrip(":")
    # A forged actor in the body is refused; the authenticated one resolves it.
    forged_body = {**body_of("dispute_resolve", dispute), "actor": "operator:li"}
    forged = as_operator(running, "settle", "dispute_resolve", forged_body)
    assert (forged["status"], forged["reason"]) == ("rejected", "malformed")
    answer = as_operator(running, "settle", "dispute_resolve", body_of("dispute_resolve", dispute))
    assert (answer["status"], answer["detail"]) == (
        "accepted",
        {"dispute_id": dispute, "state": "rejected", "reversed_entries": []},
    )
    shown = running.rex("dispute", "show", dispute)
    settle = running.operators["settle"]
    assert shown.returncode == 0, shown.stderr
    assert f"by operator:{settle}" in shown.stdout
    assert "operator:li" not in shown.stdout
