"""The replication factor and what is read from RabbitMQ's refusals (rex/replication.py), and
what `rex provision` checks of a cluster (rex/cluster_replication.py). Through real nodes:
tests/cluster/test_replication.py."""

from __future__ import annotations

import pytest

from rex.cluster_replication import UnderReplicated, too_few_nodes, under_replicated
from rex.config import ConfigError
from rex.environment import REX_REPLICATION
from rex.replication import as_it_exists, existing_copies, factor_for, replicated
from rex.topology import Queue, Topology

QUORUM = Queue("q", {"x-queue-type": "quorum"})
STREAM = Queue("s", {"x-queue-type": "stream", "x-max-age": "7D"})
CLASSIC = Queue("c", {})


@pytest.mark.parametrize(
    ("nodes", "setting", "factor"), [(1, None, 1), (2, None, 3), (3, None, 3), (3, 1, 1), (1, 2, 2)]
)
def test_the_factor_is_the_setting_else_3_for_a_list_of_nodes_and_1_for_one(
    nodes: int, setting: int | None, factor: int
) -> None:
    assert factor_for(nodes, setting) == factor


def test_quorum_queues_and_streams_get_their_own_argument_and_others_none() -> None:
    topo = replicated(Topology(queues=(QUORUM, STREAM, CLASSIC)), 3)
    assert [dict(q.arguments) for q in topo.queues] == [
        {"x-queue-type": "quorum", "x-quorum-initial-group-size": 3},
        {"x-queue-type": "stream", "x-max-age": "7D", "x-initial-cluster-size": 3},
        {},
    ]
    assert QUORUM.arguments == {"x-queue-type": "quorum"}  # the topology's own is left as it is


# RabbitMQ 3.10.8's texts, as a cluster gave them (tests/cluster/test_replication.py).
@pytest.mark.parametrize(
    ("text", "found"),
    [
        (
            "PRECONDITION_FAILED - inequivalent arg 'x-quorum-initial-group-size' for queue "
            "'rex.dead' in vhost 'rex-t-1': received the value '3' of type 'signedint' but "
            "current is none",
            ("rex.dead", None),
        ),
        (
            "PRECONDITION_FAILED - inequivalent arg 'x-initial-cluster-size' for queue "
            "'rex.member.a.log' in vhost '/': received none but current is the value '1' of "
            "type 'signedint'",
            ("rex.member.a.log", 1),
        ),
        (
            "PRECONDITION_FAILED - inequivalent arg 'x-quorum-initial-group-size' for queue "
            "'rex.dead' in vhost 'v': received '3' but current is '1'",
            ("rex.dead", 1),
        ),
        (
            "PRECONDITION_FAILED - inequivalent arg 'x-max-age' for queue 's' in vhost '/': "
            "received '7D' but current is '1D'",
            None,
        ),
        ("NOT_FOUND - no queue 'q' in vhost '/'", None),
    ],
)
def test_a_refusal_for_the_replication_argument_alone_names_the_queue_and_its_copies(
    text: str, found: tuple[str, int | None] | None
) -> None:
    assert existing_copies(text) == found


def test_a_queue_is_declared_as_it_exists_with_its_copies_or_without_the_argument() -> None:
    three = replicated(Topology(queues=(STREAM,)), 3).queues[0]
    assert as_it_exists(three, 1).arguments == {**STREAM.arguments, "x-initial-cluster-size": 1}
    assert as_it_exists(three, None).arguments == STREAM.arguments


def test_too_few_running_nodes_say_how_many_run_and_what_to_do() -> None:
    assert too_few_nodes(3, ["a", "b", "c"], "http://n1") is None
    message = too_few_nodes(3, ["b", "a"], "http://n1:15672")
    assert message is not None
    assert "asks for 3 copies" in message and "runs 2 node(s) (a, b)" in message
    assert "start or join 1 more node(s), or set REX_REPLICATION=2" in message
    assert "default" in message


def test_queues_with_too_few_members_are_ours_only_and_each_gets_its_command() -> None:
    listed = {
        "rex.dead": ("quorum", ("n1",)),
        "rex.member.a.log": ("stream", ("n1", "n2")),
        "rex.engine.X": ("stream", ("n1", "n2", "n3")),
        "someone.elses": ("quorum", ("n1",)),
    }
    short = under_replicated(listed, {"rex.dead", "rex.member.a.log", "rex.engine.X"}, 3)
    assert short == (
        UnderReplicated("rex.dead", "quorum", ("n1",)),
        UnderReplicated("rex.member.a.log", "stream", ("n1", "n2")),
    )
    nodes = ["n1", "n2", "n3"]
    assert short[0].fix("v", nodes) == "rabbitmq-queues add_member --vhost v rex.dead n2"
    assert short[1].fix("v", nodes) == "rabbitmq-streams add_replica --vhost v rex.member.a.log n3"


@pytest.mark.parametrize("value", ["0", "8", "three", "-1"])
def test_a_replication_factor_out_of_range_is_a_config_error(value: str) -> None:
    with pytest.raises(ConfigError, match="REX_REPLICATION"):
        REX_REPLICATION.get({"REX_REPLICATION": value})


def test_replication_unset_is_left_to_the_broker_url() -> None:
    assert REX_REPLICATION.get({}) is None
    assert REX_REPLICATION.get({"REX_REPLICATION": "5"}) == 5
