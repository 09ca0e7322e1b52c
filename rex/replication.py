"""How many copies of each quorum queue and stream the broker keeps: REX sets it on every
one it declares, never leaving it to whatever the cluster has at that moment.

A quorum queue gets ``x-quorum-initial-group-size`` and a stream ``x-initial-cluster-size``,
both ``factor``: the queue has a member on that many nodes and survives losing fewer than
half of them. The factor is ``REX_REPLICATION`` if set, else 3 when the broker URL lists
several nodes (a cluster) and 1 when it names one. Exclusive queues (the engine's lock) live
on one node and are left alone.

RabbitMQ uses the argument only when it creates a queue, yet refuses (406) a declaration
whose argument differs from the one the queue was made with -- or made without, as every
queue of a deployment older than this module. So a declarer that meets such a refusal
(:func:`existing_copies` reads it) declares that queue again as it exists
(:func:`as_it_exists`) and says so: changing the factor changes new queues, and an existing
queue's members are changed with ``rabbitmq-queues grow`` / ``shrink``
(docs/operators/operations.md). ``rex provision`` refuses a factor the cluster's running nodes
cannot meet, and lists queues with fewer members than the factor.
"""

from __future__ import annotations

import re
from dataclasses import replace
from typing import Final

from rex.topology import Queue, Topology

__all__ = [
    "CLUSTER_DEFAULT",
    "MAX_FACTOR",
    "as_it_exists",
    "existing_copies",
    "factor_for",
    "replicated",
    "replicated_queue",
]

CLUSTER_DEFAULT: Final = 3
MAX_FACTOR: Final = 7  # more copies than any REX cluster has nodes: a mistake
_ARGUMENT: Final = {"quorum": "x-quorum-initial-group-size", "stream": "x-initial-cluster-size"}
# RabbitMQ 3.10's texts for it: "inequivalent arg 'x-initial-cluster-size' for queue 'q' in
# vhost '/': received the value '3' of type 'signedint' but current is none", "... received
# none but current is the value '1' of type 'signedint'", "... received '3' but current is
# '1'".
_INEQUIVALENT: Final = re.compile(
    r"inequivalent arg '(?:x-quorum-initial-group-size|x-initial-cluster-size)' "
    r"for queue '(?P<queue>.*)' in vhost '.*': received .* but current is "
    r"(?:none|(?:the value )?'(?P<copies>[0-9]+)')"
)


def factor_for(node_count: int, setting: int | None) -> int:
    """The factor a broker of ``node_count`` listed nodes gets, unless ``setting`` says."""
    if setting is not None:
        return setting
    return CLUSTER_DEFAULT if node_count > 1 else 1


def replicated_queue(queue: Queue, factor: int) -> Queue:
    """``queue`` with its replication argument, if it is a quorum queue or a stream."""
    argument = _ARGUMENT.get(str(queue.arguments.get("x-queue-type", "")))
    if argument is None:
        return queue
    return replace(queue, arguments={**queue.arguments, argument: factor})


def replicated(topology: Topology, factor: int) -> Topology:
    """Every quorum queue and stream of ``topology`` with ``factor`` copies."""
    return replace(topology, queues=tuple(replicated_queue(q, factor) for q in topology.queues))


def existing_copies(reply_text: str) -> tuple[str, int | None] | None:
    """From a 406 refusing a declaration for its replication argument alone: the queue's name
    and the copies it was made with (None: made without the argument). None for any other
    refusal."""
    found = _INEQUIVALENT.search(reply_text)
    if found is None:
        return None
    copies = found.group("copies")
    return found.group("queue"), (int(copies) if copies is not None else None)


def as_it_exists(queue: Queue, copies: int | None) -> Queue:
    """``queue`` declared as the broker has it: with ``copies``, or without the argument."""
    arguments = {k: v for k, v in queue.arguments.items() if k not in _ARGUMENT.values()}
    argument = _ARGUMENT.get(str(queue.arguments.get("x-queue-type", "")))
    if argument is not None and copies is not None:
        arguments[argument] = copies
    return replace(queue, arguments=arguments)
