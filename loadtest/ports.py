"""Free ports for the load test's own services, so they never clash with services already
running on the fixed defaults."""

from __future__ import annotations

import random
import socket
from contextlib import ExitStack

# Below Linux's ephemeral range (32768-60999): a port from bind(("", 0)) is an ephemeral one,
# which an outgoing connection may take before the service binds it.
CANDIDATES = range(20_000, 32_000)


def free_ports(count: int) -> list[int]:
    """`count` different ports nothing listens on now."""
    ports: list[int] = []
    with ExitStack() as held:  # held until all are picked, so they differ
        for port in random.sample(CANDIDATES, 500):
            probe = held.enter_context(socket.socket())
            try:
                probe.bind(("0.0.0.0", port))  # where the services' exporters listen
            except OSError:
                continue
            ports.append(port)
            if len(ports) == count:
                return ports
    raise OSError(f"no {count} free ports in {CANDIDATES.start}-{CANDIDATES.stop - 1}")
