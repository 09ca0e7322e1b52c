"""The AMQP adapter and the bank simulator's service, on the memory bus: the whole wire
protocol (requests on `rex.bank`, replies on the payer's queue) without RabbitMQ."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest

from rex.bus import Envelope
from rex.bus.memory import MemoryBroker, MemoryBus
from settlement_worker.payments import bank_sim as bank_sim
from settlement_worker.payments.bank_sim import BankSimulator, ledger_path
from settlement_worker.payments.banks import (
    BankOutcome,
    BankRequestKind,
    BankResult,
    SendRequest,
    wire,
)
from settlement_worker.payments.banks.amqp import AmqpBankClient
from settlement_worker.payments.banks.core import BankRules, SqliteBankLedger
from settlement_worker.payments.payer import Payer
from settlement_worker.payments.rules import SECOND, PaymentState
from settlement_worker.store import Store

from .conftest import make_payments, submit_later


def simulator(
    broker: MemoryBroker,
    path: Path,
    bank: str,
    clock: Callable[[], int],
    failure_rate: float = 0.0,
    outages: list[tuple[float, float]] | None = None,
) -> BankSimulator:
    sim = BankSimulator(
        MemoryBus(broker),
        SqliteBankLedger(ledger_path(path, bank)),
        BankRules(bank, failure_rate, seed=7),
        latency=0.02,
        outages=outages or [],
        clock=clock,
    )
    sim.start()
    return sim


def test_payments_over_the_wire_are_paid_exactly_once_or_reviewed(
    broker: MemoryBroker, store: Store, clock: Callable[[], int], tmp_path: Path
) -> None:
    primary = simulator(broker, tmp_path, "icbc-baotou", clock, 0.3, [(3.0, 13.0)])
    fallback = simulator(broker, tmp_path, "boc-ganzhou", clock, 0.3)
    bus = MemoryBus(broker)
    client = AmqpBankClient(bus, "payer-test", ["icbc-baotou", "boc-ganzhou"])
    banks = {b: client.adapter(b) for b in client.bank_ids}
    payer = Payer(store, bus, banks, clock=clock)
    client.on_unmatched = payer.on_result
    bus.start(client.topology, client.on_ready)
    payer.start()
    payments = make_payments(100, clock())
    for i in range(10):
        batch = payments[i * 10 : (i + 1) * 10]
        broker.call_later(i, submit_later(payer, batch))
    broker.run_until_idle(max_time=600)
    final = dict(store.query("SELECT payment_id, state FROM payments"))
    paid = Counter(primary.ledger.executions() + fallback.ledger.executions())
    assert all(n == 1 for n in paid.values())
    confirmed = {pid for pid, state in final.items() if state == PaymentState.CONFIRMED}
    assert confirmed == set(paid)
    assert set(final.values()) <= {PaymentState.CONFIRMED, PaymentState.MANUAL_REVIEW}
    assert len(final) == 100
    assert primary.dropped > 0
    assert primary.report()["distinct_paid"] + fallback.report()["distinct_paid"] == len(confirmed)


def test_a_restarted_simulator_still_dedupes(
    broker: MemoryBroker, clock: Callable[[], int], tmp_path: Path
) -> None:
    results: list[BankResult] = []
    bus = MemoryBus(broker)
    client = AmqpBankClient(bus, "payer-test", ["icbc-baotou"], on_unmatched=results.append)
    bus.start(client.topology, client.on_ready)
    bank = client.adapter("icbc-baotou")
    deadline = clock() + 5 * SECOND
    first = simulator(broker, tmp_path, "icbc-baotou", clock)
    bank.send(SendRequest("pay-1", 1, "a", "b", 100, "CNY", deadline), results.append)
    broker.run_until_idle(max_time=1)
    first.bus.stop()
    first.ledger.close()
    second = simulator(broker, tmp_path, "icbc-baotou", clock)  # same ledger file
    bank.send(SendRequest("pay-1", 2, "a", "b", 100, "CNY", deadline), results.append)
    bank.query("pay-1", results.append, attempt=2, deadline=deadline)
    broker.run_until_idle(max_time=1)
    assert [(r.kind, r.attempt, r.outcome, r.reason) for r in results] == [
        (BankRequestKind.SEND, 1, BankOutcome.PAID, ""),
        (BankRequestKind.SEND, 2, BankOutcome.PAID, "duplicate"),
        (BankRequestKind.QUERY, 2, BankOutcome.PAID, ""),
    ]
    assert second.ledger.executions() == ["pay-1"]


def test_a_query_before_the_deadline_is_pending_and_after_it_not_found(
    broker: MemoryBroker, clock: Callable[[], int], tmp_path: Path
) -> None:
    simulator(broker, tmp_path, "icbc-baotou", clock)
    results: list[BankResult] = []
    bus = MemoryBus(broker)
    client = AmqpBankClient(bus, "payer-test", ["icbc-baotou"], on_unmatched=results.append)
    bus.start(client.topology, client.on_ready)
    bank = client.adapter("icbc-baotou")
    deadline = clock() + 2 * SECOND
    bank.query("pay-9", results.append, attempt=1, deadline=deadline)
    broker.call_later(3, lambda: None)  # the loop's clock moves only with timers
    broker.run_until_idle(max_time=3)
    bank.query("pay-9", results.append, attempt=1, deadline=deadline)
    bank.send(SendRequest("pay-9", 1, "a", "b", 100, "CNY", deadline), results.append)
    broker.run_until_idle(max_time=1)
    assert [r.outcome for r in results] == [
        BankOutcome.PENDING,
        BankOutcome.NOT_FOUND,
        BankOutcome.REJECTED,
    ]
    assert results[-1].reason == "expired"


def test_a_malformed_request_is_dropped_and_the_simulator_goes_on(
    broker: MemoryBroker, clock: Callable[[], int], tmp_path: Path
) -> None:
    sim = simulator(broker, tmp_path, "icbc-baotou", clock)
    bus = MemoryBus(broker)
    client = AmqpBankClient(bus, "payer-test", ["icbc-baotou"])
    bus.start(client.topology, client.on_ready)
    broker.run_until_idle(max_time=0.1)
    for body, headers in ((b"\xc1garbage", {wire.REPLY_TO: client.reply_queue}), (b"", None)):
        bus.publish(
            Envelope(
                wire.BANK_EXCHANGE, "icbc-baotou", body, wire.SEND_TYPE, "bad", 0, None, headers
            )
        )
    results: list[BankResult] = []
    client.adapter("icbc-baotou").send(
        SendRequest("pay-2", 1, "a", "b", 1, "CNY", clock() + SECOND), results.append
    )
    broker.run_until_idle(max_time=1)
    assert [r.outcome for r in results] == [BankOutcome.PAID]
    assert sim.received == 3


def test_the_report_counts_distinct_paid_ids(
    broker: MemoryBroker,
    clock: Callable[[], int],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    sim = simulator(broker, tmp_path, "icbc-baotou", clock)
    results: list[BankResult] = []
    bus = MemoryBus(broker)
    client = AmqpBankClient(bus, "payer-test", ["icbc-baotou"])
    bus.start(client.topology, client.on_ready)
    for pid in ("pay-1", "pay-2", "pay-1"):
        client.adapter("icbc-baotou").send(
            SendRequest(pid, 1, "a", "b", 1, "CNY", clock() + SECOND), results.append
        )
    broker.run_until_idle(max_time=1)
    sim.ledger.close()
    assert bank_sim.main(["--bank", "icbc-baotou", "--data-dir", str(tmp_path), "--report"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report == {"bank": "icbc-baotou", "distinct_paid": 2, "executions": 2}


def test_outage_windows_are_parsed_and_checked() -> None:
    with pytest.raises(SystemExit):
        bank_sim.main(["--bank", "x", "--outage", "20:10", "--report"])
    with pytest.raises(SystemExit):
        bank_sim.main(["--bank", "x", "--failure-rate", "30", "--report"])
