"""The whole path with real processes on the real RabbitMQ: trades published to rex.trades
-> `python -m settlement_worker` (booking and, behind the lock, the payer) -> two
`python -m settlement_worker.payments.bank_sim` processes -> confirmed -> ledger. Every payment is
confirmed and executed exactly once according to the simulators' own ledgers, and
`rex reconcile` exits 0. A fresh vhost and data directory per run."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import pytest

from rex.environment import REX_BROKER_ADMIN_URL
from rex.protocol import TradeMessage
from rex.provision import BrokerAdmin
from tests.settlement_worker.payments.test_bank_sim_faults import Site
from tests.system.conftest import publish_trades

pytestmark = [pytest.mark.broker, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
ADMIN_URL = REX_BROKER_ADMIN_URL.get()
BANKS = ("icbc-baotou", "boc-ganzhou")
TRADES = 60
# (buyer, seller, the buyer's bank): every plan has exactly one cash part.
PAIRS = [
    ("baotou-metals", "ganzhou-magnet", "icbc-baotou"),  # all cash: the seller refuses bills
    ("ganzhou-magnet", "inner-mongolia-trading", "boc-ganzhou"),  # half bill, half cash
    ("xinyu-pvc", "baotou-metals", "icbc-baotou"),  # a cash payer
]


def trade(seq: int) -> TradeMessage:
    buyer, seller, _ = PAIRS[seq % len(PAIRS)]
    return TradeMessage(
        trade_id=f"PRND-OX-{seq}",
        product="PRND-OX",
        price=415_000 + 50 * (seq % 7),
        quantity=100 * (1 + seq % 5),
        buyer=buyer,
        seller=seller,
        buy_order_id=2 * seq,
        sell_order_id=2 * seq + 1,
        aggressor="buy",
        sequence=seq,
        timestamp=1_795_000_000_000_000_000 + seq,
        currency="CNY",
    )


@pytest.fixture
def site(tmp_path: Path) -> Iterator[Site]:
    vhost = f"rex-pay-{uuid.uuid4().hex[:8]}"
    admin = BrokerAdmin(ADMIN_URL)
    admin.put_vhost(vhost)
    admin.put_permissions(vhost, "guest", ".*", ".*", ".*")
    url = f"amqp://guest:guest@127.0.0.1:5672/{quote(vhost, safe='')}"
    env = {
        **os.environ,
        "REX_BROKER_URL": url,
        "REX_DATA_DIR": str(tmp_path),
        "REX_CONFIG_DIR": str(ROOT / "config"),
        "REX_METRICS_PORT": "0",
        "PYTHONUNBUFFERED": "1",
    }
    env.pop("REX_DATABASE_URL", None)
    running = Site(vhost, url, tmp_path, env, admin)
    try:
        yield running
    finally:
        for bank in list(running.sims):
            running.stop_sim(bank, signal.SIGKILL)
        admin.delete_vhost(vhost)


def confirmed(db: Path) -> int:
    if not db.exists():
        return 0
    try:
        with sqlite3.connect(db) as connection:
            row = connection.execute("SELECT COUNT(*) FROM payments WHERE state = 'confirmed'")
            return int(row.fetchone()[0])
    except sqlite3.OperationalError:
        return 0


def test_trades_are_paid_through_the_bank_simulators_exactly_once(site: Site) -> None:
    started = time.monotonic()
    # The primary fails a fifth of attempts: the payer retries, and may fall back.
    site.start_sim(BANKS[0], "--latency-ms", "5", "--failure-rate", "0.2", "--seed", "7")
    site.start_sim(BANKS[1], "--latency-ms", "5")
    for bank in BANKS:
        site.wait_consuming(bank)
    publish_trades(site.url, (trade(seq) for seq in range(1, TRADES + 1)))
    log_path = site.data / "worker.log"
    with open(log_path, "ab") as log:
        worker = subprocess.Popen(
            [sys.executable, "-m", "settlement_worker"],
            cwd=ROOT,
            env=site.env,
            stdout=log,
            stderr=log,
        )
        try:
            db = site.data / "settlement.sqlite3"
            deadline = time.monotonic() + 30
            while confirmed(db) < TRADES:
                assert worker.poll() is None, log_path.read_text()[-4000:]
                assert time.monotonic() < deadline, log_path.read_text()[-4000:]
                time.sleep(0.1)
            time.sleep(0.3)  # a late duplicate answer would show up now
        finally:
            worker.send_signal(signal.SIGTERM)
            assert worker.wait(timeout=20) == 0, log_path.read_text()[-4000:]
    for bank in BANKS:
        site.stop_sim(bank)

    with sqlite3.connect(site.data / "settlement.sqlite3") as check:
        rows = check.execute("SELECT payment_id, state, bank FROM payments").fetchall()
        entries = dict(
            check.execute("SELECT reference, COUNT(*) FROM journal_entries WHERE kind = 'payment'"
                          " GROUP BY reference").fetchall()
        )  # fmt: skip
        obligations = Counter(
            r[0] for r in check.execute("SELECT state FROM obligations").fetchall()
        )
    assert len(rows) == TRADES and {state for _, state, _ in rows} == {"confirmed"}
    executed = {bank: site.executions(bank) for bank in BANKS}
    times = Counter(pid for ids in executed.values() for pid in ids)
    assert set(times) == {pid for pid, _, _ in rows}
    assert set(times.values()) == {1}, "a payment was executed twice"
    where = {pid: bank for bank, ids in executed.items() for pid in ids}
    assert all(where[pid] == bank for pid, _, bank in rows)
    for bank in BANKS:
        report = site.report(bank)
        assert report["executions"] == report["distinct_paid"] == len(executed[bank])
    assert entries == {pid: 1 for pid, _, _ in rows}  # each booked once
    # All settled: cash parts paid; the half-bill trades' bill parts met by bills at booking.
    assert obligations == {"settled": TRADES}

    out = subprocess.run(
        [sys.executable, "-m", "cli", "reconcile", "--data-dir", str(site.data)],
        cwd=ROOT,
        env=site.env,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert out.returncode == 0, out.stdout + out.stderr
    assert "payments   ok" in out.stdout, out.stdout
    assert "bills      ok" in out.stdout, out.stdout
    assert time.monotonic() - started < 40
