"""The payer driving payments against in-process fake banks on the memory bus."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable

import pytest

from rex.bus.memory import MemoryBroker, MemoryBus
from settlement_worker.payments.banks import BankAdapter, ResultCallback, SendRequest
from settlement_worker.payments.banks.fake import FakeBank
from settlement_worker.payments.payer import Payer, release_payment, review_queue
from settlement_worker.payments.rules import SECOND, AlertKind, PaymentState
from settlement_worker.payments.sql import load_history
from settlement_worker.store import Store

from .conftest import make_payments, submit_later


def states(store: Store) -> dict[str, PaymentState]:
    return {r[0]: PaymentState(r[1]) for r in store.query("SELECT payment_id, state FROM payments")}


def banks_of(store: Store) -> dict[str, str]:
    return {r[0]: r[1] for r in store.query("SELECT payment_id, bank FROM payments")}


def assert_exactly_once(store: Store, *banks: FakeBank) -> Counter[PaymentState]:
    """Every payment CONFIRMED and executed by exactly its bank, once; or in MANUAL_REVIEW
    and executed nowhere. Returns the count by state."""
    executed = Counter(pid for bank in banks for pid in bank.executions)
    assert all(n == 1 for n in executed.values()), "a payment was executed twice"
    where = {pid: bank.bank_id for bank in banks for pid in bank.executions}
    final = states(store)
    bank = banks_of(store)
    for pid, state in final.items():
        if state is PaymentState.CONFIRMED:
            assert where.get(pid) == bank[pid], pid
        else:
            assert state is PaymentState.MANUAL_REVIEW, (pid, state)
            assert pid not in executed
    assert set(executed) <= set(final)
    return Counter(final.values())


def test_a_reliable_bank_pays_every_payment_once(
    bus: MemoryBus, broker: MemoryBroker, store: Store, clock: Callable[[], int]
) -> None:
    bank = FakeBank(bus, "icbc-baotou", clock)
    payer = Payer(store, bus, {"icbc-baotou": bank}, clock=clock)
    payer.start()
    assert payer.submit(make_payments(50, clock(), fallbacks=())) == 50
    broker.run_until_idle(max_time=5)
    assert assert_exactly_once(store, bank) == {PaymentState.CONFIRMED: 50}
    assert len(bank.executions) == 50
    with store.transaction() as tx:
        kinds = [e.kind for e, _ in load_history(tx, "pay-obl-PRND-OX-7-0")]
    assert kinds == ["created", "sent", "confirmed"]
    audits = store.query("SELECT COUNT(*) FROM audit_log WHERE subject_type = 'payment'")
    assert audits[0][0] == 150


def test_submitting_a_payment_twice_stores_it_once(
    bus: MemoryBus, store: Store, clock: Callable[[], int]
) -> None:
    payer = Payer(store, bus, {}, clock=clock)
    assert payer.submit(make_payments(3, clock())) == 3
    assert payer.submit(make_payments(4, clock())) == 1
    assert payer.counts() == {"new": 4}


def test_failures_outage_and_lost_replies_pay_exactly_once_or_review(
    bus: MemoryBus, broker: MemoryBroker, store: Store, clock: Callable[[], int]
) -> None:
    """The fault test's scenario on fakes: 200 payments arrive over 20 s, the primary fails
    30% of attempts, is out from 8 s to 18 s and loses 10% of its replies; the fallback
    fails 30% too."""
    t0 = clock()
    primary = FakeBank(
        bus,
        "icbc-baotou",
        clock,
        failure_rate=0.3,
        seed=1,
        outages=[(t0 + 8 * SECOND, t0 + 18 * SECOND)],
        reply_loss_rate=0.1,
    )
    fallback = FakeBank(bus, "boc-ganzhou", clock, failure_rate=0.3, seed=2)
    payer = Payer(store, bus, {b.bank_id: b for b in (primary, fallback)}, clock=clock)
    payer.start()
    payments = make_payments(200, t0)
    for i in range(20):  # 10 a second
        batch = payments[i * 10 : (i + 1) * 10]
        broker.call_later(i, submit_later(payer, batch))
    broker.run_until_idle(max_time=600)
    counts = assert_exactly_once(store, primary, fallback)
    assert sum(counts.values()) == 200
    assert counts[PaymentState.CONFIRMED] >= 190
    assert primary.dropped > 0 and primary.lost_replies > 0  # the faults did happen
    assert fallback.executions  # and some payments went to the fallback
    kinds = Counter(a.kind for a in payer.alerts)
    assert kinds[AlertKind.FALLBACK] > 0
    assert not kinds[AlertKind.DOUBLE_PAYMENT] and not kinds[AlertKind.LATE_PAID]


def test_a_lost_reply_is_resolved_by_a_query_not_a_second_send(
    bus: MemoryBus, broker: MemoryBroker, store: Store, clock: Callable[[], int]
) -> None:
    bank = FakeBank(bus, "icbc-baotou", clock, reply_loss_rate=1.0)
    payer = Payer(store, bus, {"icbc-baotou": bank}, clock=clock)
    payer.start()
    payer.submit(make_payments(1, clock(), fallbacks=()))
    broker.run_until_idle(max_time=1)
    assert states(store) == {"pay-obl-PRND-OX-0-0": PaymentState.SENT}
    bank.reply_loss_rate = 0.0  # the query's answer gets through
    broker.run_until_idle(max_time=30)
    assert states(store) == {"pay-obl-PRND-OX-0-0": PaymentState.CONFIRMED}
    with store.transaction() as tx:
        kinds = [e.kind for e, _ in load_history(tx, "pay-obl-PRND-OX-0-0")]
    assert kinds == ["created", "sent", "timeout", "confirmed"]
    assert bank.executions == ["pay-obl-PRND-OX-0-0"]


def test_a_silent_bank_keeps_the_payment_unknown_and_never_switches(
    bus: MemoryBus, broker: MemoryBroker, store: Store, clock: Callable[[], int]
) -> None:
    primary = FakeBank(bus, "icbc-baotou", clock)
    fallback = FakeBank(bus, "boc-ganzhou", clock)
    primary.down = True
    payer = Payer(store, bus, {b.bank_id: b for b in (primary, fallback)}, clock=clock)
    payer.start()
    payer.submit(make_payments(5, clock()))
    broker.run_until_idle(max_time=600)
    assert set(states(store).values()) == {PaymentState.UNKNOWN}
    assert fallback.requests == 0
    assert {a.kind for a in payer.alerts} == {AlertKind.UNRESOLVED}
    primary.down = False  # back: queries say NOT_FOUND, and the payments go through
    broker.run_until_idle(max_time=120)
    assert assert_exactly_once(store, primary, fallback) == {PaymentState.CONFIRMED: 5}
    assert not fallback.executions


def test_a_payment_every_bank_refuses_waits_for_an_operator_who_releases_it(
    bus: MemoryBus, broker: MemoryBroker, store: Store, clock: Callable[[], int]
) -> None:
    primary = FakeBank(bus, "icbc-baotou", clock, failure_rate=1.0)
    fallback = FakeBank(bus, "boc-ganzhou", clock, failure_rate=1.0)
    third = FakeBank(bus, "abc-hohhot", clock)
    banks = {b.bank_id: b for b in (primary, fallback, third)}
    payer = Payer(store, bus, banks, clock=clock)
    payer.start()
    payer.submit(make_payments(2, clock()))
    broker.run_until_idle(max_time=120)
    review = review_queue(store)
    assert sorted(p.payment_id for p in review) == ["pay-obl-PRND-OX-0-0", "pay-obl-PRND-OX-1-0"]
    assert all(p.bank == "boc-ganzhou" and p.last_error == "declined" for p in review)
    assert primary.requests == 6 and fallback.requests == 6  # 3 sends each per payment
    release_payment(store, "pay-obl-PRND-OX-0-0", "abc-hohhot", "ops-li", "bank line ok")
    broker.run_until_idle(max_time=5)  # the payer's sweep picks it up
    assert states(store)["pay-obl-PRND-OX-0-0"] is PaymentState.CONFIRMED
    assert third.executions == ["pay-obl-PRND-OX-0-0"]
    with store.transaction() as tx:
        history = load_history(tx, "pay-obl-PRND-OX-0-0")
    released = [(e, actor) for e, actor in history if e.kind == "released"]
    assert released[0][1] == "ops-li"
    assert [p.payment_id for p in review_queue(store)] == ["pay-obl-PRND-OX-1-0"]


def test_a_payment_for_a_bank_not_configured_goes_to_review(
    bus: MemoryBus, broker: MemoryBroker, store: Store, clock: Callable[[], int]
) -> None:
    payer = Payer(store, bus, {}, clock=clock)
    payer.start()
    payer.submit(make_payments(1, clock()))
    broker.run_until_idle(max_time=2)
    assert states(store) == {"pay-obl-PRND-OX-0-0": PaymentState.MANUAL_REVIEW}
    assert [a.kind for a in payer.alerts] == [AlertKind.MANUAL_REVIEW]


class Crashable(BankAdapter):
    """A bank whose answers stop reaching a payer that has 'crashed'."""

    def __init__(self, bank: FakeBank) -> None:
        self.bank = bank
        self.bank_id = bank.bank_id
        self.crashed = False

    def _guard(self, on_result: ResultCallback) -> ResultCallback:
        return lambda result: None if self.crashed else on_result(result)

    def send(self, request: SendRequest, on_result: ResultCallback) -> None:
        self.bank.send(request, self._guard(on_result))

    def query(
        self, payment_id: str, on_result: ResultCallback, *, attempt: int, deadline: int
    ) -> None:
        self.bank.query(payment_id, self._guard(on_result), attempt=attempt, deadline=deadline)


@pytest.mark.parametrize("crash_at", [0.0, 0.01, 0.03, 2.0, 6.0])
def test_a_payer_restarted_mid_flight_pays_exactly_once(
    crash_at: float,
    bus: MemoryBus,
    broker: MemoryBroker,
    store: Store,
    clock: Callable[[], int],
) -> None:
    primary = FakeBank(bus, "icbc-baotou", clock, failure_rate=0.3, seed=5)
    fallback = FakeBank(bus, "boc-ganzhou", clock, failure_rate=0.3, seed=6)
    first = {b.bank_id: Crashable(b) for b in (primary, fallback)}
    payer = Payer(store, bus, first, clock=clock)
    payer.start()
    payer.submit(make_payments(40, clock()))
    broker.run_until_idle(max_time=crash_at)
    payer.stop()  # the process dies: its timers and answers go nowhere
    for bank in first.values():
        bank.crashed = True
    broker.run_until_idle(max_time=3)
    restarted = Payer(store, bus, {b.bank_id: b for b in (primary, fallback)}, clock=clock)
    restarted.start()
    broker.run_until_idle(max_time=300)
    counts = assert_exactly_once(store, primary, fallback)
    assert sum(counts.values()) == 40
