"""Replication on a three-node cluster (rex/replication.py): `rex provision` and the bus give
every quorum queue and stream the factor's members, refuse a factor the cluster cannot meet,
declare a queue made with other copies as it is, and list the queues with too few members
with the command that adds one -- which then works."""

from __future__ import annotations

import secrets
import time
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pika
import pytest

from loadtest.broker_nodes import Cluster
from rex import topology
from rex.bus.amqp import AmqpBus
from rex.config import ProcessConfig
from rex.provision import BrokerAdmin, ProvisionError, provision
from rex.topology import Topology
from tests.rex.bus.helpers import run_until, stop_bus
from tests.rex.test_provision import write_config

pytestmark = [pytest.mark.broker, pytest.mark.cluster, pytest.mark.slow]

TIMEOUT = 10


@dataclass
class ClusterVhost:
    cluster: Cluster
    admin: BrokerAdmin
    vhost: str
    urls: str  # every node's, as REX_BROKER_URL takes them
    config_dir: Path
    prefix: str

    def process_config(self, broker_url: str | None = None) -> ProcessConfig:
        return ProcessConfig(
            self.config_dir,
            Path("data"),
            broker_url or self.urls,
            self.cluster.nodes[0].admin_url,
            deployment=f"{self.prefix}dep",
        )

    def queues(self) -> dict[str, tuple[str, tuple[str, ...]]]:
        return self.admin.list_replicated_queues(self.vhost)


@pytest.fixture
def on_cluster(cluster: Cluster, tmp_path: Path) -> Iterator[ClusterVhost]:
    """A vhost of its own on the cluster, its members' config, removed afterwards."""
    admin = BrokerAdmin(cluster.nodes[0].admin_url, timeout=TIMEOUT)
    token = secrets.token_hex(4)
    prefix, vhost = f"t-{token}-", f"rex-t-{token}"
    admin.put_vhost(vhost)
    try:
        admin.put_permissions(vhost, "guest", ".*", ".*", ".*")
        config_dir = write_config(tmp_path / "config", [(prefix + "a", "pw-a-secret", True)])
        yield ClusterVhost(cluster, admin, vhost, cluster.urls(vhost=vhost), config_dir, prefix)
    finally:
        for user in admin.list_users():
            if user.startswith(prefix):
                admin.delete_user(user)
        admin.delete_vhost(vhost)


def test_provision_on_a_cluster_gives_every_queue_three_members(on_cluster: ClusterVhost) -> None:
    report = provision(on_cluster.process_config(), {}, timeout=TIMEOUT)
    assert report.replication == 3
    assert sorted(report.running_nodes) == sorted(on_cluster.cluster.names)
    assert report.under_replicated == ()
    queues = on_cluster.queues()
    ours = {q.name for q in topology.full(*_config_of(on_cluster)).queues}
    assert ours <= queues.keys()
    kinds = {kind for kind, _members in queues.values()}
    assert kinds == {"quorum", "stream"}
    short = {name: members for name, (_kind, members) in queues.items() if len(members) != 3}
    assert short == {}


def test_a_factor_the_running_nodes_cannot_meet_is_refused_before_anything_changes(
    on_cluster: ClusterVhost,
) -> None:
    with pytest.raises(ProvisionError) as refused:
        provision(on_cluster.process_config(), {"REX_REPLICATION": "4"}, timeout=TIMEOUT)
    message = str(refused.value)
    assert "REX_REPLICATION asks for 4 copies" in message
    assert "runs 3 node(s)" in message and "REX_REPLICATION=3" in message
    assert on_cluster.queues() == {}
    assert not [u for u in on_cluster.admin.list_users() if u.startswith(on_cluster.prefix)]


def test_a_stopped_node_makes_the_default_factor_refused_and_says_which_nodes_run(
    on_cluster: ClusterVhost,
) -> None:
    node = on_cluster.cluster.nodes[2]
    node.stop()
    with pytest.raises(ProvisionError) as refused:
        provision(on_cluster.process_config(), {}, timeout=TIMEOUT)
    assert "runs 2 node(s)" in str(refused.value)
    assert node.name not in str(refused.value)


def test_queues_made_with_fewer_copies_are_declared_as_they_are_and_listed_with_the_fix(
    on_cluster: ClusterVhost,
) -> None:
    first = provision(on_cluster.process_config(), {"REX_REPLICATION": "1"}, timeout=TIMEOUT)
    assert first.replication == 1 and first.under_replicated == ()
    assert {len(m) for _k, m in on_cluster.queues().values()} == {1}

    again = provision(on_cluster.process_config(), {}, timeout=TIMEOUT)  # the default 3
    assert again.replication == 3
    short = {q.queue: q for q in again.under_replicated}
    assert short.keys() == on_cluster.queues().keys()
    assert {q.kind for q in short.values()} == {"quorum", "stream"}

    # The command each line gives adds a member (twice: 1 -> 3); run on a node of the
    # cluster, as an operator would (-n: this machine's default node is not one of them).
    node = on_cluster.cluster.nodes[0]
    for q in short.values():
        for _ in range(2):
            listed = on_cluster.queues()[q.queue][1]
            running = on_cluster.cluster.names
            fix = type(q)(q.queue, q.kind, listed).fix(on_cluster.vhost, running).split()
            node.tool(fix[0], *fix[1:])
            deadline = time.monotonic() + 30  # a stream adds its replica in the background
            while len(on_cluster.queues()[q.queue][1]) <= len(listed):
                assert time.monotonic() < deadline, f"{fix} added no member"
                time.sleep(0.2)
    # The management API's listing of a stream's members lags its changes for a while.
    deadline = time.monotonic() + 30
    while {len(m) for _k, m in on_cluster.queues().values()} != {3}:
        assert time.monotonic() < deadline, on_cluster.queues()
        time.sleep(0.5)
    final = provision(on_cluster.process_config(), {}, timeout=TIMEOUT)
    assert final.under_replicated == ()


def test_the_bus_declares_three_copies_and_takes_a_queue_made_with_one_as_it_is(
    on_cluster: ClusterVhost,
) -> None:
    old = f"{on_cluster.prefix}old"
    new = f"{on_cluster.prefix}new"
    node = on_cluster.cluster.nodes[0]
    with pika.BlockingConnection(pika.URLParameters(node.amqp_url(vhost=on_cluster.vhost))) as c:
        c.channel().queue_declare(
            old,
            durable=True,
            arguments={"x-queue-type": "quorum", "x-quorum-initial-group-size": 1},
        )
    bus = AmqpBus(on_cluster.urls, name="rex-test-replication")
    assert bus.replication == 3
    ready: list[bool] = []
    quorum = {"x-queue-type": "quorum"}
    bus.start(
        Topology(queues=(topology.Queue(old, quorum), topology.Queue(new, quorum))),
        lambda: ready.append(True),
    )
    try:
        assert run_until(bus, lambda: bool(ready), 30), "bus not ready"
    finally:
        stop_bus(bus)
    queues = on_cluster.queues()
    assert len(queues[old][1]) == 1
    assert len(queues[new][1]) == 3


def _config_of(on_cluster: ClusterVhost) -> tuple[object, ...]:
    config = on_cluster.process_config()
    return config.products(), config.members(), config.operators()


def test_a_single_node_url_gets_one_copy(on_cluster: ClusterVhost) -> None:
    one = on_cluster.cluster.nodes[1].amqp_url(vhost=on_cluster.vhost)
    assert urllib.parse.urlsplit(one).port == on_cluster.cluster.nodes[1].ports.amqp
    report = provision(on_cluster.process_config(one), {}, timeout=TIMEOUT)
    assert report.replication == 1
    assert {len(m) for _k, m in on_cluster.queues().values()} == {1}
