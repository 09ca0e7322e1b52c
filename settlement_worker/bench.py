"""Trades settled per second: the worker's own path (decode, obligation, fees, journal
entries, payment plan and the cash payments, audit, idempotency check, one transaction per
batch, acks) on the memory bus, so the figure is the worker and its database, not the
broker. No payer runs (as `python -m settlement_worker --no-payer`): payments are created,
not sent.

    python -m settlement_worker.bench --store sqlite --trades 20000 --batch 500
    python -m settlement_worker.bench --store postgres --trades 20000 --batch 500
    python -m settlement_worker.bench --store sqlite --trades 20000 --pay-by bills

Prints a line and, last, one JSON object.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
import uuid
from pathlib import Path

from rex import topology
from rex.bus import Envelope
from rex.bus.memory import MemoryBroker, MemoryBus
from rex.config import ConfigError, ProcessConfig
from rex.environment import POSTGRES_URL, REX_DATABASE_URL
from rex.protocol import TradeMessage, encode
from settlement_worker.configuration import load_settlement
from settlement_worker.service import SettlementService
from settlement_worker.store import Store
from settlement_worker.store.postgres import PostgresStore
from settlement_worker.store.sqlite import SqliteStore

DEFAULT_DATABASE_URL = "postgresql://root@127.0.0.1:5432/test"


#: Buyer -> seller pairs of config/settlement.toml whose trades are paid in cash ...
CASH_PAIRS = [
    ("baotou-metals", "ganzhou-magnet"),
    ("ganzhou-magnet", "ningbo-alloy"),
    ("ningbo-alloy", "inner-mongolia-trading"),
    ("inner-mongolia-trading", "baotou-metals"),
]
#: ... and pairs whose trades are paid by bills (ganzhou-magnet pays by bank acceptance
#: bills that baotou-metals takes; baotou-metals then pays xinyu-pvc by bill, and the worker
#: endorses to xinyu-pvc the bills baotou-metals holds, where they fit).
BILL_PAIRS = [("ganzhou-magnet", "baotou-metals"), ("baotou-metals", "xinyu-pvc")]


def trades(count: int, pairs: list[tuple[str, str]] = CASH_PAIRS) -> list[Envelope]:
    out = []
    for seq in range(1, count + 1):
        buyer, seller = pairs[seq % len(pairs)]
        message = TradeMessage(
            trade_id=f"PRND-OX-{seq}",
            product="PRND-OX",
            price=415_000 + 50 * (seq % 40),
            quantity=100 * (1 + seq % 20),
            buyer=buyer,
            seller=seller,
            buy_order_id=2 * seq,
            sell_order_id=2 * seq + 1,
            aggressor="buy",
            sequence=seq,
            timestamp=1_795_000_000_000_000_000 + seq * 1_000_000,
            currency="CNY",
        )
        out.append(
            Envelope(
                topology.TRADES,
                "PRND-OX",
                encode(message),
                message.kind,
                message.trade_id,
                message.timestamp // 10**9,
            )
        )
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m settlement_worker.bench")
    parser.add_argument("--store", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--trades", type=int, default=20_000)
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument(
        "--pay-by",
        choices=["cash", "bills"],
        default="cash",
        help="member pairs whose trades are paid in cash, or by bills (issued or endorsed)",
    )
    parser.add_argument(
        "--database-url",
        type=POSTGRES_URL.argument,
        help=f"with --store postgres (default $REX_DATABASE_URL, else {DEFAULT_DATABASE_URL})",
    )
    args = parser.parse_args(argv)
    try:
        process_config = ProcessConfig.from_env()
        products = process_config.products()
        config = load_settlement(process_config.settlement_file, products, process_config.members())
        database_url = args.database_url or REX_DATABASE_URL.get() or DEFAULT_DATABASE_URL
    except ConfigError as error:
        print(f"settlement bench: {error}", file=sys.stderr)
        return 2
    schema = None
    if args.store == "sqlite":
        store: Store = SqliteStore(Path(tempfile.mkdtemp()) / "bench.sqlite3")
    else:
        schema = f"rex_bench_{uuid.uuid4().hex[:8]}"
        store = PostgresStore(database_url, schema=schema)
    try:
        broker = MemoryBroker()
        service = SettlementService(
            MemoryBus(broker, "settlement"),
            store,
            products.values(),
            config,  # no banks: the payments are created, not sent (--no-payer)
            prefetch=args.batch * 4,
            max_batch=args.batch,
        )
        service.start()
        engine = MemoryBus(broker, "engine")
        engine.start(topology.Topology(), lambda: None)
        broker.run_until_idle()
        envelopes = trades(args.trades, BILL_PAIRS if args.pay_by == "bills" else CASH_PAIRS)
        for envelope in envelopes:  # the backlog a restarted worker finds
            engine.publish(envelope)
        started = time.perf_counter()
        broker.run_until_idle()
        seconds = time.perf_counter() - started
        assert service.settled == args.trades, service.settled
        assert store.totals_by_currency() == {"CNY": 0}
        ((bills,),) = store.query("SELECT COUNT(*) FROM bills")
        ((endorsed,),) = store.query("SELECT COUNT(*) FROM bill_endorsements")
    finally:
        if schema is not None:
            with store.transaction() as tx:
                tx.execute(f'DROP SCHEMA "{schema}" CASCADE')
        store.close()
    rate = args.trades / seconds
    print(
        f"settlement ({args.store}, batch {args.batch}): {args.trades:,} trades in "
        f"{seconds:.2f} s = {rate:,.0f} trades/s"
    )
    print(
        json.dumps(
            {
                "store": args.store,
                "batch": args.batch,
                "pay_by": args.pay_by,
                "bills": int(bills),
                "endorsements": int(endorsed),
                "trades": args.trades,
                "seconds": round(seconds, 3),
                "trades_per_s": round(rate),
            }
        )
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
