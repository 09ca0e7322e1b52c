"""Several REX deployments, demos and load tests share one broker safely (issue 10, part 2).

Beside a running deployment -- its own vhost and deployment name, provisioned members with
the same ids as the demo's and the load tests' members, gateway and engine processes --
whose members keep trading through the SDK the whole time, two `rex loadtest` runs and a
`rex demo --broker` run at once. All succeed; afterwards none of their vhosts, users,
queues or processes is left, and the deployment's users, permissions and queues are as
they were, its members having had every answer.

Every name here is unique to the run (``share-<random>``, and the throw-away runs' own
``rex-tmp-<random>``); all of it is removed afterwards.
"""

from __future__ import annotations

import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest

from loadtest.throwaway import Names
from rex.client import Client
from rex.config import ProcessConfig, load_members
from rex.identity import login_of
from rex.protocol import ExecutionReport
from rex.provision import BrokerAdmin, provision
from tests.system.conftest import ADMIN_URL, PASSWORD, PRODUCTS_TOML, ROOT, Exchange

pytestmark = [pytest.mark.broker, pytest.mark.slow]

# The same member ids as the demo (config/members.toml) and the load tests (load-NNN).
MEMBER_IDS = [*load_members(ROOT / "config" / "members.toml"), "load-000", "load-001"]
SELLER, BUYER = "load-000", "load-001"
RUN_TIMEOUT_S = 150


@dataclass
class Deployment:
    exchange: Exchange
    name: str
    admin: BrokerAdmin

    @property
    def logins(self) -> list[str]:
        return [login_of(m, self.name) for m in MEMBER_IDS]

    def client(self, member: str) -> Client:
        return Client(member, PASSWORD, self.exchange.url, login=login_of(member, self.name))

    def state(self) -> dict[str, Any]:
        """What the broker holds of the deployment: its users (password hash and tags
        included), their permissions and topic permissions, and its queues."""
        vhost = self.exchange.vhost
        return {
            "users": sorted(u for u in self.admin.list_users() if u.startswith(f"{self.name}.")),
            "each": {
                login: (
                    self.admin.get_user(login),
                    self.admin.get_permissions(vhost, login),
                    sorted(self.admin.get_topic_permissions(vhost, login), key=repr),
                )
                for login in self.logins
            },
            "queues": sorted(self.admin.list_queues(vhost)),
        }


@pytest.fixture
def deployment(tmp_path: Path) -> Iterator[Deployment]:
    token = secrets.token_hex(4)
    name, vhost = f"share-{token}", f"rex-share-{token}"
    admin = BrokerAdmin(ADMIN_URL)
    admin.put_vhost(vhost)
    config, data, logs = tmp_path / "config", tmp_path / "data", tmp_path / "logs"
    for directory in (config, data, logs):
        directory.mkdir()
    (config / "products.toml").write_text(PRODUCTS_TOML)
    (config / "members.toml").write_text(
        "".join(
            f'[[members]]\nid = "{m}"\nname = "{m}"\npassword = "{PASSWORD}"\n\n'
            for m in MEMBER_IDS
        )
    )
    url = f"amqp://guest:guest@127.0.0.1:5672/{quote(vhost, safe='')}"
    env = {
        **os.environ,
        "REX_BROKER_URL": url,
        "REX_CONFIG_DIR": str(config),
        "REX_DATA_DIR": str(data),
        "REX_BROKER_ADMIN_URL": ADMIN_URL,
        "REX_DEPLOYMENT": name,
        "REX_METRICS_PORT": "0",
    }
    exchange = Exchange(vhost, url, env, {m: m for m in MEMBER_IDS}, logs=logs)
    try:
        admin.put_permissions(vhost, "guest", ".*", ".*", ".*")
        provision(ProcessConfig(config, data, url, ADMIN_URL, name), env)
        exchange.start("gateway", "gateway")
        exchange.start("engine", "engine")
        yield Deployment(exchange, name, admin)
    finally:
        for process in list(exchange.processes):
            exchange.kill(process, signal.SIGTERM)
        for user in admin.list_users():
            if user.startswith(f"{name}."):
                admin.delete_user(user)
        admin.delete_vhost(vhost)
        shutil.rmtree(data, ignore_errors=True)


@dataclass
class Trading:
    """The deployment's members trading until told to stop: a resting sell, then a buy
    that fills it, round after round, each waiting for its answer."""

    deployment: Deployment
    rounds: int = 0
    answers: list[tuple[str, str]] = field(default_factory=list)  # (member, status)
    passive_fills: int = 0
    error: BaseException | None = None
    stop: threading.Event = field(default_factory=threading.Event)

    def run(self) -> None:
        try:
            with self.deployment.client(SELLER) as seller, self.deployment.client(BUYER) as buyer:
                self._wait_until_up(buyer)
                while not self.stop.is_set():
                    self._round(seller, buyer)
                    time.sleep(0.2)
                deadline = time.monotonic() + 10
                while self.passive_fills < self.rounds and time.monotonic() < deadline:
                    self.passive_fills += sum(
                        1 for r in seller.executions(timeout=0.5) if r.status == "filled"
                    )
        except BaseException as error:  # reported by the test
            self.error = error

    def _wait_until_up(self, buyer: Client) -> None:
        deadline = time.monotonic() + 30
        while True:
            try:
                buyer.place("PRND-OX", "buy", 100, 450_000, time_in_force="IOC", wait=3)
                return
            except TimeoutError:
                if time.monotonic() > deadline:
                    raise

    def _round(self, seller: Client, buyer: Client) -> None:
        for member, client, side, tif in (
            (SELLER, seller, "sell", "GTC"),
            (BUYER, buyer, "buy", "IOC"),
        ):
            answer = client.place("PRND-OX", side, 100, 500_000, time_in_force=tif, wait=15)
            assert isinstance(answer, ExecutionReport)
            assert answer.member == member  # reports carry the member id, not the login
            self.answers.append((member, answer.status))
        self.rounds += 1


def start(*args: str, log: Path) -> tuple[subprocess.Popen[bytes], Path]:
    with open(log, "wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "cli", *args],
            cwd=ROOT,
            env={k: v for k, v in os.environ.items() if not k.startswith("REX_")},
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    return process, log


def test_two_load_tests_and_a_demo_beside_a_trading_deployment(
    deployment: Deployment, tmp_path: Path
) -> None:
    admin = deployment.admin
    trading = Trading(deployment)
    trader = threading.Thread(target=trading.run, daemon=True)
    trader.start()
    while trading.rounds == 0 and trader.is_alive():
        time.sleep(0.1)
    assert trading.error is None, trading.error
    before = deployment.state()
    assert len(before["users"]) == len(MEMBER_IDS)

    load = ("loadtest", "--members", "2", "--rate", "50", "--duration", "5")
    runs = {
        "load-1": start(*load, log=tmp_path / "load-1.log"),
        "load-2": start(*load, log=tmp_path / "load-2.log"),
        "demo": start(
            "demo", "--broker", "amqp://guest:guest@127.0.0.1:5672/", log=tmp_path / "demo.log"
        ),
    }
    try:
        for process, _ in runs.values():
            process.wait(timeout=RUN_TIMEOUT_S)
    finally:
        trading.stop.set()
        for process, _ in runs.values():
            if process.poll() is None:
                process.kill()
                process.wait()
        trader.join(timeout=60)
    output = {name: log.read_text() for name, (_, log) in runs.items()}

    # All succeed: exit 0 (a load test exits 1 unless every request was answered).
    for name, (process, _) in runs.items():
        assert process.returncode == 0, f"{name}:\n{output[name]}"
    for name in ("load-1", "load-2"):
        sent = re.search(r"^sent +(\d+)$", output[name], re.M)
        assert sent and int(sent.group(1)) > 0, output[name]
        assert re.search(r"^unanswered +0$", output[name], re.M), output[name]
    assert "Positions (from each member's fills)" in output["demo"]
    assert "the URL's vhost '/' is not used" in output["demo"]

    # None of theirs is left: vhosts (their queues with them), users, processes.
    throwaways = [re.search(r"throw-away vhost (rex-tmp-\w+) ", text) for text in output.values()]
    names = [Names.of_vhost(found.group(1)) if found else None for found in throwaways]
    assert None not in names and len(set(names)) == 3, output
    vhosts = {str(v["name"]) for v in admin.list_vhosts()}
    users = admin.list_users()
    for run in names:
        assert run is not None
        assert run.vhost not in vhosts
        assert [u for u in users if u.startswith(f"{run.deployment}.")] == []
        assert f"removed throw-away vhost {run.vhost}" in "".join(output.values())

    # The deployment was never disturbed: the same users, permissions and queues, and its
    # members had every answer, passive fills included.
    assert trading.error is None, repr(trading.error)
    assert deployment.state() == before
    assert trading.rounds >= 5
    assert trading.answers == [(SELLER, "new"), (BUYER, "filled")] * trading.rounds
    assert trading.passive_fills == trading.rounds
