"""Kill -9 the settlement worker mid-batch: after a restart every trade is settled exactly
once and the ledger balances."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
import uuid
from pathlib import Path
from urllib.parse import quote

import pytest

from rex.environment import REX_BROKER_ADMIN_URL
from rex.protocol import TradeMessage
from rex.provision import BrokerAdmin
from tests.system.conftest import publish_trades

pytestmark = [pytest.mark.broker, pytest.mark.slow]
ROOT = Path(__file__).resolve().parents[2]
ADMIN_URL = REX_BROKER_ADMIN_URL.get()
TRADES = 10_000


def trade(seq: int) -> TradeMessage:
    return TradeMessage(
        trade_id=f"PRND-OX-{seq}",
        product="PRND-OX",
        price=415_000 + 50 * (seq % 7),
        quantity=100 * (1 + seq % 5),
        buyer="ganzhou-magnet",
        seller="baotou-metals",
        buy_order_id=seq,
        sell_order_id=seq + 1,
        aggressor="buy",
        sequence=seq,
        timestamp=1_795_000_000_000_000_000 + seq,
        currency="CNY",
    )


def settled(db: Path) -> int:
    if not db.exists():
        return 0
    try:
        with sqlite3.connect(db) as connection:
            return int(connection.execute("SELECT COUNT(*) FROM processed_trades").fetchone()[0])
    except sqlite3.OperationalError:
        return 0


def test_kill_9_mid_batch_settles_every_trade_exactly_once(tmp_path: Path) -> None:
    vhost = f"rex-kill-{uuid.uuid4().hex[:8]}"
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
    }
    db = tmp_path / "settlement.sqlite3"
    log = open(tmp_path / "worker.log", "ab")  # noqa: SIM115

    def start() -> subprocess.Popen[bytes]:
        return subprocess.Popen(
            [sys.executable, "-m", "settlement_worker"], cwd=ROOT, env=env, stdout=log, stderr=log
        )

    try:
        # every tenth trade published twice
        publish_trades(url, (trade(seq) for seq in range(1, TRADES + 1)))
        worker = start()  # a backlog of 11,000 messages waits for it
        deadline = time.monotonic() + 30
        while settled(db) < 1000:  # early in the backlog
            assert time.monotonic() < deadline, (tmp_path / "worker.log").read_text()
            time.sleep(0.002)
        worker.send_signal(signal.SIGKILL)
        worker.wait()
        at_kill = settled(db)
        assert at_kill < TRADES, "killed too late to test anything"
        worker = start()
        deadline = time.monotonic() + 60
        while settled(db) < TRADES:
            assert time.monotonic() < deadline, (tmp_path / "worker.log").read_text()
            time.sleep(0.1)
        time.sleep(0.5)  # anything still redelivered is skipped, not booked again
        worker.send_signal(signal.SIGTERM)
        assert worker.wait(timeout=20) == 0
        with sqlite3.connect(db) as check:
            assert check.execute("SELECT COUNT(*) FROM obligations").fetchone()[0] == TRADES
            assert (
                check.execute("SELECT COUNT(DISTINCT trade_id) FROM obligations").fetchone()[0]
                == TRADES
            )
            totals = check.execute(
                "SELECT currency, SUM(amount) FROM postings GROUP BY currency"
            ).fetchall()
            assert totals == [("CNY", 0)]
            expected = sum(t.price * t.quantity // 10 for t in map(trade, range(1, TRADES + 1)))
            # The buyer pays with bank bills the seller takes: what it is owed is a bill
            # receivable once booked, so both kinds together are the trades' value.
            receivable = check.execute(
                "SELECT SUM(amount) FROM postings"
                " WHERE account_kind IN ('receivables', 'bills_receivable')"
            ).fetchone()[0]
            assert receivable == expected  # no trade booked twice, none missing
    finally:
        admin.delete_vhost(vhost)
