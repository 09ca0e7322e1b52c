"""The settlement worker books each trade once, on SQLite and PostgreSQL, whatever is
redelivered."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from rex import topology
from rex.bus.memory import MemoryBroker, MemoryBus
from rex.config import ProcessConfig
from rex.protocol import TradeMessage
from settlement_worker.configuration import load_settlement
from settlement_worker.service import SettlementService
from settlement_worker.store import Store
from tests.settlement_worker.helpers import BACKENDS, opened_store, trade_envelope

SETTINGS = ProcessConfig.from_env({})
PRODUCTS = SETTINGS.products()
CONFIG = load_settlement(SETTINGS.config_dir / "settlement.toml", PRODUCTS, SETTINGS.members())


@pytest.fixture(params=BACKENDS)
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    with opened_store(request.param, tmp_path) as opened:
        yield opened.store


def trade(seq: int, price: int = 415_000, quantity: int = 1_000) -> TradeMessage:
    return TradeMessage(
        trade_id=f"PRND-OX-{seq}",
        product="PRND-OX",
        price=price,
        quantity=quantity,
        buyer="ganzhou-magnet",
        seller="baotou-metals",
        buy_order_id=seq,
        sell_order_id=seq + 1,
        aggressor="buy",
        sequence=seq,
        timestamp=1_795_000_000_000_000_000 + seq,
        currency="CNY",
    )


def publish(bus: MemoryBus, message: TradeMessage) -> None:
    bus.publish(trade_envelope(message))


def run_worker(store: Store, trades: list[TradeMessage]) -> SettlementService:
    broker = MemoryBroker()
    service = SettlementService(
        MemoryBus(broker, "rex-settlement"), store, PRODUCTS.values(), CONFIG, max_batch=3
    )
    service.start()
    engine = MemoryBus(broker, "rex-engine")
    engine.start(topology.Topology(), lambda: None)
    broker.run_until_idle()
    for message in trades:
        publish(engine, message)
    broker.run_until_idle()
    return service


def test_each_trade_creates_its_obligation_and_balanced_entries(store: Store) -> None:
    run_worker(store, [trade(1), trade(2, price=415_050, quantity=200)])
    amounts = store.query(
        "SELECT trade_id, amount, payer, payee FROM obligations ORDER BY trade_id"
    )
    # 415,000 CNY/t x 1,000 kg = 415,000.00 CNY = 41,500,000 fen; 415,050 x 200 kg = 8,301,000 fen
    assert amounts == [
        ("PRND-OX-1", 41_500_000, "ganzhou-magnet", "baotou-metals"),
        ("PRND-OX-2", 8_301_000, "ganzhou-magnet", "baotou-metals"),
    ]
    assert store.totals_by_currency() == {"CNY": 0}
    # The buyer pays with bank bills the seller takes: both obligations are met by bills at
    # booking, so the claims are bill receivable / payable, the plain ones settled.
    balances = store.balances()
    assert balances[("baotou-metals", "bills_receivable", "CNY")] == 49_801_000
    assert balances[("ganzhou-magnet", "bills_payable", "CNY")] == -49_801_000
    assert balances[("baotou-metals", "receivables", "CNY")] == 0
    assert balances[("ganzhou-magnet", "payables", "CNY")] == 0


def test_a_trade_delivered_twice_settles_once(store: Store) -> None:
    service = run_worker(store, [trade(1), trade(1), trade(2), trade(1)])
    assert service.settled == 2
    assert store.query("SELECT COUNT(*) FROM obligations") == [(2,)]
    assert store.query("SELECT COUNT(*) FROM processed_trades") == [(2,)]
    assert store.totals_by_currency() == {"CNY": 0}


def test_a_trade_already_booked_by_an_earlier_run_is_skipped(store: Store) -> None:
    run_worker(store, [trade(1)])
    service = run_worker(store, [trade(1), trade(3)])  # a redelivery after a restart
    assert service.settled == 1
    assert store.query("SELECT COUNT(*) FROM obligations") == [(2,)]


def test_fees_are_owed_to_the_exchange(store: Store) -> None:
    run_worker(store, [trade(1)])
    fees = {k: v for k, v in store.balances().items() if k[1] in ("fees", "fee_income")}
    assert fees[("exchange", "fee_income", "CNY")] == -(
        fees[("ganzhou-magnet", "fees", "CNY")] + fees[("baotou-metals", "fees", "CNY")]
    )
    assert fees[("ganzhou-magnet", "fees", "CNY")] > 0


def test_both_parties_receive_obligation_created_on_their_own_queue(store: Store) -> None:
    from rex.bus import Subscription
    from rex.protocol import unpack

    broker = MemoryBroker()
    for member in ("ganzhou-magnet", "baotou-metals"):
        broker.declare(topology.for_member(member))
    service = SettlementService(
        MemoryBus(broker, "rex-settlement"), store, PRODUCTS.values(), CONFIG
    )
    service.start()
    engine = MemoryBus(broker, "rex-engine")
    engine.start(topology.Topology(), lambda: None)
    received: dict[str, list[dict[str, object]]] = {"ganzhou-magnet": [], "baotou-metals": []}
    for member, seen in received.items():
        bus = MemoryBus(broker, member)

        def listen(bus: MemoryBus = bus, member: str = member, seen: list = seen) -> None:  # type: ignore[type-arg]
            def on_message(delivery) -> None:  # type: ignore[no-untyped-def]
                seen.append(unpack(delivery.body))
                delivery.ack()

            bus.consume(
                Subscription(
                    topology.member_log(member), on_message, arguments={"x-stream-offset": 0}
                )
            )

        bus.start(topology.Topology(), listen)
    broker.run_until_idle()
    publish(engine, trade(1))
    broker.run_until_idle()
    for member, seen in received.items():
        assert [(e["event"], e["subject_id"]) for e in seen] == [
            ("obligation_created", "obl-PRND-OX-1"),
            ("bill_issued", "bill-obl-PRND-OX-1-0"),  # the plan pays it by one bank bill
        ], member
    assert store.query("SELECT COUNT(*) FROM outbox WHERE published = 1") == [(4,)]


def test_events_booked_while_the_broker_is_away_are_published_later(store: Store) -> None:
    from rex.settlement_protocol import obligation_created
    from settlement_worker.outbox import OutboxPublisher, add_events

    store.migrate()
    broker = MemoryBroker()
    broker.declare(topology.for_member("ganzhou-magnet") + topology.for_member("baotou-metals"))
    bus = MemoryBus(broker, "rex-settlement")
    bus.start(topology.Topology(), lambda: None)
    broker.run_until_idle()
    bus.disconnect()  # the booking commits, but the broker is away
    with store.transaction() as tx:
        add_events(
            tx, obligation_created("obl-T-9", "ganzhou-magnet", "baotou-metals", 100, "CNY", 1)
        )
    publisher = OutboxPublisher(bus, store)
    publisher.drain()
    broker.run_until_idle()
    assert store.query("SELECT COUNT(*) FROM outbox WHERE published = 0") == [(2,)]
    bus.reconnect()
    publisher.drain()
    broker.run_until_idle()
    assert store.query("SELECT COUNT(*) FROM outbox WHERE published = 0") == [(0,)]
    assert publisher.published == 2
    assert len(broker.queues[topology.member_log("ganzhou-magnet")].log) == 1
