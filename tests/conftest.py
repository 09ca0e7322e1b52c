"""What every test shares, the embedded `exchange`, and the `property` mark on every
hypothesis test.

What a test needs is a mark, not a folder: `broker` and `slow` are set by each test
module's own ``pytestmark`` (a conftest's ``pytestmark`` applies to nothing), `database`
by the PostgreSQL parameter of the store fixtures, and `property` here, for every test
hypothesis runs (a test that runs a @given function of its own marks its module)."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from loadtest.broker_nodes import BrokerNode, Cluster, can_run_nodes
from rex.environment import REX_CURSOR_DIR
from tests.embedded import Exchange


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if getattr(getattr(item, "obj", None), "is_hypothesis_test", False):
            item.add_marker(pytest.mark.property)


@pytest.fixture(scope="session", autouse=True)
def cursor_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Members' read positions (rex/member_log.py) go to a folder of the test run, not the
    user's own state folder; set in the environment so `rex` subprocesses use it too."""
    name = REX_CURSOR_DIR.name
    before = os.environ.get(name)
    os.environ[name] = str(tmp_path_factory.mktemp("cursors"))
    yield
    if before is None:
        del os.environ[name]
    else:
        os.environ[name] = before


@pytest.fixture
def exchange() -> Exchange:
    """The exchange in one process on the memory bus (tests/embedded.py): an engine, a
    gateway and members' clients, for the gateway's and the engine service's tests."""
    return Exchange()


#: The node the one-node restart tests stop and start (loadtest/broker_nodes.py): never the
#: machine's default node, which every other test shares. tests/cluster has rexnode1-3.
OWN_NODE_INDEX = 4


@pytest.fixture(scope="module")  # idle nodes cost the rest of the suite CPU
def own_broker_node() -> Iterator[BrokerNode]:
    """A RabbitMQ node of the test run's own, alone (rexnode4, AMQP port 5784), for tests that
    restart or kill a broker; removed after the module, also when a test fails."""
    problem = can_run_nodes()
    if problem is not None:
        pytest.skip(problem)
    node = Cluster.of(1, first=OWN_NODE_INDEX)
    try:
        node.build()
        yield node.nodes[0]
    finally:
        node.remove()
