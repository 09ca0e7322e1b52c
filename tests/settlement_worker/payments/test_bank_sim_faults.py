"""Fault tests against the bank simulator: real processes, real RabbitMQ.

Two simulators (`python -m settlement_worker.payments.bank_sim`): the primary bank fails 30% of
attempts and is out for 10 seconds in the middle of a burst of 200 payments; the fallback
fails 30% too. The payer runs in the test process on an AmqpBus, with a SQLite store.
Afterwards every payment is CONFIRMED and executed exactly once, by the bank it names,
according to the simulators' own SQLite ledgers -- or it sits in MANUAL_REVIEW, executed
nowhere. Nothing is lost. A fresh vhost per test.
"""

from __future__ import annotations

import functools
import json
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

import pytest

from rex import logs
from rex.bus.amqp import AmqpBus
from rex.environment import REX_BROKER_ADMIN_URL
from rex.money import Money
from rex.provision import BrokerAdmin
from settlement_worker.payments import rules as pm
from settlement_worker.payments.bank_sim import ledger_path
from settlement_worker.payments.banks import wire
from settlement_worker.payments.banks.amqp import AmqpBankClient
from settlement_worker.payments.payer import Payer
from settlement_worker.store.sqlite import SqliteStore
from tests.rex.bus.helpers import run_until, stop_bus

pytestmark = [pytest.mark.broker, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[3]
ADMIN_URL = REX_BROKER_ADMIN_URL.get()
PRIMARY, FALLBACK = "icbc-baotou", "boc-ganzhou"
TERMINAL = {"confirmed", "manual_review", "paid_manually"}


@dataclass
class Site:
    vhost: str
    url: str
    data: Path
    env: dict[str, str]
    admin: BrokerAdmin
    sims: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    def start_sim(self, bank: str, *args: str) -> None:
        log = open(self.data / f"sim-{bank}.log", "ab")  # noqa: SIM115 - lives with the process
        self.sims[bank] = subprocess.Popen(
            [sys.executable, "-m", "settlement_worker.payments.bank_sim", "--bank", bank, *args],
            cwd=ROOT,
            env=self.env,
            stdout=log,
            stderr=log,
        )

    def wait_consuming(self, bank: str, timeout: float = 20.0) -> None:
        path = f"queues/{quote(self.vhost, safe='')}/{quote(wire.bank_queue(bank), safe='')}"
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.sims[bank].poll() is None, self.log(bank)
            try:
                if (self.admin.request("GET", path) or {}).get("consumers", 0) >= 1:
                    return
            except Exception:
                pass
            time.sleep(0.1)
        raise AssertionError(f"simulator {bank} not consuming\n{self.log(bank)}")

    def stop_sim(self, bank: str, sig: int = signal.SIGTERM) -> None:
        process = self.sims.pop(bank)
        process.send_signal(sig)
        process.wait(timeout=20)

    def log(self, bank: str) -> str:
        return (self.data / f"sim-{bank}.log").read_text()[-4000:]

    def report(self, bank: str) -> dict[str, int]:
        """The simulator's own report (`--report`), from its ledger."""
        out = subprocess.run(
            [
                sys.executable,
                "-m",
                "settlement_worker.payments.bank_sim",
                "--bank",
                bank,
                "--report",
            ],
            cwd=ROOT,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=30,
            check=True,
        )
        data: dict[str, int] = json.loads(out.stdout)
        return data

    def executions(self, bank: str) -> list[str]:
        path = ledger_path(self.data, bank)
        if not path.exists():
            return []
        with sqlite3.connect(path) as db:
            return [r[0] for r in db.execute("SELECT payment_id FROM executions ORDER BY seq")]


@pytest.fixture
def site(tmp_path: Path) -> Iterator[Site]:
    vhost = f"rex-banks-{uuid.uuid4().hex[:8]}"
    admin = BrokerAdmin(ADMIN_URL)
    admin.put_vhost(vhost)
    admin.put_permissions(vhost, "guest", ".*", ".*", ".*")
    url = f"amqp://guest:guest@127.0.0.1:5672/{quote(vhost, safe='')}"
    env = {
        **os.environ,
        "REX_BROKER_URL": url,
        "REX_DATA_DIR": str(tmp_path),
        "PYTHONUNBUFFERED": "1",
    }
    running = Site(vhost, url, tmp_path, env, admin)
    try:
        yield running
    finally:
        for bank in list(running.sims):
            running.stop_sim(bank, signal.SIGKILL)
        admin.delete_vhost(vhost)


def payments(count: int, now: int) -> list[pm.Payment]:
    return [
        pm.new_payment(
            pm.payment_id_for(f"obl-PRND-OX-{i}", 0),
            f"obl-PRND-OX-{i}",
            "ganzhou-magnet",
            "baotou-metals",
            Money(1_000_000 + i, "CNY"),
            PRIMARY,
            now,
            (FALLBACK,),
        )
        for i in range(count)
    ]


def submit(payer: Payer, payment: pm.Payment) -> None:
    payer.submit([payment])


def drive(site: Site, count: int, burst_seconds: float, timeout: float) -> SqliteStore:
    """Run a payer until `count` payments, submitted evenly over `burst_seconds`, are all
    settled one way or the other; returns its store."""
    store = SqliteStore(site.data / "settlement.sqlite3")
    store.migrate()
    bus = AmqpBus(site.url, name="rex-payer-test", reconnect_delay=0.2)
    client = AmqpBankClient(bus, "payer-test", [PRIMARY, FALLBACK])
    payer = Payer(store, bus, {b: client.adapter(b) for b in client.bank_ids})
    client.on_unmatched = payer.on_result
    bus.start(client.topology, client.on_ready)
    try:
        assert run_until(bus, lambda: bus.connected, 20)
        payer.start()
        todo = payments(count, time.time_ns())
        step = burst_seconds / count
        for i, p in enumerate(todo):
            bus.call_later(i * step, functools.partial(submit, payer, p))
        last = [0.0]
        finished = [False]

        def settled() -> bool:  # asks the store at most 4 times a second
            if not finished[0] and time.monotonic() - last[0] >= 0.25:
                last[0] = time.monotonic()
                counts = payer.counts()
                finished[0] = sum(counts.values()) == count and set(counts) <= TERMINAL
            return finished[0]

        started = time.monotonic()
        done = run_until(bus, settled, timeout)
        print(f"settled in {time.monotonic() - started:.1f}s: {payer.counts()}")
        assert done, f"not settled in {timeout}s: {payer.counts()}"
    finally:
        payer.stop()
        stop_bus(bus)
    return store


def check_exactly_once(site: Site, store: SqliteStore, count: int) -> Counter[str]:
    rows = store.query("SELECT payment_id, state, bank FROM payments")
    assert len(rows) == count, "a payment was lost"
    executed = {bank: site.executions(bank) for bank in (PRIMARY, FALLBACK)}
    times = Counter(pid for ids in executed.values() for pid in ids)
    twice = [pid for pid, n in times.items() if n > 1]
    assert not twice, f"paid twice: {twice}"
    where = {pid: bank for bank, ids in executed.items() for pid in ids}
    for pid, state, bank in rows:
        if state == "confirmed":
            assert where.get(pid) == bank, (pid, bank, where.get(pid))
        else:
            assert state == "manual_review", (pid, state)
            assert pid not in where, f"{pid} is in review but {where[pid]} paid it"
    confirmed = Counter(bank for _, state, bank in rows if state == "confirmed")
    for bank in (PRIMARY, FALLBACK):
        report = site.report(bank)
        assert report["distinct_paid"] == report["executions"] == confirmed[bank]
    return Counter(state for _, state, _ in rows)


def last_report(site: Site, bank: str) -> dict[str, int]:
    written = (site.data / f"sim-{bank}.log").read_text().splitlines()
    messages = [entry["message"] for entry in map(logs.parse, written) if entry is not None]
    found = [m.removeprefix("bank report ") for m in messages if m.startswith("bank report {")]
    assert found, site.log(bank)
    data: dict[str, int] = json.loads(found[-1])
    return data


def test_30_percent_failures_and_a_10_second_outage_pay_exactly_once_or_review(
    site: Site,
) -> None:
    count = 200
    # The outage (seconds from the simulator's start) falls in the middle of the burst,
    # which starts about 1-2 s after the simulators and lasts 8 s.
    site.start_sim(PRIMARY, "--latency-ms", "20", "--failure-rate", "0.3", "--seed", "1",
                   "--outage", "5:15")  # fmt: skip
    site.start_sim(FALLBACK, "--latency-ms", "20", "--failure-rate", "0.3", "--seed", "2")
    site.wait_consuming(PRIMARY)
    site.wait_consuming(FALLBACK)
    store = drive(site, count, burst_seconds=8.0, timeout=180.0)
    try:
        site.stop_sim(PRIMARY)
        site.stop_sim(FALLBACK)
        states = check_exactly_once(site, store, count)
        print(f"final states: {dict(states)}")
        assert states["confirmed"] + states["manual_review"] == count
        assert last_report(site, PRIMARY)["dropped"] > 0, "the outage dropped nothing"
        timeouts = store.query("SELECT COUNT(*) FROM payment_events WHERE kind = 'timeout'")
        assert timeouts[0][0] > 0, "no send timed out"
        assert site.executions(FALLBACK), "nothing fell back to the second bank"
    finally:
        store.close()


def test_a_simulator_killed_and_restarted_mid_burst_still_pays_exactly_once(site: Site) -> None:
    count = 100
    site.start_sim(PRIMARY, "--latency-ms", "20", "--failure-rate", "0.3", "--seed", "3")
    site.start_sim(FALLBACK, "--latency-ms", "20", "--failure-rate", "0.3", "--seed", "4")
    site.wait_consuming(PRIMARY)
    site.wait_consuming(FALLBACK)

    at_kill: list[int] = []

    def killer() -> None:
        # Kill -9 the primary while payments flow, and start it again on the same ledger.
        deadline = time.monotonic() + 30
        while len(site.executions(PRIMARY)) < 20 and time.monotonic() < deadline:
            time.sleep(0.05)
        site.stop_sim(PRIMARY, signal.SIGKILL)
        at_kill.append(len(site.executions(PRIMARY)))
        time.sleep(1.0)
        site.start_sim(PRIMARY, "--latency-ms", "20", "--failure-rate", "0.3", "--seed", "3")

    thread = threading.Thread(target=killer)
    thread.start()
    try:
        store = drive(site, count, burst_seconds=5.0, timeout=150.0)
    finally:
        thread.join()
    try:
        site.stop_sim(PRIMARY)
        site.stop_sim(FALLBACK)
        states = check_exactly_once(site, store, count)
        print(f"final states: {dict(states)}; primary had paid {at_kill} when killed")
        assert at_kill and 0 < at_kill[0] < len(site.executions(PRIMARY)), "killed too late"
    finally:
        store.close()
