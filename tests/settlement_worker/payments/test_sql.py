"""Payments in the settlement store behave the same on SQLite and PostgreSQL."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path

import pytest

from rex.bus.memory import MemoryBroker, MemoryBus
from rex.money import Money
from settlement_worker.payments import rules as pm
from settlement_worker.payments.banks.fake import FakeBank
from settlement_worker.payments.payer import Payer, mark_paid, release_payment, review_queue
from settlement_worker.payments.rules import SECOND, PaymentState
from settlement_worker.payments.sql import (
    counts_by_state,
    due_payment_ids,
    insert_payment,
    load_history,
    load_payment,
    payments_in_states,
    save_payment,
)
from settlement_worker.store import ConcurrentUpdate, Store
from tests.settlement_worker.helpers import BACKENDS, opened_store

T0 = 1_800_000_000 * SECOND


@pytest.fixture(params=BACKENDS)
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    with opened_store(request.param, tmp_path) as opened:
        yield opened.store


def payment(n: int = 1, now: int = T0) -> pm.Payment:
    return pm.new_payment(
        pm.payment_id_for(f"obl-PRND-OX-{n}", 0),
        f"obl-PRND-OX-{n}",
        "ganzhou-magnet",
        "baotou-metals",
        Money(41_500_000 + n, "CNY"),
        "icbc-baotou",
        now,
        ("boc-ganzhou", "abc-hohhot"),
    )


def test_a_payment_round_trips_and_is_inserted_once(store: Store) -> None:
    p = payment()
    with store.transaction() as tx:
        assert insert_payment(tx, p)
        assert not insert_payment(tx, p)
        loaded = load_payment(tx, p.payment_id)
    assert loaded is not None
    back, version = loaded
    assert version == 0
    assert back == dataclasses.replace(p, history=())


def test_save_writes_the_step_its_events_and_audit_rows(store: Store) -> None:
    p = payment()
    with store.transaction() as tx:
        insert_payment(tx, p)
    with store.transaction() as tx:
        old, version = load_payment(tx, p.payment_id)  # type: ignore[misc]
        sent = pm.tick(old, T0, pm.RetryPolicy()).payment
        assert save_payment(tx, old, version, sent) == 1
    with store.transaction() as tx:
        again, version = load_payment(tx, p.payment_id)  # type: ignore[misc]
        history = load_history(tx, p.payment_id)
    assert version == 1
    assert again.state is PaymentState.SENT and again.deadline == sent.deadline
    assert [(e.kind, e.to_state, actor) for e, actor in history] == [
        ("created", PaymentState.NEW, "payer"),
        ("sent", PaymentState.SENT, "payer"),
    ]
    assert history[1][0].detail == {"attempt": 1, "bank": "icbc-baotou", "deadline": sent.deadline}
    audit = store.query(
        "SELECT action, actor FROM audit_log WHERE subject_type = 'payment' ORDER BY seq"
    )
    assert audit == [("created", "payer"), ("sent", "payer")]


def test_a_stale_version_is_refused_and_rolled_back(store: Store) -> None:
    p = payment()
    with store.transaction() as tx:
        insert_payment(tx, p)
    with store.transaction() as tx:
        old, version = load_payment(tx, p.payment_id)  # type: ignore[misc]
        save_payment(tx, old, version, pm.tick(old, T0, pm.RetryPolicy()).payment)
    with pytest.raises(ConcurrentUpdate), store.transaction() as tx:
        save_payment(tx, old, version, pm.hold_for_review(old, T0, "x").payment)
    with store.transaction() as tx:
        assert load_payment(tx, p.payment_id)[0].state is PaymentState.SENT  # type: ignore[index]
        assert len(load_history(tx, p.payment_id)) == 2


def test_due_payments_and_states(store: Store) -> None:
    with store.transaction() as tx:
        for n in range(3):
            insert_payment(tx, payment(n, T0 + n * SECOND))
        assert due_payment_ids(tx, T0 + SECOND) == ["pay-obl-PRND-OX-0-0", "pay-obl-PRND-OX-1-0"]
        assert counts_by_state(tx) == {"new": 3}
        new = payments_in_states(tx, [PaymentState.NEW])
        assert [p.payment_id for p in new] == [f"pay-obl-PRND-OX-{n}-0" for n in range(3)]


def test_operator_release_and_mark_paid(store: Store) -> None:
    for n in (1, 2):
        with store.transaction() as tx:
            insert_payment(tx, payment(n))
        with store.transaction() as tx:
            old, version = load_payment(tx, payment(n).payment_id)  # type: ignore[misc]
            save_payment(tx, old, version, pm.hold_for_review(old, T0, "bank missing").payment)
    assert [p.payment_id for p in review_queue(store)] == [
        "pay-obl-PRND-OX-1-0",
        "pay-obl-PRND-OX-2-0",
    ]
    released = release_payment(store, "pay-obl-PRND-OX-1-0", "abc-hohhot", "ops-li")
    assert released.state is PaymentState.NEW and released.bank == "abc-hohhot"
    paid = mark_paid(store, "pay-obl-PRND-OX-2-0", "ops-wang", "ICBC-REF-1")
    assert paid.state is PaymentState.PAID_MANUALLY
    with pytest.raises(pm.PaymentError):
        release_payment(store, "pay-obl-PRND-OX-2-0", "abc-hohhot", "ops-li")
    with store.transaction() as tx:
        actors = [a for _, a in load_history(tx, "pay-obl-PRND-OX-2-0")]
    assert actors == ["payer", "payer", "ops-wang"]
    assert review_queue(store) == []


def test_the_payer_pays_through_this_store(store: Store) -> None:
    broker = MemoryBroker()
    bus = MemoryBus(broker)

    def clock() -> int:
        return T0 + int(broker.now * SECOND)

    bank = FakeBank(bus, "icbc-baotou", clock, failure_rate=0.3, seed=3)
    payer = Payer(store, bus, {"icbc-baotou": bank}, clock=clock)
    payer.start()
    payer.submit([payment(n, clock()) for n in range(20)])
    broker.run_until_idle(max_time=120)
    final = dict(store.query("SELECT payment_id, state FROM payments"))
    assert set(final.values()) <= {"confirmed", "manual_review"}
    confirmed = sorted(pid for pid, state in final.items() if state == "confirmed")
    assert sorted(bank.executions) == confirmed
