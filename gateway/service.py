"""The gateway service: members' requests in, engine input logs (or rejects) out.

Each member's requests come on its own queue, `rex.gateway.requests.<member>`, taken no faster
than the member's rate (gateway/lanes.py); requests a deployment made before those queues
may still wait on the old shared `rex.gateway.requests`, which is drained as it is. For each
request:
- no `user_id`, or one that is not a member login of this deployment (rex.identity: another
  deployment's user, an operator): there is nobody to answer, and answering by that name
  could reach a member's queue, so it is dead-lettered to rex.dead -- within one rate limit
  shared by all such requests; beyond it they are dropped and counted;
- a message_id this member already had answered: a redelivery; acked and not applied again;
- otherwise judged (decoding, product rules, client order id used once) and either
  appended to the product's input log or answered with a `rejected` report.
The request is acked only once that answer is confirmed by the broker, or that forward is
read back from the input log (gateway/read_back.py: a confirm is not proof), and remembered;
a crash in between means a redelivery, which the engine recognises by id. A forward the log
does not have although the broker confirmed it is sent again.
Forwards are batched: the requests for one product that arrive in one turn of the loop go
to its input log as one message (up to `max_batch` entries).
A timer appends a clock tick to every product's log each `tick_interval` seconds; another
prunes the seen store's dedupe window each `prune_interval` seconds.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from rex import metrics, topology
from rex.bus import Bus, Delivery, Envelope, InOrderAcks, Subscription
from rex.config import Member, Product
from rex.environment import MEMBER_ID_RE
from rex.identity import member_of
from rex.operators import OperatorAccount
from rex.protocol import (
    ENGINE_INPUT,
    REQUEST_TYPES,
    SEQUENCE_HEADER,
    WRITER_HEADER,
    EngineInput,
    ExecStatus,
    ExecutionReport,
    InputKind,
    NewOrderRequest,
    encode,
    encode_inputs,
)
from rex.vocabulary import REJECT_REASONS, Reason

from .lanes import Lane
from .operator_desk import OperatorDesk
from .rate_limits import RateLimits
from .read_back import ReadBack, Sent
from .store import Seen
from .validation import Forward, Reject, answer_time_ns, judge, usable_message_id

log = logging.getLogger("rex.gateway")

NS_PER_S = 1_000_000_000
READ_BACK_TIMEOUT_S = 5.0  # a confirmed batch not read back from its log by then is sent again
READ_BACK_CHECK_S = 1.0
READ_BACK_PREFETCH = 200  # of each input log, read for the gateway's own batches
_SHOWN_CHARS = 64  # of a member's value in a log line


@dataclass(slots=True)
class _Batch:
    """One input-log message of forwards, from publish until read back from the log."""

    product: str
    writer: str
    sequence: int
    envelope: Envelope
    forwards: list[_Forward]


@dataclass(slots=True)
class _Forward:
    """A request in its product's batch, waiting for the batch to be read back from the log."""

    entry: EngineInput
    slot: list[Any]  # its place in the in-order acks
    member: str
    message_id: str
    client_order_id: str
    started: float


class GatewayService:
    def __init__(
        self,
        bus: Bus,
        products: Iterable[Product],
        members: dict[str, Member],
        seen: Seen,
        *,
        prefetch: int = 2000,
        member_prefetch: int = 100,
        tick_interval: float = 1.0,
        prune_interval: float = 5.0,
        max_batch: int = 500,
        clock_ns: Callable[[], int] = time.time_ns,
        rate_clock: Callable[[], float] = time.monotonic,
        deployment: str = "",
        operators: Mapping[str, OperatorAccount] | None = None,
    ) -> None:
        self.bus = bus
        self.deployment = deployment  # members' logins are <deployment>.<id> (rex.identity)
        self.products = {p.symbol: p for p in products}
        self.members = members
        self.seen = seen
        self.prefetch = prefetch  # of the old shared queue
        # Of each member's queue: at most this many of a member's requests are in the
        # gateway at once, so one ahead of another member's is at most this many per member.
        self.member_prefetch = member_prefetch
        self.tick_interval = tick_interval
        self.clock_ns = clock_ns
        self.rate_limits = RateLimits(
            {m.id: (m.rate_limit, m.burst) for m in members.values()}, rate_clock
        )
        self._pending: set[tuple[str, str]] = set()  # client ids forwarded, not yet confirmed
        self._ticking = False
        self.prune_interval = prune_interval
        self._pruning = False
        self.max_batch = max_batch
        self._batches: dict[str, list[_Forward]] = {}  # product -> entries for its next message
        self._flush_scheduled = False
        self._batch_number = 0
        self._lanes: dict[str, Lane[tuple[list[Any], float]]] = {}  # queue -> lane
        self._request_counters: dict[str, Any] = {}  # request type -> its labelled counter
        self._instance = f"gw-{uuid.uuid4().hex[:12]}"
        # Its forwards' numbers per product (engine/input_sequences.py), under a writer id
        # new on each connection and after a failed forward: within one writer's run a
        # missing number is a batch the log does not have although a later one is there.
        self._writer_run = 0
        self._writer = f"{self._instance}.0"
        self._sequence: dict[str, int] = {}
        # Batches sent and not yet read back from their log (gateway/read_back.py).
        self._read_backs: dict[tuple[str, str], ReadBack[_Batch]] = {}
        self.read_back_clock: Callable[[], float] = time.monotonic  # the loop's, in tests
        self._watching_read_backs = False
        # Every series whose labels are known in advance starts at 0 (docs/operators/metrics.md).
        metrics.start_at_zero(metrics.GATEWAY_REQUESTS, [*REQUEST_TYPES, "unknown"])
        metrics.start_at_zero(metrics.GATEWAY_REJECTS, sorted(REJECT_REASONS))
        metrics.start_at_zero(metrics.GATEWAY_FORWARDED, list(self.products))
        metrics.start_at_zero(metrics.GATEWAY_FORWARDS_RESENT, list(self.products))
        metrics.start_at_zero(metrics.GATEWAY_SEEN_PRUNED, ["expired", "cap"])
        metrics.start_at_zero(metrics.GATEWAY_PACED, list(members))
        # Operators' market actions (gateway/operator_desk.py), on the same bus.
        self.operator_desk = OperatorDesk(bus, self.products, operators or {}, deployment)

    def start(self) -> None:
        self.bus.start(topology.for_gateway(self.products, self.members), self._on_ready)

    def stop(self) -> None:
        self.bus.stop()

    def _new_writer(self) -> None:
        self._writer_run += 1
        self._writer = f"{self._instance}.{self._writer_run}"
        self._sequence.clear()

    def _on_ready(self) -> None:
        self._new_writer()  # forwards of the lost connection are redelivered, not re-sent
        for read_back in self._read_backs.values():
            for batch in read_back.clear():  # their deliveries died with the connection
                for f in batch.forwards:
                    self._pending.discard((f.member, f.client_order_id))
        self._read_backs.clear()
        for product in self.products:  # first, so the log is read from before our forwards
            self.bus.consume(
                Subscription(
                    topology.engine_input_queue(product),
                    functools.partial(self._on_log, product),
                    prefetch=READ_BACK_PREFETCH,
                    arguments={"x-stream-offset": "last"},
                )
            )
        if not self._watching_read_backs:
            self._watching_read_backs = True
            self.bus.call_later(READ_BACK_CHECK_S, self._resend_overdue)
        if not self._lanes:
            self._lanes[topology.GATEWAY_REQUESTS] = Lane("", topology.GATEWAY_REQUESTS, None)
            for member in self.members:
                queue = topology.member_request_queue(member)
                self._lanes[queue] = Lane(member, queue, self.rate_limits.bucket(member))
        log.info("gateway ready products=%s members=%d", ",".join(self.products), len(self.members))
        for lane in self._lanes.values():
            lane.reset()
            prefetch = self.member_prefetch if lane.member else self.prefetch
            handler = functools.partial(self._on_request, lane)
            self.bus.consume(Subscription(lane.queue, handler, prefetch=prefetch))
        self.operator_desk.on_ready()
        if not self._ticking and self.tick_interval > 0:
            self._ticking = True
            self.bus.call_later(self.tick_interval, self._tick)
        if not self._pruning and self.prune_interval > 0:
            self._pruning = True
            self.bus.call_later(self.prune_interval, self._prune)

    # ----------------------------------------------------------------- requests

    def _on_request(self, lane: Lane[tuple[list[Any], float]], delivery: Delivery) -> None:
        started = time.monotonic()
        slot = lane.acks.arrived(delivery)
        if lane.offer((slot, started), self.rate_limits.now()):
            self._take(lane, slot, started)
            return
        metrics.GATEWAY_PACED.labels(lane.member).inc()
        self._resume_later(lane)

    def _resume_later(self, lane: Lane[tuple[list[Any], float]]) -> None:
        if lane.resume_scheduled or not lane.held:
            return
        lane.resume_scheduled = True

        def resume() -> None:
            # After a reconnect the lane holds the new deliveries only (reset), so this
            # takes from those; a second resume scheduled meanwhile finds no token: harmless.
            lane.resume_scheduled = False
            for slot, started in lane.release(self.rate_limits.now()):
                self._take(lane, slot, started)
            self._resume_later(lane)

        self.bus.call_later(lane.wait_s(self.rate_limits.now()), resume)

    def _take(self, lane: Lane[tuple[list[Any], float]], slot: list[Any], started: float) -> None:
        """Handle a delivery whose turn has come."""
        delivery: Delivery = slot[0]
        try:
            self._handle(delivery, slot, started, lane.member)
        except Exception:
            # A bug, not the member's input (every field is checked before use): this one
            # request is dead-lettered, and the connection -- and every request around it --
            # goes on. Left to pika, the exception would close the connection.
            self._failed(slot, "request handling failed")

    def _failed(self, slot: list[Any], what: str) -> None:
        delivery: Delivery = slot[0]
        metrics.GATEWAY_REQUEST_FAILURES.inc()
        log.exception(
            "%s; dead-lettered to %s routing_key=%r message_id=%r",
            what,
            topology.DEAD,
            delivery.routing_key[:_SHOWN_CHARS],
            delivery.message_id and delivery.message_id[:_SHOWN_CHARS],
        )
        if not any(f.slot is slot for batch in self._batches.values() for f in batch):
            InOrderAcks.owner(slot).reject(slot, requeue=False)

    def _handle(
        self, delivery: Delivery, slot: list[Any], started: float, queue_member: str
    ) -> None:
        login = delivery.user_id
        member = member_of(login, self.deployment) if login else None
        # On a member's own queue only that member's requests count (another login could
        # land there only with a routing key no member may use: a service's, an admin's).
        foreign = bool(queue_member) and member != queue_member
        if member is None or foreign or not MEMBER_ID_RE.fullmatch(member):
            # Nobody to charge: one bucket for all of them bounds what reaches rex.dead;
            # the rest are dropped, counted, and not logged one by one.
            if not self.rate_limits.allow_unattributed():
                metrics.GATEWAY_UNATTRIBUTED_DROPPED.inc()
                InOrderAcks.owner(slot).done(slot)
                return
            metrics.GATEWAY_DEAD_LETTERED.inc()
            if not login:
                sender = "unknown"
            elif foreign:
                sender = f"{login[:_SHOWN_CHARS]!r} on member {queue_member}'s queue"
            else:
                sender = f"{login[:_SHOWN_CHARS]!r} is not a member login of this deployment"
            log.warning(
                "sender %s: dead-lettered routing_key=%r",
                sender,
                delivery.routing_key[:_SHOWN_CHARS],
            )
            InOrderAcks.owner(slot).reject(slot, requeue=False)
            return
        self._counted(delivery.type or "none").inc()
        message_id = usable_message_id(delivery.message_id) or _body_id(
            delivery.message_id, delivery.body
        )
        if self.seen.has_request(member, message_id):
            metrics.GATEWAY_DUPLICATES.inc()
            InOrderAcks.owner(slot).done(slot)
            return
        now = self.clock_ns()
        verdict: Forward | Reject
        config = self.members.get(member)
        if config is None or not config.enabled:
            verdict = Reject(Reason.UNKNOWN_MEMBER, Reason.UNKNOWN_MEMBER.text, None, None)
        else:
            verdict = judge(
                member,
                delivery.type,
                delivery.routing_key,
                delivery.message_id,
                delivery.body,
                self.products,
                now,
                timestamp_s=delivery.timestamp,
            )
        if isinstance(verdict, Forward):
            request = verdict.entry.request
            assert request is not None
            key = (member, request.client_order_id)
            if key in self._pending or self.seen.has_client_id(*key):
                verdict = Reject(
                    Reason.DUPLICATE_CLIENT_ORDER_ID,
                    Reason.DUPLICATE_CLIENT_ORDER_ID.text,
                    request.client_order_id,
                    request.product,
                    request,
                )
        if isinstance(verdict, Forward):
            self._forward(slot, member, message_id, verdict.entry, started)
        else:
            self._answer(slot, member, message_id, verdict, now, started)

    def _counted(self, kind: str) -> Any:
        """The request counter of ``kind``; types a member makes up count as "unknown", so
        no member can grow the metric's label set."""
        counter = self._request_counters.get(kind)
        if counter is None:
            known = kind in REQUEST_TYPES
            counter = metrics.GATEWAY_REQUESTS.labels(kind if known else "unknown")
            if known:
                self._request_counters[kind] = counter
        return counter

    def _forward(
        self, slot: list[Any], member: str, message_id: str, entry: EngineInput, started: float
    ) -> None:
        """Queue the entry for its product's next batch: one input-log message per product
        per turn of the loop, so the broker writes one stream message for many requests."""
        request = entry.request
        assert request is not None
        self._pending.add((member, request.client_order_id))
        batch = self._batches.setdefault(entry.product, [])
        batch.append(_Forward(entry, slot, member, message_id, request.client_order_id, started))
        if len(batch) >= self.max_batch:
            self._flush_product(entry.product)
        elif not self._flush_scheduled:
            self._flush_scheduled = True
            self.bus.call_soon(self._flush)

    def _flush(self) -> None:
        self._flush_scheduled = False
        for product in list(self._batches):
            self._flush_product(product)

    def _flush_product(self, product: str) -> None:
        batch = self._batches.pop(product, [])
        if not batch:
            return
        self._batch_number += 1
        writer = self._writer
        sequence = self._sequence[product] = self._sequence.get(product, 0) + 1

        try:
            envelope = Envelope(
                topology.ENGINE,
                product,
                encode_inputs([f.entry for f in batch]),
                ENGINE_INPUT,
                f"{self._instance}-{self._batch_number}",
                batch[0].entry.received // NS_PER_S,
                headers={WRITER_HEADER: writer, SEQUENCE_HEADER: sequence},
            )
            sent = _Batch(product, writer, sequence, envelope, batch)
            read_back = self._read_backs.setdefault((writer, product), ReadBack())
            read_back.sent(sequence, sent, self.read_back_clock())
            self._publish_batch(sent, 1)
        except Exception:  # a bug (every entry is of checked values): not the connection's end
            unsent = self._read_backs.get((writer, product))
            if unsent is not None:
                unsent.failed(sequence, 1)  # never sent: nothing to read back or send again
            if writer == self._writer:  # its number is never in the log: a run of its own
                self._new_writer()
            for f in batch:
                self._pending.discard((f.member, f.client_order_id))
                self._failed(f.slot, "forward failed")

    def _publish_batch(self, batch: _Batch, attempt: int) -> None:
        def confirmed(ok: bool) -> None:
            read_back = self._read_backs.get((batch.writer, batch.product))
            if read_back is None:
                return  # the connection went: the requests come again
            if ok:
                read_back.confirmed(batch.sequence, attempt)
            elif read_back.failed(batch.sequence, attempt) is not None:
                self._forward_refused(batch)

        self.bus.publish(batch.envelope, confirmed)

    def _forward_refused(self, batch: _Batch) -> None:
        log.error("forward refused product=%s requests=%d", batch.product, len(batch.forwards))
        if batch.writer == self._writer:  # its requests come again, under new numbers
            self._new_writer()
        for f in batch.forwards:
            self._pending.discard((f.member, f.client_order_id))
            InOrderAcks.owner(f.slot).reject(f.slot, requeue=True)

    def _on_log(self, product: str, delivery: Delivery) -> None:
        """A message of the product's input log: if it is a batch of ours, it is in the log,
        and any earlier one of its writer not read back is not (gateway/read_back.py)."""
        writer = delivery.headers.get(WRITER_HEADER)
        sequence = delivery.headers.get(SEQUENCE_HEADER)
        delivery.ack()
        if not isinstance(writer, str) or not isinstance(sequence, int):
            return  # a tick, an engine's checkpoint or fence
        read_back = self._read_backs.get((writer, product))
        if read_back is None:
            return  # another gateway's, or of a connection of ours that is gone
        batch, lost = read_back.read(sequence, self.read_back_clock())
        for sent in lost:
            self._resend(sent, "a later batch of its writer is in the log and it is not")
        if batch is not None:
            self._forwarded(batch)
        if not read_back and writer != self._writer:
            del self._read_backs[writer, product]

    def _forwarded(self, batch: _Batch) -> None:
        """The batch is in its input log: its requests are done."""
        forwards = batch.forwards
        self.seen.remember_all([(f.member, f.message_id, f.client_order_id) for f in forwards])
        now = time.monotonic()
        for f in forwards:
            self._pending.discard((f.member, f.client_order_id))
            InOrderAcks.owner(f.slot).done(f.slot)
            metrics.GATEWAY_LATENCY.observe(now - f.started)
        metrics.GATEWAY_FORWARDED.labels(batch.product).inc(len(forwards))

    def _resend(self, sent: Sent[_Batch], why: str) -> None:
        batch = sent.payload
        metrics.GATEWAY_FORWARDS_RESENT.labels(batch.product).inc()
        log.error(
            "forward sent again product=%s writer=%s sequence=%d attempt=%d requests=%d: %s",
            batch.product,
            batch.writer,
            batch.sequence,
            sent.attempt,
            len(batch.forwards),
            why,
        )
        self._publish_batch(batch, sent.attempt)

    def _resend_overdue(self) -> None:
        now = self.read_back_clock()
        for read_back in list(self._read_backs.values()):
            for sent in read_back.overdue(now, READ_BACK_TIMEOUT_S):
                self._resend(sent, f"confirmed and not in the log after {READ_BACK_TIMEOUT_S} s")
        self.bus.call_later(READ_BACK_CHECK_S, self._resend_overdue)

    def _answer(
        self,
        slot: list[Any],
        member: str,
        message_id: str,
        reject: Reject,
        now: int,
        started: float,
    ) -> None:
        metrics.GATEWAY_REJECTS.labels(reject.reason).inc()
        # The request's own timestamp, not our clock, so an answer sent again after a crash
        # is the same bytes.
        delivery: Delivery = slot[0]
        timestamp = answer_time_ns(delivery.timestamp, now)
        request = reject.request
        order = request if isinstance(request, NewOrderRequest) else None
        product = reject.product or ""
        report = ExecutionReport(
            exec_id=f"gw-{member}-{message_id}",
            member=member,
            product=product,
            status=ExecStatus.REJECTED,
            timestamp=timestamp,
            client_order_id=reject.client_order_id,
            orig_client_order_id=getattr(request, "orig_client_order_id", None),
            side=None if order is None else order.side,
            price=None if order is None else order.price,
            quantity=None if order is None else order.quantity,
            reason=reject.reason,
            text=reject.text,
        )
        routing_word = product if product and "." not in product else "-"
        envelope = Envelope(
            topology.EXECUTIONS,
            f"{member}.{routing_word}",
            encode(report),
            report.kind,
            report.exec_id,
            timestamp // NS_PER_S,
            mandatory=False,
        )

        def confirmed(ok: bool) -> None:
            if not ok:
                InOrderAcks.owner(slot).reject(slot, requeue=True)
                return
            self.seen.remember_all([(member, message_id, reject.client_order_id)])
            InOrderAcks.owner(slot).done(slot)
            metrics.GATEWAY_LATENCY.observe(time.monotonic() - started)

        self.bus.publish(envelope, confirmed)

    # ----------------------------------------------------------------- dedupe window

    def _prune(self) -> None:
        """Forget ids older than the seen store's horizon, a batch at a time, on the loop
        between requests (gateway/store.py)."""
        pruned = self.seen.prune()
        metrics.GATEWAY_SEEN_PRUNED.labels("expired").inc(pruned.expired)
        metrics.GATEWAY_SEEN_PRUNED.labels("cap").inc(pruned.capped)
        metrics.GATEWAY_SEEN_ROWS.set(pruned.rows)
        metrics.GATEWAY_SEEN_FILE_BYTES.set(pruned.file_bytes)
        self.bus.call_later(0.05 if pruned.more else self.prune_interval, self._prune)

    # ----------------------------------------------------------------- clock

    def _tick(self) -> None:
        if self.bus.connected:
            now = self.clock_ns()
            for symbol in self.products:
                entry = EngineInput(InputKind.TICK, symbol, now)
                self.bus.publish(
                    Envelope(
                        topology.ENGINE,
                        symbol,
                        encode_inputs([entry]),
                        ENGINE_INPUT,
                        f"tick-{symbol}-{now}",
                        now // NS_PER_S,
                    )
                )
        self.bus.call_later(self.tick_interval, self._tick)


def _body_id(message_id: str | bytes | None, body: bytes) -> str:
    """An id for a request that came without a usable message_id (so its answer is still
    stable): of the body, and of the unusable message_id, so that two requests differing
    only there are two. (pika hands over a message_id that is not UTF-8 as bytes.)"""
    digest = hashlib.sha1(body)
    if message_id:
        raw = message_id if isinstance(message_id, bytes) else message_id.encode()
        digest.update(b"\0" + raw)
    return "sha1-" + digest.hexdigest()[:20]
