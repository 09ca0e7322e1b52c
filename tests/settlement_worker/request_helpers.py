"""The settlement worker with its request desk on the memory bus, and a bus per sender: what
the settlement-request tests share."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any

from rex import topology
from rex.bus import Delivery, Envelope, Subscription
from rex.bus.memory import MemoryBroker, MemoryBus
from rex.operators import OperatorAccount, Role
from rex.protocol import pack
from rex.settlement_protocol import SettlementAnswer
from settlement_worker.member_settings.requests import settings_request_kinds
from settlement_worker.requests.desk import RequestDesk, RequestKind
from settlement_worker.service import SettlementService
from settlement_worker.store import Store
from tests.settlement_worker.helpers import CONFIG, MEMBERS, PRODUCTS, trade_envelope

OPERATOR = "rex-operator"
#: The operator: an operator account (operators.toml) with the role settlement_ops.
ACCOUNTS = {
    OPERATOR: OperatorAccount(
        OPERATOR, "REX operator", frozenset({Role.SETTLEMENT_OPS}), "REX_PW_OPERATOR"
    )
}


class Worker:
    """The settlement worker with its request desk, and a bus per sender."""

    def __init__(
        self,
        store: Store,
        kinds: Mapping[str, RequestKind] | None = None,
        clock: Callable[[], int] | None = None,
    ) -> None:
        """``kinds``: the desk's (default: the settings requests); ``clock``: the desk's
        (default: the real time)."""
        self.store = store
        self.broker = MemoryBroker()
        for member in MEMBERS:
            self.broker.declare(topology.for_member(member))
        desk = RequestDesk(
            store,
            settings_request_kinds(CONFIG) if kinds is None else kinds,
            MEMBERS,
            ACCOUNTS,
            clock or time.time_ns,
        )
        self.service = SettlementService(
            MemoryBus(self.broker, "rex-settlement"),
            store,
            PRODUCTS.values(),
            CONFIG,
            desk=desk,
            rate_clock=lambda: self.broker.now,  # pacing on the loop's clock, as its timers
        )
        self.service.start()
        self.broker.run_until_idle()
        self.buses: dict[str, MemoryBus] = {}
        self.inbox: dict[str, list[Delivery]] = {}
        self._n = 0
        operator_queue = topology.Queue("operator-answers")
        self.broker.declare(
            topology.Topology(
                queues=(operator_queue,),
                bindings=(
                    topology.Binding(
                        topology.SETTLEMENT, operator_queue.name, f"{OPERATOR}.settlement_answer"
                    ),
                ),
            )
        )
        self._listen(OPERATOR, operator_queue.name)
        for member in MEMBERS:
            self._listen(member, topology.member_log(member), {"x-stream-offset": "first"})

    def _listen(self, who: str, queue: str, arguments: dict[str, Any] | None = None) -> None:
        bus = self.bus(who)
        seen = self.inbox.setdefault(who, [])

        def on_message(delivery: Delivery) -> None:
            seen.append(delivery)
            delivery.ack()

        bus.consume(Subscription(queue, on_message, arguments=arguments or {}))

    def bus(self, user: str) -> MemoryBus:
        if user not in self.buses:
            bus = MemoryBus(self.broker, user)
            bus.start(topology.Topology(), lambda: None)
            self.buses[user] = bus
        return self.buses[user]

    def send(
        self,
        sender: str,
        kind: str,
        body: dict[str, Any] | bytes,
        *,
        message_id: str | None = None,
        routing_key: str | None = None,
        user_id: str | None = "sender",
        run: bool = True,
    ) -> str:
        """Publish one request; with ``run``, run the loop until everything is answered."""
        self._n += 1
        message_id = f"req-{self._n}" if message_id is None else message_id
        self.bus(sender).publish(
            Envelope(
                topology.SETTLEMENT_REQUESTS,
                routing_key or topology.settlement_request_key(sender, kind),
                body if isinstance(body, bytes) else pack(body),
                kind,
                message_id,
                1_795_000_000,
                user_id=sender if user_id == "sender" else user_id,
            )
        )
        if run:
            self.run()
        return message_id

    def run(self) -> None:
        """Run the loop until every request is answered, those waiting for their member's
        settlement rate too (they are unacked, which the idle loop does not wait for)."""
        self.broker.run_until_idle()
        while any(self.service.pacing.waiting(m) for m in MEMBERS):
            self.broker.run_until_idle(max_time=1.0)

    def answers(self, who: str) -> list[SettlementAnswer]:
        return [
            SettlementAnswer.decode(d.body)
            for d in self.inbox[who]
            if d.type == SettlementAnswer.kind
        ]

    def answer(self, who: str, request_id: str) -> SettlementAnswer:
        (found,) = [a for a in self.answers(who) if a.request_id == request_id]
        return found

    def book(self, *trades: Any) -> None:
        engine = self.bus("rex-engine")
        for message in trades:
            engine.publish(trade_envelope(message))
        self.broker.run_until_idle()
