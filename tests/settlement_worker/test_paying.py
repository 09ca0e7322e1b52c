"""Booking to paying, on the memory bus with in-process fake banks, on SQLite and
PostgreSQL: trade -> obligation -> payment plan -> cash payments -> bank -> confirmed ->
journal entry `paid-<payment id>`; a fully cash-settled trade nets to zero; a disputed
trade's payment waits for the dispute; reconcile stays clean."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from rex import topology
from rex.bus.memory import MemoryBroker, MemoryBus
from rex.protocol import TradeMessage
from settlement_worker.disputes.operations import open_in_store, resolve_in_store
from settlement_worker.disputes.rules import Actor, SubjectType
from settlement_worker.payments.banks.fake import FakeBank
from settlement_worker.payments.payer import Payer, mark_paid
from settlement_worker.payments.rules import SECOND
from settlement_worker.reports.reconcile import reconcile
from settlement_worker.service import SettlementService
from settlement_worker.store import Store
from tests.rex.bus.helpers import run_until
from tests.settlement_worker.helpers import (
    BACKENDS,
    CONFIG,
    PRODUCTS,
    T0,
    Opened,
    opened_store,
    run_worker,
    trade,
    trade_envelope,
)

BANKS = ("icbc-baotou", "boc-ganzhou")


@pytest.fixture(params=BACKENDS)
def opened(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Opened]:
    with opened_store(request.param, tmp_path) as o:
        yield o


def loop_clock(broker: MemoryBroker) -> Callable[[], int]:
    """Loop time as ns since the epoch, starting now."""
    start = time.time_ns()
    return lambda: start + int(broker.now * SECOND)


def publish(bus: MemoryBus, message: TradeMessage) -> None:
    bus.publish(trade_envelope(message))


def payment_states(store: Store) -> dict[str, str]:
    return dict(store.query("SELECT payment_id, state FROM payments"))


# baotou-metals pays cash here: ganzhou-magnet refuses bills. xinyu-pvc pays cash.
# ganzhou-magnet pays inner-mongolia-trading half by bill (its 50% cap), half in cash.
CASH_1 = trade(1, buyer="baotou-metals", seller="ganzhou-magnet")
CASH_2 = trade(2, quantity=300, buyer="xinyu-pvc", seller="baotou-metals")
HALF_BILL = trade(3, quantity=500, buyer="ganzhou-magnet", seller="inner-mongolia-trading")


def test_trades_are_paid_booked_and_reconciled(opened: Opened) -> None:
    store = opened.store
    broker = MemoryBroker()
    clock = loop_clock(broker)
    bus = MemoryBus(broker, "rex-settlement")
    banks = {b: FakeBank(bus, b, clock) for b in BANKS}
    for member in ("baotou-metals", "ganzhou-magnet", "xinyu-pvc", "inner-mongolia-trading"):
        broker.declare(topology.for_member(member))
    service = SettlementService(
        bus, store, PRODUCTS.values(), CONFIG, banks=banks, clock=clock, max_batch=2
    )
    service.start()
    engine = MemoryBus(broker, "rex-engine")
    engine.start(topology.Topology(), lambda: None)
    broker.run_until_idle(max_time=0)
    for message in (CASH_1, CASH_2, HALF_BILL, CASH_1):  # the last: a redelivery
        publish(engine, message)

    def all_paid() -> bool:
        states = payment_states(store)
        return len(states) == 3 and set(states.values()) == {"confirmed"}

    assert run_until(bus, all_paid, 30), payment_states(store)
    assert service.settled == 3

    # One payment per cash part, each paid once, by the payer's own bank.
    rows = store.query("SELECT payment_id, obligation_id, bank, amount FROM payments")
    bank_of = {pid: bank for pid, _, bank, _ in rows}
    assert bank_of == {
        "pay-obl-PRND-OX-1-0": "icbc-baotou",
        "pay-obl-PRND-OX-2-0": "icbc-baotou",
        "pay-obl-PRND-OX-3-1": "boc-ganzhou",  # part 0 is the bill
    }
    executed = Counter(pid for bank in banks.values() for pid in bank.executions)
    assert executed == Counter(bank_of.keys())  # exactly once each
    for bank_id, bank in banks.items():
        assert all(bank_of[pid] == bank_id for pid in bank.executions)

    # Each booked once, by `paid-<payment id>` with the payment id as reference.
    entries = store.query(
        "SELECT entry_id, reference, kind FROM journal_entries WHERE kind = 'payment'"
        " ORDER BY entry_id"
    )
    assert entries == [(f"paid-{pid}", pid, "payment") for pid in sorted(bank_of)]

    # Every trade nets to zero on payables and receivables: cash by the payments, the
    # half-bill one's other half by the bill issued at booking, now a bill payable of the
    # buyer and a bill receivable of the seller.
    balances = store.balances()
    assert balances[("baotou-metals", "payables", "CNY")] == 0
    assert balances[("ganzhou-magnet", "receivables", "CNY")] == 0
    assert balances[("xinyu-pvc", "payables", "CNY")] == 0
    assert balances[("baotou-metals", "receivables", "CNY")] == 0
    half = 20_750_000 // 2  # 415,000 CNY/t x 500 kg = 207,500.00 CNY; half by bill
    assert balances[("ganzhou-magnet", "payables", "CNY")] == 0
    assert balances[("inner-mongolia-trading", "receivables", "CNY")] == 0
    assert balances[("ganzhou-magnet", "bills_payable", "CNY")] == -half
    assert balances[("inner-mongolia-trading", "bills_receivable", "CNY")] == half
    assert store.totals_by_currency() == {"CNY": 0}
    assert dict(store.query("SELECT trade_id, state FROM obligations")) == {
        "PRND-OX-1": "settled",
        "PRND-OX-2": "settled",
        "PRND-OX-3": "settled",  # cash part paid, bill part met by the bill
    }
    assert store.query("SELECT bill_id, holder, face, state FROM bills") == [
        ("bill-obl-PRND-OX-3-0", "inner-mongolia-trading", half, "accepted")
    ]

    # Both parties hear of each confirmed payment; the payer of each send.
    events = Counter(
        (r[0].split(".")[1], r[0].split(".")[0])
        for r in store.query("SELECT routing_key FROM outbox")
    )
    assert events[("payment_confirmed", "baotou-metals")] == 2  # paid one, received one
    assert events[("payment_confirmed", "ganzhou-magnet")] == 2
    assert events[("payment_confirmed", "inner-mongolia-trading")] == 1
    assert events[("payment_sent", "xinyu-pvc")] == 1

    report = reconcile(store)
    assert report.clean, report.differences
    assert ("payments", "3 payments") in report.summary


def test_a_frozen_trades_payment_waits_until_the_dispute_is_rejected(opened: Opened) -> None:
    store = opened.store
    run_worker(store, [CASH_1, CASH_2])  # booked, payments created, nobody pays yet
    with store.transaction() as tx:
        dispute = open_in_store(
            tx, SubjectType.TRADE, "PRND-OX-1", Actor.member("ganzhou-magnet"), "grade", T0
        ).dispute_id
    broker = MemoryBroker()
    clock = loop_clock(broker)
    bus = MemoryBus(broker, "rex-payer")
    bank = FakeBank(bus, "icbc-baotou", clock)
    payer = Payer(store, bus, {"icbc-baotou": bank}, clock=clock)
    bus.start(topology.Topology(), payer.start)
    run_until(bus, lambda: False, 20)  # 20 s of loop time: many sweeps
    assert payment_states(store) == {
        "pay-obl-PRND-OX-1-0": "new",  # frozen: left due, not sent
        "pay-obl-PRND-OX-2-0": "confirmed",
    }
    assert bank.executions == ["pay-obl-PRND-OX-2-0"]
    assert payer.frozen_skips > 1
    assert reconcile(store).clean

    with store.transaction() as tx:
        resolve_in_store(tx, dispute, Actor.operator("li"), False, "assay ok", T0 + 1)
    assert run_until(bus, lambda: payment_states(store)["pay-obl-PRND-OX-1-0"] == "confirmed", 10)
    assert sorted(bank.executions) == ["pay-obl-PRND-OX-1-0", "pay-obl-PRND-OX-2-0"]
    assert store.balances()[("baotou-metals", "payables", "CNY")] == 0
    report = reconcile(store)
    assert report.clean, report.differences
    payer.stop()


def test_an_upheld_dispute_sends_the_payment_to_review_unpaid(opened: Opened) -> None:
    store = opened.store
    run_worker(store, [CASH_1])
    with store.transaction() as tx:
        dispute = open_in_store(
            tx, SubjectType.TRADE, "PRND-OX-1", Actor.member("ganzhou-magnet"), "grade", T0
        ).dispute_id
        resolve_in_store(tx, dispute, Actor.operator("li"), True, "short weight", T0 + 1)
    broker = MemoryBroker()
    clock = loop_clock(broker)
    bus = MemoryBus(broker, "rex-payer")
    bank = FakeBank(bus, "icbc-baotou", clock)
    payer = Payer(store, bus, {"icbc-baotou": bank}, clock=clock)
    bus.start(topology.Topology(), payer.start)
    run_until(bus, lambda: False, 5)
    assert payment_states(store) == {"pay-obl-PRND-OX-1-0": "manual_review"}
    assert bank.executions == []
    report = reconcile(store)
    assert report.clean, report.differences
    payer.stop()


def test_a_payment_marked_paid_by_an_operator_is_booked_once(opened: Opened) -> None:
    store = opened.store
    run_worker(store, [CASH_1])
    broker = MemoryBroker()
    clock = loop_clock(broker)
    bus = MemoryBus(broker, "rex-payer")
    payer = Payer(store, bus, {}, clock=clock)  # its bank is not configured: review
    bus.start(topology.Topology(), payer.start)
    run_until(bus, lambda: payment_states(store)["pay-obl-PRND-OX-1-0"] == "manual_review", 5)
    payer.stop()
    mark_paid(store, "pay-obl-PRND-OX-1-0", "operator:li", "ICBC-REF-1")
    entries = store.query("SELECT entry_id, reference FROM journal_entries WHERE kind = 'payment'")
    assert entries == [("paid-pay-obl-PRND-OX-1-0", "pay-obl-PRND-OX-1-0")]
    assert store.query("SELECT state FROM obligations") == [("settled",)]
    report = reconcile(store)
    assert report.clean, report.differences
