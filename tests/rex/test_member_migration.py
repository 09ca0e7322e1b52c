"""Upgrading a running exchange: `rex provision` moves protocol version 1's member queues
into the members' logs and gives back what the delivery limit dead-lettered
(rex/member_migration.py), through the real RabbitMQ."""

from __future__ import annotations

import secrets
import time
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pika
import pytest

from cli import main as cli
from rex import topology
from rex.client import Client
from rex.config import ProcessConfig
from rex.member_log import MemoryCursorStore
from rex.protocol import CONTENT_TYPE, ExecStatus, ExecutionReport, encode
from rex.provision import BrokerAdmin, declare_blocking, provision
from tests.rex.test_provision import ADMIN_URL, AMQP_BASE, TIMEOUT, write_config

pytestmark = pytest.mark.broker


@dataclass
class OldDeployment:
    """A vhost laid out as protocol version 1 left it, before `rex provision` upgrades."""

    vhost: str
    url: str
    member: str
    password: str
    process_config: ProcessConfig


def v1_topology(member: str) -> topology.Topology:
    queue = topology.legacy_member_queue(member)
    return topology.EXCHANGES + topology.Topology(
        queues=(topology.work_queue(queue),),
        bindings=(
            topology.Binding(topology.EXECUTIONS, queue, f"{member}.#"),
            topology.Binding(topology.SETTLEMENT, queue, f"{member}.#"),
        ),
    )


@pytest.fixture
def old(tmp_path: Path) -> Iterator[OldDeployment]:
    admin = BrokerAdmin(ADMIN_URL, timeout=TIMEOUT)
    token = secrets.token_hex(4)
    vhost = f"rex-migrate-{token}"
    member, password = f"m{token}-a", secrets.token_urlsafe(12)
    admin.put_vhost(vhost)
    try:
        admin.put_permissions(vhost, "guest", ".*", ".*", ".*")
        url = f"{AMQP_BASE}/{urllib.parse.quote(vhost, safe='')}"
        config = write_config(tmp_path / "config", [(member, password, True)])
        connection = pika.BlockingConnection(pika.URLParameters(url))
        declare_blocking(connection.channel(), v1_topology(member))
        connection.close()
        yield OldDeployment(
            vhost, url, member, password, ProcessConfig(config, tmp_path, url, ADMIN_URL)
        )
    finally:
        admin.delete_user(member)
        admin.delete_vhost(vhost)


def report(member: str, n: int) -> ExecutionReport:
    return ExecutionReport(
        exec_id=f"PRND-OX-{n}",
        member=member,
        product="PRND-OX",
        status=ExecStatus.NEW,
        timestamp=1_795_000_000_000_000_000 + n,
        client_order_id=f"old-{n}",
        order_id=n,
        side="buy",
        price=415_000,
        quantity=100,
        leaves_quantity=100,
    )


def publish_reports(url: str, member: str, numbers: range) -> None:
    connection = pika.BlockingConnection(pika.URLParameters(url))
    channel = connection.channel()
    channel.confirm_delivery()
    for n in numbers:
        message = report(member, n)
        channel.basic_publish(
            topology.EXECUTIONS,
            f"{member}.PRND-OX",
            encode(message),
            pika.BasicProperties(
                content_type=CONTENT_TYPE,
                delivery_mode=2,
                type=message.kind,
                message_id=message.exec_id,
                timestamp=1_795_000_000,
            ),
            mandatory=True,
        )
    connection.close()


def dead_letter_the_first(url: str, queue: str) -> None:
    """What a protocol-1 client reading selectively did: take the message and let it go back
    unacked, until the delivery limit dead-letters it."""
    connection = pika.BlockingConnection(pika.URLParameters(url))
    channel = connection.channel()
    for _ in range(topology.DELIVERY_LIMIT + 1):
        method, _props, _body = channel.basic_get(queue, auto_ack=False)
        if method is None:
            break
        channel.basic_nack(method.delivery_tag, requeue=True)
    connection.close()


def dead_letter_count(url: str) -> int:
    connection = pika.BlockingConnection(pika.URLParameters(url))
    count = connection.channel().queue_declare(topology.DEAD_LETTERS, passive=True)
    connection.close()
    return int(count.method.message_count)


def queue_exists(url: str, queue: str) -> bool:
    connection = pika.BlockingConnection(pika.URLParameters(url))
    try:
        connection.channel().queue_declare(queue, passive=True)
        return True
    except pika.exceptions.ChannelClosedByBroker:
        return False
    finally:
        if connection.is_open:
            connection.close()


def test_provision_moves_an_old_member_queue_and_its_dead_letters_into_the_log(
    old: OldDeployment,
) -> None:
    queue = topology.legacy_member_queue(old.member)
    publish_reports(old.url, old.member, range(1, 2))
    dead_letter_the_first(old.url, queue)  # the fill that "disappeared"
    publish_reports(old.url, old.member, range(2, 5))
    # Another service's dead letter (say a request without user_id) must stay where it is.
    connection = pika.BlockingConnection(pika.URLParameters(old.url))
    connection.channel().basic_publish(
        topology.DEAD,
        "",
        b"anonymous",
        pika.BasicProperties(headers={"x-first-death-queue": topology.GATEWAY_REQUESTS}),
    )
    connection.close()
    deadline = time.monotonic() + 5
    while dead_letter_count(old.url) < 2 and time.monotonic() < deadline:
        time.sleep(0.1)
    assert dead_letter_count(old.url) == 2

    dry = provision(old.process_config, {}, dry_run=True, timeout=TIMEOUT)
    assert [(m.member, m.waiting) for m in dry.migrations] == [(old.member, 3)]
    assert queue_exists(old.url, queue)  # a dry run moves nothing

    result = provision(old.process_config, {}, timeout=TIMEOUT)
    [migration] = result.migrations
    assert (migration.moved, migration.recovered, migration.deleted) == (3, 1, True)
    assert not queue_exists(old.url, queue)
    assert dead_letter_count(old.url) == 1  # only the other service's dead letter is left

    with Client(old.member, old.password, old.url, cursor=MemoryCursorStore()) as client:
        got = sorted(r.client_order_id or "" for r in client.executions(timeout=2))
    assert got == ["old-1", "old-2", "old-3", "old-4"]

    again = provision(old.process_config, {}, timeout=TIMEOUT)
    assert again.migrations == ()
    assert not again.changed


def test_an_old_queue_still_consumed_is_emptied_and_deleted_on_a_later_run(
    old: OldDeployment, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    queue = topology.legacy_member_queue(old.member)
    publish_reports(old.url, old.member, range(1, 3))
    holder = pika.BlockingConnection(pika.URLParameters(old.url))  # a protocol-1 client
    channel = holder.channel()
    channel.basic_qos(prefetch_count=1)
    channel.basic_consume(queue, lambda *_: None)  # holds one message, never acks
    holder.process_data_events(time_limit=0.5)

    [migration] = provision(old.process_config, {}, timeout=TIMEOUT).migrations
    assert (migration.moved, migration.deleted, migration.held_by) == (1, False, 1)
    holder.close()  # its unacked message goes back to the old queue, unbound by now

    monkeypatch.setenv("REX_BROKER_URL", old.url)
    monkeypatch.setenv("REX_BROKER_ADMIN_URL", ADMIN_URL)
    code = cli.main(["provision", "--config-dir", str(old.process_config.config_dir)])
    assert code == 0
    out = capsys.readouterr().out
    assert f"{old.member}  old queue {queue}: 1 messages moved into its log, queue deleted" in out
    assert not queue_exists(old.url, queue)
    with Client(old.member, old.password, old.url, cursor=MemoryCursorStore()) as client:
        got = sorted(r.client_order_id or "" for r in client.executions(timeout=2))
    assert got == ["old-1", "old-2"]
