"""The outbox publisher on the memory bus, on SQLite and PostgreSQL: a row that can never be
published is quarantined -- marked, counted, logged -- and the rows behind it go out, also
after a restart; a publish that fails for a passing reason is tried again, not set aside."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import pika.exceptions
import pytest

from rex import metrics, topology
from rex.bus import ConfirmCallback, Envelope
from rex.bus.memory import MemoryBroker, MemoryBus
from rex.settlement_protocol import SettlementEvent, obligation_created
from settlement_worker.outbox import OutboxPublisher, add_events
from settlement_worker.store import Store
from tests.settlement_worker.helpers import BACKENDS, BUYER, SELLER, opened_store

NOW = 1_795_000_000_000_000_000


@pytest.fixture(params=BACKENDS)
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    with opened_store(request.param, tmp_path) as opened:
        yield opened.store


def quarantined_total() -> float:
    value = metrics.SETTLEMENT_REGISTRY.get_sample_value("rex_settlement_outbox_quarantined_total")
    return value or 0.0


def a_bus() -> tuple[MemoryBroker, MemoryBus]:
    broker = MemoryBroker()
    broker.declare(topology.for_member(BUYER) + topology.for_member(SELLER))
    bus = MemoryBus(broker, "rex-settlement")
    bus.start(topology.Topology(), lambda: None)
    broker.run_until_idle()
    return broker, bus


def plant(store: Store, *events: SettlementEvent) -> None:
    with store.transaction() as tx:
        add_events(tx, list(events))


def bad(event_id: str, member: str = BUYER) -> SettlementEvent:
    return SettlementEvent(event_id, member, "obligation_created", "obl-X", {}, NOW)


def log_ids(broker: MemoryBroker, member: str) -> list[str]:
    return [m.envelope.message_id for m in broker.queues[topology.member_log(member)].log]


def states(store: Store) -> list[tuple[str, int, bool, str | None]]:
    rows = store.query(
        "SELECT event_id, published, quarantined_at, quarantine_reason FROM outbox ORDER BY seq"
    )
    return [(e[:20], p, at is not None, r) for e, p, at, r in rows]


def test_a_row_that_can_never_be_published_is_quarantined_and_the_rows_behind_it_go_out(
    store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    before = quarantined_total()
    plant(store, *obligation_created("obl-1", BUYER, SELLER, 100, "CNY", NOW))
    plant(store, bad("e" * 300), bad("bad-routing-key", member="m" * 300))
    plant(store, *obligation_created("obl-2", BUYER, SELLER, 100, "CNY", NOW))
    broker, bus = a_bus()
    publisher = OutboxPublisher(bus, store, clock=lambda: NOW + 7)
    with caplog.at_level(logging.ERROR, "rex.settlement.outbox"):
        publisher.drain()
        broker.run_until_idle()
    assert log_ids(broker, BUYER) == ["obl-1/created/" + BUYER, "obl-2/created/" + BUYER]
    assert log_ids(broker, SELLER) == ["obl-1/created/" + SELLER, "obl-2/created/" + SELLER]
    assert states(store) == [
        ("obl-1/created/ganzho", 1, False, None),
        ("obl-1/created/baotou", 1, False, None),
        ("e" * 20, 0, True, "Unpublishable: message_id is 300 bytes; AMQP carries at most 255"
         f" (starts {'e' * 40!r})"),
        ("bad-routing-key", 0, True, "Unpublishable: routing_key is 319 bytes; AMQP carries at"
         f" most 255 (starts {'m' * 40!r})"),
        ("obl-2/created/ganzho", 1, False, None),
        ("obl-2/created/baotou", 1, False, None),
    ]  # fmt: skip
    assert store.query("SELECT DISTINCT quarantined_at FROM outbox WHERE published = 0") == [
        (NOW + 7,)
    ]
    assert (publisher.published, publisher.quarantined) == (4, 2)
    assert quarantined_total() == before + 2
    errors = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 2
    assert "routing_key is 319 bytes" in errors[1] and "the rows behind it go on" in errors[1]

    # A restart: the quarantined rows are not tried again; what was written since goes out.
    plant(store, *obligation_created("obl-3", BUYER, SELLER, 100, "CNY", NOW))
    restarted = OutboxPublisher(bus, store)
    restarted.drain()
    broker.run_until_idle()
    assert log_ids(broker, BUYER)[-1] == "obl-3/created/" + BUYER
    assert (restarted.published, restarted.quarantined) == (2, 0)
    assert quarantined_total() == before + 2
    assert store.query("SELECT COUNT(*) FROM outbox WHERE published = 0") == [(2,)]


class FlakyBus(MemoryBus):
    """A memory bus whose publish raises what pika raises on a closed channel, `failures`
    times."""

    def __init__(self, broker: MemoryBroker, failures: int) -> None:
        super().__init__(broker, "rex-settlement")
        self.failures = failures

    def publish(self, envelope: Envelope, on_confirm: ConfirmCallback | None = None) -> None:
        if self.failures:
            self.failures -= 1
            raise pika.exceptions.ChannelWrongStateError("Channel is closed.")
        super().publish(envelope, on_confirm)


def test_a_publish_that_fails_for_a_passing_reason_is_retried_not_quarantined(
    store: Store,
) -> None:
    before = quarantined_total()
    plant(store, *obligation_created("obl-1", BUYER, SELLER, 100, "CNY", NOW))
    broker = MemoryBroker()
    broker.declare(topology.for_member(BUYER) + topology.for_member(SELLER))
    bus = FlakyBus(broker, failures=1)
    bus.start(topology.Topology(), lambda: None)
    broker.run_until_idle()
    publisher = OutboxPublisher(bus, store)
    publisher.drain()
    broker.run_until_idle()
    assert store.query(
        "SELECT COUNT(*) FROM outbox WHERE published = 0 AND quarantined_at IS NULL"
    ) == [(2,)]
    publisher.drain()  # the next drain (the timer's) tries again: nothing is stuck in flight
    broker.run_until_idle()
    assert store.query("SELECT COUNT(*) FROM outbox WHERE published = 1") == [(2,)]
    assert publisher.quarantined == 0 and quarantined_total() == before
    assert log_ids(broker, BUYER) == ["obl-1/created/" + BUYER]


def test_an_unconfirmed_publish_is_retried_not_quarantined(store: Store) -> None:
    plant(store, *obligation_created("obl-1", BUYER, SELLER, 100, "CNY", NOW))
    broker, bus = a_bus()
    publisher = OutboxPublisher(bus, store)
    bus.disconnect()
    bus.publish = lambda envelope, on_confirm=None: on_confirm and on_confirm(False)  # type: ignore[method-assign,misc]
    bus.reconnect()  # connected, but the broker nacks everything
    publisher.drain()
    broker.run_until_idle()
    assert store.query(
        "SELECT COUNT(*) FROM outbox WHERE published = 0 AND quarantined_at IS NULL"
    ) == [(2,)]
    del bus.publish  # the broker confirms again
    publisher.drain()
    broker.run_until_idle()
    assert store.query("SELECT COUNT(*) FROM outbox WHERE published = 1") == [(2,)]
    assert publisher.quarantined == 0


def test_a_store_failing_while_quarantining_leaves_nothing_in_flight(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The error goes up (the store is the caller's trouble), and the next drain starts
    afresh: the row is quarantined then and the rest go out."""
    plant(store, bad("e" * 300), *obligation_created("obl-1", BUYER, SELLER, 100, "CNY", NOW))
    broker, bus = a_bus()
    publisher = OutboxPublisher(bus, store)
    quarantine = publisher._quarantine

    def store_down(event_id: str, error: Exception) -> None:
        raise ConnectionError("database is away")

    monkeypatch.setattr(publisher, "_quarantine", store_down)
    with pytest.raises(ConnectionError):
        publisher.drain()
    monkeypatch.setattr(publisher, "_quarantine", quarantine)
    publisher.drain()
    broker.run_until_idle()
    assert (publisher.published, publisher.quarantined) == (2, 1)
