"""Rows the settlement outbox can never publish, on the real RabbitMQ: planted in the store
of `python -m settlement_worker` (SQLite) -- an event whose message_id, and one whose
routing key, is over AMQP's 255 bytes -- between events that can go. The worker
quarantines the two (marked, counted, logged at ERROR), publishes the others to the broker,
and after a restart tries the quarantined ones no more while what was written meanwhile
goes out; `rex reconcile` reports them. A vhost of its own, removed afterwards."""

from __future__ import annotations

import os
import random
import signal
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import pika
import pytest

from rex import topology
from rex.environment import REX_BROKER_ADMIN_URL
from rex.provision import BrokerAdmin, declare_blocking
from rex.settlement_protocol import SettlementEvent, obligation_created
from settlement_worker.outbox import add_events
from settlement_worker.store.sqlite import SqliteStore

pytestmark = pytest.mark.broker

ROOT = Path(__file__).resolve().parents[2]
ADMIN_URL = REX_BROKER_ADMIN_URL.get()
BUYER, SELLER = "ganzhou-magnet", "baotou-metals"  # of config/members.toml


def free_port() -> int:
    """A port nothing listens on, below the ephemeral range (as test_contract_details)."""
    with ExitStack() as held:
        for port in random.sample(range(20_000, 32_000), 200):
            probe = held.enter_context(socket.socket())
            try:
                probe.bind(("0.0.0.0", port))
            except OSError:
                continue
            return port
    raise RuntimeError("no free port")


@dataclass
class Site:
    url: str
    env: dict[str, str]
    db: Path
    log: Path
    probe: str  # a queue of this test's bound to every settlement event
    worker: subprocess.Popen[bytes] | None = None
    metrics_port: int = 0

    def start(self) -> None:
        self.metrics_port = free_port()
        with open(self.log, "ab") as log:
            self.worker = subprocess.Popen(
                [sys.executable, "-m", "settlement_worker", "--no-payer"],
                cwd=ROOT,
                env={**self.env, "REX_METRICS_PORT": str(self.metrics_port)},
                stdout=log,
                stderr=log,
            )

    def stop(self) -> None:
        if self.worker is not None:
            self.worker.send_signal(signal.SIGTERM)
            self.worker.wait(timeout=20)
            self.worker = None

    def plant(self, *events: SettlementEvent) -> None:
        store = SqliteStore(self.db)
        try:
            store.migrate()
            with store.transaction() as tx:
                add_events(tx, list(events))
        finally:
            store.close()

    def query(self, sql: str) -> list[tuple[object, ...]]:
        store = SqliteStore(self.db)
        try:
            return store.query(sql)
        finally:
            store.close()

    def wait_published(self, event_ids: list[str], timeout: float = 30.0) -> None:
        marks = ", ".join(f"'{e}'" for e in event_ids)
        deadline = time.monotonic() + timeout
        while self.query(
            f"SELECT COUNT(*) FROM outbox WHERE published = 1 AND event_id IN ({marks})"
        ) != [(len(event_ids),)]:
            assert time.monotonic() < deadline, self.log.read_text()[-4000:]
            time.sleep(0.2)

    def received(self) -> list[str]:
        """The message ids the probe queue holds, in order (left in the queue)."""
        connection = pika.BlockingConnection(pika.URLParameters(self.url))
        try:
            channel = connection.channel()
            ids = []
            while True:
                method, properties, _body = channel.basic_get(self.probe)
                if method is None:
                    break
                ids.append(properties.message_id)
            return ids  # unacked: back in the queue when the connection closes
        finally:
            connection.close()

    def quarantined_total(self) -> float:
        url = f"http://127.0.0.1:{self.metrics_port}/metrics"
        deadline = time.monotonic() + 10
        while True:
            try:
                with urllib.request.urlopen(url, timeout=2) as response:
                    text = response.read().decode()
                break
            except OSError:
                assert time.monotonic() < deadline, self.log.read_text()[-4000:]
                time.sleep(0.2)
        for line in text.splitlines():
            if line.startswith("rex_settlement_outbox_quarantined_total "):
                return float(line.split()[1])
        raise AssertionError("no rex_settlement_outbox_quarantined_total in /metrics")


@pytest.fixture
def site(tmp_path: Path) -> Iterator[Site]:
    vhost = f"rex-outbox-{uuid.uuid4().hex[:8]}"
    admin = BrokerAdmin(ADMIN_URL)
    admin.put_vhost(vhost)
    try:
        admin.put_permissions(vhost, "guest", ".*", ".*", ".*")
        url = f"amqp://guest:guest@127.0.0.1:5672/{quote(vhost, safe='')}"
        env = {
            **os.environ,
            "REX_BROKER_URL": url,
            "REX_DATA_DIR": str(tmp_path),
            "REX_CONFIG_DIR": str(ROOT / "config"),
            "PYTHONUNBUFFERED": "1",
        }
        env.pop("REX_DATABASE_URL", None)
        probe = "outbox-probe"
        connection = pika.BlockingConnection(pika.URLParameters(url))
        try:
            channel = connection.channel()
            declare_blocking(channel, topology.for_settlement())
            channel.queue_declare(probe)
            channel.queue_bind(probe, topology.SETTLEMENT, "#")
        finally:
            connection.close()
        running = Site(url, env, tmp_path / "settlement.sqlite3", tmp_path / "worker.log", probe)
        try:
            yield running
        finally:
            running.stop()
    finally:
        admin.delete_vhost(vhost)


def event(event_id: str, member: str = BUYER) -> SettlementEvent:
    return SettlementEvent(event_id, member, "obligation_created", "obl-X", {}, time.time_ns())


def test_unpublishable_rows_are_quarantined_and_the_rows_behind_them_go_out(site: Site) -> None:
    now = time.time_ns()
    first = obligation_created("obl-PRND-OX-1", BUYER, SELLER, 100, "CNY", now)
    second = obligation_created("obl-PRND-OX-2", BUYER, SELLER, 100, "CNY", now)
    long_id, long_key = "e" * 300, event("long-routing-key", member="m" * 300)
    site.plant(*first, event(long_id), long_key, *second)
    good = [e.event_id for e in first + second]
    site.start()
    site.wait_published(good)
    assert site.received() == good
    quarantined = site.query(
        "SELECT event_id, quarantine_reason FROM outbox WHERE quarantined_at IS NOT NULL"
        " ORDER BY seq"
    )
    assert [(e, str(r).split(";")[0]) for e, r in quarantined] == [
        (long_id, "Unpublishable: message_id is 300 bytes"),
        ("long-routing-key", "Unpublishable: routing_key is 319 bytes"),
    ]
    assert site.quarantined_total() == 2
    errors = [line for line in site.log.read_text().splitlines() if "quarantined" in line]
    assert len(errors) == 2 and all("ERROR" in line for line in errors), errors

    # Restarted: the quarantined rows are not tried again; what was written meanwhile goes out.
    site.stop()
    third = obligation_created("obl-PRND-OX-3", BUYER, SELLER, 100, "CNY", time.time_ns())
    site.plant(*third)
    site.start()
    site.wait_published([e.event_id for e in third])
    assert site.received() == good + [e.event_id for e in third]
    assert site.quarantined_total() == 0  # this process set nothing aside: nothing retried
    assert site.query("SELECT COUNT(*) FROM outbox WHERE published = 0") == [(2,)]

    reconciled = subprocess.run(
        [sys.executable, "-m", "cli", "reconcile", "--data-dir", str(site.db.parent)],
        cwd=ROOT,
        env=site.env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert reconciled.returncode == 1, reconciled.stdout + reconciled.stderr
    assert "clean" not in reconciled.stdout
    assert "2 quarantined" in reconciled.stdout
    assert "[outbox] long-routing-key: quarantined at" in reconciled.stdout
