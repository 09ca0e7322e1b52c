"""python -m loadtest.soak -- bad messages through real RabbitMQ at the gateway, and proof
that nothing grows: the gateway's and engine's resident memory (VmRSS of
/proc/<pid>/status) at the end is within `--tolerance` of where it was after warm-up, and the
gateway's dedupe window (its SQLite rows) stays at its cap.

A throw-away exchange (loadtest/stack.py: own vhost and users, removed afterwards, also on
Ctrl-C) with two members; they send a mix, in turn: a garbage body, a request with no
user_id, a well-formed new_order with bad fields (price off the tick, quantity 0, unknown
product, in turn). Every message has a new message_id and client order id, so every one the
gateway answers adds ids to its window; a small `REX_GATEWAY_SEEN_MAX_ROWS` makes the window
reach its cap during warm-up, after which memory must stay flat.

    python -m loadtest.soak                  # 1,000,000 messages (about 10 minutes)
    python -m loadtest.soak --count 100000   # what CI runs (tests/loadtest/test_soak.py)

Exit status 0 when both bounds hold, 1 when one does not (the figures say which).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import IO

import pika
import pika.exceptions

from rex import topology
from rex.config import ProcessConfig
from rex.identity import login_of
from rex.protocol import CONTENT_TYPE, pack

from .stack import LocalStack, removing_on_exit

PASSWORD = "soak-secret"
MEMBERS = ("soak-a", "soak-b")
PRODUCT = "PRND-OX"


def soak_max_rows(count: int) -> int:
    """Ids per member and kind the gateway keeps during a soak of ``count``: a member
    answers a third of the mix's messages with new ids, so a warm-up of a fifth reaches it."""
    return max(1_000, count // 50)


#: Most messages waiting in a member's request queue before the sender sends a chunk more:
#: with the chunk (half of it each member's) well below the queue's bound, which would
#: refuse the publishes over it.
MAX_WAITING = topology.MEMBER_REQUESTS_MAX // 4
CHUNK = topology.MEMBER_REQUESTS_MAX // 4 * len(MEMBERS)
SOAK_RATE_PER_S = 1_000_000


@dataclass(frozen=True, slots=True)
class SoakFigures:
    count: int
    warmup: int
    seconds: float
    gateway_rss_warm_kib: int
    gateway_rss_end_kib: int
    engine_rss_warm_kib: int
    engine_rss_end_kib: int
    seen_rows_warm: int
    seen_rows_end: int
    seen_rows_bound: int
    seen_file_bytes_end: int
    dead_letters_end: int
    broker_restarts: int  # times the soak found the broker gone and reconnected

    def growth(self, warm: int, end: int) -> float:
        return (end - warm) / warm

    def holds(self, tolerance: float) -> bool:
        return (
            self.growth(self.gateway_rss_warm_kib, self.gateway_rss_end_kib) <= tolerance
            and self.growth(self.engine_rss_warm_kib, self.engine_rss_end_kib) <= tolerance
            and self.seen_rows_end <= self.seen_rows_bound
        )


def rss_kib(pid: int) -> int:
    """Resident memory of a process, from /proc/<pid>/status (VmRSS, in kB)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError(f"process {pid} has no VmRSS (has it exited?)")


def write_config(directory: Path, source: Path) -> None:
    (directory / "products.toml").write_text((source / "products.toml").read_text())
    (directory / "members.toml").write_text(
        "\n".join(
            f'[[members]]\nid = "{m}"\nname = "Soak member {m}"\npassword = "{PASSWORD}"\n'
            # Far over the mix's pace, so the gateway takes each member's queue as fast as
            # it can: the soak is of memory, not of the rate (tests/gateway for that).
            f"rate_limit = {SOAK_RATE_PER_S}\nburst = {SOAK_RATE_PER_S}\n"
            for m in MEMBERS
        )
    )


def bad_message(n: int, login: str, member: str) -> tuple[bytes, pika.BasicProperties]:
    """The n-th message of the mix, from ``member`` (logged in as ``login``)."""
    kind = n % 3
    props = pika.BasicProperties(
        content_type=CONTENT_TYPE,
        type="new_order",
        message_id=f"soak-{n}",
        timestamp=int(time.time()),
        user_id=None if kind == 1 else login,
    )
    if kind == 0:
        return os.urandom(48), props  # garbage: not msgpack, or not a request
    bad = n // 3 % 3
    body = {
        "client_order_id": f"soak-{n}",
        "product": PRODUCT if bad != 2 else "NO-SUCH",
        "side": "buy",
        "order_type": "limit",
        "quantity": 0 if bad == 1 else 100,
        "price": 500_001 if bad == 0 else 500_000,  # off the tick
    }
    return pack(body), props


def _queue_depth(channel: pika.adapters.blocking_connection.BlockingChannel, queue: str) -> int:
    return int(channel.queue_declare(queue, passive=True).method.message_count)


def _seen_rows(data: Path) -> tuple[int, int]:
    """Rows of the gateway's dedupe window and the file's size, read beside the gateway."""
    import sqlite3

    path = data / "gateway.sqlite3"
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=10)
    try:
        rows = sum(
            db.execute(f"SELECT count(*) FROM {t}").fetchone()[0]
            for t in ("requests", "client_ids")
        )
    finally:
        db.close()
    size = sum(p.stat().st_size for p in data.glob("gateway.sqlite3*"))
    return rows, size


def soak(
    count: int, warmup: int, *, broker_url: str, admin_url: str, out: IO[str] = sys.stderr
) -> SoakFigures:
    """Send ``count`` bad messages; measure after the first ``warmup`` have been handled and
    at the end (the gateway's queue empty both times)."""
    source = ProcessConfig.from_env().config_dir
    config = Path(tempfile.mkdtemp(prefix="rex-soak-config-"))
    try:
        write_config(config, source)
        stack = LocalStack(
            broker_url,
            admin_url,
            config,
            extra_env={
                "REX_GATEWAY_SEEN_MAX_ROWS": str(soak_max_rows(count)),
                "REX_LOG_LEVEL": "ERROR",
            },
            out=out,
        )
        try:
            return _run(stack, count, warmup, out)
        finally:
            stack.close()
    finally:
        shutil.rmtree(config, ignore_errors=True)


class _Links:
    """The soak's own connections: one per member to send, one to watch the queues. A
    broker restart (another user of a shared broker) closes them; `reopen` waits for the
    broker and opens them again, and the gateway and engine reconnect by themselves."""

    def __init__(self, url: str, logins: list[str]) -> None:
        self.url, self.logins = url, logins
        self.connections: list[pika.BlockingConnection] = []
        self.restarts = 0
        self.reopen(wait=0)

    def reopen(self, wait: float = 120.0) -> None:
        self.close()
        deadline = time.monotonic() + wait
        while True:
            try:
                senders = []
                for login in self.logins:
                    params = pika.URLParameters(self.url)
                    params.credentials = pika.PlainCredentials(login, PASSWORD)
                    senders.append(pika.BlockingConnection(params))
                watcher = pika.BlockingConnection(pika.URLParameters(self.url))
                break
            except pika.exceptions.AMQPConnectionError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(1)
        self.connections = [*senders, watcher]
        self.channels = [c.channel() for c in senders]
        self.watch = watcher.channel()

    def close(self) -> None:
        for connection in self.connections:
            if connection.is_open:
                connection.close()
        self.connections = []


def _run(stack: LocalStack, count: int, warmup: int, out: IO[str]) -> SoakFigures:
    assert stack.data is not None
    gateway_pid, engine_pid = stack.pids()
    logins = [login_of(m, stack.deployment) for m in MEMBERS]
    links = _Links(stack.url, logins)

    def depth(queue: str) -> int:
        while True:
            try:
                return _queue_depth(links.watch, queue)
            except pika.exceptions.AMQPError:
                links.restarts += 1
                print("the broker went away: reconnecting", file=out, flush=True)
                links.reopen()

    queues = [topology.member_request_queue(m) for m in MEMBERS]

    def drained() -> None:
        while any(depth(q) > 0 for q in queues):
            if stack.exited():
                raise RuntimeError(f"a service stopped: {stack.exited()}")
            time.sleep(0.5)
        time.sleep(6)  # a prune (every 5 s) after the last request

    started = time.monotonic()
    sent = 0
    warm: tuple[int, int, int] | None = None
    try:
        while sent < count:
            if sent >= warmup and warm is None:
                drained()
                warm = (rss_kib(gateway_pid), rss_kib(engine_pid), _seen_rows(stack.data)[0])
                print(f"warm after {sent}: gateway {warm[0]} kB, engine {warm[1]} kB", file=out)
            while any(depth(q) > MAX_WAITING for q in queues):
                if stack.exited():
                    raise RuntimeError(f"a service stopped: {stack.exited()}")
                time.sleep(0.05)
            try:
                for n in range(sent, min(sent + CHUNK, count)):
                    i = n % len(MEMBERS)
                    body, props = bad_message(n, logins[i], MEMBERS[i])
                    links.channels[i].basic_publish(
                        topology.REQUESTS, topology.request_key(MEMBERS[i], PRODUCT), body, props
                    )
            except pika.exceptions.AMQPError:
                links.restarts += 1
                print("the broker went away: reconnecting", file=out, flush=True)
                links.reopen()
                continue  # this chunk again
            sent = min(sent + CHUNK, count)
            if sent % 100_000 == 0:
                print(f"sent {sent} in {time.monotonic() - started:.0f} s", file=out, flush=True)
        drained()
        assert warm is not None
        rows, size = _seen_rows(stack.data)
        dead = depth(topology.DEAD_LETTERS)
        return SoakFigures(
            count=count,
            warmup=warmup,
            seconds=round(time.monotonic() - started, 1),
            gateway_rss_warm_kib=warm[0],
            gateway_rss_end_kib=rss_kib(gateway_pid),
            engine_rss_warm_kib=warm[1],
            engine_rss_end_kib=rss_kib(engine_pid),
            seen_rows_warm=warm[2],
            seen_rows_end=rows,
            # Per member and kind, and what arrives between two prunes on top.
            seen_rows_bound=2 * len(MEMBERS) * soak_max_rows(count) + MAX_WAITING,
            seen_file_bytes_end=size,
            dead_letters_end=dead,
            broker_restarts=links.restarts,
        )
    finally:
        links.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m loadtest.soak", description=__doc__)
    parser.add_argument("--count", type=int, default=1_000_000, help="bad messages to send")
    parser.add_argument(
        "--warmup", type=float, default=0.2, help="share of --count sent before the baseline"
    )
    parser.add_argument(
        "--tolerance", type=float, default=0.10, help="most memory may grow after warm-up"
    )
    parser.add_argument("--json", type=Path, help="write the figures here")
    args = parser.parse_args(argv)
    process_config = ProcessConfig.from_env()

    def run() -> int:
        figures = soak(
            args.count,
            int(args.count * args.warmup),
            broker_url=process_config.broker_url,
            admin_url=process_config.broker_admin_url,
        )
        print(json.dumps(asdict(figures), indent=2))
        if args.json:
            args.json.write_text(json.dumps(asdict(figures), indent=2) + "\n")
        return 0 if figures.holds(args.tolerance) else 1

    return removing_on_exit("soak", run)


if __name__ == "__main__":
    raise SystemExit(main())
