"""An exchange in one process on the memory bus: gateway, engine, members."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import pytest

from engine.service import EngineService
from gateway.service import GatewayService
from gateway.store import MemorySeen
from rex import topology
from rex.bus import Delivery, Envelope, Subscription
from rex.bus.memory import MemoryBroker, MemoryBus
from rex.config import Member, Product
from rex.protocol import pack, unpack

PRODUCTS = [
    Product(
        symbol="PRND-OX",
        name="Pr-Nd oxide",
        currency="CNY",
        price_unit="CNY/t",
        tick=50,
        quantity_unit="kg",
        lot=100,
        reference_price=500_000,
        band_percent=Decimal(10),
        quantity_per_price_unit=1000,
    ),
    Product(
        symbol="DY-OX",
        name="Dysprosium oxide",
        currency="CNY",
        price_unit="CNY/t",
        tick=500,
        quantity_unit="kg",
        lot=100,
        reference_price=1_800_000,
        band_percent=Decimal(7),
        quantity_per_price_unit=1000,
    ),
]
MEMBERS = {
    m: Member(id=m, name=m, password="x", rate_limit=rate)
    for m, rate in (("alpha", 1000), ("beta", 1000), ("slow", 2))
}


@dataclass
class Trader:
    """A member's connection: sends requests, collects its execution reports."""

    exchange: Exchange
    member: str
    bus: MemoryBus
    reports: list[dict[str, Any]] = field(default_factory=list)
    ids: Iterator[int] = field(default_factory=lambda: itertools.count(1))

    def send(
        self, kind: str, body: dict[str, Any], *, user_id: str | None = "", **props: Any
    ) -> str:
        message_id = props.pop("message_id", f"{self.member}-m{next(self.ids)}")
        product = body.get("product", "PRND-OX")
        self.bus.publish(
            Envelope(
                topology.REQUESTS,
                props.pop("routing_key", f"{self.member}.{product}"),
                props.pop("raw", None) or pack(body),
                kind,
                message_id,
                1_700_000_000,
                user_id=self.member if user_id == "" else user_id,
            )
        )
        return message_id

    def order(
        self, cid: str, side: str, quantity: int, price: int | None = None, **extra: Any
    ) -> str:
        body = {
            "client_order_id": cid,
            "product": extra.pop("product", "PRND-OX"),
            "side": side,
            "quantity": quantity,
            **extra,
        }
        if price is not None:
            body["price"] = price
        else:
            body.setdefault("order_type", "market")
        return self.send("new_order", body)

    def answers(self, cid: str) -> list[dict[str, Any]]:
        return [r for r in self.reports if r["client_order_id"] == cid]


class Exchange:
    def __init__(self) -> None:
        self.broker = MemoryBroker()
        self.gateway_bus = MemoryBus(self.broker, "rex-gateway")
        self.engine_bus = MemoryBus(self.broker, "rex-engine")
        self.gateway = GatewayService(
            self.gateway_bus, PRODUCTS, MEMBERS, MemorySeen(), tick_interval=0
        )
        self.engine = EngineService(self.engine_bus, PRODUCTS, "main", checkpoint_interval=0.05)
        self.traders: dict[str, Trader] = {}
        self.trades: list[dict[str, Any]] = []
        self.public: list[tuple[str, dict[str, Any]]] = []
        self.dead: list[Delivery] = []
        self.settle_bus = MemoryBus(self.broker, "rex-settlement")
        self.broker.declare(topology.full([p.symbol for p in PRODUCTS], MEMBERS))
        self.broker.declare(
            topology.Topology(
                queues=(topology.Queue("test.marketdata"),),
                bindings=(topology.Binding(topology.MARKETDATA, "test.marketdata", "#"),),
            )
        )
        self.gateway.start()
        self.engine.start()
        self.settle_bus.start(topology.Topology(), self._watch)
        for member in MEMBERS:
            bus = MemoryBus(self.broker, member)
            trader = Trader(self, member, bus)
            self.traders[member] = trader
            bus.start(topology.Topology(), lambda t=trader: self._listen(t))
        self.run()

    def _listen(self, trader: Trader) -> None:
        def on_report(delivery: Delivery) -> None:
            trader.reports.append(unpack(delivery.body))
            delivery.ack()

        trader.bus.consume(Subscription(topology.member_queue(trader.member), on_report))

    def _watch(self) -> None:
        def on_trade(delivery: Delivery) -> None:
            self.trades.append(unpack(delivery.body))
            delivery.ack()

        def on_md(delivery: Delivery) -> None:
            self.public.append((delivery.routing_key, unpack(delivery.body)))
            delivery.ack()

        def on_dead(delivery: Delivery) -> None:
            self.dead.append(delivery)
            delivery.ack()

        self.settle_bus.consume(Subscription(topology.SETTLEMENT_TRADES, on_trade))
        self.settle_bus.consume(Subscription("test.marketdata", on_md))
        self.settle_bus.consume(Subscription(topology.DEAD_LETTERS, on_dead))

    def run(self, seconds: float = 1.0) -> None:
        self.broker.run_until_idle(max_time=seconds)


@pytest.fixture
def exchange() -> Exchange:
    return Exchange()
