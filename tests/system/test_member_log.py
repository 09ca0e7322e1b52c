"""Nothing sent to a member is lost by ordinary use (issue 10, part 1), through the real
RabbitMQ, gateway, engine and settlement worker, with the `rex` command as a member uses it.

* The reported scenario: one fill, then six `rex limits show` (each reads the member's
  messages and keeps only its answer), then `rex executions` shows the fill, once; the
  settlement events are read by `rex events`; nothing is in `rex.dead`.
* Random interleavings (generated from seeds): CLI commands and SDK clients that read some
  and close, clients killed half-way, the engine and the gateway killed and restarted. A
  tap queue of the test's own, bound like the member's log, records everything sent; in
  the end every message is handed out at least once, no command that ran to its end hands
  out one already handed out, and `rex.dead` is empty.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import textwrap
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

import pika
import pytest

from rex import topology
from rex.config import ProcessConfig
from rex.environment import REX_INTERLEAVING_SEEDS
from rex.member_log import LogKind
from rex.protocol import ExecutionReport, unpack_messages
from rex.provision import BrokerAdmin, provision
from tests.system.conftest import (
    ADMIN_URL,
    PASSWORD,
    PRODUCTS_TOML,
    ROOT,
    Exchange,
    wait_for_answer,
    write_settlement_config,
)

pytestmark = [pytest.mark.broker, pytest.mark.slow]

TAP = "rex.test.tap"  # the test's own record of what was sent to the member


@pytest.fixture(scope="module")
def venue(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Exchange]:
    tag = uuid.uuid4().hex[:8]
    vhost = f"rex-log-{tag}"
    admin = BrokerAdmin(ADMIN_URL)
    admin.put_vhost(vhost)
    members = {short: f"log{tag}-{short}" for short in ("maker", "taker")}
    try:
        admin.put_permissions(vhost, "guest", ".*", ".*", ".*")
        config = tmp_path_factory.mktemp("config")
        (config / "products.toml").write_text(PRODUCTS_TOML)
        (config / "members.toml").write_text(
            "".join(
                f'[[members]]\nid = "{m}"\nname = "{s}"\npassword = "{PASSWORD}"\n\n'
                for s, m in members.items()
            )
        )
        write_settlement_config(config)
        data = tmp_path_factory.mktemp("data")
        url = f"amqp://guest:guest@127.0.0.1:5672/{quote(vhost, safe='')}"
        env = {
            **os.environ,
            "REX_BROKER_URL": url,
            "REX_CONFIG_DIR": str(config),
            "REX_DATA_DIR": str(data),
            "REX_BROKER_ADMIN_URL": ADMIN_URL,
            "REX_METRICS_PORT": "0",
            "PYTHONUNBUFFERED": "1",
        }
        env.pop("REX_DATABASE_URL", None)
        provision(ProcessConfig(config, data, url, ADMIN_URL), env)
        running = Exchange(vhost, url, env, members, logs=tmp_path_factory.mktemp("logs"))
        running.start("gateway", "gateway", "--tick-interval", "0.5")
        running.start("engine", "engine")
        running.start("settlement", "settlement_worker", "--no-payer")
        try:
            with running.client("taker") as taker:
                wait_for_answer(taker, "PRND-OX")
            yield running
        finally:
            for name in list(running.processes):
                running.kill(name, signal.SIGTERM)
    finally:
        for member in members.values():
            admin.delete_user(member)
        admin.delete_vhost(vhost)


def dead_letters(venue: Exchange) -> int:
    connection = pika.BlockingConnection(pika.URLParameters(venue.url))
    try:
        ok = connection.channel().queue_declare(topology.DEAD_LETTERS, passive=True)
        return int(ok.method.message_count)
    finally:
        connection.close()


def rex_json(venue: Exchange, *args: str) -> list[dict[str, object]]:
    """Run a reading command with --json; its entries."""
    done = venue.rex(*args, "--json")
    assert done.returncode == 0, done.stderr
    return [json.loads(line) for line in done.stdout.splitlines() if line.strip()]


def test_a_fill_read_past_by_six_other_commands_is_shown_once_by_rex_executions(
    venue: Exchange,
) -> None:
    maker, taker = venue.members["maker"], venue.members["taker"]
    rested = venue.rex("order", "DY-OX", "sell", "100", "1850000", "--member", maker)
    assert rested.returncode == 0 and " new " in f" {rested.stdout} ", rested.stdout
    cid = rested.stdout.split()[2]  # "new DY-OX <client order id> order ..."
    bought = venue.rex("order", "DY-OX", "buy", "100", "1850000", "--member", taker)
    assert bought.returncode == 0 and bought.stdout.startswith("filled"), bought.stdout
    for _ in range(6):
        shown = venue.rex("limits", "show", "--member", maker)
        assert shown.returncode == 0, shown.stderr
    executions = venue.rex("executions", "--member", maker, "--timeout", "2")
    assert executions.returncode == 0, executions.stderr
    fills = [line for line in executions.stdout.splitlines() if f"  {cid}  " in line]
    assert len(fills) == 1 and fills[0].split()[1:3] == ["filled", "DY-OX"], fills
    again = venue.rex("executions", "--member", maker, "--timeout", "1")
    assert f"  {cid}  " not in again.stdout  # handed out once
    events = venue.rex("events", "--member", maker, "--timeout", "3")
    assert "obligation_created" in events.stdout, events.stdout + events.stderr
    sequence = int(fills[0].split()[0].lstrip("#"))
    replay = venue.rex("executions", "--member", maker, "--since", str(sequence))
    assert f"  {cid}  " in replay.stdout  # read again from a sequence number
    assert dead_letters(venue) == 0


def test_an_order_whose_client_order_id_cannot_be_read_shows_its_reject_at_once(
    venue: Exchange,
) -> None:
    started = time.monotonic()
    done = venue.rex(
        "order", "DY-OX", "buy", "100", "1850000", "--member", venue.members["maker"],
        "--client-order-id", "has space",
    )  # fmt: skip
    assert done.returncode == 1, done.stdout + done.stderr
    assert done.stdout.split()[0] == "rejected" and "(malformed: " in done.stdout, done.stdout
    assert time.monotonic() - started < 8  # the answer, not the 10 s timeout


def test_a_read_position_that_cannot_be_kept_says_which_file_and_what_to_do(
    venue: Exchange, tmp_path: Path
) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    done = subprocess.run(
        [sys.executable, "-m", "cli", "executions", "--member", venue.members["maker"],
         "--timeout", "0.5"],
        cwd=ROOT, env={**venue.env, "REX_CURSOR_DIR": str(blocker / "cursors")},
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 2, done.stderr
    assert "rex executions: read-position file " in done.stderr, done.stderr
    assert "(set REX_CURSOR_DIR to move it)" in done.stderr and "Traceback" not in done.stderr


# ----------------------------------------------------------------------- interleavings

CRASHING_READER = textwrap.dedent(
    """
    import json, os, signal, sys
    from rex.client import Client
    member, password, url, take = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
    client = Client(member, password, url)
    for n, report in enumerate(client.executions(timeout=2), start=1):
        print(json.dumps(report.exec_id), flush=True)
        if n >= take:
            os.kill(os.getpid(), signal.SIGKILL)  # dies before its cursor is saved
    os.kill(os.getpid(), signal.SIGKILL)
    """
)


@dataclass
class Ledger:
    """Which ids were handed out by whom."""

    completed: list[str] = field(default_factory=list)  # by commands that ran to their end
    crashed: list[str] = field(default_factory=list)  # by clients killed half-way
    steps: list[str] = field(default_factory=list)


def tap(venue: Exchange, member: str) -> None:
    connection = pika.BlockingConnection(pika.URLParameters(venue.url))
    channel = connection.channel()
    channel.queue_declare(TAP, durable=True)
    channel.queue_purge(TAP)
    for exchange in (topology.EXECUTIONS, topology.SETTLEMENT):
        channel.queue_bind(TAP, exchange, f"{member}.#")
    connection.close()


def tapped(venue: Exchange) -> set[str]:
    """Every id sent to the member since `tap` (copies once)."""
    connection = pika.BlockingConnection(pika.URLParameters(venue.url))
    channel = connection.channel()
    ids: set[str] = set()
    while True:
        method, properties, body = channel.basic_get(TAP, auto_ack=True)
        if method is None:
            break
        for message in unpack_messages(properties.type, body):
            ids.add(message.get("exec_id") or message.get("event_id") or message["answer_id"])
    channel.queue_delete(TAP)
    connection.close()
    return ids


def entry_id(entry: dict[str, object]) -> str:
    message = entry["message"]
    assert isinstance(message, dict)
    return str(message.get("exec_id") or message.get("event_id") or message["answer_id"])


class Interleaving:
    """One generated sequence of steps against the maker's log."""

    def __init__(self, venue: Exchange, rng: random.Random) -> None:
        self.venue = venue
        self.rng = rng
        self.maker = venue.members["maker"]
        self.ledger = Ledger()
        self.resting: list[int] = []
        self.price = 1_850_000 + 500 * rng.randrange(100)

    def step(self) -> None:
        name = self.rng.choice(
            [
                "rest", "rest", "fill", "fill", "fill", "limits_show", "my_bills",
                "cli_executions", "cli_events", "sdk_read_some", "sdk_crash",
                "kill_engine", "kill_gateway",
            ]
        )  # fmt: skip
        self.ledger.steps.append(name)
        getattr(self, f"_{name}")()

    def _rest(self) -> None:
        self.price += 500
        done = self.venue.rex(
            "order", "DY-OX", "sell", "200", str(self.price), "--member", self.maker, "--json"
        )
        assert done.returncode == 0, done.stdout + done.stderr
        self.ledger.completed.append(json.loads(done.stdout)["exec_id"])  # its answer
        self.resting.append(self.price)

    def _fill(self) -> None:
        if not self.resting:
            return self._rest()
        price = self.rng.choice(self.resting)
        with self.venue.client("taker") as taker:
            answer = taker.place("DY-OX", "buy", 100 * self.rng.randint(1, 2), price, wait=15)
            assert isinstance(answer, ExecutionReport), answer

    def _limits_show(self) -> None:
        done = self.venue.rex("limits", "show", "--member", self.maker, "--json")
        assert done.returncode == 0, done.stderr
        self.ledger.completed.append(json.loads(done.stdout)["answer_id"])

    def _my_bills(self) -> None:
        done = self.venue.rex("my-bills", "list", "--member", self.maker, "--json")
        assert done.returncode == 0, done.stderr
        self.ledger.completed.append(json.loads(done.stdout)["answer_id"])

    def _cli_executions(self) -> None:
        entries = rex_json(self.venue, "executions", "--member", self.maker, "--timeout", "1")
        self.ledger.completed.extend(entry_id(e) for e in entries)

    def _cli_events(self) -> None:
        entries = rex_json(self.venue, "events", "--member", self.maker, "--timeout", "1")
        self.ledger.completed.extend(entry_id(e) for e in entries)

    def _sdk_read_some(self) -> None:
        take = self.rng.randint(0, 3)
        with self.venue.client("maker") as client:
            for n, report in enumerate(client.executions(timeout=1), start=1):
                self.ledger.completed.append(report.exec_id)
                if n >= take:
                    break

    def _sdk_crash(self) -> None:
        done = subprocess.run(
            [sys.executable, "-c", CRASHING_READER, self.maker, PASSWORD, self.venue.url,
             str(self.rng.randint(1, 3))],
            cwd=ROOT, env=self.venue.env, capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert done.returncode == -signal.SIGKILL, done.stderr
        self.ledger.crashed.extend(json.loads(line) for line in done.stdout.splitlines())

    def _kill_engine(self) -> None:
        self.venue.kill("engine", signal.SIGKILL)
        self.venue.start("engine", "engine")  # takes over: replays, sends some again

    def _kill_gateway(self) -> None:
        self.venue.kill("gateway", signal.SIGKILL)
        self.venue.start("gateway", "gateway", "--tick-interval", "0.5")


SEEDS = REX_INTERLEAVING_SEEDS.get()


@pytest.mark.parametrize("seed", SEEDS)
def test_random_interleavings_of_commands_kills_and_restarts_lose_and_double_nothing(
    venue: Exchange, seed: int
) -> None:
    maker = venue.members["maker"]
    with venue.client("maker") as client:  # start from a clean read position
        list(client.entries(tuple(LogKind), timeout=1))
    tap(venue, maker)
    run = Interleaving(venue, random.Random(seed))
    try:
        for _ in range(14):
            run.step()
        time.sleep(1.0)  # the last answers and events arrive
        for name in ("cli_executions", "cli_events"):  # the member reads what is left
            run.ledger.steps.append(f"final {name}")
            getattr(run, f"_{name}")()
    except AssertionError as error:
        raise AssertionError(f"seed {seed}, steps {run.ledger.steps}: {error}") from None
    sent = tapped(venue)
    handed = set(run.ledger.completed) | set(run.ledger.crashed)
    where = f"seed {seed}, steps {run.ledger.steps}"
    assert sent, where
    assert sent - handed == set(), f"never handed out ({where}); logs:\n{venue.log_tail()}"
    twice = sorted(i for i in set(run.ledger.completed) if run.ledger.completed.count(i) > 1)
    assert twice == [], f"handed out twice by completed commands ({where})"
    assert dead_letters(venue) == 0, where
