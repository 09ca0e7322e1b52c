"""A three-node RabbitMQ cluster of REX's own (loadtest/broker_nodes.py: rexnode1..3 on
ports 5781-5783), built once for this folder's tests and removed after them, also when a test
fails. The machine's default node is never touched. Tests here may kill, stop and restart
its nodes; each leaves every node running when it ends (the `cluster` fixture checks), so
the next test finds the cluster whole."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from loadtest.broker_nodes import BrokerNode, Cluster, can_run_nodes


@pytest.fixture(scope="package")  # gone before the rest of the suite runs
def whole_cluster() -> Iterator[Cluster]:
    problem = can_run_nodes()
    if problem is not None:
        pytest.skip(problem)
    cluster = Cluster.of(3)
    try:
        cluster.build()
        yield cluster
    finally:
        cluster.remove()


@pytest.fixture
def cluster(whole_cluster: Cluster) -> Iterator[Cluster]:
    """The session's cluster, every node running at the start and again at the end."""
    restart_stopped(whole_cluster)
    yield whole_cluster
    restart_stopped(whole_cluster)


def restart_stopped(cluster: Cluster) -> None:
    for node in cluster.nodes:
        if not node.running():
            node.start()
    running = cluster.running_nodes()
    assert sorted(running) == sorted(cluster.names), f"cluster not whole: {running}"


def a_node_other_than(cluster: Cluster, *names: str) -> BrokerNode:
    return next(n for n in cluster.nodes if n.name not in names)
