"""Simulated members: each an asynchronous pika connection on one shared ioloop, sending a
realistic mix of requests and timing each one from publish to its first execution report.

The mix, per request: `passive` limit orders resting a few ticks away from the reference
price, `crossing` orders priced through it (they trade with other members' passive orders),
and `cancel`s of the member's own resting orders. Orders are sent at a fixed total rate, or
as fast as the window of unanswered requests allows (rate 0).
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import msgpack
import pika
from pika.adapters.select_connection import IOLoop, SelectConnection

from rex import topology
from rex.bus.pika_io import coalesce_writes
from rex.config import Product
from rex.identity import login_of

coalesce_writes()  # one send() per loop turn, not per AMQP frame
CONTENT_TYPE = "application/msgpack"
FIRST_ANSWER = {"new", "partially_filled", "filled", "cancelled", "replaced", "rejected"}


@dataclass(frozen=True, slots=True)
class Mix:
    passive: float = 0.6
    crossing: float = 0.25
    cancel: float = 0.15


@dataclass(slots=True)
class Figures:
    sent: int = 0
    answered: int = 0
    nacked: int = 0
    latencies_ns: list[int] = field(default_factory=list)
    answered_at_s: list[float] = field(default_factory=list)  # per answer, as latencies_ns
    sent_per_s: list[int] = field(default_factory=list)  # requests sent in each second
    statuses: dict[str, int] = field(default_factory=dict)
    reasons: dict[str, int] = field(default_factory=dict)
    first_send: float = 0.0
    last_send: float = 0.0
    last_answer: float = 0.0


class SimulatedMember:
    def __init__(
        self,
        loadtest: LoadGenerator,
        member: str,
        password: str,
        url: str,
        seed: int,
        login: str,
    ) -> None:
        self.loadtest = loadtest
        self.member = member
        self.login = login  # the member's RabbitMQ user (rex.identity)
        self.rng = random.Random(seed)
        params = pika.URLParameters(url)
        params.credentials = pika.PlainCredentials(login, password)
        self.channel: Any = None
        self.resting: dict[str, str] = {}  # client order id -> product
        self.pending: dict[str, int] = {}  # client order id -> publish time (ns)
        self.counter = 0
        self.ready = False
        self.last_tag = 0
        self.unacked = 0
        self.connection = SelectConnection(
            params,
            on_open_callback=self._on_open,
            on_open_error_callback=lambda _c, e: loadtest.fail(f"{member}: {e}"),
            on_close_callback=lambda _c, e: loadtest.closed(member, e),
            custom_ioloop=loadtest.ioloop,
        )

    def _on_open(self, connection: SelectConnection) -> None:
        connection.channel(on_open_callback=self._on_channel)

    def _on_channel(self, channel: Any) -> None:
        self.channel = channel
        channel.confirm_delivery(self._on_confirm)
        channel.basic_qos(prefetch_count=2000)
        # The member's log from its end: only the answers to what this run sends. Ready
        # once the broker has attached the reader, so no answer can come before it.
        channel.basic_consume(
            topology.member_log(self.member),
            self._on_report,
            arguments={"x-stream-offset": "next"},
            callback=self._on_consuming,
        )

    def _on_consuming(self, _frame: Any) -> None:
        self.ready = True
        self.loadtest.member_ready()

    def _on_confirm(self, frame: Any) -> None:
        if isinstance(frame.method, pika.spec.Basic.Nack):
            self.loadtest.figures.nacked += 1

    # ----------------------------------------------------------------- sending

    def send_one(self, product: Product) -> None:
        mix = self.loadtest.mix
        draw = self.rng.random()
        if draw < mix.cancel and self.resting:
            cid, product_symbol = next(iter(self.resting.items()))
            del self.resting[cid]
            self._publish("cancel", product_symbol, {"orig_client_order_id": cid})
            return
        side = "buy" if self.rng.random() < 0.5 else "sell"
        ticks = self.rng.randint(1, 20)
        if draw < mix.cancel + mix.crossing:
            ticks = -self.rng.randint(0, 3)  # through the reference: meets passive orders
        offset = ticks * product.tick
        price = (
            product.reference_price - offset if side == "buy" else product.reference_price + offset
        )
        quantity = product.lot * self.rng.randint(1, 10)
        self._publish(
            "new_order",
            product.symbol,
            {"side": side, "price": price, "quantity": quantity, "time_in_force": "GTC"},
        )

    def _publish(self, kind: str, product: str, fields: dict[str, Any]) -> None:
        self.counter += 1
        cid = f"{self.loadtest.run_tag}-{self.counter}"
        body = {"client_order_id": cid, "product": product, **fields}
        now = time.perf_counter_ns()
        self.pending[cid] = now
        self.channel.basic_publish(
            topology.REQUESTS,
            f"{self.member}.{product}",
            msgpack.packb(body),
            pika.BasicProperties(
                content_type=CONTENT_TYPE,
                delivery_mode=2,
                type=kind,
                message_id=cid,
                timestamp=int(time.time()),
                user_id=self.login,
            ),
        )
        self.loadtest.figures.sent += 1

    # ----------------------------------------------------------------- answers

    def _on_report(self, channel: Any, method: Any, properties: Any, body: bytes) -> None:
        # Acks go out in runs (multiple=True), as a busy member's client would send them.
        self.last_tag = method.delivery_tag
        self.unacked += 1
        if self.unacked >= 100:
            self.flush_acks()
        data = msgpack.unpackb(body)
        # One report, or a batch of them (type "execution_batch"): a list of report maps.
        for report in data if isinstance(data, list) else (data,):
            self._answered(report)

    def _answered(self, report: Any) -> None:
        cid = report.get("client_order_id")
        status = report.get("status")
        started = self.pending.pop(cid, None)
        figures = self.loadtest.figures
        if started is not None and status in FIRST_ANSWER:
            figures.latencies_ns.append(time.perf_counter_ns() - started)
            figures.answered += 1
            figures.last_answer = time.monotonic()
            figures.answered_at_s.append(figures.last_answer - figures.first_send)
            figures.statuses[status] = figures.statuses.get(status, 0) + 1
            if report.get("reason") and status == "rejected":
                figures.reasons[report["reason"]] = figures.reasons.get(report["reason"], 0) + 1
        if status in ("new", "partially_filled") and report.get("leaves_quantity"):
            self.resting[cid] = report["product"]
        elif status in ("filled", "cancelled", "expired", "rejected"):
            self.resting.pop(cid, None)
            orig = report.get("orig_client_order_id")
            if orig:
                self.resting.pop(orig, None)

    def flush_acks(self) -> None:
        if self.unacked and self.channel is not None and self.channel.is_open:
            self.channel.basic_ack(self.last_tag, multiple=True)
            self.unacked = 0

    @property
    def unanswered(self) -> int:
        return len(self.pending)

    def close(self) -> None:
        if self.connection.is_open:
            self.connection.close()


class SettlementStandIn:
    """Drains rex.settlement.trades as the settlement worker will, so the broker is measured
    with trades flowing out rather than piling up (a quorum queue keeps what it holds in
    memory)."""

    def __init__(self, loadtest: LoadGenerator, url: str) -> None:
        self.trades = 0
        self.channel: Any = None
        self.connection = SelectConnection(
            pika.URLParameters(url),
            on_open_callback=lambda c: c.channel(on_open_callback=self._on_channel),
            custom_ioloop=loadtest.ioloop,
        )

    def _on_channel(self, channel: Any) -> None:
        self.channel = channel
        channel.basic_qos(prefetch_count=1000)
        channel.basic_consume(topology.SETTLEMENT_TRADES, self._on_trade)

    def _on_trade(self, channel: Any, method: Any, properties: Any, body: bytes) -> None:
        self.trades += 1
        if self.trades % 100 == 0:
            channel.basic_ack(method.delivery_tag, multiple=True)

    def close(self) -> None:
        if self.connection.is_open:
            self.connection.close()


class LoadGenerator:
    """Drives the members: a timer every `TICK` seconds sends what the schedule owes."""

    TICK = 0.005
    WATCH_INTERVAL = 0.5

    def __init__(
        self,
        url: str,
        members: dict[str, str],  # id -> password
        products: list[Product],
        *,
        rate: float,
        duration: float,
        window: int = 2000,
        mix: Mix = Mix(),
        seed: int = 42,
        on_progress: Callable[[LoadGenerator, float], None] | None = None,
        settlement_url: str | None = None,
        watch: Callable[[], str | None] | None = None,
        deployment: str = "",
    ) -> None:
        """``watch``: asked every WATCH_INTERVAL seconds; a text means what is measured has
        gone (a service process died): the run stops, and ``run`` raises it. ``deployment``:
        the members log in as ``<deployment>.<member>`` (rex.identity)."""
        self.ioloop = IOLoop()
        self.figures = Figures()
        self.run_tag = f"{random.Random().getrandbits(32):08x}"  # ids unique across runs
        self.products = products
        self.rate = rate
        self.duration = duration
        self.window = window
        self.mix = mix
        self.on_progress = on_progress
        self.watch = watch
        self.error: str | None = None
        self._ready = 0
        self._started = 0.0
        self._next_progress = 0.0
        self._rng = random.Random(seed)
        self.members = [
            SimulatedMember(self, member, password, url, seed + i, login_of(member, deployment))
            for i, (member, password) in enumerate(sorted(members.items()))
        ]
        self.settlement = SettlementStandIn(self, settlement_url) if settlement_url else None

    # ----------------------------------------------------------------- lifecycle

    def run(self, drain: float = 10.0) -> Figures:
        self._drain = drain
        if self.watch is not None:
            self.ioloop.call_later(self.WATCH_INTERVAL, self._watch)
        self.ioloop.start()
        if self.error:
            raise RuntimeError(self.error)
        return self.figures

    def member_ready(self) -> None:
        self._ready += 1
        if self._ready == len(self.members):
            self._started = time.monotonic()
            self.figures.first_send = self._started
            self.ioloop.call_later(0, self._tick)

    def fail(self, error: str) -> None:
        self.error = error
        self.ioloop.stop()

    def _watch(self) -> None:
        if self._stopping or self.error is not None or self.watch is None:
            return
        problem = self.watch()
        if problem is not None:
            self.fail(problem)
            return
        self.ioloop.call_later(self.WATCH_INTERVAL, self._watch)

    def closed(self, member: str, error: BaseException) -> None:
        if self.error is None and self._started and not self._stopping:
            self.error = f"{member}: connection closed: {error}"
            self.ioloop.stop()

    _stopping = False
    _drain = 10.0

    # ----------------------------------------------------------------- schedule

    def _tick(self) -> None:
        now = time.monotonic()
        elapsed = now - self._started
        if elapsed >= self.duration:
            self.figures.last_send = now
            self._finish(now + self._drain)
            return
        if self.rate > 0:
            owed = int(self.rate * elapsed) - self.figures.sent
        else:
            owed = self.window - self.unanswered
        sent = self.figures.sent
        for _ in range(max(owed, 0)):
            member = self.members[self._rng.randrange(len(self.members))]
            member.send_one(self.products[self._rng.randrange(len(self.products))])
        self._count_sent(int(elapsed), self.figures.sent - sent)
        for member in self.members:
            member.flush_acks()
        if self.on_progress is not None and now >= self._next_progress:
            self._next_progress = now + 0.5
            self.on_progress(self, elapsed)
        self.ioloop.call_later(self.TICK, self._tick)

    def _count_sent(self, second: int, count: int) -> None:
        per_s = self.figures.sent_per_s
        per_s.extend([0] * (second + 1 - len(per_s)))
        per_s[second] += count

    def _finish(self, deadline: float) -> None:
        for member in self.members:
            member.flush_acks()
        if self.unanswered and time.monotonic() < deadline:
            self.ioloop.call_later(0.05, lambda: self._finish(deadline))
            return
        self._stopping = True
        for member in self.members:
            member.close()
        if self.settlement is not None:
            self.settlement.close()
        self.ioloop.call_later(0.2, self.ioloop.stop)

    @property
    def unanswered(self) -> int:
        return sum(m.unanswered for m in self.members)
