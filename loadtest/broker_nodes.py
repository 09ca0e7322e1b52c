"""RabbitMQ nodes of REX's own on this machine, beside its default node: one alone, or several
joined into a cluster, for the tests and benchmarks that kill, stop or restart a broker node.
The machine's default node (``rabbit@localhost`` on 5672) is never touched.

Node ``n`` is ``rexnode<n>@localhost`` with ports of its own (:class:`NodePorts`: AMQP 5780+n,
distribution 25780+n, management 15780+n, Prometheus 15880+n) and a folder of its own,
``/var/tmp/rex-broker-nodes/rexnode<n>``, owned by the rabbitmq user. Debian's
``rabbitmq-server`` wrapper drops the environment when root calls it, so a node is started as
the rabbitmq user through ``su``, which needs root. The nodes share the default node's Erlang
cookie (the rabbitmq user's) and epmd, so ``rabbitmqctl -n rexnode<n>@localhost`` reaches them.

A node's name and folder are REX's alone: :meth:`BrokerNode.remove` (stop, then delete the
folder) is safe to call on what a killed run left behind, and :meth:`Cluster.build` does it
first. From the shell::

    python -m loadtest.broker_nodes up 3      # rexnode1..3 joined into one cluster
    python -m loadtest.broker_nodes down 3    # stopped and their folders deleted
"""

from __future__ import annotations

import argparse
import os
import shlex
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final

__all__ = ["BASE", "BrokerNode", "BrokerNodeError", "Cluster", "NodePorts", "can_run_nodes"]

BASE: Final = Path("/var/tmp/rex-broker-nodes")
HOST: Final = "localhost"  # the default node's host part (/etc/rabbitmq/rabbitmq-env.conf)
TOOLS: Final = "/usr/lib/rabbitmq/bin"
SERVER: Final = f"{TOOLS}/rabbitmq-server"
NAME_PREFIX: Final = "rexnode"
MAX_NODES: Final = 9  # ports 5781..5789: clear of 5672 and of rabbitmqctl's own 35672-35682
START_TIMEOUT_S: Final = 90.0
CTL_TIMEOUT_S: Final = 120.0
PLUGINS: Final = ("rabbitmq_management", "rabbitmq_prometheus")


class BrokerNodeError(Exception):
    """A node did not start, stop or join: the message says which and what it printed."""


def can_run_nodes() -> str | None:
    """None if this machine can run REX's own nodes; else why not (for a test's skip)."""
    if os.geteuid() != 0:
        return "REX's own RabbitMQ nodes run as the rabbitmq user, through su: run as root"
    if not Path(SERVER).exists():
        return f"{SERVER} not found: install Debian's rabbitmq-server"
    return None


@dataclass(frozen=True, slots=True)
class NodePorts:
    """The TCP ports of node ``index``: each its own, so nodes never collide."""

    amqp: int
    dist: int
    management: int
    prometheus: int

    @classmethod
    def of(cls, index: int) -> NodePorts:
        if not 1 <= index <= MAX_NODES:
            raise ValueError(f"node index must be 1..{MAX_NODES}, got {index}")
        return cls(5780 + index, 25780 + index, 15780 + index, 15880 + index)


def _port_open(port: int) -> bool:
    with socket.socket() as probe:
        probe.settimeout(0.5)
        return probe.connect_ex(("127.0.0.1", port)) == 0


@dataclass(frozen=True, slots=True)
class BrokerNode:
    """One node: its name, ports and folder, and what can be done to it."""

    index: int

    @property
    def name(self) -> str:
        return f"{NAME_PREFIX}{self.index}@{HOST}"

    @property
    def ports(self) -> NodePorts:
        return NodePorts.of(self.index)

    @property
    def folder(self) -> Path:
        return BASE / f"{NAME_PREFIX}{self.index}"

    def amqp_url(self, user: str = "guest", password: str = "guest", vhost: str = "/") -> str:
        from urllib.parse import quote

        return f"amqp://{user}:{password}@127.0.0.1:{self.ports.amqp}/{quote(vhost, safe='')}"

    @property
    def admin_url(self) -> str:
        """Its management API, as REX_BROKER_ADMIN_URL takes it."""
        return f"http://guest:guest@127.0.0.1:{self.ports.management}"

    # --- what can be done to it -----------------------------------------------------------

    def start(self) -> None:
        """Start the node (its folder made if new) and wait until it serves AMQP."""
        self._prepare_folder()
        settings = {
            "RABBITMQ_NODENAME": self.name,
            "RABBITMQ_NODE_IP_ADDRESS": "127.0.0.1",
            "RABBITMQ_NODE_PORT": str(self.ports.amqp),
            "RABBITMQ_DIST_PORT": str(self.ports.dist),
            "RABBITMQ_MNESIA_BASE": str(self.folder / "mnesia"),
            "RABBITMQ_LOG_BASE": str(self.folder / "log"),
            "RABBITMQ_ENABLED_PLUGINS_FILE": str(self.folder / "enabled_plugins"),
            "RABBITMQ_CONFIG_FILE": str(self.folder / "rabbitmq"),
            "RABBITMQ_PID_FILE": str(self.folder / "pid"),
        }
        command = "env " + " ".join(f"{k}={v}" for k, v in settings.items())
        started = subprocess.run(
            ["su", "rabbitmq", "-s", "/bin/sh", "-c", f"{command} {SERVER} -detached"],
            capture_output=True,
            text=True,
            timeout=CTL_TIMEOUT_S,
        )
        if started.returncode != 0:
            raise BrokerNodeError(f"{self.name} did not start: {started.stderr or started.stdout}")
        self.wait_until_up()

    def wait_until_up(self, timeout_s: float = START_TIMEOUT_S) -> None:
        deadline = time.monotonic() + timeout_s
        while not _port_open(self.ports.amqp):
            if time.monotonic() > deadline:
                raise BrokerNodeError(
                    f"{self.name} not serving AMQP on {self.ports.amqp} after {timeout_s:.0f} s; "
                    f"its log: {self.folder / 'log'}"
                )
            time.sleep(0.2)
        self.ctl("await_startup", "--timeout", str(int(timeout_s)))

    def ctl(self, *args: str, check: bool = True, timeout_s: float = CTL_TIMEOUT_S) -> str:
        """``rabbitmqctl -n <this node> args...``; its output."""
        done = subprocess.run(
            ["rabbitmqctl", "-n", self.name, *args],
            capture_output=True,
            text=True,
            timeout=timeout_s,
        )
        if check and done.returncode != 0:
            raise BrokerNodeError(
                f"rabbitmqctl -n {self.name} {' '.join(args)} failed ({done.returncode}): "
                f"{(done.stderr or done.stdout).strip()}"
            )
        return done.stdout

    def tool(self, name: str, *args: str, timeout_s: float = CTL_TIMEOUT_S) -> str:
        """One of RabbitMQ's command-line tools (``rabbitmq-queues``, ``rabbitmq-streams``:
        Debian installs no root wrapper for the latter) on this node, as the rabbitmq user
        (its Erlang cookie); its output. Raises :class:`BrokerNodeError` if it fails."""
        if "/" in name or not name.startswith("rabbitmq"):
            raise ValueError(f"not a RabbitMQ tool: {name!r}")
        command = " ".join(shlex.quote(a) for a in (f"{TOOLS}/{name}", "-n", self.name, *args))
        done = subprocess.run(
            ["su", "rabbitmq", "-s", "/bin/sh", "-c", command],
            capture_output=True,
            text=True,
            timeout=timeout_s,
        )
        if done.returncode != 0:
            raise BrokerNodeError(
                f"{name} -n {self.name} {' '.join(args)} failed ({done.returncode}): "
                f"{(done.stderr or done.stdout).strip()}"
            )
        return done.stdout

    def pid(self) -> int | None:
        """The node's OS process, if it runs."""
        try:
            pid = int((self.folder / "pid").read_text().strip())
        except (OSError, ValueError):
            return None
        return pid if _alive(pid) else None

    def running(self) -> bool:
        return self.pid() is not None

    def kill(self) -> None:
        """``kill -9`` the node and wait until it is gone and its AMQP port closed."""
        pid = self.pid()
        if pid is None:
            return
        os.kill(pid, signal.SIGKILL)
        self._wait_gone(pid)

    def stop(self) -> None:
        """Stop the node cleanly (``rabbitmqctl stop``), as an operator would."""
        pid = self.pid()
        if pid is None:
            return
        self.ctl("stop", check=False)
        self._wait_gone(pid)

    def remove(self) -> None:
        """Stop it (or kill it if it will not stop) and delete its folder."""
        try:
            self.stop()
        except (BrokerNodeError, subprocess.TimeoutExpired):
            self.kill()
        subprocess.run(["rm", "-rf", str(self.folder)], check=False)

    # --- inside ---------------------------------------------------------------------------

    def _prepare_folder(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        BASE.chmod(0o755)
        ports = self.ports
        (self.folder / "rabbitmq.conf").write_text(
            f"listeners.tcp.1 = 127.0.0.1:{ports.amqp}\n"
            f"management.tcp.ip = 127.0.0.1\n"
            f"management.tcp.port = {ports.management}\n"
            f"prometheus.tcp.ip = 127.0.0.1\n"
            f"prometheus.tcp.port = {ports.prometheus}\n"
            # A test machine's disk may be nearly full; the default 50 MB limit would block
            # every publisher of every node (as the default node's own setting allows).
            f"disk_free_limit.absolute = 1MB\n"
        )
        (self.folder / "enabled_plugins").write_text(f"[{','.join(PLUGINS)}].\n")
        subprocess.run(["chown", "-R", "rabbitmq:rabbitmq", str(self.folder)], check=True)

    def _wait_gone(self, pid: int, timeout_s: float = 60.0) -> None:
        deadline = time.monotonic() + timeout_s
        while _alive(pid) or _port_open(self.ports.amqp):
            if time.monotonic() > deadline:
                raise BrokerNodeError(f"{self.name} (pid {pid}) still running after {timeout_s} s")
            time.sleep(0.1)


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


@dataclass(frozen=True, slots=True)
class Cluster:
    """Nodes joined into one cluster (or one node alone), built and removed as a whole."""

    nodes: tuple[BrokerNode, ...]

    @classmethod
    def of(cls, count: int, first: int = 1) -> Cluster:
        return cls(tuple(BrokerNode(i) for i in range(first, first + count)))

    def build(self) -> None:
        """Remove what an earlier run left, start every node, join the rest to the first."""
        for node in self.nodes:
            node.remove()
        for node in self.nodes:
            node.start()
        seed = self.nodes[0]
        for node in self.nodes[1:]:
            node.ctl("stop_app")
            node.ctl("join_cluster", seed.name)
            node.ctl("start_app")
            node.ctl("await_startup")
        members = self.running_nodes()
        if sorted(members) != sorted(n.name for n in self.nodes):
            raise BrokerNodeError(f"the cluster runs {members}, not every node of {self.names}")

    def remove(self) -> None:
        for node in reversed(self.nodes):
            node.remove()

    @property
    def names(self) -> list[str]:
        return [n.name for n in self.nodes]

    def running_nodes(self, through: BrokerNode | None = None) -> list[str]:
        """The cluster's running nodes, as ``through`` (default: the first running) sees them."""
        asked = through or next(n for n in self.nodes if n.running())
        import json

        status = json.loads(asked.ctl("cluster_status", "--formatter", "json"))
        return list(status.get("running_nodes", []))

    def urls(self, user: str = "guest", password: str = "guest", vhost: str = "/") -> str:
        """Every node's AMQP URL, comma-separated: REX's list form (rex.broker_addresses)."""
        return ",".join(n.amqp_url(user, password, vhost) for n in self.nodes)

    def node(self, name: str) -> BrokerNode:
        return next(n for n in self.nodes if n.name == name)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m loadtest.broker_nodes",
        description="REX's own RabbitMQ nodes beside the default node (as root).",
    )
    parser.add_argument("action", choices=("up", "down"))
    parser.add_argument("count", type=int, nargs="?", default=3, help="how many nodes (1-9)")
    args = parser.parse_args(argv)
    problem = can_run_nodes()
    if problem is not None:
        print(f"broker_nodes: {problem}", file=sys.stderr)
        return 2
    if not 1 <= args.count <= MAX_NODES:
        print(f"broker_nodes: count must be 1..{MAX_NODES}, got {args.count}", file=sys.stderr)
        return 2
    cluster = Cluster.of(args.count)
    try:
        if args.action == "down":
            cluster.remove()
            print(f"removed {', '.join(cluster.names)}")
            return 0
        cluster.build()
    except (BrokerNodeError, subprocess.TimeoutExpired) as error:
        print(f"broker_nodes: {error}", file=sys.stderr)
        return 1
    print(f"cluster of {', '.join(cluster.names)}")
    print(f"REX_BROKER_URL={cluster.urls()}")
    for node in cluster.nodes:
        print(f"{node.name}: management {node.admin_url}, prometheus :{node.ports.prometheus}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
