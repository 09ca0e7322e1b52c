"""Settlement's operator actions through real RabbitMQ, against `python -m settlement_worker`
on SQLite: `dispute_resolve`, `payment_release` and `payment_resolve` sent as settlement
requests by every kind of login -- an operator account with settlement_ops (allowed), with
market_ops or audit, a disabled account, a member, the services' `guest` (unroutable) -- each
answered on the operator's own answer stream; a dispute resolved this way is audited in the
store with the authenticated operator.

The same actions through the command line, `rex dispute resolve` and `rex payments
--release|--resolve` as the login of $REX_OPERATOR_URL: settlement_ops gets them done,
audited as `operator:<name>`; every other login is refused with what to do, and the store
is as it was."""

from __future__ import annotations

import dataclasses
import signal
import sqlite3
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import pika
import pika.exceptions
import pytest

from rex.protocol import CONTENT_TYPE, ExecutionReport, pack, unpack
from settlement_worker.payments import rules as pm
from settlement_worker.payments.sql import insert_payment, load_history, load_payment
from settlement_worker.store.sqlite import SqliteStore
from tests.settlement_worker.payments.test_rules import payment
from tests.settlement_worker.payments.test_unknown_review import in_review
from tests.system.conftest import (
    OPERATOR_PASSWORD,
    PASSWORD,
    ROOT,
    Exchange,
    wait_for_answer,
    write_settlement_config,
)

pytestmark = pytest.mark.broker

# The wire contract (docs/operators/accounts.md, docs/members/protocol.md), spelled out.
SETTLEMENT_REQUESTS = "rex.settlement.requests"
KINDS = ["dispute_resolve", "payment_release", "payment_resolve", "payment_mark_paid"]


@pytest.fixture(scope="module")
def running(exchange: Exchange) -> Iterator[Exchange]:
    config = Path(exchange.env["REX_CONFIG_DIR"])
    write_settlement_config(config)
    exchange.env.pop("REX_DATABASE_URL", None)  # SQLite
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
        "payment_mark_paid": {"payment_id": "P-none", "reference": "R1", "reason": "desk"},
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
    # guest, the services' login, has no account, so no queue is bound to its key: the
    # broker returns its request (mandatory), which no desk sees.
    with pytest.raises(pika.exceptions.UnroutableError):
        request(running, "guest", "guest", "guest", kind, body_of(kind), answers_of=None)
    # A member may not publish under an operator's name.
    with pytest.raises(pika.exceptions.ChannelClosedByBroker) as refused:
        settle = running.operators["settle"]
        request(running, member, PASSWORD, settle, kind, body_of(kind), answers_of=None)
    assert refused.value.reply_code == 403
    rows = settlement_requests(running, kind)
    assert (member, "rejected", "not_permitted") in rows
    assert not [row for row in rows if row[0] == "guest"]


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


def open_dispute(exchange: Exchange) -> str:
    """A trade between alpha and beta, disputed for beta by the settlement_ops account (`rex
    dispute open` goes through the authenticated path too): the dispute's id."""
    with exchange.client("alpha") as alpha, exchange.client("beta") as beta:
        ask = alpha.place("PRND-OX", "sell", 100, 500_000, wait=10)
        bid = beta.place("PRND-OX", "buy", 100, 500_000, wait=10)
    assert isinstance(ask, ExecutionReport) and isinstance(bid, ExecutionReport)
    trade_id = bid.trade_id
    assert trade_id is not None, bid
    member = exchange.members["beta"]
    deadline = time.monotonic() + 20
    while True:  # the trade must be booked before it can be disputed
        opened = rex_as(
            exchange, exchange.operator_url("settle"),
            "dispute", "open", "--member", member, "--trade", trade_id, "--reason", "wrong grade",
        )  # fmt: skip
        if opened.returncode == 0 or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert opened.returncode == 0, opened.stderr
    return opened.stdout.split()[1].rstrip(":")


def test_settlement_ops_resolves_a_dispute_audited_as_the_login(running: Exchange) -> None:
    dispute = open_dispute(running)
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


# ------------------------------------------------------------ the command line, as the login


@dataclasses.dataclass(frozen=True)
class Subjects:
    """What an operator acts on: an open dispute, a payment in manual review, one whose
    outcome the bank has not told (unknown_review)."""

    dispute: str
    review: str
    unknown: str


def store_of(exchange: Exchange) -> SqliteStore:
    return SqliteStore(Path(exchange.env["REX_DATA_DIR"]) / "settlement.sqlite3")


@pytest.fixture
def subjects(running: Exchange) -> Subjects:
    tag = uuid.uuid4().hex[:8]
    review = dataclasses.replace(
        payment(), payment_id=f"pay-cli-{tag}-r", state=pm.PaymentState.MANUAL_REVIEW
    )
    unknown = dataclasses.replace(in_review(), payment_id=f"pay-cli-{tag}-u")
    assert unknown.state is pm.PaymentState.UNKNOWN_REVIEW
    store = store_of(running)
    try:
        with store.transaction() as tx:
            insert_payment(tx, review)
            insert_payment(tx, unknown)
    finally:
        store.close()
    return Subjects(open_dispute(running), review.payment_id, unknown.payment_id)


#: The three commands, by the request kind each sends.
COMMANDS = {
    "dispute_resolve": lambda s: ("dispute", "resolve", s.dispute, "--reject", "--note", "ok"),
    "payment_release": lambda s: (
        "payments", "--release", s.review, "--bank", "icbc-baotou", "--note", "line back"
    ),
    "payment_resolve": lambda s: (
        "payments", "--resolve", s.unknown, "--failed", "--note", "bank: never arrived"
    ),
    "payment_mark_paid": lambda s: ("payments", "--mark-paid", s.review, "--reference", "R1"),
}  # fmt: skip


def rex_as(exchange: Exchange, url: str | None, *args: str) -> subprocess.CompletedProcess[str]:
    """`rex ARGS` with REX_OPERATOR_URL ``url`` (None: unset, so $REX_BROKER_URL's guest)."""
    env = {k: v for k, v in exchange.env.items() if k != "REX_OPERATOR_URL"}
    if url is not None:
        env["REX_OPERATOR_URL"] = url
    return subprocess.run(
        [sys.executable, "-m", "cli", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def state_of(exchange: Exchange, s: Subjects) -> tuple[object, ...]:
    """Everything the three actions could change: the dispute's row and audit, the two
    payments and their histories."""
    store = store_of(exchange)
    try:
        with store.transaction() as tx:
            dispute = tx.execute("SELECT * FROM disputes WHERE dispute_id = ?", [s.dispute])
            audit = tx.execute("SELECT * FROM audit_log ORDER BY seq")
            payments = [load_payment(tx, p) for p in (s.review, s.unknown)]
            histories = [load_history(tx, p) for p in (s.review, s.unknown)]
        return (dispute, audit, payments, histories)
    finally:
        store.close()


@pytest.mark.parametrize("kind", KINDS)
def test_the_command_as_settlement_ops_is_done_and_audited_as_the_login(
    running: Exchange, subjects: Subjects, kind: str
) -> None:
    settle = running.operators["settle"]
    done = rex_as(running, running.operator_url("settle"), *COMMANDS[kind](subjects))
    assert done.returncode == 0, done.stderr + running.log_tail()
    assert (
        done.stdout.strip()
        == {
            "dispute_resolve": f"{subjects.dispute} rejected: its subject settles again",
            "payment_release": f"released {subjects.review} on icbc-baotou: now new",
            "payment_resolve": f"{subjects.unknown} resolved: now failed",
            "payment_mark_paid": f"{subjects.review} marked paid (R1)",
        }[kind]
    )
    subject = {
        "dispute_resolve": subjects.dispute,
        "payment_release": subjects.review,
        "payment_mark_paid": subjects.review,
    }.get(kind, subjects.unknown)
    store = store_of(running)
    try:
        actors = store.query(
            "SELECT actor, action FROM audit_log WHERE subject_id = ? ORDER BY seq", [subject]
        )
    finally:
        store.close()
    assert actors[-1][0] == f"operator:{settle}", actors
    if kind == "dispute_resolve":
        shown = running.rex("dispute", "show", subjects.dispute)
        assert f"by operator:{settle}: ok" in shown.stdout, shown.stdout + shown.stderr


def member_url(exchange: Exchange) -> str:
    member = exchange.members["alpha"]
    return f"amqp://{member}:{PASSWORD}@127.0.0.1:5672/{quote(exchange.vhost, safe='')}"


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize(("short", "role"), [("market", "market_ops"), ("audit", "audit")])
def test_the_command_without_settlement_ops_is_refused_and_changes_nothing(
    running: Exchange, subjects: Subjects, kind: str, short: str, role: str
) -> None:
    before = state_of(running, subjects)
    done = rex_as(running, running.operator_url(short), *COMMANDS[kind](subjects))
    prog = "rex dispute" if kind == "dispute_resolve" else "rex payments"
    name = running.operators[short]
    assert (done.returncode, done.stdout, done.stderr) == (
        1,
        "",
        f"{prog}: refused (not_permitted): {kind} needs the role settlement_ops; operator "
        f"{name!r} has {role}\n",
    )
    assert state_of(running, subjects) == before


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("who", ["member", "guest", "disabled"])
def test_the_command_as_no_usable_operator_account_is_refused_and_changes_nothing(
    running: Exchange, subjects: Subjects, kind: str, who: str
) -> None:
    before = state_of(running, subjects)
    url = {
        "member": member_url(running),
        "guest": None,  # $REX_BROKER_URL: the services' login
        "disabled": running.operator_url("gone"),
    }[who]
    done = rex_as(running, url, *COMMANDS[kind](subjects))
    prog = "rex dispute" if kind == "dispute_resolve" else "rex payments"
    if who == "disabled":  # provisioning leaves a disabled account no broker login
        name = running.operators["gone"]
        assert done.returncode == 5, done.stderr
        assert f"refused the login of user {name!r}" in done.stderr
    else:
        login, url_from = {
            "member": (running.members["alpha"], "$REX_OPERATOR_URL"),
            "guest": ("guest", "$REX_BROKER_URL"),
        }[who]
        assert done.returncode == 2, done.stderr
        assert done.stderr.startswith(
            f"{prog}: {url_from}: user {login!r} is no operator account of "
        ), done.stderr
        assert "set REX_OPERATOR_URL to amqp://<operator>:<password>@" in done.stderr
    assert done.stdout == ""
    assert state_of(running, subjects) == before


def test_the_command_names_no_actor(running: Exchange, subjects: Subjects) -> None:
    """Who acts is the login: a name given on the command line is refused, not recorded."""
    url = running.operator_url("settle")
    before = state_of(running, subjects)
    given = [
        ("dispute", "resolve", subjects.dispute, "--operator", "li", "--reject", "--note", "x"),
        ("payments", "--resolve", subjects.unknown, "--failed", "--note", "x", "--actor", "li"),
    ]
    for args in given:
        done = rex_as(running, url, *args)
        assert done.returncode == 2, (args, done.stderr)
    assert state_of(running, subjects) == before


def test_with_the_worker_down_the_command_says_so_and_the_request_waits(
    running: Exchange, subjects: Subjects
) -> None:
    """Exit 3 naming the worker; the request stays queued and is applied, as the login,
    once the worker is back (docs/operators/accounts.md, "From the command line")."""
    running.kill("settlement", signal.SIGTERM)
    try:
        args = COMMANDS["dispute_resolve"](subjects)
        done = rex_as(running, running.operator_url("settle"), *args, "--timeout", "1")
        assert (done.returncode, done.stdout) == (3, ""), done.stderr
        assert done.stderr == (
            "rex dispute: no answer to dispute_resolve in 1 s (the request was taken by the "
            "broker): check that the settlement worker runs: it serves operator requests\n"
        )
    finally:
        running.start("settlement", "settlement_worker", "--no-payer")
    settle = running.operators["settle"]
    deadline = time.monotonic() + 30
    while True:
        shown = running.rex("dispute", "show", subjects.dispute)
        if f"by operator:{settle}: ok" in shown.stdout or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert "rejected  trade" in shown.stdout and f"by operator:{settle}: ok" in shown.stdout, (
        shown.stdout + running.log_tail()
    )
