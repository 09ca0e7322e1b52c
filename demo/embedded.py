"""The whole exchange in one process on the memory bus: gateway, engine, and a member
connection per member. Used by the demo and by the flow tests."""

from __future__ import annotations

import itertools
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from engine.service import EngineService
from gateway.service import GatewayService
from gateway.store import MemorySeen, Seen, SqliteSeen
from rex import topology
from rex.bus import Delivery, Envelope, Subscription
from rex.bus.memory import MemoryBroker, MemoryBus
from rex.config import Member, Product
from rex.protocol import pack, unpack_messages

WATCHER = "rex.embedded.watch"  # sees trades and market data, for summaries and tests


class EmbeddedExchange:
    def __init__(
        self,
        products: Iterable[Product],
        members: dict[str, Member],
        *,
        data_dir: Path | None = None,
        tick_interval: float = 0,
    ) -> None:
        self.products = {p.symbol: p for p in products}
        self.members = members
        self.broker = MemoryBroker()
        self.gateway_bus = MemoryBus(self.broker, "rex-gateway")
        self.engine_bus = MemoryBus(self.broker, "rex-engine")
        seen: Seen = MemorySeen() if data_dir is None else SqliteSeen(data_dir / "gateway.sqlite3")
        # Rates on the loop's clock, which timers advance: a member's paced requests are
        # taken as the loop's time passes, not the wall clock's.
        self.gateway = GatewayService(
            self.gateway_bus,
            self.products.values(),
            members,
            seen,
            tick_interval=tick_interval,
            rate_clock=lambda: self.broker.now,
        )
        # Every book change is published: the embedded exchange has no clock ticks.
        self.engine = EngineService(
            self.engine_bus, self.products.values(), "main", snapshot_interval=0
        )
        self.reports: dict[str, list[dict[str, Any]]] = {m: [] for m in members}
        self.trades: list[dict[str, Any]] = []
        self.public: list[tuple[str, dict[str, Any]]] = []
        self.dead: list[Delivery] = []
        self.member_buses: dict[str, MemoryBus] = {}
        self._ids = itertools.count(1)
        self.broker.declare(topology.full(self.products, members))
        self.broker.declare(
            topology.Topology(
                queues=(topology.Queue(WATCHER),),
                bindings=(topology.Binding(topology.MARKETDATA, WATCHER, "#"),),
            )
        )
        self.gateway.start()
        self.engine.start()
        self.watch_bus = MemoryBus(self.broker, "rex-watch")
        self.watch_bus.start(topology.Topology(), self._watch)
        for member in members:
            bus = MemoryBus(self.broker, member)
            self.member_buses[member] = bus
            bus.start(topology.Topology(), lambda m=member: self._listen(m))  # type: ignore[misc]
        self.run()

    # ----------------------------------------------------------------- members

    def send(
        self,
        member: str,
        kind: str,
        body: dict[str, Any],
        *,
        user_id: str | None = "",
        message_id: str | None = None,
        routing_key: str | None = None,
        raw: bytes | None = None,
    ) -> str:
        """Publish a request as `member` (user_id defaults to the member, as RabbitMQ
        enforces; None sends none)."""
        message_id = message_id or f"{member}-m{next(self._ids)}"
        product = body.get("product", "")
        self.member_buses[member].publish(
            Envelope(
                topology.REQUESTS,
                routing_key or f"{member}.{product}",
                raw if raw is not None else pack(body),
                kind,
                message_id,
                int(time.time()),
                user_id=member if user_id == "" else user_id,
            )
        )
        return message_id

    def _listen(self, member: str) -> None:
        def on_report(delivery: Delivery) -> None:
            self.reports[member].extend(unpack_messages(delivery.type, delivery.body))
            delivery.ack()

        self.member_buses[member].consume(
            Subscription(
                topology.member_log(member), on_report, arguments={"x-stream-offset": "first"}
            )
        )

    def _watch(self) -> None:
        def on_trade(delivery: Delivery) -> None:
            self.trades.extend(unpack_messages(delivery.type, delivery.body))
            delivery.ack()

        def on_marketdata(delivery: Delivery) -> None:
            self.public.extend(
                (delivery.routing_key, m) for m in unpack_messages(delivery.type, delivery.body)
            )
            delivery.ack()

        def on_dead(delivery: Delivery) -> None:
            self.dead.append(delivery)
            delivery.ack()

        self.watch_bus.consume(Subscription(topology.SETTLEMENT_TRADES, on_trade))
        self.watch_bus.consume(Subscription(WATCHER, on_marketdata))
        self.watch_bus.consume(Subscription(topology.DEAD_LETTERS, on_dead))

    # ----------------------------------------------------------------- loop

    def run(self, seconds: float = 1.0) -> None:
        """Run the loop until idle, letting `seconds` of timer time pass."""
        self.broker.run_until_idle(max_time=seconds)

    def latest_book(self, product: str) -> dict[str, Any] | None:
        books = [body for key, body in self.public if key == f"{product}.book"]
        return books[-1] if books else None
