"""`rex provision` against a real RabbitMQ, and the isolation it gives between members.

Each run works in a vhost of its own (``rex/t-<random>``: the slash also exercises the
vhost's URL encoding) with members named ``t-<random>-...``, so nothing touches the shared
"/" vhost or the real members; the users and the vhost are deleted afterwards.

Needs RabbitMQ on 127.0.0.1:5672 with the management plugin on 15672 (``make services``),
or ``REX_BROKER_ADMIN_URL`` / ``REX_TEST_AMQP_URL`` pointing elsewhere.

The fixtures live here rather than in tests/rex/bus/conftest.py, which the bus contract
tests own.
"""

from __future__ import annotations

import contextlib
import re
import secrets
import signal
import time
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any

import pika
import pika.adapters.blocking_connection
import pika.exceptions
import pytest

from cli import main as cli
from rex import topology
from rex.client import Client, ClientError
from rex.config import ProcessConfig
from rex.environment import REX_BROKER_ADMIN_URL, REX_TEST_AMQP_URL
from rex.log_reader import StreamReader
from rex.provision import (
    BrokerAdmin,
    BrokerAdminError,
    MemberAction,
    Permissions,
    ProvisionError,
    ProvisionReport,
    TopicPermissions,
    member_permissions,
    provision,
)

pytestmark = pytest.mark.broker

ADMIN_URL = REX_BROKER_ADMIN_URL.get()
# The broker's AMQP address, without a vhost: each run adds its own.
AMQP_BASE = REX_TEST_AMQP_URL.get()
PRODUCT = "PRND-OX"
TIMEOUT = 5  # seconds, for every connection and API call
TEST_TIMEOUT = 60  # seconds, for a whole test: a broker that stops answering must not hang

REPO = Path(__file__).resolve().parents[2]

ACCESS_REFUSED = 403
NOT_FOUND = 404
PRECONDITION_FAILED = 406
CONNECTION_FORCED = 320
NOT_IMPLEMENTED = 540


# -------------------------------------------------------------------------- fixtures


@pytest.fixture(autouse=True)
def _deadline() -> Iterator[None]:
    """Fail a test that runs longer than TEST_TIMEOUT instead of hanging the suite."""

    def expire(_signum: int, _frame: FrameType | None) -> None:
        raise TimeoutError(f"test took longer than {TEST_TIMEOUT}s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.alarm(TEST_TIMEOUT)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


@pytest.fixture(scope="module")
def admin() -> BrokerAdmin:
    admin = BrokerAdmin(ADMIN_URL, timeout=TIMEOUT)
    try:
        admin.request("GET", "overview")
    except BrokerAdminError as exc:
        pytest.fail(f"{exc} (run `make services`)", pytrace=False)
    return admin


@dataclass
class World:
    """A provisioned vhost and its members."""

    vhost: str
    broker_url: str
    config_dir: Path
    prefix: str
    a: str
    b: str
    passwords: dict[str, str]
    report: ProvisionReport

    def process_config(self, config_dir: Path | None = None) -> ProcessConfig:
        return ProcessConfig(
            config_dir=config_dir or self.config_dir,
            data_dir=Path("data"),
            broker_url=self.broker_url,
            broker_admin_url=ADMIN_URL,
        )


def write_config(directory: Path, members: list[tuple[str, str, bool]]) -> Path:
    """products.toml with the one shipped PRND-OX, and members.toml with (id, password,
    enabled) each."""
    directory.mkdir(parents=True, exist_ok=True)
    shipped = (REPO / "config" / "products.toml").read_text()
    start = shipped.index('[[products]]\nsymbol = "PRND-OX"')
    end = shipped.index("[[products]]", start + 1)
    (directory / "products.toml").write_text(shipped[start:end])
    lines = []
    for member_id, password, enabled in members:
        lines += [
            "[[members]]",
            f'id = "{member_id}"',
            f'name = "Test firm {member_id}"',
            f'password = "{password}"',
            f"enabled = {str(enabled).lower()}",
            "",
        ]
    (directory / "members.toml").write_text("\n".join(lines))
    return directory


def cleanup(admin: BrokerAdmin, prefix: str, vhost: str) -> None:
    for user in admin.list_users():
        if user.startswith(prefix):
            admin.delete_user(user)
    admin.delete_vhost(vhost)


@pytest.fixture(scope="module")
def world(admin: BrokerAdmin, tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    token = secrets.token_hex(4)
    prefix = f"t-{token}-"
    vhost = f"rex/t-{token}"
    admin.put_vhost(vhost)
    try:
        # The AMQP user declares the topology, so it needs its usual rights there.
        amqp_user = urllib.parse.unquote(urllib.parse.urlsplit(AMQP_BASE).username or "guest")
        admin.put_permissions(vhost, amqp_user, ".*", ".*", ".*")
        broker_url = f"{AMQP_BASE}/{urllib.parse.quote(vhost, safe='')}"
        a, b = prefix + "a", prefix + "b"
        passwords = {a: secrets.token_urlsafe(12), b: secrets.token_urlsafe(12)}
        config_dir = write_config(
            tmp_path_factory.mktemp("config"), [(a, passwords[a], True), (b, passwords[b], True)]
        )
        process_config = ProcessConfig(config_dir, Path("data"), broker_url, ADMIN_URL)
        report = provision(process_config, {}, timeout=TIMEOUT)
        yield World(vhost, broker_url, config_dir, prefix, a, b, passwords, report)
    finally:
        cleanup(admin, prefix, vhost)


@contextlib.contextmanager
def connect(world: World, user: str, password: str) -> Iterator[pika.BlockingConnection]:
    params = pika.ConnectionParameters(
        host=urllib.parse.urlsplit(AMQP_BASE).hostname or "127.0.0.1",
        port=urllib.parse.urlsplit(AMQP_BASE).port or 5672,
        virtual_host=world.vhost,
        credentials=pika.PlainCredentials(user, password),
        connection_attempts=1,
        socket_timeout=TIMEOUT,
        stack_timeout=TIMEOUT,
        blocked_connection_timeout=TIMEOUT,
    )
    connection = pika.BlockingConnection(params)
    try:
        yield connection
    finally:
        if connection.is_open:
            connection.close()


@contextlib.contextmanager
def member_channel(
    world: World, member: str, *, confirm: bool = False
) -> Iterator[pika.adapters.blocking_connection.BlockingChannel]:
    with connect(world, member, world.passwords[member]) as connection:
        channel = connection.channel()
        if confirm:
            channel.confirm_delivery()
        yield channel


@contextlib.contextmanager
def service_channel(world: World) -> Iterator[pika.adapters.blocking_connection.BlockingChannel]:
    """A channel as the REX_BROKER_URL user (the services' login)."""
    parts = urllib.parse.urlsplit(AMQP_BASE)
    user = urllib.parse.unquote(parts.username or "guest")
    password = urllib.parse.unquote(parts.password or "guest")
    with connect(world, user, password) as connection:
        channel = connection.channel()
        channel.confirm_delivery()
        yield channel


def refused(excinfo: pytest.ExceptionInfo[pika.exceptions.ChannelClosedByBroker]) -> int:
    return int(excinfo.value.reply_code)


# --------------------------------------------------------------------- provisioning


def test_provision_creates_each_enabled_members_user_with_only_its_ownership_mark(
    world: World, admin: BrokerAdmin
) -> None:
    assert [(m.member, m.action) for m in world.report.members] == [
        (world.a, MemberAction.CREATED),
        (world.b, MemberAction.CREATED),
    ]
    for member in (world.a, world.b):
        user = admin.get_user(member)
        assert user is not None
        # No management tag and no impersonator: only the mark of its deployment and vhost.
        assert user["tags"] == [f"rex-deployment:@{urllib.parse.quote(world.vhost, safe='')}"]
    # The mark gives no management access.
    member_api = ADMIN_URL.replace("guest:guest@", f"{world.a}:{world.passwords[world.a]}@")
    with pytest.raises(BrokerAdminError) as refused_api:
        BrokerAdmin(member_api, timeout=TIMEOUT).request("GET", "overview")
    assert refused_api.value.status == 401


def test_provision_sets_configure_nothing_write_requests_read_own_log_and_marketdata(
    world: World, admin: BrokerAdmin
) -> None:
    for member in (world.a, world.b):
        escaped = re.escape(member)
        assert admin.get_permissions(world.vhost, member) == Permissions(
            configure="^$",
            write=r"^(rex\.requests|rex\.settlement\.requests)$",
            read=rf"^(rex\.member\.{escaped}\.log|rex\.marketdata\.[^.]+)$",
        )


def test_provision_sets_topic_permission_own_id_dot_word_on_both_request_exchanges(
    world: World, admin: BrokerAdmin
) -> None:
    for member in (world.a, world.b):
        escaped = re.escape(member)
        found = admin.get_topic_permissions(world.vhost, member)
        assert sorted(found, key=lambda t: t.exchange) == [
            TopicPermissions(exchange="rex.requests", write=rf"^{escaped}\.[^.]+$", read="^$"),
            TopicPermissions(
                exchange="rex.settlement.requests", write=rf"^{escaped}\.[^.]+$", read="^$"
            ),
        ]


def test_provision_declares_the_full_topology_members_queues_included(
    world: World, admin: BrokerAdmin
) -> None:
    expected = topology.full([PRODUCT], [world.a, world.b])
    assert world.report.topology.new_queues == tuple(q.name for q in expected.queues)
    assert {q.name for q in expected.queues} <= admin.list_queues(world.vhost)
    assert {e.name for e in expected.exchanges} <= admin.list_exchanges(world.vhost)
    bindings = {(b.exchange, b.queue, b.routing_key) for b in expected.bindings}
    assert bindings <= admin.list_queue_bindings(world.vhost)
    assert topology.member_log(world.a) in admin.list_queues(world.vhost)


def test_provision_twice_changes_nothing(world: World, admin: BrokerAdmin) -> None:
    before = {m: admin.get_user(m) for m in (world.a, world.b)}
    report = provision(world.process_config(), {}, timeout=TIMEOUT)
    assert not report.changed
    assert {m.action for m in report.members} == {MemberAction.UNCHANGED}
    assert not any(m.permissions_set or m.topic_permissions_set for m in report.members)
    assert not report.topology.changed
    # The password was not set again (a new salt would change the hash).
    assert {m: admin.get_user(m) for m in (world.a, world.b)} == before


# ------------------------------------------------------------------ queue bounds


def queue_policy(admin: BrokerAdmin, vhost: str, queue: str, wait: float = 15.0) -> Any:
    """The policy the broker applies to ``queue`` (name and definition), once it shows."""
    deadline = time.monotonic() + wait
    while True:
        info = admin.request("GET", f"queues/{urllib.parse.quote(vhost, safe='')}/{queue}")
        if info.get("policy") or time.monotonic() > deadline:
            return info.get("policy"), info.get("effective_policy_definition")
        time.sleep(0.5)


def bounded_queues(world: World, bound: topology.QueueBound) -> list[str]:
    """The queues of ``world`` a bound applies to: its own, or each member's of a family."""
    if not bound.pattern:
        return [bound.queue]
    members = (world.a, world.b)
    if bound.queue == topology.member_settlement_queue("*"):
        return [topology.member_settlement_queue(m) for m in members]
    return [topology.member_request_queue(m) for m in members]


def test_provision_bounds_every_quorum_queue_by_a_policy(world: World, admin: BrokerAdmin) -> None:
    assert set(world.report.topology.bounds_set) == {b.queue for b in topology.QUEUE_BOUNDS}
    for bound in topology.QUEUE_BOUNDS:
        for queue in bounded_queues(world, bound):
            assert queue_policy(admin, world.vhost, queue) == (bound.policy, bound.definition())


def test_provision_bounds_an_existing_deployment_in_place(world: World, admin: BrokerAdmin) -> None:
    """A vhost provisioned before the bounds has the same queues and no policies: the next
    provision adds the policies to the queues there, messages and all, with no 406."""
    vhost = urllib.parse.quote(world.vhost, safe="")
    for bound in topology.QUEUE_BOUNDS:
        admin.request("DELETE", f"policies/{vhost}/{bound.policy}")
    with service_channel(world) as channel:
        channel.basic_publish("", topology.GATEWAY_REQUESTS, b"waiting", mandatory=True)
    report = provision(world.process_config(), {}, timeout=TIMEOUT)
    assert set(report.topology.bounds_set) == {b.queue for b in topology.QUEUE_BOUNDS}
    assert not report.topology.new_queues
    for bound in topology.QUEUE_BOUNDS:
        for queue in bounded_queues(world, bound):
            assert queue_policy(admin, world.vhost, queue)[0] == bound.policy
    with service_channel(world) as channel:
        _, _, body = channel.basic_get(topology.GATEWAY_REQUESTS, auto_ack=True)
        assert body == b"waiting"
    assert not provision(world.process_config(), {}, timeout=TIMEOUT).topology.bounds_set


@contextlib.contextmanager
def shrunk(admin: BrokerAdmin, world: World, queue: str, max_length: int) -> Iterator[None]:
    """The shipped bound of ``queue`` with only its length made small enough to reach in
    a test; the next provision puts the shipped one back."""
    (bound,) = (b for b in topology.QUEUE_BOUNDS if b.queue == queue)
    admin.put_policy(
        world.vhost,
        bound.policy,
        bound.queue_pattern,
        {**bound.definition(), "max-length": max_length},
        topology.QUEUE_BOUND_PRIORITY,
    )
    try:
        for each in bounded_queues(world, bound):
            while queue_policy(admin, world.vhost, each)[1].get("max-length") != max_length:
                time.sleep(0.5)
        yield
    finally:
        provision(world.process_config(), {}, timeout=TIMEOUT)


def publish_requests(world: World, member: str, count: int) -> list[str]:
    """``count`` requests published as ``member`` with confirms: each confirmed or nacked."""
    outcomes = []
    with member_channel(world, member, confirm=True) as channel:
        for n in range(count):
            try:
                channel.basic_publish(
                    topology.REQUESTS,
                    f"{member}.{PRODUCT}",
                    b"{}",
                    pika.BasicProperties(user_id=member, message_id=f"m-{n}"),
                    mandatory=True,
                )
                outcomes.append("confirmed")
            except pika.exceptions.NackError:
                outcomes.append("nacked")
    return outcomes


def test_a_members_full_request_queue_nacks_its_publishes_only(
    world: World, admin: BrokerAdmin
) -> None:
    family = topology.member_request_queue("*")
    with shrunk(admin, world, family, 3):
        # A quorum queue applies its bound after taking a message: one over, then refused.
        assert publish_requests(world, world.a, 6) == ["confirmed"] * 4 + ["nacked"] * 2
        # The other member's requests go to its own queue, which has room.
        assert publish_requests(world, world.b, 2) == ["confirmed"] * 2
        # The SDK says so in words.
        with (
            Client(world.a, world.passwords[world.a], world.broker_url) as client,
            pytest.raises(ClientError, match="request queue is full"),
        ):
            client.place(PRODUCT, "buy", 100, 500_000, wait=None)
        with service_channel(world) as channel:
            for member in (world.a, world.b):
                channel.queue_purge(topology.member_request_queue(member))


def test_provision_removes_the_old_shared_request_binding(world: World) -> None:
    """A deployment made before member request queues bound every request into the one
    shared queue; left there, each request would arrive twice."""
    shared = topology.SHARED_REQUESTS_BINDING
    with service_channel(world) as channel:
        channel.queue_bind(shared.queue, shared.exchange, shared.routing_key)
    report = provision(world.process_config(), {}, timeout=TIMEOUT)
    assert report.topology.old_bindings == ((shared.exchange, shared.queue, shared.routing_key),)
    assert publish_requests(world, world.a, 1) == ["confirmed"]
    with service_channel(world) as channel:
        assert (
            channel.queue_declare(topology.GATEWAY_REQUESTS, passive=True).method.message_count == 0
        )
        own = topology.member_request_queue(world.a)
        assert channel.queue_declare(own, passive=True).method.message_count == 1
        channel.queue_purge(own)
    assert not provision(world.process_config(), {}, timeout=TIMEOUT).topology.old_bindings


def publish_settlement_requests(world: World, member: str, count: int) -> list[str]:
    """``count`` settlement requests published as ``member`` with confirms."""
    outcomes = []
    with member_channel(world, member, confirm=True) as channel:
        for n in range(count):
            try:
                channel.basic_publish(
                    topology.SETTLEMENT_REQUESTS,
                    topology.settlement_request_key(member, "show_settlement_settings"),
                    b"\x80",
                    pika.BasicProperties(user_id=member, message_id=f"s-{n}"),
                    mandatory=True,
                )
                outcomes.append("confirmed")
            except pika.exceptions.NackError:
                outcomes.append("nacked")
    return outcomes


def test_a_members_full_settlement_queue_nacks_its_publishes_only(
    world: World, admin: BrokerAdmin
) -> None:
    family = topology.member_settlement_queue("*")
    with shrunk(admin, world, family, 3):
        # A quorum queue applies its bound after taking a message: one over, then refused.
        assert publish_settlement_requests(world, world.a, 6) == ["confirmed"] * 4 + ["nacked"] * 2
        # The other member's requests go to its own queue, which has room.
        assert publish_settlement_requests(world, world.b, 2) == ["confirmed"] * 2
        # The SDK says so in words.
        with (
            Client(world.a, world.passwords[world.a], world.broker_url) as client,
            pytest.raises(ClientError, match=r"settlement refused .* its request queue is full"),
        ):
            client.send_settlement_request("show_settlement_settings", {})
        with service_channel(world) as channel:
            for member in (world.a, world.b):
                channel.queue_purge(topology.member_settlement_queue(member))


def test_provision_removes_the_old_shared_settlement_binding(world: World) -> None:
    """Before member settlement queues every settlement request went to the one shared
    queue with "#"; left there, each member's request would arrive twice, and the shared
    queue would take anyone's."""
    shared = topology.SHARED_SETTLEMENT_BINDING
    with service_channel(world) as channel:
        channel.queue_bind(shared.queue, shared.exchange, shared.routing_key)
    report = provision(world.process_config(), {}, timeout=TIMEOUT)
    assert report.topology.old_bindings == ((shared.exchange, shared.queue, shared.routing_key),)
    assert publish_settlement_requests(world, world.a, 1) == ["confirmed"]
    with service_channel(world) as channel:
        shared_count = channel.queue_declare(shared.queue, passive=True).method.message_count
        assert shared_count == 0
        own = topology.member_settlement_queue(world.a)
        assert channel.queue_declare(own, passive=True).method.message_count == 1
        channel.queue_purge(own)
    assert not provision(world.process_config(), {}, timeout=TIMEOUT).topology.old_bindings


def test_a_full_rex_dead_keeps_the_newest_dead_letters(world: World, admin: BrokerAdmin) -> None:
    with shrunk(admin, world, topology.DEAD_LETTERS, 3):
        with service_channel(world) as channel:
            channel.queue_purge(topology.DEAD_LETTERS)
            for n in range(6):  # every publish confirmed: nothing upstream is refused
                channel.basic_publish(topology.DEAD, "", f"d-{n}".encode())
            kept = []
            while (got := channel.basic_get(topology.DEAD_LETTERS, auto_ack=True))[0]:
                kept.append(got[2])
        assert kept == [b"d-3", b"d-4", b"d-5"]


def test_provision_dry_run_reports_drift_without_changing_it(
    world: World, admin: BrokerAdmin
) -> None:
    admin.put_permissions(world.vhost, world.b, ".*", ".*", ".*")
    try:
        report = provision(world.process_config(), {}, dry_run=True, timeout=TIMEOUT)
        (b,) = (m for m in report.members if m.member == world.b)
        assert b.permissions_set and report.changed
        assert admin.get_permissions(world.vhost, world.b) == Permissions(".*", ".*", ".*")
    finally:
        report = provision(world.process_config(), {}, timeout=TIMEOUT)
    (b,) = (m for m in report.members if m.member == world.b)
    assert b.permissions_set  # repaired
    assert admin.get_permissions(world.vhost, world.b) == member_permissions(world.b)


def test_provision_updates_a_changed_password(world: World, tmp_path: Path) -> None:
    new = secrets.token_urlsafe(12)
    config = write_config(
        tmp_path, [(world.a, world.passwords[world.a], True), (world.b, new, True)]
    )
    try:
        report = provision(world.process_config(config), {}, timeout=TIMEOUT)
        assert [m.action for m in report.members] == [
            MemberAction.UNCHANGED,
            MemberAction.UPDATED,
        ]
        with connect(world, world.b, new) as connection:
            assert connection.is_open
    finally:
        provision(world.process_config(), {}, timeout=TIMEOUT)  # back to the module's password


def test_disabled_members_user_is_deleted_and_its_connection_closed(
    world: World, admin: BrokerAdmin, tmp_path: Path
) -> None:
    c = world.prefix + "c"
    password = secrets.token_urlsafe(12)
    # b too: a member left out of the file would lose its user (rex/stray_users.py)
    members = [(m, world.passwords[m], True) for m in (world.a, world.b)] + [(c, password, True)]
    report = provision(world.process_config(write_config(tmp_path / "on", members)), {})
    assert [m.action for m in report.members if m.member == c] == [MemberAction.CREATED]
    with connect(world, c, password) as connection:
        members[2] = (c, password, False)
        report = provision(world.process_config(write_config(tmp_path / "off", members)), {})
        (result,) = (m for m in report.members if m.member == c)
        assert (result.enabled, result.action) == (False, MemberAction.DELETED)
        assert admin.get_user(c) is None
        with pytest.raises(pika.exceptions.ConnectionClosedByBroker) as closed:
            connection.process_data_events(time_limit=TIMEOUT)
        assert closed.value.reply_code == CONNECTION_FORCED
    with pytest.raises(pika.exceptions.ProbableAuthenticationError), connect(world, c, password):
        pass
    # Its queue stays, so the engine's messages to it still route.
    assert topology.member_log(c) in admin.list_queues(world.vhost)
    # Running again: nothing to delete.
    report = provision(world.process_config(tmp_path / "off"), {})
    assert [m.action for m in report.members if m.member == c] == [MemberAction.ABSENT]


def test_provision_refuses_a_member_named_like_the_admin_user(
    world: World, admin: BrokerAdmin, tmp_path: Path
) -> None:
    config = write_config(tmp_path, [(admin.username, "x", False)])
    with pytest.raises(ProvisionError, match="same name as the"):
        provision(world.process_config(config), {})
    assert admin.get_user(admin.username) is not None


def test_cli_provision_prints_a_line_per_member_and_a_summary(
    world: World, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("REX_BROKER_URL", world.broker_url)
    monkeypatch.setenv("REX_BROKER_ADMIN_URL", ADMIN_URL)
    assert cli.main(["provision", "--config-dir", str(world.config_dir)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == (
        f"{world.a}  user unchanged, permissions unchanged, topic permissions unchanged"
    )
    assert out[-1].startswith("2 members: 0 created, 0 updated, 2 unchanged")
    assert out[-1].endswith("nothing to change")


def test_cli_provision_exits_4_when_the_management_api_is_unreachable(
    world: World, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("REX_BROKER_URL", world.broker_url)
    monkeypatch.setenv("REX_BROKER_ADMIN_URL", "http://guest:secret@127.0.0.1:1")
    assert cli.main(["provision", "--config-dir", str(world.config_dir)]) == 4
    err = capsys.readouterr().err
    assert "management API not reachable at http://127.0.0.1:1" in err
    assert "rabbitmq_management" in err
    assert "secret" not in err


def test_cli_provision_exits_2_on_a_missing_password_variable(
    world: World,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
) -> None:
    write_config(tmp_path, [])
    (tmp_path / "members.toml").write_text(
        f'[[members]]\nid = "{world.prefix}env"\nname = "Env"\npassword_env = "REX_T_UNSET"\n'
    )
    monkeypatch.delenv("REX_T_UNSET", raising=False)
    monkeypatch.setenv("REX_BROKER_URL", world.broker_url)
    assert cli.main(["provision", "--config-dir", str(tmp_path)]) == 2
    assert "'REX_T_UNSET' is not set" in capsys.readouterr().err


# ------------------------------------------------------------------------ isolation


def test_member_cannot_read_another_members_log(world: World) -> None:
    with (
        member_channel(world, world.a) as channel,
        pytest.raises(pika.exceptions.ChannelClosedByBroker) as excinfo,
    ):
        channel.basic_consume(topology.member_log(world.b), lambda *_: None)
    assert refused(excinfo) == ACCESS_REFUSED


def test_member_cannot_get_from_another_members_queue(world: World) -> None:
    with (
        member_channel(world, world.a) as channel,
        pytest.raises(pika.exceptions.ChannelClosedByBroker) as excinfo,
    ):
        channel.basic_get(topology.member_log(world.b))
    assert refused(excinfo) == ACCESS_REFUSED


def test_member_cannot_read_the_engine_input_log(world: World) -> None:
    """The engine's input log holds every member's orders."""
    with (
        member_channel(world, world.a) as channel,
        pytest.raises(pika.exceptions.ChannelClosedByBroker) as excinfo,
    ):
        channel.basic_qos(prefetch_count=10)
        channel.basic_consume(
            topology.engine_input_queue(PRODUCT),
            lambda *_: None,
            arguments={"x-stream-offset": "first"},
        )
    assert refused(excinfo) == ACCESS_REFUSED


def test_member_cannot_consume_the_gateways_queue(world: World) -> None:
    with (
        member_channel(world, world.a) as channel,
        pytest.raises(pika.exceptions.ChannelClosedByBroker) as excinfo,
    ):
        channel.basic_consume(topology.GATEWAY_REQUESTS, lambda *_: None)
    assert refused(excinfo) == ACCESS_REFUSED


def test_member_can_read_a_marketdata_stream_by_offset(world: World) -> None:
    log = topology.marketdata_log(PRODUCT)
    with service_channel(world) as service:
        service.basic_publish(topology.MARKETDATA, f"{PRODUCT}.trade", b"tick", mandatory=True)
    with member_channel(world, world.a) as channel:
        channel.basic_qos(prefetch_count=10)  # a stream consumer must set one
        stream = channel.consume(log, arguments={"x-stream-offset": "first"}, inactivity_timeout=2)
        method, _properties, body = next(stream)
        assert method is not None, "nothing delivered"
        assert body == b"tick"
        channel.basic_ack(method.delivery_tag)
        channel.cancel()


def test_member_cannot_purge_a_marketdata_stream(world: World) -> None:
    """Read permission allows queue.purge, but a stream cannot be purged at all."""
    with (
        member_channel(world, world.a) as channel,
        pytest.raises(pika.exceptions.ConnectionClosedByBroker) as excinfo,
    ):
        channel.queue_purge(topology.marketdata_log(PRODUCT))
    assert excinfo.value.reply_code == NOT_IMPLEMENTED


def test_member_can_read_its_own_log(world: World) -> None:
    key = topology.request_key(world.a, PRODUCT)
    with service_channel(world) as service:
        service.basic_publish(topology.EXECUTIONS, key, b"fill", mandatory=True)
    with member_channel(world, world.a) as channel:
        channel.basic_qos(prefetch_count=10)  # needs no permission
        # A passive declare needs no configure permission either.
        channel.queue_declare(topology.member_log(world.a), passive=True)
        reader = StreamReader(channel.connection, topology.member_log(world.a), "first")
        deadline = time.monotonic() + TIMEOUT
        while not reader.inbox and time.monotonic() < deadline:
            channel.connection.process_data_events(time_limit=0.1)
        entry = reader.take()
        reader.close()
        assert entry is not None, "nothing delivered"
        assert entry.body == b"fill"


def test_member_cannot_publish_with_another_members_user_id(world: World) -> None:
    key = topology.request_key(world.a, PRODUCT)
    with (
        member_channel(world, world.a, confirm=True) as channel,
        pytest.raises(pika.exceptions.ChannelClosedByBroker) as excinfo,
    ):
        channel.basic_publish(
            topology.REQUESTS, key, b"order", pika.BasicProperties(user_id=world.b)
        )
    assert refused(excinfo) == PRECONDITION_FAILED


def test_member_can_publish_with_its_own_user_id(world: World) -> None:
    key = topology.request_key(world.a, PRODUCT)
    with member_channel(world, world.a, confirm=True) as channel:
        channel.basic_publish(
            topology.REQUESTS,
            key,
            b"order",
            pika.BasicProperties(user_id=world.a),
            mandatory=True,
        )


def test_member_cannot_publish_to_trades(world: World) -> None:
    with (
        member_channel(world, world.a, confirm=True) as channel,
        pytest.raises(pika.exceptions.ChannelClosedByBroker) as excinfo,
    ):
        channel.basic_publish(topology.TRADES, PRODUCT, b"fake trade")
    assert refused(excinfo) == ACCESS_REFUSED


def test_member_cannot_publish_into_a_queue_through_the_default_exchange(world: World) -> None:
    with (
        member_channel(world, world.a, confirm=True) as channel,
        pytest.raises(pika.exceptions.ChannelClosedByBroker) as excinfo,
    ):
        channel.basic_publish("", topology.member_log(world.b), b"fake fill")
    assert refused(excinfo) == ACCESS_REFUSED


def test_member_cannot_publish_a_request_under_another_members_key(world: World) -> None:
    with (
        member_channel(world, world.a, confirm=True) as channel,
        pytest.raises(pika.exceptions.ChannelClosedByBroker) as excinfo,
    ):
        channel.basic_publish(topology.REQUESTS, topology.request_key(world.b, PRODUCT), b"o")
    assert refused(excinfo) == ACCESS_REFUSED


def test_member_cannot_publish_a_request_with_a_longer_key(world: World) -> None:
    with (
        member_channel(world, world.a, confirm=True) as channel,
        pytest.raises(pika.exceptions.ChannelClosedByBroker) as excinfo,
    ):
        channel.basic_publish(topology.REQUESTS, f"{world.a}.{PRODUCT}.x", b"o")
    assert refused(excinfo) == ACCESS_REFUSED


def test_member_can_publish_a_request_under_its_own_key(world: World) -> None:
    with member_channel(world, world.a, confirm=True) as channel:
        # mandatory: the gateway's queue (bound with "#") must receive it.
        channel.basic_publish(
            topology.REQUESTS, topology.request_key(world.a, PRODUCT), b"o", mandatory=True
        )


def test_member_can_publish_a_settlement_request_under_its_own_key(world: World) -> None:
    with member_channel(world, world.a, confirm=True) as channel:
        # mandatory: the settlement worker's request queue (bound with "#") must receive it.
        channel.basic_publish(
            topology.SETTLEMENT_REQUESTS,
            topology.settlement_request_key(world.a, "show_settlement_settings"),
            b"\x80",
            pika.BasicProperties(user_id=world.a),
            mandatory=True,
        )


def test_member_cannot_publish_a_settlement_request_under_another_members_key(
    world: World,
) -> None:
    with (
        member_channel(world, world.a, confirm=True) as channel,
        pytest.raises(pika.exceptions.ChannelClosedByBroker) as excinfo,
    ):
        channel.basic_publish(
            topology.SETTLEMENT_REQUESTS,
            topology.settlement_request_key(world.b, "set_receipt_limits"),
            b"\x80",
        )
    assert refused(excinfo) == ACCESS_REFUSED


def test_member_cannot_publish_to_the_settlement_request_queue_directly(world: World) -> None:
    with (
        member_channel(world, world.a, confirm=True) as channel,
        pytest.raises(pika.exceptions.ChannelClosedByBroker) as excinfo,
    ):
        channel.basic_publish("", topology.SETTLEMENT_REQUEST_QUEUE, b"\x80")
    assert refused(excinfo) == ACCESS_REFUSED


def test_member_cannot_declare_a_queue(world: World) -> None:
    with (
        member_channel(world, world.a) as channel,
        pytest.raises(pika.exceptions.ChannelClosedByBroker) as excinfo,
    ):
        channel.queue_declare(f"{world.prefix}own-queue", durable=True)
    assert refused(excinfo) == ACCESS_REFUSED


def test_member_cannot_declare_a_server_named_queue(world: World) -> None:
    with (
        member_channel(world, world.a) as channel,
        pytest.raises(pika.exceptions.ChannelClosedByBroker) as excinfo,
    ):
        channel.queue_declare("", exclusive=True)
    assert refused(excinfo) == ACCESS_REFUSED


def test_member_cannot_redeclare_its_own_log(world: World) -> None:
    """Even an identical, non-passive declare needs configure permission."""
    queue = topology.member_log_queue(world.a)
    with (
        member_channel(world, world.a) as channel,
        pytest.raises(pika.exceptions.ChannelClosedByBroker) as excinfo,
    ):
        channel.queue_declare(queue.name, durable=True, arguments=dict(queue.arguments))
    assert refused(excinfo) == ACCESS_REFUSED


def test_member_cannot_bind(world: World) -> None:
    with (
        member_channel(world, world.a) as channel,
        pytest.raises(pika.exceptions.ChannelClosedByBroker) as excinfo,
    ):
        channel.queue_bind(topology.member_log(world.a), topology.TRADES, "#")
    assert refused(excinfo) == ACCESS_REFUSED


def test_member_cannot_delete_its_own_log(world: World) -> None:
    with (
        member_channel(world, world.a) as channel,
        pytest.raises(pika.exceptions.ChannelClosedByBroker) as excinfo,
    ):
        channel.queue_delete(topology.member_log(world.a))
    assert refused(excinfo) == ACCESS_REFUSED


def test_member_cannot_declare_an_exchange(world: World) -> None:
    with (
        member_channel(world, world.a) as channel,
        pytest.raises(pika.exceptions.ChannelClosedByBroker) as excinfo,
    ):
        channel.exchange_declare(f"{world.prefix}x", "fanout")
    assert refused(excinfo) == ACCESS_REFUSED
