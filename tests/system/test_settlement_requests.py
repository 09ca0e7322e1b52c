"""Settlement requests on the real RabbitMQ, against `python -m settlement_worker` on SQLite
and on PostgreSQL: provisioned members change their own receipt limits through the SDK and
`rex limits`, the broker vouching for who sent each request (user_id); an operator account
with settlement_ops changes a member's (and guest, no account, may not); the member is
answered on its own queue; a request with no user_id is dead-lettered; a bill that paid a
trade is endorsed on by its holder and seen by the next.
A vhost, members and a store of their own per backend, removed afterwards."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import pika
import pytest

from rex import topology
from rex.client import Client, OperatorClient
from rex.config import ProcessConfig
from rex.environment import REX_BROKER_ADMIN_URL
from rex.protocol import CONTENT_TYPE, TradeMessage, encode, pack
from rex.provision import BrokerAdmin, provision
from rex.settlement_protocol import SettlementAnswer
from settlement_worker.store.postgres import PostgresStore
from tests.settlement_worker.helpers import DATABASE_URL

pytestmark = pytest.mark.broker

ROOT = Path(__file__).resolve().parents[2]
ADMIN_URL = REX_BROKER_ADMIN_URL.get()
PASSWORD = "req-secret"
OPERATOR_PASSWORD = "req-operator-secret"
OPERATOR_PASSWORD_ENV = "REX_PW_REQ_OPERATOR"
# Member a pays with 90-day ICBC bills; c and d (the bill test's alone) take them.
SETTLEMENT_TOML = """
[fees]
default = {{ buyer_bps = 2, seller_bps = 2 }}

[[banks]]
id = "icbc-baotou"
name = "Industrial and Commercial Bank of China, Baotou Branch"
city = "Baotou"

[payment]
bank = "icbc-baotou"

[[members]]
id = "{a}"
pays = {{ method = "bank_acceptance", acceptor = "icbc-baotou", tenor_days = 90 }}

[[members]]
id = "{c}"
receives = {{ accept_bills = true }}

[[members]]
id = "{d}"
receives = {{ accept_bills = true }}
"""


@dataclass
class Site:
    url: str
    env: dict[str, str]
    a: str
    b: str
    c: str
    d: str
    logs: Path
    operator: str  # an operator account with the role settlement_ops
    operator_url: str  # its login (REX_OPERATOR_URL)

    def client(self, member: str) -> Client:
        return Client(member, PASSWORD, self.url)

    def rex(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "cli", *args],
            cwd=ROOT,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=60,
        )


def wait_until_answering(site: Site, timeout: float = 60.0) -> None:
    """Ask until the worker answers (it declares its queue and starts consuming)."""
    deadline = time.monotonic() + timeout
    with site.client(site.a) as client:
        while True:
            try:
                client.settlement_settings(wait=2.0)
                return
            except TimeoutError:
                if time.monotonic() > deadline:
                    raise AssertionError(site.logs.read_text()[-3000:]) from None


@pytest.fixture(
    scope="module", params=["sqlite", pytest.param("postgres", marks=pytest.mark.database)]
)
def site(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Site]:
    tag = uuid.uuid4().hex[:8]
    vhost = f"rex-req-{tag}"
    admin = BrokerAdmin(ADMIN_URL)
    admin.put_vhost(vhost)
    admin.put_permissions(vhost, "guest", ".*", ".*", ".*")
    config = tmp_path_factory.mktemp("config")
    data = tmp_path_factory.mktemp("data")
    a, b, c, d = (f"req{tag}-{x}" for x in "abcd")
    for name in ("products.toml", "holidays.toml"):
        shutil.copy(ROOT / "config" / name, config / name)
    (config / "members.toml").write_text(
        "".join(
            f'[[members]]\nid = "{m}"\nname = "Firm {m}"\npassword = "{PASSWORD}"\n\n'
            for m in (a, b, c, d)
        )
    )
    (config / "settlement.toml").write_text(SETTLEMENT_TOML.format(a=a, c=c, d=d))
    operator = f"ops{tag}"
    (config / "operators.toml").write_text(
        f'[[operators]]\nname = "{operator}"\ndisplay_name = "Settlement desk"\n'
        f'roles = ["settlement_ops"]\npassword_env = "{OPERATOR_PASSWORD_ENV}"\n'
    )
    url = f"amqp://guest:guest@127.0.0.1:5672/{quote(vhost, safe='')}"
    operator_url = url.replace("guest:guest", f"{operator}:{OPERATOR_PASSWORD}")
    env = {
        **os.environ,
        "REX_BROKER_URL": url,
        "REX_OPERATOR_URL": operator_url,
        OPERATOR_PASSWORD_ENV: OPERATOR_PASSWORD,
        "REX_CONFIG_DIR": str(config),
        "REX_DATA_DIR": str(data),
        "REX_METRICS_PORT": "0",
        "PYTHONUNBUFFERED": "1",
    }
    env.pop("REX_DATABASE_URL", None)
    schema = None
    if request.param == "postgres":
        schema = f"rex_test_{tag}"
        PostgresStore(DATABASE_URL, schema=schema).close()  # the worker migrates it
        env["REX_DATABASE_URL"] = f"{DATABASE_URL}?options=-csearch_path%3D{schema}"
    provision(ProcessConfig(config, data, url, ADMIN_URL), env)
    logs = tmp_path_factory.mktemp("logs") / "settlement.log"
    with open(logs, "ab") as log:
        worker = subprocess.Popen(
            [sys.executable, "-m", "settlement_worker", "--no-payer"],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=log,
        )
    running = Site(url, env, a, b, c, d, logs, operator, operator_url)
    try:
        wait_until_answering(running)
        yield running
    finally:
        worker.send_signal(signal.SIGTERM)
        worker.wait(timeout=20)
        for user in (a, b, c, d, operator):
            admin.delete_user(user)
        admin.delete_vhost(vhost)
        if schema is not None:
            cleanup = PostgresStore(DATABASE_URL, schema=schema)
            with cleanup.transaction() as tx:
                tx.execute(f'DROP SCHEMA "{schema}" CASCADE')
            cleanup.close()


def test_a_member_changes_its_own_limits_and_reads_them_back(site: Site) -> None:
    with site.client(site.a) as client:
        answer = client.set_receipt_limits(
            {"accept_bills": True, "max_bill_face_minor": 10_000_000},
            reason="board decision 2026-11-18",
        )
        assert isinstance(answer, SettlementAnswer)
        assert answer.accepted and answer.member == site.a
        version = answer.detail["version"]
        shown = client.settlement_settings()
    assert shown.detail["version"] == version
    assert shown.detail["receives"]["accept_bills"] is True
    assert shown.detail["receives"]["max_bill_face_minor"] == 10_000_000


def test_a_member_may_not_change_another_members_limits(site: Site) -> None:
    with site.client(site.a) as client:
        answer = client.set_receipt_limits({"accept_bills": True}, reason="x", member=site.b)
    assert isinstance(answer, SettlementAnswer)
    assert (answer.status, answer.reason) == ("rejected", "not_permitted")
    with site.client(site.b) as client:
        assert client.settlement_settings().detail["version"] == 0


def test_an_operator_changes_a_members_limits_and_the_member_is_told(site: Site) -> None:
    with OperatorClient(site.operator_url, site.operator) as operator:
        answer = operator.set_receipt_limits(
            {"max_tenor_days": 30}, reason="risk: acceptor downgraded", member=site.b
        )
    assert isinstance(answer, SettlementAnswer)
    assert answer.accepted and answer.sender == site.operator and answer.member == site.b
    with site.client(site.b) as client:
        told = client.await_settlement_answer(answer.request_id, timeout=10)
    assert told.accepted and told.detail["receives"]["max_tenor_days"] == 30


def test_rex_limits_shows_and_refuses_an_invalid_change(site: Site) -> None:
    shown = site.rex("limits", "show", "--member", site.a)
    assert shown.returncode == 0, shown.stderr
    assert f"{site.a}  version" in shown.stdout and "accept_bills=true" in shown.stdout
    refused = site.rex(
        "limits", "set", "--member", site.a, "--max-tenor-days", "999", "--reason", "longer"
    )
    assert refused.returncode == 1
    assert "rejected: invalid_limits (field max_tenor_days)" in refused.stdout
    changed = site.rex(
        "limits", "set", "--member", site.b, "--operator", "--accept-bills", "true",
        "--accepted-acceptors", "icbc-baotou", "--reason", "ops ticket 42", "--json",
    )  # fmt: skip
    assert changed.returncode == 0, changed.stderr + changed.stdout
    assert '"accepted_acceptors": ["icbc-baotou"]' in changed.stdout


def test_rex_limits_operator_as_the_services_login_is_refused(site: Site) -> None:
    """Without REX_OPERATOR_URL the login is $REX_BROKER_URL's guest, which is no operator
    account: it may no longer act for a member (it did while REX_OPERATORS existed)."""
    env = {k: v for k, v in site.env.items() if k != "REX_OPERATOR_URL"}
    refused = subprocess.run(
        [sys.executable, "-m", "cli", "limits", "show", "--member", site.a, "--operator"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert refused.returncode == 2, refused.stdout + refused.stderr
    assert "user 'guest' is no operator account" in refused.stderr


def test_a_request_without_user_id_is_dead_lettered(site: Site) -> None:
    connection = pika.BlockingConnection(pika.URLParameters(site.url))
    try:
        channel = connection.channel()
        channel.confirm_delivery()
        before = channel.queue_declare(topology.DEAD_LETTERS, passive=True).method.message_count
        channel.basic_publish(
            topology.SETTLEMENT_REQUESTS,
            topology.settlement_request_key(site.a, "show_settlement_settings"),
            pack({}),
            pika.BasicProperties(
                content_type=CONTENT_TYPE, type="show_settlement_settings", message_id="anon-1"
            ),
            mandatory=True,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            count = channel.queue_declare(topology.DEAD_LETTERS, passive=True).method.message_count
            if count > before:
                break
            time.sleep(0.1)
        assert count == before + 1
    finally:
        connection.close()


def publish_trade(site: Site, buyer: str, seller: str, trade_id: str = "PRND-OX-1") -> None:
    """A trade as the engine publishes it, dated now: the bill is issued today."""
    now = time.time_ns()
    trade = TradeMessage(
        trade_id=trade_id,
        product="PRND-OX",
        price=415_000,
        quantity=100,
        buyer=buyer,
        seller=seller,
        buy_order_id=1,
        sell_order_id=2,
        aggressor="buy",
        sequence=1,
        timestamp=now,
        currency="CNY",
    )
    connection = pika.BlockingConnection(pika.URLParameters(site.url))
    try:
        channel = connection.channel()
        channel.confirm_delivery()
        channel.basic_publish(
            topology.TRADES,
            trade.product,
            encode(trade),
            pika.BasicProperties(
                content_type=CONTENT_TYPE,
                delivery_mode=2,
                type=trade.kind,
                message_id=trade.trade_id,
                timestamp=now // 10**9,
            ),
            mandatory=True,
        )
    finally:
        connection.close()


def test_a_bill_that_paid_a_trade_is_endorsed_on_and_the_endorsee_sees_it(site: Site) -> None:
    publish_trade(site, buyer=site.a, seller=site.c)  # a pays c 41,500.00 CNY by bill
    with site.client(site.c) as payee:
        deadline = time.monotonic() + 30
        while not (held := payee.bills().detail["bills"]):
            assert time.monotonic() < deadline, site.logs.read_text()[-3000:]
            time.sleep(0.2)
        (bill,) = held
        assert (bill["drawer"], bill["holder"], bill["face"]) == (site.a, site.c, 4_150_000)
        answer = payee.endorse_bill(bill["bill_id"], site.d, reason="pays invoice D-7")
        assert isinstance(answer, SettlementAnswer)
        assert answer.accepted, answer
    with site.client(site.d) as endorsee:
        (seen,) = endorsee.bills().detail["bills"]
        told = [e for e in endorsee.settlement_events(timeout=2.0) if e.event == "bill_endorsed"]
    assert (seen["bill_id"], seen["holder"], seen["roles"]) == (bill["bill_id"], site.d, ["holder"])
    assert [(c["from"], c["to"]) for c in seen["chain"]] == [(site.c, site.d)]
    assert [e.subject_id for e in told] == [bill["bill_id"]]
    listed = site.rex("my-bills", "list", "--member", site.d)
    assert listed.returncode == 0, listed.stderr
    assert bill["bill_id"] in listed.stdout and f"{site.c} -> {site.d}" in listed.stdout
    back = site.rex(
        "my-bills", "endorse", bill["bill_id"], "--to", site.a, "--member", site.d,
        "--reason", "return to drawer",
    )  # fmt: skip
    assert back.returncode == 1, back.stderr
    assert "rejected: bill_rule (receipt_limits)" in back.stdout


def test_a_message_id_too_long_is_refused_and_nobody_else_is_held_up(site: Site) -> None:
    """Issue 12: a request whose 250-character message_id made an answer id AMQP cannot
    carry stopped the outbox -- no answers, no events, for anyone. Now the sender is told
    why (``message_id_too_long``), and the next member's request and events go on."""
    long_id = "m" * 250
    with site.client(site.b) as sender:
        connection = pika.BlockingConnection(
            pika.URLParameters(site.url.replace("guest:guest", f"{site.b}:{PASSWORD}"))
        )
        try:
            channel = connection.channel()
            channel.confirm_delivery()
            channel.basic_publish(
                topology.SETTLEMENT_REQUESTS,
                topology.settlement_request_key(site.b, "show_settlement_settings"),
                pack({}),
                pika.BasicProperties(
                    content_type=CONTENT_TYPE,
                    delivery_mode=2,
                    type="show_settlement_settings",
                    message_id=long_id,
                    user_id=site.b,
                ),
                mandatory=True,
            )
        finally:
            connection.close()
        refused = sender.await_settlement_answer(long_id, timeout=15)
    assert (refused.status, refused.reason, refused.request_id) == (
        "rejected",
        "message_id_too_long",
        long_id,
    )
    assert "at most 128" in (refused.text or "")
    with site.client(site.c) as other:  # another member, after it: answered
        assert other.settlement_settings(wait=15).accepted
    publish_trade(site, buyer=site.b, seller=site.c, trade_id="PRND-OX-12")
    with site.client(site.c) as payee:  # and the events of what books next go out
        deadline = time.monotonic() + 15
        seen: list[str] = []
        while "obl-PRND-OX-12" not in seen:
            assert time.monotonic() < deadline, site.logs.read_text()[-3000:]
            seen += [e.subject_id for e in payee.settlement_events(timeout=1.0)]
