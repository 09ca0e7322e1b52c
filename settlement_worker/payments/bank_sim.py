"""python -m settlement_worker.payments.bank_sim -- a bank, simulated, as its own process over AMQP.

    python -m settlement_worker.payments.bank_sim --bank icbc-baotou --latency-ms 20 \\
        --failure-rate 0.3 --outage 10:20 --outage 60:65
    python -m settlement_worker.payments.bank_sim --bank icbc-baotou --report

It consumes `rex.bank.<bank>` (exchange `rex.bank`, routing key = bank id) and answers sends
and queries on the requester's reply queue (settlement_worker.payments.banks.wire) after
`--latency-ms`. Its ledger -- every payment it executed and its decision on every attempt --
is a SQLite file under REX_DATA_DIR (`bank-<bank>.sqlite3`), so a restarted bank still
dedupes by payment id and answers a redelivered request as before. It refuses sends past
their deadline, fails `--failure-rate` of attempts (seeded by `--seed`), and during each
`--outage START:END` (seconds since it started) drops every request unanswered, so callers
time out. A request is acked once its decision is committed. `--report` prints the ledger's
counts as JSON and exits; the same line is logged every 10 seconds and at exit.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from rex import logs
from rex.bus import Bus, Delivery, Envelope, Subscription
from rex.config import ConfigError
from rex.environment import (
    AMQP_URLS,
    REX_BROKER_URL,
    REX_BUS_CONFIRM_TIMEOUT,
    REX_DATA_DIR,
    REX_REPLICATION,
)
from rex.private_files import keep_created_files_private
from rex.service_users import Service, broker_url_of
from settlement_worker.payments.banks import BankOutcome, BankRequestKind, BankResult, wire
from settlement_worker.payments.banks.core import BankLedger, BankRules, SqliteBankLedger

log = logging.getLogger("rex.bank_sim")

__all__ = ["BankSimulator", "ledger_path", "main", "report"]

REPORT_INTERVAL = 10.0


def ledger_path(data_dir: Path, bank_id: str) -> Path:
    return data_dir / f"bank-{bank_id}.sqlite3"


def report(ledger: BankLedger, bank_id: str) -> dict[str, Any]:
    executions = ledger.executions()
    return {
        "bank": bank_id,
        "executions": len(executions),
        "distinct_paid": len(set(executions)),
    }


class BankSimulator:
    """The simulator on any Bus (the memory bus in unit tests, RabbitMQ in the process)."""

    def __init__(
        self,
        bus: Bus,
        ledger: BankLedger,
        rules: BankRules,
        *,
        latency: float = 0.02,
        outages: Sequence[tuple[float, float]] = (),
        clock: Callable[[], int] = time.time_ns,
    ) -> None:
        self.bus = bus
        self.ledger = ledger
        self.rules = rules
        self.latency = latency
        self.clock = clock
        started = clock()
        self.outages = [(started + int(a * 1e9), started + int(b * 1e9)) for a, b in outages]
        self.received = 0
        self.dropped = 0

    @property
    def bank_id(self) -> str:
        return self.rules.bank_id

    def start(self) -> None:
        self.bus.start(wire.for_bank(self.bank_id), self._on_ready)

    def _on_ready(self) -> None:
        self.bus.consume(Subscription(wire.bank_queue(self.bank_id), self._on_request))
        log.info("bank simulator ready bank=%s", self.bank_id)

    def in_outage(self, now: int) -> bool:
        return any(start <= now < end for start, end in self.outages)

    def _on_request(self, delivery: Delivery) -> None:
        self.received += 1
        if self.in_outage(self.clock()):
            self.dropped += 1
            delivery.ack()  # gone: the caller times out
            return
        self.bus.call_later(self.latency, lambda: self._process(delivery))

    def _process(self, delivery: Delivery) -> None:
        reply_to = delivery.headers.get(wire.REPLY_TO)
        try:
            if not isinstance(reply_to, str) or not reply_to:
                raise ValueError("no reply_to header")
            result = self._decide(delivery)
        except ValueError as error:
            log.error("bad bank request message_id=%s: %s", delivery.message_id, error)
            delivery.reject(requeue=False)
            return
        envelope = Envelope(
            exchange="",
            routing_key=reply_to,
            body=wire.encode_result(result),
            type=wire.RESULT_TYPE,
            message_id=f"{delivery.message_id}-reply",
            timestamp=int(time.time()),
            headers={wire.CORRELATION_ID: result.payment_id},
        )
        self.bus.publish(envelope)  # a lost reply is a timeout for the caller: it queries
        delivery.ack()

    def _decide(self, delivery: Delivery) -> BankResult:
        now = self.clock()
        if delivery.type == wire.SEND_TYPE:
            request = wire.decode_send(delivery.body)
            outcome, reason = self.rules.send(self.ledger, request, now)
            kind, payment_id, attempt = BankRequestKind.SEND, request.payment_id, request.attempt
        elif delivery.type == wire.QUERY_TYPE:
            payment_id, attempt, deadline = wire.decode_query(delivery.body)
            outcome, reason = self.rules.query(self.ledger, payment_id, attempt, deadline, now)
            kind = BankRequestKind.QUERY
        else:
            raise ValueError(f"unknown request type {delivery.type!r}")
        if outcome is not BankOutcome.PENDING:
            log.debug(
                "bank %s %s %s attempt=%d %s", self.bank_id, kind, payment_id, attempt, outcome
            )
        return BankResult(kind, payment_id, self.bank_id, attempt, outcome, reason)

    def report(self) -> dict[str, Any]:
        return {
            **report(self.ledger, self.bank_id),
            "received": self.received,
            "dropped": self.dropped,
        }


def _outage(text: str) -> tuple[float, float]:
    try:
        start, end = (float(part) for part in text.split(":"))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"an outage is START:END in seconds, got {text!r}"
        ) from None
    if not 0 <= start < end:
        raise argparse.ArgumentTypeError(f"an outage needs 0 <= START < END, got {text!r}")
    return start, end


def _rate(text: str) -> float:
    value = float(text)
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"a failure rate is in 0..1, got {text}")
    return value


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m settlement_worker.payments.bank_sim",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--bank", required=True, help="the bank id (the routing key)")
    parser.add_argument("--latency-ms", type=float, default=20.0)
    parser.add_argument("--failure-rate", type=_rate, default=0.0)
    parser.add_argument("--outage", type=_outage, action="append", default=[], metavar="START:END")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--broker",
        type=AMQP_URLS.argument,
        default=None,
        help="AMQP URL (default REX_BANK_SIM_BROKER_URL, else REX_BROKER_URL)",
    )
    parser.add_argument("--data-dir", type=Path, default=None, help="default REX_DATA_DIR")
    parser.add_argument("--report", action="store_true", help="print the ledger's counts, exit")
    args = parser.parse_args(argv)
    try:
        data_dir: Path = args.data_dir or REX_DATA_DIR.get()
        broker_url: str = args.broker or broker_url_of(Service.BANK_SIM, REX_BROKER_URL.get())
        confirm_timeout_s = REX_BUS_CONFIRM_TIMEOUT.get()
        replication = REX_REPLICATION.get()
        if not args.report:
            keep_created_files_private()
            logs.setup("bank-sim")
    except ConfigError as error:
        print(f"bank_sim: {error}", file=sys.stderr)
        return 2
    ledger = SqliteBankLedger(ledger_path(data_dir, args.bank))
    if args.report:
        print(json.dumps(report(ledger, args.bank), sort_keys=True))
        ledger.close()
        return 0

    from rex.bus.amqp import AmqpBus

    bus = AmqpBus(
        broker_url,
        name=f"rex-bank-sim-{args.bank}",
        confirm_timeout=confirm_timeout_s,
        replication=replication,
    )
    sim = BankSimulator(
        bus,
        ledger,
        BankRules(args.bank, args.failure_rate, args.seed),
        latency=args.latency_ms / 1000,
        outages=args.outage,
    )

    def report_now() -> None:
        log.info("bank report %s", json.dumps(sim.report(), sort_keys=True))

    def periodic() -> None:
        report_now()
        bus.call_later(REPORT_INTERVAL, periodic)

    signal.signal(signal.SIGTERM, lambda *_: bus.call_soon(bus.stop))
    signal.signal(signal.SIGINT, lambda *_: bus.call_soon(bus.stop))
    log.info(
        "bank simulator starting bank=%s latency_ms=%s failure_rate=%s outages=%s pid=%d",
        args.bank,
        args.latency_ms,
        args.failure_rate,
        args.outage,
        os.getpid(),
    )
    sim.start()
    bus.call_later(REPORT_INTERVAL, periodic)
    try:
        bus.run()
    finally:
        report_now()
        ledger.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
