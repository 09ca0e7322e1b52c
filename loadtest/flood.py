"""python -m loadtest.flood -- does one member's flood delay another's orders?

A throw-away exchange (loadtest/stack.py: own vhost and users, removed afterwards, also on
Ctrl-C) with two ordinary members (the default limits of members.toml: 1,000 requests a
second, 1,000 at once). "calm" trades at 10 orders a second throughout and times each answer
(publish to first execution report, at the member). "flood" sends, in turn:

- ``orders``: 20,000 well-formed new orders at 8,000 a second;
- ``garbage``: 20,000 undecodable messages at 8,000 a second;

each after a quiet phase, `--rounds` times (default 5), the rounds' samples pooled. The
flood comes from a process of its own, as from another machine (``--flooder-thread``: from
a thread beside calm's client instead, as before 2026-12-04). ``--rate`` and ``--burst``
give both members other limits than members.toml's defaults.

``--mode settlement`` floods settlement requests instead, with the settlement worker
running too (SQLite, no payer): "calm" asks for its settlement settings
(``show_settlement_settings``) every 100 ms and times each answer (publish to answer, at the
member); "flood" sends 10,000 of the same at 2,000 a second. A phase of it lasts until its
requests are all published and none waits in a settlement request queue.
Published without confirms, as a flooder would: the broker drops
(or, with confirms, would nack) what its queue has no room for. A flood's phase lasts until
its messages are all published and no request waits in any gateway queue.

Printed: calm's p50/p99 in each quiet phase and each flood, their ratio (the target: p99 in
a flood under 3x the quiet p99 of the same run), and the CPU the broker, gateway and engine
used in each phase, in cores.

    python -m loadtest.flood [--mode orders|settlement] [--json flood.json]

Exit status 0 when every flood's p99 is under 3x its quiet p99, 1 when not.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import multiprocessing.connection
import os
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Final

import pika
import pika.exceptions

from rex import topology
from rex.client import Client
from rex.config import ProcessConfig
from rex.identity import login_of
from rex.protocol import CONTENT_TYPE, pack

from .cpu import CpuMeter, broker_pid
from .stack import LocalStack, removing_on_exit

PASSWORD = "flood-secret"
CALM, FLOOD = "calm", "flood"
PRODUCT = "PRND-OX"
CALM_RATE_PER_S = 10
FLOOD_COUNT = 20_000
FLOOD_RATE_PER_S = 8_000
QUIET_S = 5.0
TARGET_RATIO = 3.0
SETTLEMENT_CALM_RATE_PER_S = 10
SETTLEMENT_FLOOD_COUNT = 10_000
SETTLEMENT_FLOOD_RATE_PER_S = 2_000
SHOW = "show_settlement_settings"
# The settlement worker's configuration: no bills, one bank, the members' defaults.
SETTLEMENT_TOML = """
[fees]
default = { buyer_bps = 2, seller_bps = 2 }

[[banks]]
id = "icbc-baotou"
name = "Industrial and Commercial Bank of China, Baotou Branch"
city = "Baotou"

[payment]
bank = "icbc-baotou"
"""


@dataclass(frozen=True, slots=True)
class Phase:
    name: str
    seconds: float
    samples: int
    p50_ms: float
    p99_ms: float
    cores: dict[str, float]  # broker, gateway, engine, machine
    # the slowest answers: (seconds into their round's phase, latency in ms)
    slowest: list[tuple[float, float]] = field(default_factory=list)


def write_config(
    directory: Path, source: Path, burst: int | None = None, rate: int | None = None
) -> None:
    """The two members on members.toml's default limits; ``burst``, ``rate``: both members'
    burst and rate instead of the default (to weigh the allowance's part in a flood)."""
    (directory / "products.toml").write_text((source / "products.toml").read_text())
    (directory / "holidays.toml").write_text((source / "holidays.toml").read_text())
    (directory / "settlement.toml").write_text(SETTLEMENT_TOML)
    extra = "" if burst is None else f"burst = {burst}\n"
    extra += "" if rate is None else f"rate_limit = {rate}\n"
    (directory / "members.toml").write_text(
        "\n".join(
            f'[[members]]\nid = "{m}"\nname = "Member {m}"\npassword = "{PASSWORD}"\n{extra}'
            for m in (CALM, FLOOD)
        )
    )


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


class Calm(threading.Thread):
    """Places an IOC bid far below any ask every 1/CALM_RATE_PER_S seconds; records
    (time sent, latency) of each answer."""

    def __init__(self, url: str, login: str, settlement: bool = False) -> None:
        """``settlement``: ask for its settlement settings instead of placing orders."""
        super().__init__(daemon=True)
        self.client = Client(CALM, PASSWORD, url, login=login)
        self.settlement = settlement
        self.samples: list[tuple[float, float]] = []
        self.failures = 0
        self.stopping = threading.Event()

    def run(self) -> None:
        rate = SETTLEMENT_CALM_RATE_PER_S if self.settlement else CALM_RATE_PER_S
        with self.client as client:
            next_at = time.monotonic()
            while not self.stopping.is_set():
                sent = time.monotonic()
                try:
                    if self.settlement:
                        client.settlement_settings(wait=60)
                    else:
                        client.place(PRODUCT, "buy", 100, 455_000, time_in_force="IOC", wait=30)
                    self.samples.append((sent, time.monotonic() - sent))
                except (TimeoutError, Exception):  # counted, not fatal: the figures say so
                    self.failures += 1
                next_at += 1 / rate
                time.sleep(max(0.0, next_at - time.monotonic()))

    def between(self, start: float, end: float) -> list[float]:
        return [latency for _, latency in self.timed(start, end)]

    def timed(self, start: float, end: float) -> list[tuple[float, float]]:
        return [(sent, latency) for sent, latency in self.samples if start <= sent < end]


def flood_message(kind: str, n: int, login: str) -> tuple[bytes, pika.BasicProperties]:
    props = pika.BasicProperties(
        content_type=CONTENT_TYPE,
        type="new_order",
        message_id=f"flood-{kind}-{n}",
        timestamp=int(time.time()),
        user_id=login,
        delivery_mode=2,
    )
    if kind == "garbage":
        return os.urandom(48), props
    body = {
        "client_order_id": f"flood-{n}",
        "product": PRODUCT,
        "side": "buy",
        "order_type": "limit",
        "time_in_force": "IOC",
        "quantity": 100,
        "price": 455_000,
    }
    return pack(body), props


def settlement_message(n: int, login: str) -> tuple[bytes, pika.BasicProperties]:
    props = pika.BasicProperties(
        content_type=CONTENT_TYPE,
        type=SHOW,
        message_id=f"flood-settlement-{n}",
        timestamp=int(time.time()),
        user_id=login,
        delivery_mode=2,
    )
    return pack({}), props


def send_flood(url: str, login: str, kind: str, nice: int = 0) -> None:
    """The flood, at its rate; with ``nice``, from a thread of that niceness (Linux: per
    thread), so that the flooder's own CPU, which a real attacker spends on its own machine,
    yields to the exchange's on these shared cores."""
    if nice:
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), nice)
    params = pika.URLParameters(url)
    params.credentials = pika.PlainCredentials(login, PASSWORD)
    connection = pika.BlockingConnection(params)
    settlement = kind == "settlement"
    count = SETTLEMENT_FLOOD_COUNT if settlement else FLOOD_COUNT
    rate = SETTLEMENT_FLOOD_RATE_PER_S if settlement else FLOOD_RATE_PER_S
    try:
        channel = connection.channel()
        started = time.monotonic()
        step = rate // 100  # a chunk each 10 ms
        for first in range(0, count, step):
            for n in range(first, min(first + step, count)):
                if settlement:
                    body, props = settlement_message(n, login)
                    key = topology.settlement_request_key(FLOOD, SHOW)
                    channel.basic_publish(topology.SETTLEMENT_REQUESTS, key, body, props)
                else:
                    body, props = flood_message(kind, n, login)
                    channel.basic_publish(topology.REQUESTS, f"{FLOOD}.{PRODUCT}", body, props)
            due = started + (first + step) / rate
            connection.sleep(max(0.0, due - time.monotonic()))
    finally:
        connection.close()


#: Where each kind of flood waits: the flooder's own queue, or (before member queues) the
#: shared one. Names, not rex.topology's functions, so the same harness measures a version
#: without them.
WAITING_QUEUES = {
    "requests": (f"{topology.GATEWAY_REQUESTS}.{FLOOD}", topology.GATEWAY_REQUESTS),
    "settlement": (
        f"{topology.SETTLEMENT_REQUEST_QUEUE}.{FLOOD}",
        topology.SETTLEMENT_REQUEST_QUEUE,
    ),
}


def waiting_requests(connection: Any, where: str = "requests") -> int:
    """Requests waiting in the gateway's (or settlement's) queues: the flooder's own, or
    the shared one. A passive declare, so the count is the broker's now, not the management
    API's last statistics (up to 5 s old)."""
    found = 0
    for queue in WAITING_QUEUES[where]:
        try:
            declared = connection.channel().queue_declare(queue, passive=True)
            found += int(declared.method.message_count)
        except pika.exceptions.ChannelClosedByBroker:  # no such queue in this version
            continue
    return found


@dataclass(slots=True)
class Pooled:
    """One kind of phase over all rounds: calm's latencies and the CPU seconds used."""

    name: str
    seconds: float = 0.0
    latencies: list[float] = field(default_factory=list)
    cpu_s: dict[str, float] = field(default_factory=dict)
    timed: list[tuple[float, float]] = field(default_factory=list)  # (offset s, latency s)

    def phase(self) -> Phase:
        values = self.latencies
        return Phase(
            self.name,
            round(self.seconds, 1),
            len(values),
            round(percentile(values, 0.50) * 1000, 1) if values else 0.0,
            round(percentile(values, 0.99) * 1000, 1) if values else 0.0,
            {k: round(v / self.seconds, 2) for k, v in self.cpu_s.items()},
            [
                (round(at, 2), round(latency * 1000, 1))
                for at, latency in sorted(self.timed, key=lambda t: -t[1])[:5]
            ],
        )


def measure(
    stack: LocalStack,
    calm: Calm,
    pooled: Pooled,
    run: Callable[[], None],
    flooder: Flooder | None = None,
) -> None:
    names = {"settlement_worker": "settlement"}
    pids = {names.get(n, n): pid for n, pid in zip(stack.services, stack.pids(), strict=True)}
    broker = broker_pid()
    if broker is not None:
        pids["broker"] = broker
    pids["loadtest"] = os.getpid()  # this harness: calm (and a flooder thread), same cores
    if flooder is not None and flooder.pid is not None:
        pids["flooder"] = flooder.pid
    meter = CpuMeter(pids)
    meter.start()
    start = time.monotonic()
    run()
    end = time.monotonic()
    for name, used in meter.stop(1).items():
        pooled.cpu_s[name] = pooled.cpu_s.get(name, 0.0) + used["cores"] * (end - start)
    pooled.seconds += end - start
    pooled.latencies.extend(calm.between(start, end))
    pooled.timed.extend((sent - start, latency) for sent, latency in calm.timed(start, end))


def _flooder_main(url: str, login: str, nice: int, orders: Any) -> None:
    """The flooder process: one flood per kind it is sent, "done" after each."""
    while (kind := orders.recv()) is not None:
        send_flood(url, login, kind, nice)
        orders.send("done")


class Flooder:
    """Where the flood comes from: its own process (the default; a real flooder is another
    machine, and certainly not another thread of calm's interpreter, whose GIL would make
    calm wait for the flooder's Python), or a thread of the harness, as before."""

    def __init__(self, url: str, login: str, nice: int = 0, own_process: bool = True) -> None:
        self.url, self.login, self.nice = url, login, nice
        self.process: multiprocessing.process.BaseProcess | None = None
        self._orders: multiprocessing.connection.Connection | None = None
        if own_process:
            ours, theirs = multiprocessing.Pipe()
            self.process = multiprocessing.get_context("spawn").Process(
                target=_flooder_main, args=(url, login, nice, theirs), daemon=True
            )
            self.process.start()
            self._orders = ours

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process is not None else None

    def flood(self, kind: str) -> None:
        if self._orders is None:
            sender = threading.Thread(
                target=send_flood, args=(self.url, self.login, kind, self.nice)
            )
            sender.start()
            sender.join()
            return
        self._orders.send(kind)
        if not self._orders.poll(600) or self._orders.recv() != "done":
            raise RuntimeError("the flooder process did not finish its flood in 10 minutes")

    def close(self) -> None:
        if self._orders is not None and self.process is not None:
            self._orders.send(None)
            self.process.join(timeout=10)
            if self.process.is_alive():
                self.process.kill()


def flood_run(url: str, flooder: Flooder, kind: str) -> None:
    """The flood, then until no request of it waits in the gateway's queues."""
    flooder.flood(kind)
    where = "settlement" if kind == "settlement" else "requests"
    connection = pika.BlockingConnection(pika.URLParameters(url))
    try:
        deadline = time.monotonic() + 120
        while waiting_requests(connection, where) > 0 and time.monotonic() < deadline:
            time.sleep(0.1)
    finally:
        connection.close()


#: The floods of each mode, in turn.
MODES: Final = {"orders": ("orders", "garbage"), "settlement": ("settlement",)}


def bench(
    broker_url: str,
    admin_url: str,
    rounds: int,
    out: Any = sys.stderr,
    mode: str = "orders",
    burst: int | None = None,
    flooder_nice: int = 0,
    flooder_thread: bool = False,
    rate: int | None = None,
) -> list[Phase]:
    """Per kind of flood: quiet, flood, ``rounds`` times, pooled into two phases."""
    repo_config = Path(__file__).resolve().parents[1] / "config"
    settlement = mode == "settlement"
    with tempfile.TemporaryDirectory(prefix="rex-flood-") as config:
        write_config(Path(config), repo_config, burst, rate)
        stack = LocalStack(
            broker_url,
            admin_url,
            Path(config),
            # SQLite in the throw-away data directory: an empty variable is unset.
            extra_env={"REX_DATABASE_URL": ""},
            settlement_args=("--no-payer", "--metrics-port", "0") if settlement else None,
            out=out,
        )
        try:
            url = stack.url
            calm = Calm(url, login_of(CALM, stack.deployment), settlement)
            calm.start()
            time.sleep(5.0 if settlement else 3.0)  # connected, first answers in
            flood_login = login_of(FLOOD, stack.deployment)
            flooder = Flooder(url, flood_login, flooder_nice, own_process=not flooder_thread)
            phases = []
            try:
                for kind in MODES[mode]:
                    quiet, flood = Pooled(f"quiet ({kind} run)"), Pooled(f"flood of {kind}")

                    def flood_once(kind: str = kind) -> None:
                        flood_run(url, flooder, kind)

                    for n in range(rounds):
                        measure(stack, calm, quiet, lambda: time.sleep(QUIET_S), flooder)
                        measure(stack, calm, flood, flood_once, flooder)
                        print(f"{kind} round {n + 1}: {flood.phase()}", file=out, flush=True)
                    phases += [quiet.phase(), flood.phase()]
            finally:
                flooder.close()
            calm.stopping.set()
            calm.join(timeout=35)
            if calm.failures:
                print(f"calm: {calm.failures} orders unanswered", file=out)
            return phases
        finally:
            stack.close()


def ratios(phases: list[Phase]) -> list[tuple[str, float]]:
    """Each flood's p99 over the quiet p99 just before it."""
    return [
        (flood.name, round(flood.p99_ms / quiet.p99_ms, 2) if quiet.p99_ms else float("inf"))
        for quiet, flood in zip(phases[::2], phases[1::2], strict=True)
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m loadtest.flood", description=__doc__)
    parser.add_argument("--json", type=Path, help="write the figures here")
    parser.add_argument("--rounds", type=int, default=5, help="quiet + flood, per kind")
    parser.add_argument(
        "--mode",
        choices=sorted(MODES),
        default="orders",
        help="flood orders and garbage (default), or settlement requests",
    )
    parser.add_argument(
        "--burst", type=int, help="both members' burst (default: members.toml's default)"
    )
    parser.add_argument(
        "--rate", type=int, help="both members' rate_limit (default: members.toml's default)"
    )
    parser.add_argument(
        "--flooder-nice",
        type=int,
        default=0,
        choices=range(20),
        metavar="0-19",
        help="run the flooder at this niceness, as if its CPU were its own machine's",
    )
    parser.add_argument(
        "--flooder-thread",
        action="store_true",
        help="flood from a thread of this process, beside calm (as before), not from a process",
    )
    args = parser.parse_args(argv)
    process_config = ProcessConfig.from_env()

    def run() -> int:
        phases = bench(
            process_config.broker_url,
            process_config.broker_admin_url,
            args.rounds,
            mode=args.mode,
            burst=args.burst,
            rate=args.rate,
            flooder_nice=args.flooder_nice,
            flooder_thread=args.flooder_thread,
        )
        found = ratios(phases)
        for p in phases:
            cores = ", ".join(f"{k} {v:.2f}" for k, v in sorted(p.cores.items()))
            print(
                f"{p.name:<22} {p.seconds:6.1f} s  {p.samples:4d} requests  "
                f"p50 {p.p50_ms:7.1f} ms  p99 {p.p99_ms:7.1f} ms  cores: {cores}"
            )
        for name, ratio in found:
            print(f"{name}: p99 {ratio}x the quiet p99 (target under {TARGET_RATIO}x)")
        if args.json:
            figures = {"phases": [asdict(p) for p in phases], "ratios": dict(found)}
            args.json.write_text(json.dumps(figures, indent=2) + "\n")
        return 0 if all(r < TARGET_RATIO for _, r in found) else 1

    return removing_on_exit("flood", run)


if __name__ == "__main__":
    raise SystemExit(main())
