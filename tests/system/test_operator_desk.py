"""Operators are people with roles, through real RabbitMQ: every market action (halt,
resume, close) tried with every kind of login -- market_ops (allowed), settlement_ops,
audit, a disabled account, a member, the services' `guest` (refused, each with its reason)
-- and each audited with the actor the broker verified, whatever the request says."""

from __future__ import annotations

import subprocess
import sys
import time
import uuid
from collections.abc import Iterator

import pika
import pika.exceptions
import pytest

from rex import logs
from rex.protocol import CONTENT_TYPE, ExecutionReport, pack, unpack
from tests.system.conftest import OPERATOR_PASSWORD, PASSWORD, ROOT, Exchange, wait_for_answer

pytestmark = pytest.mark.broker

ACTIONS = ["halt", "resume", "close"]
# The wire contract (docs/operators/accounts.md), spelled out: this test must not follow a
# change of it silently.
REQUESTS = "rex.operator.requests"
REQUEST_TYPE = "operator_request"
ANSWER_TYPE = "operator_answer"
Answer = dict[str, object]


def answers_stream(operator: str) -> str:
    return f"rex.operator.{operator}.answers"


@pytest.fixture(scope="module")
def running(exchange: Exchange) -> Iterator[Exchange]:
    exchange.start("gateway", "gateway", "--tick-interval", "0.5")
    exchange.start("engine-main", "engine", "--group", "main")
    with exchange.client("gamma") as gamma:
        try:
            wait_for_answer(gamma, "PRND-OX")
            wait_for_answer(gamma, "DY-OX")
        except TimeoutError:
            pytest.fail("exchange did not come up:\n" + exchange.log_tail())
    yield exchange


def rex(exchange: Exchange, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "cli", *args],
        cwd=ROOT,
        env={**exchange.env, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


def audit_lines(exchange: Exchange, request_id: str, timeout: float = 10.0) -> list[dict[str, str]]:
    """The gateway's audit lines of one request (waiting for the first to be written)."""
    deadline = time.monotonic() + timeout
    while True:
        text = (exchange.logs / "gateway.log").read_text(errors="replace")
        found = [
            entry
            for entry in map(logs.parse, text.splitlines())
            if entry is not None
            and entry["logger"] == "rex.gateway.operators"
            and entry.get("request_id") == request_id
        ]
        if found or time.monotonic() > deadline:
            return found
        time.sleep(0.1)


def publish_raw(
    exchange: Exchange,
    user: str,
    password: str,
    routing_key: str,
    body: bytes,
    *,
    message_id: str,
    user_id: str | None,
    answers_of: str | None = None,
) -> Answer | None:
    """Publish one request as ``user``; the answer read from ``answers_of``'s stream, if
    given (None if none came in 5 s)."""
    params = pika.URLParameters(exchange.url)
    params.credentials = pika.PlainCredentials(user, password)
    connection = pika.BlockingConnection(params)
    found: list[Answer] = []
    try:
        if answers_of is not None:
            reader = connection.channel()
            reader.basic_qos(prefetch_count=50)

            def on_answer(channel: object, method: object, props: object, raw: bytes) -> None:
                reader.basic_ack(method.delivery_tag)  # type: ignore[attr-defined]
                if (props.type, props.message_id) == (ANSWER_TYPE, f"op-{message_id}"):  # type: ignore[attr-defined]
                    found.append(unpack(raw))

            reader.basic_consume(
                answers_stream(answers_of),
                on_answer,
                arguments={"x-stream-offset": "next"},
            )
        channel = connection.channel()
        channel.confirm_delivery()
        channel.basic_publish(
            REQUESTS,
            routing_key,
            body,
            pika.BasicProperties(
                content_type=CONTENT_TYPE,
                delivery_mode=2,
                type=REQUEST_TYPE,
                message_id=message_id,
                user_id=user_id,
                timestamp=int(time.time()),
            ),
            mandatory=True,
        )
        deadline = time.monotonic() + 5
        while answers_of is not None and not found and time.monotonic() < deadline:
            connection.process_data_events(time_limit=0.1)
        return found[0] if found else None
    finally:
        if connection.is_open:
            connection.close()


def ask(exchange: Exchange, short: str, action: str, product: str) -> tuple[Answer, str]:
    """An operator account's request through the desk: (its answer, its request id)."""
    name = exchange.operators[short]
    request_id = f"t-{uuid.uuid4().hex}"
    answer = publish_raw(
        exchange,
        name,
        OPERATOR_PASSWORD,
        f"{name}.{action}",
        pack({"product": product}),
        message_id=request_id,
        user_id=name,
        answers_of=name,
    )
    assert answer is not None, "no answer from the operator desk"
    assert answer["request_id"] == request_id
    return answer, request_id


def place(exchange: Exchange, product: str = "DY-OX") -> ExecutionReport:
    with exchange.client("alpha") as alpha:
        result = alpha.place(product, "buy", 100, 1_674_000, time_in_force="IOC", wait=10)
    assert isinstance(result, ExecutionReport), result
    return result


@pytest.mark.parametrize("action", ACTIONS)
@pytest.mark.parametrize("short", ["settle", "audit"])
def test_an_operator_without_market_ops_is_refused_and_audited(
    running: Exchange, short: str, action: str
) -> None:
    name = running.operators[short]
    answer, request_id = ask(running, short, action, "DY-OX")
    assert (answer["verdict"], answer["reason"]) == ("refused", "role_required")
    role = "settlement_ops" if short == "settle" else "audit"
    assert answer["text"] == f"{action} needs the role market_ops; operator {name!r} has {role}"
    [line] = audit_lines(running, request_id)
    assert (line["actor"], line["action"], line["product"], line["verdict"]) == (
        f"operator:{name}",
        action,
        "DY-OX",
        "role_required",
    )
    assert line["level"] == "WARNING"


@pytest.mark.parametrize("action", ACTIONS)
def test_the_command_says_the_role_needed(running: Exchange, action: str) -> None:
    done = rex(running, action, "DY-OX", REX_OPERATOR_URL=running.operator_url("audit"))
    assert done.returncode == 1, done.stderr
    assert done.stderr == (
        f"rex {action}: refused (role_required): {action} needs the role market_ops; "
        f"operator {running.operators['audit']!r} has audit\n"
    )
    assert done.stdout == ""


@pytest.mark.parametrize("action", ACTIONS)
def test_a_disabled_account_cannot_log_in(running: Exchange, action: str) -> None:
    """`rex provision` made no user for it (and deletes the user of one disabled later)."""
    done = rex(running, action, "DY-OX", REX_OPERATOR_URL=running.operator_url("gone"))
    assert done.returncode == 5, done.stderr
    assert f"refused the login of user {running.operators['gone']!r}" in done.stderr


@pytest.mark.parametrize("action", ACTIONS)
def test_a_member_may_not_publish_operator_requests(running: Exchange, action: str) -> None:
    member = running.members["alpha"]
    with pytest.raises(pika.exceptions.ChannelClosedByBroker) as refused:
        publish_raw(
            running,
            member,
            PASSWORD,
            f"{member}.{action}",
            pack({"product": "DY-OX"}),
            message_id=f"m-{uuid.uuid4().hex}",
            user_id=member,
        )
    assert refused.value.reply_code == 403
    # Nor with the rex command.
    url = running.url.replace("guest:guest", f"{member}:{PASSWORD}")
    done = rex(running, action, "DY-OX", REX_OPERATOR_URL=url)
    assert done.returncode == 2
    assert f"user {member!r} is no operator account of" in done.stderr


@pytest.mark.parametrize("action", ACTIONS)
def test_guest_is_not_an_operator(running: Exchange, action: str) -> None:
    """The services' (and broker administrator's) login may publish anywhere; the desk
    still refuses it, and says so in the audit log."""
    request_id = f"g-{uuid.uuid4().hex}"
    publish_raw(
        running,
        "guest",
        "guest",
        f"{running.operators['market']}.{action}",
        pack({"product": "DY-OX"}),
        message_id=request_id,
        user_id="guest",
    )
    [line] = audit_lines(running, request_id)
    assert (line["actor"], line["action"], line["verdict"]) == (
        "login:guest",
        action,
        "not_an_operator",
    )
    # And the command, logged in as guest ($REX_BROKER_URL), says it is no account.
    done = rex(running, action, "DY-OX")
    assert done.returncode == 2
    assert "user 'guest' is no operator account of" in done.stderr
    assert place(running).reason == "immediate_or_cancel"  # DY-OX still trades


def test_a_forged_actor_changes_nothing(running: Exchange) -> None:
    market, audit = running.operators["market"], running.operators["audit"]
    # A field naming someone else is refused, and the audit line names who sent it.
    request_id = f"f-{uuid.uuid4().hex}"
    answer = publish_raw(
        running,
        audit,
        OPERATOR_PASSWORD,
        f"{audit}.halt",
        pack({"product": "DY-OX", "actor": market}),
        message_id=request_id,
        user_id=audit,
        answers_of=audit,
    )
    assert answer is not None and (answer["verdict"], answer["reason"]) == (
        "refused",
        "bad_request",
    )
    [line] = audit_lines(running, request_id)
    assert (line["actor"], line["verdict"]) == (f"operator:{audit}", "bad_request")
    # Another's user_id: the broker refuses it (PRECONDITION_FAILED).
    with pytest.raises(pika.exceptions.ChannelClosedByBroker) as forged:
        publish_raw(
            running,
            audit,
            OPERATOR_PASSWORD,
            f"{audit}.halt",
            pack({"product": "DY-OX"}),
            message_id=f"f-{uuid.uuid4().hex}",
            user_id=market,
        )
    assert forged.value.reply_code == 406
    # Another's routing key: the topic permission refuses it.
    with pytest.raises(pika.exceptions.ChannelClosedByBroker) as foreign_key:
        publish_raw(
            running,
            audit,
            OPERATOR_PASSWORD,
            f"{market}.halt",
            pack({"product": "DY-OX"}),
            message_id=f"f-{uuid.uuid4().hex}",
            user_id=audit,
        )
    assert foreign_key.value.reply_code == 403
    assert place(running).reason == "immediate_or_cancel"  # nothing was halted


def test_an_unknown_action_and_product_are_refused_with_their_reason(running: Exchange) -> None:
    audit = running.operators["audit"]
    for key, body, reason in [
        (f"{audit}.delist", pack({"product": "DY-OX"}), "unknown_action"),
        (f"{audit}.halt", b"\xc1", "bad_request"),
    ]:
        request_id = f"u-{uuid.uuid4().hex}"
        answer = publish_raw(
            running,
            audit,
            OPERATOR_PASSWORD,
            key,
            body,
            message_id=request_id,
            user_id=audit,
            answers_of=audit,
        )
        assert answer is not None and answer["reason"] == reason
    done, _ = ask(running, "market", "halt", "NO-SUCH")
    assert (done["verdict"], done["reason"]) == ("refused", "unknown_product")


def test_market_ops_halts_closes_and_resumes(running: Exchange) -> None:
    """Allowed: the entry is in DY-OX's input log (the engine acts on it), and audited."""
    url = running.operator_url("market")
    market = running.operators["market"]
    halted = rex(running, "halt", "DY-OX", REX_OPERATOR_URL=url)
    assert (halted.returncode, halted.stdout, halted.stderr) == (0, "DY-OX: halted\n", "")
    assert (place(running).status, place(running).reason) == ("rejected", "product_halted")
    closed = rex(running, "close", "DY-OX", REX_OPERATOR_URL=url)
    assert (closed.returncode, closed.stdout) == (0, "DY-OX: closed\n")
    assert place(running).reason == "product_closed"
    resumed = rex(running, "resume", "DY-OX", REX_OPERATOR_URL=url)
    assert (resumed.returncode, resumed.stdout) == (0, "DY-OX: open\n")
    assert place(running).reason == "immediate_or_cancel"
    answer, request_id = ask(running, "market", "resume", "DY-OX")
    assert answer["verdict"] == "done"
    [line] = audit_lines(running, request_id)
    assert (line["actor"], line["action"], line["product"], line["verdict"], line["level"]) == (
        f"operator:{market}",
        "resume",
        "DY-OX",
        "done",
        "INFO",
    )
