"""A running exchange on the real RabbitMQ: gateway and engine processes, members through
the SDK. Each test module gets its own vhost and members, so runs never see each other's
streams or queues, and everything is removed afterwards."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

import pika
import pytest

from rex import topology
from rex.client import Client
from rex.config import ProcessConfig
from rex.environment import REX_BROKER_ADMIN_URL
from rex.protocol import CONTENT_TYPE, ExecutionReport, TradeMessage, encode
from rex.provision import BrokerAdmin, declare_blocking, provision

ROOT = Path(__file__).resolve().parents[2]
ADMIN_URL = REX_BROKER_ADMIN_URL.get()
PASSWORD = "e2e-secret"
# Members with other than the default limits: "slow" may send 2 requests a second, 2 at once.
MEMBER_LIMITS: dict[str, dict[str, int]] = {"slow": {"rate_limit": 2, "burst": 2}}
OPERATOR_PASSWORD = "e2e-operator-secret"
# Operator accounts (operators.toml): short name -> (roles, enabled). Their passwords are in
# the environment, REX_PW_E2E_OPERATOR_<SHORT>, as a deployment's would be.
#: A settlement.toml the worker can start on: fees and one bank, which every member pays
#: through.
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


def write_settlement_config(config: Path, settlement_toml: str = SETTLEMENT_TOML) -> None:
    """``settlement_toml`` and the shipped holidays.toml into the configuration directory
    ``config``: what the settlement worker reads besides members.toml and products.toml."""
    (config / "settlement.toml").write_text(settlement_toml)
    shutil.copy(ROOT / "config" / "holidays.toml", config / "holidays.toml")


OPERATOR_ACCOUNTS: dict[str, tuple[tuple[str, ...], bool]] = {
    "market": (("market_ops",), True),
    "settle": (("settlement_ops",), True),
    "audit": (("audit",), True),
    "gone": (("market_ops",), False),
}


def operator_password_env(short: str) -> str:
    return f"REX_PW_E2E_OPERATOR_{short.upper()}"


PRODUCTS_TOML = """
[[products]]
symbol = "PRND-OX"
name = "Praseodymium-neodymium oxide"
currency = "CNY"
price_unit = "CNY/t"
tick = 50
quantity_unit = "kg"
lot = 100
quantity_per_price_unit = 1000
reference_price = 500000
band_percent = 10

[[products]]
symbol = "DY-OX"
name = "Dysprosium oxide"
currency = "CNY"
price_unit = "CNY/t"
tick = 500
quantity_unit = "kg"
lot = 100
quantity_per_price_unit = 1000
reference_price = 1800000
band_percent = 7
"""


@dataclass
class Exchange:
    """The processes and names of one running exchange."""

    vhost: str
    url: str
    env: dict[str, str]
    members: dict[str, str]  # short name -> member id
    operators: dict[str, str] = field(default_factory=dict)  # short name -> account name
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    logs: Path = Path()

    def start(self, name: str, *args: str) -> subprocess.Popen[bytes]:
        log = open(self.logs / f"{name}.log", "ab")  # noqa: SIM115 - lives with the process
        process = subprocess.Popen(
            [sys.executable, "-m", *args], cwd=ROOT, env=self.env, stdout=log, stderr=log
        )
        self.processes[name] = process
        return process

    def kill(self, name: str, sig: int = signal.SIGKILL) -> None:
        process = self.processes.pop(name)
        process.send_signal(sig)
        process.wait(timeout=20)

    def client(self, short: str) -> Client:
        return Client(self.members[short], PASSWORD, self.url)

    def operator_url(self, short: str, password: str = OPERATOR_PASSWORD) -> str:
        """The AMQP URL an operator account logs in with (REX_OPERATOR_URL)."""
        name = self.operators[short]
        return f"amqp://{name}:{password}@127.0.0.1:5672/{quote(self.vhost, safe='')}"

    def rex(self, *args: str, timeout: float = 60.0) -> subprocess.CompletedProcess[str]:
        """Run the `rex` command line with this exchange's environment (not checked)."""
        return subprocess.run(
            [sys.executable, "-m", "cli", *args],
            cwd=ROOT,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )

    def log_tail(self) -> str:
        return "\n".join(
            f"--- {p.name}\n{p.read_text()[-3000:]}" for p in sorted(self.logs.glob("*.log"))
        )


def publish_trades(url: str, trades: Iterable[TradeMessage], twice_every: int = 10) -> None:
    """Publish trades as an engine does (confirmed, persistent), every ``twice_every``-th
    twice, as an engine take-over may."""
    connection = pika.BlockingConnection(pika.URLParameters(url))
    channel = connection.channel()
    declare_blocking(channel, topology.for_settlement())
    channel.confirm_delivery()
    for message in trades:
        for _ in range(2 if message.sequence % twice_every == 0 else 1):
            channel.basic_publish(
                topology.TRADES,
                message.product,
                encode(message),
                pika.BasicProperties(
                    content_type=CONTENT_TYPE,
                    delivery_mode=2,
                    type=message.kind,
                    message_id=message.trade_id,
                ),
            )
    connection.close()


def wait_for_answer(client: Client, product: str, timeout: float = 30.0) -> ExecutionReport:
    """Place a harmless order until the exchange answers it (the services are up)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            result = client.place(
                product,
                "buy",
                100,
                450_000 if product == "PRND-OX" else 1_674_000,
                time_in_force="IOC",
                wait=3,
            )
            assert isinstance(result, ExecutionReport)
            return result
        except TimeoutError:
            if time.monotonic() > deadline:
                raise


@pytest.fixture(scope="module")
def exchange(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Exchange]:
    with open_exchange(tmp_path_factory) as running:
        yield running


def _default_broker(vhost: str) -> str:
    return f"amqp://guest:guest@127.0.0.1:5672/{quote(vhost, safe='')}"


@contextlib.contextmanager
def open_exchange(
    tmp_path_factory: pytest.TempPathFactory,
    broker_url_of: Callable[[str], str] = _default_broker,
    admin_url: str = ADMIN_URL,
) -> Iterator[Exchange]:
    """A provisioned exchange in a vhost of its own on the broker ``broker_url_of(vhost)``
    names (the default node, or a cluster's node list) and ``admin_url`` manages; its
    processes, users and vhost removed afterwards."""
    tag = uuid.uuid4().hex[:8]
    vhost = f"rex-e2e-{tag}"
    admin = BrokerAdmin(admin_url)
    admin.put_vhost(vhost)
    admin.put_permissions(vhost, "guest", ".*", ".*", ".*")
    config = tmp_path_factory.mktemp("config")
    members = {short: f"e2e{tag}-{short}" for short in ("alpha", "beta", "gamma", "slow")}
    (config / "products.toml").write_text(PRODUCTS_TOML)
    (config / "members.toml").write_text(
        "".join(
            f'[[members]]\nid = "{m}"\nname = "{s}"\npassword = "{PASSWORD}"\n'
            + "".join(f"{key} = {value}\n" for key, value in MEMBER_LIMITS.get(s, {}).items())
            + "\n"
            for s, m in members.items()
        )
    )
    operators = {short: f"op{tag}-{short}" for short in OPERATOR_ACCOUNTS}
    (config / "operators.toml").write_text(
        "".join(
            f'[[operators]]\nname = "{operators[short]}"\ndisplay_name = "E2E {short}"\n'
            f"roles = {list(roles)!r}\n".replace("'", '"')
            + f'password_env = "{operator_password_env(short)}"\n'
            + f"enabled = {str(enabled).lower()}\n\n"
            for short, (roles, enabled) in OPERATOR_ACCOUNTS.items()
        )
    )
    data = tmp_path_factory.mktemp("data")
    url = broker_url_of(vhost)
    env = {
        **os.environ,
        "REX_BROKER_URL": url,
        "REX_CONFIG_DIR": str(config),
        "REX_DATA_DIR": str(data),
        "REX_BROKER_ADMIN_URL": admin_url,
        "REX_METRICS_PORT": "0",
        "PYTHONUNBUFFERED": "1",
        **{operator_password_env(short): OPERATOR_PASSWORD for short in OPERATOR_ACCOUNTS},
    }
    running = Exchange(vhost, url, env, members, operators, logs=tmp_path_factory.mktemp("logs"))
    try:  # from here on everything made is removed, also when provisioning fails
        provision(ProcessConfig(config, data, url, admin_url), env)
        yield running
    finally:
        for name in list(running.processes):
            running.kill(name, signal.SIGTERM)
        for user in (*members.values(), *operators.values()):
            admin.delete_user(user)
        admin.delete_vhost(vhost)
        shutil.rmtree(data, ignore_errors=True)
