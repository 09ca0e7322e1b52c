"""Each service as its own broker user (issue 12): `rex provision` makes the users, the
gateway, engine, settlement worker and two bank simulators log in with them, a pair of
orders trades and is paid end to end, and each user is refused what it does not need.

The services' REX_BROKER_URL and REX_BROKER_ADMIN_URL hold credentials that do not work, so
a service that still logged in as the administrator (or read the admin URL) would fail.
A vhost and a deployment of its own (users ``<deployment>.rex-gateway``, ...), removed
afterwards, also when a step fails.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
import urllib.parse
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pika
import pika.exceptions
import pytest

from rex import topology
from rex.client import Client
from rex.config import ProcessConfig
from rex.environment import REX_BROKER_ADMIN_URL
from rex.identity import login_of
from rex.protocol import ExecutionReport
from rex.provision import BrokerAdmin, BrokerAdminError, provision
from rex.service_users import SERVICE_USERS, Service, service_user

pytestmark = pytest.mark.broker

ROOT = Path(__file__).resolve().parents[2]
ADMIN_URL = REX_BROKER_ADMIN_URL.get()
ACCESS_REFUSED = 403
BANKS = ("icbc-baotou", "boc-ganzhou")  # the buyer's bank and its fallback (config/)
BUYER, SELLER = "baotou-metals", "ganzhou-magnet"  # a cash trade: the seller takes no bills
PASSWORDS = {"baotou-metals": "svc-metals", "ganzhou-magnet": "demo-ganzhou"}  # config/
NO_ADMIN = "amqp://nobody:not-the-password@127.0.0.1:5672/%2F"


@dataclass
class Site:
    vhost: str
    deployment: str
    env: dict[str, str]  # the services'
    data: Path
    passwords: dict[Service, str]
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    def url(self, service: Service) -> str:
        user = service_user(service)
        return self.env[user.url.name]

    def member_url(self) -> str:
        return f"amqp://127.0.0.1:5672/{urllib.parse.quote(self.vhost, safe='')}"

    def client(self, member: str) -> Client:
        login = login_of(member, self.deployment)
        return Client(member, PASSWORDS[member], self.member_url(), login=login)

    def start(self, name: str, *args: str) -> None:
        log = open(self.data / f"{name}.log", "ab")  # noqa: SIM115 - lives with the process
        self.processes[name] = subprocess.Popen(
            [sys.executable, "-m", *args], cwd=ROOT, env=self.env, stdout=log, stderr=log
        )

    def logs(self) -> str:
        return "\n".join(
            f"--- {p.name}\n{p.read_text()[-2500:]}" for p in sorted(self.data.glob("*.log"))
        )


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    tag = uuid.uuid4().hex[:8]
    vhost, deployment = f"rex-svc-{tag}", f"svc{tag}"
    admin = BrokerAdmin(ADMIN_URL)
    data = tmp_path_factory.mktemp("data")
    admin_url = f"amqp://guest:guest@127.0.0.1:5672/{urllib.parse.quote(vhost, safe='')}"
    passwords = {u.service: f"{u.name}-{uuid.uuid4().hex[:12]}" for u in SERVICE_USERS}
    base = {
        **os.environ,
        "REX_CONFIG_DIR": str(ROOT / "config"),
        "REX_DATA_DIR": str(data),
        "REX_DEPLOYMENT": deployment,
        "REX_PW_BAOTOU_METALS": PASSWORDS[BUYER],
        "REX_PW_OPERATOR_LI_WEI": f"op-{uuid.uuid4().hex[:12]}",  # config/operators.toml
        "REX_METRICS_PORT": "0",
        "PYTHONUNBUFFERED": "1",
    }
    base.pop("REX_DATABASE_URL", None)
    # What only `rex provision` gets: the administrator, and the passwords to give.
    provision_env = {
        **base,
        "REX_BROKER_URL": admin_url,
        **{u.password.name: passwords[u.service] for u in SERVICE_USERS},
    }
    # What the services get: their own URLs; the shared ones do not log in.
    services_env = {
        **base,
        "REX_BROKER_URL": NO_ADMIN,
        "REX_BROKER_ADMIN_URL": "http://nobody:not-the-password@127.0.0.1:15672",
    }
    for user in SERVICE_USERS:
        login = urllib.parse.quote(user.login(deployment), safe="")
        services_env[user.url.name] = (
            f"amqp://{login}:{passwords[user.service]}@127.0.0.1:5672/"
            f"{urllib.parse.quote(vhost, safe='')}"
        )
    running = Site(vhost, deployment, services_env, data, passwords)
    process_config = ProcessConfig(ROOT / "config", data, admin_url, ADMIN_URL, deployment)
    admin.put_vhost(vhost)
    try:  # from here on everything made is removed, also when a step fails
        admin.put_permissions(vhost, "guest", ".*", ".*", ".*")
        report = provision(process_config, provision_env, require_service_users=True)
        assert {s.service for s in report.services} == set(Service)
        yield running
    finally:
        for process in running.processes.values():
            process.send_signal(signal.SIGTERM)
        for process in running.processes.values():
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
        for member in process_config.members():
            admin.delete_user(login_of(member, deployment))
        for operator in process_config.operators():
            admin.delete_user(login_of(operator, deployment))
        for user in SERVICE_USERS:
            admin.delete_user(user.login(deployment))
        admin.delete_vhost(vhost)


def _report(result: ExecutionReport | str) -> ExecutionReport:
    assert isinstance(result, ExecutionReport), result
    return result


def _confirmed_payments(db: Path) -> int:
    if not db.exists():
        return 0
    try:
        with sqlite3.connect(db) as connection:
            row = connection.execute("SELECT COUNT(*) FROM payments WHERE state = 'confirmed'")
            return int(row.fetchone()[0])
    except sqlite3.OperationalError:
        return 0


@pytest.fixture(scope="module")
def running(site: Site) -> Site:
    for bank in BANKS:
        site.start(f"bank-{bank}", "settlement_worker.payments.bank_sim", "--bank", bank)
    site.start("settlement", "settlement_worker")
    site.start("gateway", "gateway", "--tick-interval", "0.5")
    site.start("engine", "engine", "--group", "main")
    deadline = time.monotonic() + 60
    with site.client(BUYER) as buyer:
        while True:
            for name, process in site.processes.items():
                assert process.poll() is None, f"{name} ended:\n{site.logs()}"
            try:
                answer = buyer.place("PRND-OX", "buy", 100, 380_000, time_in_force="IOC", wait=3)
                assert isinstance(answer, ExecutionReport), answer
                break
            except TimeoutError:
                assert time.monotonic() < deadline, f"no answer:\n{site.logs()}"
    return site


def test_an_order_pair_trades_and_is_paid_with_each_service_as_its_own_user(
    running: Site,
) -> None:
    with running.client(SELLER) as seller, running.client(BUYER) as buyer:
        ask = _report(seller.place("PRND-OX", "sell", 100, 416_000, client_order_id="svc-ask"))
        assert (ask.status, ask.leaves_quantity) == ("new", 100)
        bid = _report(buyer.place("PRND-OX", "buy", 100, 416_000, client_order_id="svc-bid"))
        assert (bid.status, bid.last_quantity, bid.last_price) == ("filled", 100, 416_000)
        fill = seller.await_answer("svc-ask", timeout=10)
        assert (fill.status, fill.trade_id) == ("filled", bid.trade_id)
    # Booked by the settlement worker and paid through a bank simulator, each as its user.
    db = running.data / "settlement.sqlite3"
    deadline = time.monotonic() + 30
    while _confirmed_payments(db) < 1:
        assert time.monotonic() < deadline, running.logs()
        time.sleep(0.2)
    for name, process in running.processes.items():
        assert process.poll() is None, f"{name} ended:\n{running.logs()}"


def _refusal(url: str, action: Callable[[Any], object]) -> int | None:
    """The reply code with which the broker refuses ``action`` on a fresh channel (None:
    allowed)."""
    connection = pika.BlockingConnection(pika.URLParameters(url))
    try:
        channel = connection.channel()
        channel.confirm_delivery()
        try:
            action(channel)
        except pika.exceptions.ChannelClosedByBroker as refused:
            return int(refused.reply_code)
        return None
    finally:
        if connection.is_open:
            connection.close()


def _publish(exchange: str, key: str = "x") -> Callable[[Any], object]:
    return lambda channel: channel.basic_publish(exchange, key, b"forged")


def _get(queue: str) -> Callable[[Any], object]:
    return lambda channel: channel.basic_get(queue, auto_ack=False)


def _bind(queue: str, exchange: str) -> Callable[[Any], object]:
    return lambda channel: channel.queue_bind(queue, exchange, routing_key="#")


def _declare(queue: str) -> Callable[[Any], object]:
    return lambda channel: channel.queue_declare(queue, durable=True)


def _delete(queue: str) -> Callable[[Any], object]:
    return lambda channel: channel.queue_delete(queue)


PRODUCT_LOG = topology.engine_input_queue("PRND-OX")
BUYERS_SETTLEMENT_QUEUE = topology.member_settlement_queue(BUYER)
FORBIDDEN: dict[Service, list[tuple[str, Callable[[Any], object]]]] = {
    Service.GATEWAY: [
        ("publish a trade", _publish(topology.TRADES, "PRND-OX")),
        ("publish a settlement event", _publish(topology.SETTLEMENT)),
        ("read the trades settlement books", _get(topology.SETTLEMENT_TRADES)),
        # (an engine input log it reads: its own forwards, back; gateway/read_back.py)
        ("read the dead letters", _get(topology.DEAD_LETTERS)),
        ("read a member's settlement requests", _get(BUYERS_SETTLEMENT_QUEUE)),
        ("bind its queue to the trades", _bind(topology.GATEWAY_REQUESTS, topology.TRADES)),
        ("declare a queue of another name", _declare("rex.gateway-copy")),
        ("delete settlement's queue", _delete(topology.SETTLEMENT_TRADES)),
    ],
    Service.ENGINE: [
        ("read the members' requests", _get(topology.GATEWAY_REQUESTS)),
        ("read the members' settlement requests", _get(topology.SETTLEMENT_REQUEST_QUEUE)),
        ("read a member's settlement requests", _get(BUYERS_SETTLEMENT_QUEUE)),
        ("bind its log to the requests", _bind(PRODUCT_LOG, topology.REQUESTS)),
        ("bind its log to settlement requests", _bind(PRODUCT_LOG, topology.SETTLEMENT_REQUESTS)),
        ("read the dead letters", _get(topology.DEAD_LETTERS)),
        ("publish a settlement event", _publish(topology.SETTLEMENT)),
        ("publish a member request", _publish(topology.REQUESTS)),
        ("declare a queue of another name", _declare("rex.engine-copy.PRND-OX")),
        ("delete the gateway's queue", _delete(topology.GATEWAY_REQUESTS)),
    ],
    Service.SETTLEMENT: [
        ("write engine input", _publish(topology.ENGINE, "PRND-OX")),
        ("publish an execution report", _publish(topology.EXECUTIONS)),
        ("publish a trade", _publish(topology.TRADES, "PRND-OX")),
        ("read the members' requests", _get(topology.GATEWAY_REQUESTS)),
        ("read an engine input log", _get(PRODUCT_LOG)),
        ("read the dead letters", _get(topology.DEAD_LETTERS)),
        ("declare a queue of another name", _declare("rex.settlement-copy")),
    ],
    Service.BANK_SIM: [
        ("publish a trade", _publish(topology.TRADES, "PRND-OX")),
        ("read the trades settlement books", _get(topology.SETTLEMENT_TRADES)),
        ("read the payer's replies", _get(topology.bank_reply_queue("settlement"))),
        ("declare a queue of another name", _declare("rex.bank-copy")),
    ],
}


@pytest.mark.parametrize(
    ("service", "what"),
    [(service, what) for service, checks in FORBIDDEN.items() for what, _ in checks],
)
def test_a_service_user_is_refused_what_it_does_not_need(
    running: Site, service: Service, what: str
) -> None:
    action = dict(FORBIDDEN[service])[what]
    assert _refusal(running.url(service), action) == ACCESS_REFUSED, what


def test_settlement_takes_and_answers_a_members_request_from_the_members_own_queue(
    running: Site,
) -> None:
    assert _refusal(running.url(Service.SETTLEMENT), _get(BUYERS_SETTLEMENT_QUEUE)) is None
    with running.client(BUYER) as buyer:
        assert buyer.settlement_settings(wait=30).accepted


@pytest.mark.parametrize("service", list(Service))
def test_a_service_user_has_no_management_access(running: Site, service: Service) -> None:
    parts = urllib.parse.urlsplit(running.url(service))
    login = urllib.parse.unquote(parts.username or "")
    api = f"http://{parts.username}:{parts.password}@127.0.0.1:15672"
    with pytest.raises(BrokerAdminError) as refused:
        BrokerAdmin(api).request("GET", "overview")
    assert refused.value.status == 401
    user = BrokerAdmin(ADMIN_URL).get_user(login)
    assert user is not None and user["tags"] == [
        f"rex-deployment:{running.deployment}@{running.vhost}"
    ]
