"""What ``rex provision`` checks of the cluster's replication (rex.replication): that it has
the running nodes the factor needs, before anything is changed, and which of the deployment's
quorum queues and streams have fewer members than the factor (made before it was set, or
while nodes were down), each with the command that adds one."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass

__all__ = ["UnderReplicated", "too_few_nodes", "under_replicated"]


def too_few_nodes(factor: int, running: Collection[str], where: str) -> str | None:
    """Why the cluster at ``where`` cannot keep ``factor`` copies; None if it can."""
    if factor <= len(running):
        return None
    nodes = ", ".join(sorted(running)) or "none"
    return (
        f"REX_REPLICATION asks for {factor} copies of each quorum queue and stream, but the "
        f"broker at {where} runs {len(running)} node(s) ({nodes}): start or join "
        f"{factor - len(running)} more node(s), or set REX_REPLICATION={max(1, len(running))}"
        + ("" if factor != 3 else " (3 is the default for a broker URL listing several nodes)")
    )


@dataclass(frozen=True, slots=True)
class UnderReplicated:
    """A queue with fewer members than the factor."""

    queue: str
    kind: str  # "quorum" or "stream"
    members: tuple[str, ...]

    def fix(self, vhost: str, running: Collection[str]) -> str:
        """The command adding a member on a running node it lacks."""
        spare = next((n for n in sorted(running) if n not in self.members), "<node>")
        if self.kind == "stream":
            return f"rabbitmq-streams add_replica --vhost {vhost} {self.queue} {spare}"
        return f"rabbitmq-queues add_member --vhost {vhost} {self.queue} {spare}"


def under_replicated(
    queues: Mapping[str, tuple[str, tuple[str, ...]]], ours: Collection[str], factor: int
) -> tuple[UnderReplicated, ...]:
    """Of ``ours`` (the deployment's queue names), those in ``queues`` (name -> type and
    members, as the management API lists them) with fewer than ``factor`` members."""
    return tuple(
        UnderReplicated(name, kind, members)
        for name, (kind, members) in sorted(queues.items())
        if name in ours and len(members) < factor
    )
