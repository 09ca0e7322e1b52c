"""The bus over RabbitMQ, on pika's asynchronous `SelectConnection`.

Loop. The bus makes one pika `IOLoop` when it is built and keeps it across reconnects, so
`call_later` / `call_soon` work before `start` and survive a broker restart. `run()` runs
that loop in the calling thread until `stop()` has finished; every callback (handlers,
confirms, timers, `on_ready`) runs on it. An exception from a timer or `call_soon` callback
ends `run()`: the process dies and the broker redelivers what it had not acked
(crash-only). One from a handler or a confirm callback, which pika runs from its socket
reader, makes pika abort the connection (logged by pika only, at ERROR, which services
silence): the bus reconnects and everything unacked is delivered again. So a handler must
not raise on what a message holds (the gateway's catches whatever it raises:
gateway/service.py).

Channels. One connection at a time, with:
- the publish channel, in confirm mode. RabbitMQ closes a channel when a publish is refused
  (406 PRECONDITION_FAILED for a user_id other than the login, 404 for an exchange that does
  not exist). The bus then fails every confirm outstanding on it (False) and opens a new
  publish channel; publishes made meanwhile wait in a backlog and go out, in order, on the
  new one. Consumers are not touched.
- one channel per consumer, apart from the publish channel, so a refused publish does not
  cancel consumers, and so `ack(multiple=True)` settles only that consumer's deliveries (as
  in the memory bus; AMQP's multiple ack covers the whole channel). If the broker closes a
  consumer's channel anyway (an exclusive consumer refused, ...) or cancels a consumer (its
  queue was deleted), the bus recycles the whole connection: that is exactly the reconnect
  path below, ending in a fresh `on_ready`, which is where consumers are set up.
- short-lived channels: one to declare the topology, one per lock attempt (a 405
  RESOURCE_LOCKED closes the channel it happens on).

Consumers ack manually; a second ack of one delivery is dropped (RabbitMQ would close the
channel), and an ack after the channel has gone is a no-op (the broker has requeued it).
Streams, as RabbitMQ 3.10 serves them to AMQP 0-9-1 consumers:
- a reject/nack on a stream makes RabbitMQ close the whole connection (540), so
  `reject` on a stream delivery sends an ack, which only frees prefetch (as in the memory
  bus); and `stop()` closes a stream consumer's channel instead of cancelling it, because
  pika rejects whatever arrives for a cancelled consumer;
- prefetch is counted in whole chunks: a consumer may get the rest of a chunk beyond its
  prefetch (never the whole log while it acks nothing).

Confirms are pipelined. Each publish gets the channel's next delivery tag (1, 2, ...) and an
entry in an ordered map tag -> callback; Basic.Ack / Basic.Nack settle one entry or, with
`multiple`, every entry up to the tag. A mandatory message that routes nowhere is acked by
RabbitMQ too, but only after a Basic.Return: the return marks the oldest outstanding entry
with the same message_id, exchange and routing key as returned, and its ack then counts as
False. (Returns carry no delivery tag, so message ids of publishes in flight at the same time
should be unique; REX's are.) When the channel or the connection closes, every outstanding
confirm is called with False: the message may or may not be on the broker, so the publisher
republishes and consumers de-duplicate by message_id.

Confirms are bounded. A confirm that has not come `confirm_timeout` seconds after its publish
(a queue leader that died with the message in flight, as a RabbitMQ 3.10 stream can) is a
failure, never waited on for ever: the bus logs it at ERROR, counts it (`stats`, exported by
rex.metrics as rex_bus_confirm_timeouts_total), and closes the publish channel, which fails
every confirm outstanding on it (False: each publisher republishes) and opens a new one. A
second timeout with no confirm in between recycles the whole connection, to the next node of
a cluster.

Replication. Every quorum queue and stream the bus declares gets `replication` copies
(rex.replication: by default 3 given a cluster's nodes, 1 given one node).

Reconnect. When the connection is lost the bus logs it, fails outstanding confirms, and
tries again every `reconnect_delay` seconds, for ever. Given a cluster's nodes (a list of
URLs, rex.broker_addresses), each attempt after a loss or a refused connect goes to the
next node of the list, so a node that died costs one `reconnect_delay`. Once connected it opens the
channels, declares the topology again (idempotent) and calls `on_ready` again: consumers
and locks died with the old connection and `on_ready` sets them up. A topology the broker
refuses (403/404/406: a queue that exists with other arguments, a binding to an exchange
that does not exist) is not retried: `run()` raises `TopologyError` -- except a 404 for a
queue whose home node is "down or inaccessible", as durable queues are for a moment after a
broker restart, which is retried.

Stopping. `stop()` cancels the consumers (handlers may still ack what they hold), waits up
to `STOP_TIMEOUT` seconds for the confirms in flight, closes the connection, and then
`run()` returns; a stopped bus stays stopped. `stop()` must run on the loop; from a signal
handler, go through `call_soon`, which is thread- and signal-safe (it takes no lock, unlike
pika's `add_callback_threadsafe`: see soon.py):

    signal.signal(signal.SIGTERM, lambda *_: bus.call_soon(bus.stop))

`connected` is True from the topology's declaration until the connection is lost or closed
(also while a refused publish channel is being reopened: publishes then wait for it). pika
1.4 cannot encode float header values. A message AMQP cannot carry -- a short string
(exchange, routing key, type, message_id, user_id, header name) over 255 bytes, text that is
not UTF-8, a float header -- makes `publish` raise `rex.bus.Unpublishable` at once, before
anything is sent (pika marshals a whole message before writing it), and calls no confirm:
the channel stays open and the next publish goes out.
Every connection event is logged here (logger "rex.bus"); pika's own logger repeats each
failed reconnect attempt at ERROR, so services may want it at CRITICAL.
"""

from __future__ import annotations

import functools
import logging
import time
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pika
import pika.exceptions
from pika import spec
from pika.adapters.select_connection import IOLoop, SelectConnection

from rex.broker_addresses import parse_addresses
from rex.replication import as_it_exists, existing_copies, factor_for, replicated
from rex.topology import Binding, Exchange, Queue, Topology, lock_queue

from . import (
    Bus,
    BusStats,
    ConfirmCallback,
    Delivery,
    Envelope,
    Subscription,
    Unpublishable,
    envelope_problem,
)
from .pika_io import coalesce_writes
from .soon import SoonQueue

coalesce_writes()  # one send() per loop turn, not per frame (pika_io.py)

log = logging.getLogger("rex.bus")

CONTENT_TYPE = "application/msgpack"
STOP_TIMEOUT = 5.0  # seconds `stop()` waits for confirms in flight
CONFIRM_TIMEOUT = 10.0  # seconds a publish may wait for its confirm before it has failed
_STOP_POLL = 0.02
_RESOURCE_LOCKED = 405
# Declaration errors that retrying will not fix -- except a 404 saying a queue's home node is
# "down or inaccessible", which is what a durable queue answers for a moment after a broker
# restart.
_TOPOLOGY_REFUSED = frozenset({403, 404, 406})
_TRANSIENT_NOT_FOUND = "down or inaccessible"

Channel = Any  # pika.channel.Channel (pika is untyped)


class BusError(Exception):
    """The bus cannot go on."""


class TopologyError(BusError):
    """The broker refused the topology: fix it (or migrate the broker), retrying won't."""


def _reason(error: BaseException | None) -> str:
    if error is None:
        return "none"
    code = getattr(error, "reply_code", None)
    text = getattr(error, "reply_text", None)
    if code is not None:
        return f"{type(error).__name__}({code}, {text!r})"
    return repr(error)


@dataclass(slots=True)
class _Unconfirmed:
    callback: ConfirmCallback | None
    message_id: str
    exchange: str
    routing_key: str
    mandatory: bool
    sent_at: float  # time.monotonic() of the publish
    returned: bool = False


class _Consumer:
    """One consumer on a channel of its own, and its deliveries not yet settled.

    A second ack of the same delivery, or an ack already covered by an earlier `multiple`
    ack, would make RabbitMQ close the channel (406 unknown delivery tag): the consumer
    drops it instead, like the memory bus."""

    __slots__ = ("channel", "kind_known", "stream", "subscription", "tag", "unsettled")

    def __init__(self, subscription: Subscription, stream: bool, kind_known: bool) -> None:
        self.subscription = subscription
        self.stream = stream  # reading a stream (known from the topology or a delivery)
        # Whether the topology (or the offset argument) told; if not, a delivery's
        # x-stream-offset does. Never for a known queue: on a work queue that header is the
        # publisher's, and would make a reject an ack.
        self.kind_known = kind_known
        self.channel: Channel | None = None  # once open
        self.tag: str | None = None  # once consuming
        self.unsettled: OrderedDict[int, None] = OrderedDict()

    def take(self, tag: int) -> bool:
        if tag in self.unsettled:
            del self.unsettled[tag]
            return True
        return False

    def take_through(self, tag: int) -> int | None:
        """Settle every delivery up to `tag`; the highest one taken, to ack with multiple."""
        last = None
        while self.unsettled:
            first = next(iter(self.unsettled))
            if first > tag:
                break
            self.unsettled.popitem(last=False)
            last = first
        return last


class AmqpDelivery(Delivery):
    """A message from RabbitMQ; ack/reject go to the channel it came on (a no-op once that
    channel has closed: the broker has requeued the message already).

    On a stream, `reject` acks: RabbitMQ 3.10 answers basic.reject/nack on a stream by
    closing the whole connection (540 NOT_IMPLEMENTED), and a log has nothing to requeue or
    dead-letter; the ack only frees the consumer's prefetch, as in the memory bus."""

    def __init__(
        self,
        consumer: _Consumer,
        channel: Channel,
        method: Any,
        properties: spec.BasicProperties,
        body: bytes,
    ) -> None:
        self._consumer = consumer
        self._channel = channel
        self.delivery_tag: int = method.delivery_tag
        self.body = body
        self.type = properties.type
        self.message_id = properties.message_id
        self.user_id = properties.user_id
        self.routing_key = method.routing_key
        self.exchange = method.exchange
        self.timestamp = properties.timestamp
        self.headers = dict(properties.headers) if properties.headers else {}
        self.redelivered = bool(method.redelivered)

    def ack(self, multiple: bool = False) -> None:
        if multiple:
            last = self._consumer.take_through(self.delivery_tag)
            if last is not None:
                self._send("ack", lambda ch: ch.basic_ack(delivery_tag=last, multiple=True))
        elif self._consumer.take(self.delivery_tag):
            self._send("ack", lambda ch: ch.basic_ack(delivery_tag=self.delivery_tag))

    def reject(self, requeue: bool = False) -> None:
        if not self._consumer.take(self.delivery_tag):
            return
        if self._consumer.stream:
            self._send("reject", lambda ch: ch.basic_ack(delivery_tag=self.delivery_tag))
        else:
            self._send(
                "reject",
                lambda ch: ch.basic_reject(delivery_tag=self.delivery_tag, requeue=requeue),
            )

    def _send(self, what: str, action: Callable[[Channel], None]) -> None:
        channel = self._channel
        if not channel.is_open:
            log.debug("%s ignored: channel closed tag=%d", what, self.delivery_tag)
            return
        try:
            action(channel)
        except (
            pika.exceptions.ChannelWrongStateError,
            pika.exceptions.ConnectionWrongStateError,
        ):
            log.debug("%s ignored: channel closing tag=%d", what, self.delivery_tag)


class AmqpBus(Bus):
    """The Bus over one RabbitMQ connection (see the module docstring for the design)."""

    def __init__(
        self,
        url: str,
        *,
        name: str = "rex",
        heartbeat: int = 30,
        reconnect_delay: float = 1.0,
        confirm_timeout: float = CONFIRM_TIMEOUT,
        replication: int | None = None,
    ) -> None:
        # One node or a cluster's (rex.broker_addresses): tried in turn, the next one first
        # after a loss.
        self._addresses = parse_addresses(url)
        self._nodes = self._addresses.parameters()
        for params in self._nodes:
            params.heartbeat = heartbeat
            params.client_properties = {"connection_name": name}
        self._node = 0  # the node of the current (or next) connection attempt
        self.name = name
        self.login: str = self._addresses.username
        self._reconnect_delay = reconnect_delay
        # Copies of each quorum queue and stream it declares (rex.replication).
        self.replication = factor_for(len(self._addresses.urls), replication)
        self._as_they_exist: dict[str, Queue] = {}  # queues made with other copies
        if not confirm_timeout > 0:
            raise ValueError(f"confirm_timeout must be > 0 seconds, got {confirm_timeout}")
        self._confirm_timeout = confirm_timeout
        self.stats = BusStats()
        self._timeouts_in_a_row = 0  # confirm timeouts with no confirm between them
        self._ioloop = IOLoop()
        self._soon = SoonQueue(self._ioloop)

        self._topology = Topology()
        self._on_ready: Callable[[], None] | None = None
        self._conn: Any = None  # SelectConnection
        self._pub: Channel | None = None  # open and in confirm mode
        self._pub_opening: Channel | None = None  # on its way to confirm mode
        self._pub_reopening = False
        self._consumers: list[_Consumer] = []
        self._ready = False  # topology declared on this connection
        self._locks: set[str] = set()  # held on this connection

        self._unconfirmed: OrderedDict[int, _Unconfirmed] = OrderedDict()
        self._published = 0  # delivery tags used on the publish channel
        self._backlog: deque[tuple[Envelope, ConfirmCallback | None]] = deque()

        self._started = False
        self._stopping = False
        self._stopped = False
        self._running = False
        self._reconnect_timer: Any = None
        self._attempt = 0
        self._fatal: BaseException | None = None

    # --- the Bus interface ---------------------------------------------------------------

    @property
    def connected(self) -> bool:
        conn = self._conn
        return self._ready and conn is not None and bool(conn.is_open)

    @property
    def stopped(self) -> bool:
        """True once `stop()` has finished (the connection is closed for good)."""
        return self._stopped

    @property
    def ioloop(self) -> IOLoop:
        """The loop `run()` runs (tests stop it to pause the bus without closing it)."""
        return self._ioloop

    def start(self, topology: Topology, on_ready: Callable[[], None]) -> None:
        if self._started:
            raise RuntimeError("AmqpBus.start called twice")
        self._started = True
        self._topology = topology
        self._on_ready = on_ready
        self._ioloop.call_later(self._watch_interval, self._watch_confirms)
        self._connect()

    def publish(self, envelope: Envelope, on_confirm: ConfirmCallback | None = None) -> None:
        problem = envelope_problem(envelope)
        if problem is not None:
            raise Unpublishable(problem)  # now, not later from the backlog
        conn = self._conn
        if self._ready and conn is not None and conn.is_open:
            pub = self._pub
            if pub is not None and pub.is_open:
                self._send(pub, envelope, on_confirm)
                return
            if self._pub_reopening:
                self._backlog.append((envelope, on_confirm))
                return
        log.debug(
            "publish refused: not connected exchange=%s routing_key=%s message_id=%s",
            envelope.exchange,
            envelope.routing_key,
            envelope.message_id,
        )
        if on_confirm is not None:
            self._ioloop.call_later(0, functools.partial(on_confirm, False))

    def consume(self, subscription: Subscription) -> None:
        conn = self._conn
        if conn is None or not conn.is_open or self._stopping:
            log.warning("consume ignored: not connected queue=%s", subscription.queue)
            return
        declared = [q for q in self._topology.queues if q.name == subscription.queue]
        stream = "x-stream-offset" in subscription.arguments or any(q.is_stream for q in declared)
        consumer = _Consumer(subscription, stream, kind_known=stream or bool(declared))
        self._consumers.append(consumer)

        def on_open(channel: Channel) -> None:
            if consumer not in self._consumers:  # stopped or disconnected meanwhile
                if channel.is_open:
                    channel.close()
                return
            consumer.channel = channel
            channel.add_on_close_callback(functools.partial(self._on_consumer_closed, consumer))
            channel.add_on_cancel_callback(functools.partial(self._on_consumer_cancelled, consumer))
            channel.basic_qos(prefetch_count=subscription.prefetch)
            consumer.tag = channel.basic_consume(
                queue=subscription.queue,
                on_message_callback=functools.partial(self._on_message, consumer),
                auto_ack=False,
                exclusive=subscription.exclusive,
                arguments=dict(subscription.arguments) or None,
            )
            log.info(
                "consuming queue=%s prefetch=%d arguments=%s consumer_tag=%s",
                subscription.queue,
                subscription.prefetch,
                subscription.arguments,
                consumer.tag,
            )

        conn.channel(on_open_callback=on_open)

    def cancel(self, subscription: Subscription) -> None:
        consumer = next((c for c in self._consumers if c.subscription is subscription), None)
        if consumer is None:
            return
        self._consumers.remove(consumer)  # its channel's close is expected, not a failure
        channel = consumer.channel
        if channel is not None and channel.is_open:
            # Closing the channel returns the unacked and rejects nothing: pika would reject
            # what arrives for a cancelled consumer, and on a stream that closes the
            # connection. A channel still opening is closed by on_open.
            channel.close()

    def hold_lock(self, name: str, on_acquired: Callable[[], None], retry: float = 1.0) -> None:
        conn = self._conn
        if conn is None or not conn.is_open or self._stopping:
            log.debug("hold_lock ignored: not connected lock=%s", name)
            return
        queue = lock_queue(name)

        def attempt() -> None:
            if conn is not self._conn or not conn.is_open or self._stopping:
                return  # the lock died with that connection; on_ready asks again
            if name not in self._locks:
                conn.channel(on_open_callback=declare)

        def declare(channel: Channel) -> None:
            acquired = False

            def on_declared(_frame: Any) -> None:
                nonlocal acquired
                acquired = True
                channel.close()
                if name in self._locks:
                    return
                self._locks.add(name)
                log.info("lock acquired lock=%s", name)
                on_acquired()

            def on_closed(_channel: Channel, reason: BaseException) -> None:
                if acquired or conn is not self._conn or not conn.is_open or self._stopping:
                    return
                if getattr(reason, "reply_code", None) == _RESOURCE_LOCKED:
                    log.debug("lock held elsewhere lock=%s retry_in=%s", name, retry)
                else:
                    log.warning("lock attempt failed lock=%s reason=%s", name, _reason(reason))
                self._ioloop.call_later(retry, attempt)

            channel.add_on_close_callback(on_closed)
            channel.queue_declare(
                queue=queue,
                durable=False,
                exclusive=True,
                auto_delete=True,
                callback=on_declared,
            )

        self._ioloop.call_later(0, attempt)

    def call_later(self, delay: float, callback: Callable[[], None]) -> None:
        self._ioloop.call_later(delay, callback)

    def call_soon(self, callback: Callable[[], None]) -> None:
        self._soon.call_soon(callback)  # not pika's add_callback_threadsafe: see soon.py

    def run(self) -> None:
        if not self._stopped:
            self._running = True
            try:
                self._ioloop.start()
            finally:
                self._running = False
        if self._fatal is not None:
            raise self._fatal

    def stop(self) -> None:
        if self._stopping or self._stopped:
            return
        self._stopping = True
        log.info(
            "bus stopping name=%s unconfirmed=%d consumers=%d",
            self.name,
            len(self._unconfirmed),
            len(self._consumers),
        )
        if self._reconnect_timer is not None:
            self._ioloop.remove_timeout(self._reconnect_timer)
            self._reconnect_timer = None
        conn = self._conn
        if conn is None:
            self._finish_stop()
        elif not conn.is_open:
            # Closing already: _on_closed finishes. Still opening: _on_open closes it or
            # _on_open_error finishes (pika 1.x cannot abort a handshake cleanly, #970).
            pass
        else:
            consumers, self._consumers = self._consumers, []
            for consumer in consumers:
                channel = consumer.channel
                if channel is None or not channel.is_open:
                    continue
                if consumer.stream:
                    # pika rejects what arrives for a cancelled consumer, and a reject on a
                    # stream makes RabbitMQ close the connection: close the channel instead
                    # (a closing channel rejects nothing); stream acks only free prefetch.
                    channel.close()
                elif consumer.tag is not None:
                    channel.basic_cancel(consumer_tag=consumer.tag, callback=_ignore)
            self._close_when_confirmed(conn, time.monotonic() + STOP_TIMEOUT)

    # --- connecting ----------------------------------------------------------------------

    @property
    def _where(self) -> str:
        return self._addresses.where(self._node)

    def _next_node(self) -> None:
        """The next connection attempt goes to the next node of the list (if it has more
        than one): the one just lost or refused is the likeliest to be down."""
        self._node = (self._node + 1) % len(self._nodes)

    def _connect(self) -> None:
        self._reconnect_timer = None
        if self._stopping:
            return
        self._attempt += 1
        log.info(
            "bus connecting name=%s broker=%s attempt=%d", self.name, self._where, self._attempt
        )
        self._conn = SelectConnection(
            self._nodes[self._node],
            on_open_callback=self._on_open,
            on_open_error_callback=self._on_open_error,
            on_close_callback=self._on_closed,
            custom_ioloop=self._ioloop,
        )

    def _schedule_reconnect(self) -> None:
        self._reconnect_timer = self._ioloop.call_later(self._reconnect_delay, self._connect)

    def _on_open(self, conn: Any) -> None:
        if conn is not self._conn:
            return
        if self._stopping:
            conn.close()
            return
        log.info("bus connected name=%s broker=%s", self.name, self._where)
        conn.add_on_connection_blocked_callback(
            lambda _c, frame: log.warning(
                "broker blocked publishing reason=%s", frame.method.reason
            )
        )
        conn.add_on_connection_unblocked_callback(
            lambda _c, _frame: log.warning("broker unblocked publishing")
        )
        self._open_publish_channel(conn, lambda: self._declare(conn))

    def _on_open_error(self, conn: Any, error: BaseException) -> None:
        if conn is not self._conn:
            return
        self._conn = None
        if self._stopping:
            self._finish_stop()
            return
        log.warning(
            "bus connect failed name=%s broker=%s attempt=%d error=%s retry_in=%s",
            self.name,
            self._where,
            self._attempt,
            _reason(error),
            self._reconnect_delay,
        )
        self._next_node()
        self._schedule_reconnect()

    def _on_closed(self, conn: Any, reason: BaseException) -> None:
        if conn is not self._conn:
            return
        self._conn = None
        self._pub = None
        self._pub_opening = None
        self._pub_reopening = False
        self._consumers.clear()
        self._ready = False
        self._locks.clear()
        self._fail_unconfirmed()
        self._fail_backlog()
        if self._stopping:
            log.info("bus closed name=%s", self.name)
            self._finish_stop()
            return
        if isinstance(reason, pika.exceptions.ConnectionClosedByClient):  # _recycle: said why
            log.warning(
                "bus connection closed to reconnect name=%s reason=%s retry_in=%s",
                self.name,
                _reason(reason),
                self._reconnect_delay,
            )
        else:  # an ERROR with its cause: what the broker or the network did
            log.error(
                "bus connection lost name=%s broker=%s reason=%s retry_in=%s",
                self.name,
                self._where,
                _reason(reason),
                self._reconnect_delay,
                exc_info=reason,
            )
            self.stats.connections_lost += 1
            self._next_node()
        self._schedule_reconnect()

    def _recycle(self, why: str) -> None:
        """Close the connection on purpose; `_on_closed` reconnects as after a loss."""
        conn = self._conn
        if conn is not None and conn.is_open and not self._stopping:
            log.warning("bus recycling connection name=%s why=%s", self.name, why)
            conn.close(reply_code=200, reply_text=why)

    def _fatal_error(self, error: BaseException) -> None:
        log.error("bus giving up name=%s error=%s", self.name, error, exc_info=error)
        self._fatal = error
        self.stop()

    def _finish_stop(self) -> None:
        self._stopped = True
        self._soon.close()
        log.info("bus stopped name=%s", self.name)
        if self._running:
            self._ioloop.stop()

    # --- channels ------------------------------------------------------------------------

    def _open_publish_channel(self, conn: Any, then: Callable[[], None]) -> None:
        def on_open(channel: Channel) -> None:
            self._pub_opening = channel
            channel.add_on_close_callback(self._on_publish_channel_closed)
            channel.add_on_return_callback(self._on_return)
            channel.confirm_delivery(
                functools.partial(self._on_confirm, channel),
                callback=lambda _frame: on_confirm_mode(channel),
            )

        def on_confirm_mode(channel: Channel) -> None:
            if conn is not self._conn or not conn.is_open:
                return
            self._pub = channel
            self._pub_opening = None
            self._pub_reopening = False
            self._published = 0
            then()

        conn.channel(on_open_callback=on_open)

    def _on_publish_channel_closed(self, channel: Channel, reason: BaseException) -> None:
        if channel is self._pub_opening:
            self._pub_opening = None
            conn = self._conn
            if conn is not None and conn.is_open and not self._stopping:
                # Refused before it reached confirm mode: nothing to do but start over.
                log.error(
                    "publish channel failed to open reason=%s", _reason(reason), exc_info=reason
                )
                self._recycle("publish channel failed to open")
            return
        if channel is not self._pub:
            return
        self._pub = None
        conn = self._conn
        if conn is None or not conn.is_open:
            self._fail_unconfirmed()  # the connection is going: _on_closed does the rest
            return
        log.error(
            "publish channel closed reason=%s unconfirmed=%d; reopening",
            _reason(reason),
            len(self._unconfirmed),
            exc_info=reason,
        )
        self._pub_reopening = True  # publishes from the failed callbacks wait for it
        self._fail_unconfirmed()
        if self._stopping or not conn.is_open:
            self._pub_reopening = False
            self._fail_backlog()
            return
        self._open_publish_channel(conn, self._flush_backlog)

    def _on_consumer_closed(
        self, consumer: _Consumer, _channel: Channel, reason: BaseException
    ) -> None:
        if consumer not in self._consumers:
            return  # stopping, or the connection went
        self._consumers.remove(consumer)
        conn = self._conn
        if conn is None or not conn.is_open:
            return  # the connection is closing: _on_closed handles it
        log.error(
            "consumer channel closed queue=%s reason=%s",
            consumer.subscription.queue,
            _reason(reason),
            exc_info=reason,
        )
        self._recycle("consumer channel closed")

    def _on_consumer_cancelled(self, consumer: _Consumer, _frame: Any) -> None:
        if consumer not in self._consumers:
            return
        log.error(
            "consumer cancelled by the broker queue=%s consumer_tag=%s",
            consumer.subscription.queue,
            consumer.tag,
        )
        self._recycle("consumer cancelled by the broker")

    # --- declaring -----------------------------------------------------------------------

    def _declare(self, conn: Any, start: int = 0) -> None:
        topology = replicated(self._topology, self.replication)
        queues = [self._as_they_exist.get(q.name, q) for q in topology.queues]
        steps: list[Callable[[Channel, Callable[[Any], None]], None]] = [
            *(functools.partial(_declare_exchange, e) for e in topology.exchanges),
            *(functools.partial(_declare_queue, q) for q in queues),
            *(functools.partial(_bind, b) for b in topology.bindings),
            *(functools.partial(_unbind, b) for b in topology.unbindings),
        ]
        done = False
        current = start

        def on_open(channel: Channel) -> None:
            channel.add_on_close_callback(on_closed)
            step(channel, start)

        def step(channel: Channel, index: int) -> None:
            nonlocal done, current
            current = index
            if index < len(steps):
                steps[index](channel, lambda _frame: step(channel, index + 1))
                return
            done = True
            channel.close()
            self._on_declared(conn)

        def on_closed(_channel: Channel, reason: BaseException) -> None:
            if done or conn is not self._conn or not conn.is_open:
                return
            code = getattr(reason, "reply_code", None)
            text = str(getattr(reason, "reply_text", ""))
            if code == 406 and self._declare_as_it_exists(queues, text):
                self._declare(conn, start=current)  # that queue again, on a new channel
                return
            transient = _TRANSIENT_NOT_FOUND in text
            if code in _TOPOLOGY_REFUSED and not transient:
                self._fatal_error(TopologyError(f"topology refused: {_reason(reason)}"))
            else:
                log.warning("declaring failed reason=%s", _reason(reason))
                self._recycle("declaring failed")

        conn.channel(on_open_callback=on_open)

    def _declare_as_it_exists(self, queues: list[Queue], reply_text: str) -> bool:
        """True if the 406 was for a queue made with other copies than `replication` (or
        none set): from now on that queue is declared as it exists (rex.replication)."""
        existing = existing_copies(reply_text)
        if existing is None or existing[0] in self._as_they_exist:
            return False
        name, copies = existing
        queue = next((q for q in queues if q.name == name), None)
        if queue is None:
            return False
        self._as_they_exist[name] = as_it_exists(queue, copies)
        log.warning(
            "queue %s exists with %s copies, not the %d this bus sets on new queues: "
            "declared as it is (change its members with rabbitmq-queues grow/shrink)",
            name,
            copies if copies is not None else "unset",
            self.replication,
        )
        return True

    def _on_declared(self, conn: Any) -> None:
        if conn is not self._conn or not conn.is_open:
            return
        topology = self._topology
        log.info(
            "bus ready name=%s exchanges=%d queues=%d bindings=%d",
            self.name,
            len(topology.exchanges),
            len(topology.queues),
            len(topology.bindings),
        )
        self._ready = True
        self._attempt = 0
        if self._on_ready is not None and not self._stopping:
            self._on_ready()

    # --- publishing ----------------------------------------------------------------------

    def _send(
        self, channel: Channel, envelope: Envelope, on_confirm: ConfirmCallback | None
    ) -> None:
        properties = pika.BasicProperties(
            content_type=CONTENT_TYPE,
            delivery_mode=2,
            type=envelope.type,
            message_id=envelope.message_id,
            timestamp=envelope.timestamp,
            user_id=envelope.user_id,
            headers=envelope.headers,
        )
        try:
            channel.basic_publish(
                exchange=envelope.exchange,
                routing_key=envelope.routing_key,
                body=envelope.body,
                properties=properties,
                mandatory=envelope.mandatory,
            )
        except (pika.exceptions.ShortStringTooLong, pika.exceptions.ProtocolSyntaxError) as error:
            # pika marshals the whole message before writing any of it: nothing was sent and
            # the channel is as it was (a header value of a type AMQP lacks, a float...).
            raise Unpublishable(f"AMQP cannot encode it: {error!r}") from error
        self._published += 1
        self.stats.published += 1
        self._unconfirmed[self._published] = _Unconfirmed(
            on_confirm,
            envelope.message_id,
            envelope.exchange,
            envelope.routing_key,
            envelope.mandatory,
            time.monotonic(),
        )

    def _on_confirm(self, channel: Channel, frame: Any) -> None:
        if channel is not self._pub:
            return
        method = frame.method
        ok = isinstance(method, spec.Basic.Ack)
        tag: int = method.delivery_tag
        settled: list[_Unconfirmed] = []
        if method.multiple:
            while self._unconfirmed:
                first = next(iter(self._unconfirmed))
                if tag and first > tag:
                    break
                settled.append(self._unconfirmed.popitem(last=False)[1])
        else:
            entry = self._unconfirmed.pop(tag, None)
            if entry is not None:
                settled.append(entry)
        if settled:
            self._timeouts_in_a_row = 0
        for entry in settled:
            if not ok:
                self.stats.nacked += 1
                log.warning("publish nacked message_id=%s", entry.message_id)
            if entry.callback is not None:
                entry.callback(ok and not entry.returned)

    def _on_return(
        self, channel: Channel, method: Any, properties: spec.BasicProperties, _body: bytes
    ) -> None:
        if channel is not self._pub:
            return
        message_id = properties.message_id or ""
        log.warning(
            "publish returned reply_code=%s reply_text=%s exchange=%s routing_key=%s message_id=%s",
            method.reply_code,
            method.reply_text,
            method.exchange,
            method.routing_key,
            message_id,
        )
        for entry in self._unconfirmed.values():
            if (
                entry.mandatory
                and not entry.returned
                and entry.message_id == message_id
                and entry.exchange == method.exchange
                and entry.routing_key == method.routing_key
            ):
                entry.returned = True
                return
        log.warning("return matched no publish in flight message_id=%s", message_id)

    # --- the bound on confirms -------------------------------------------------------------

    @property
    def _watch_interval(self) -> float:
        return min(1.0, self._confirm_timeout / 4)

    @property
    def oldest_unconfirmed_s(self) -> float:
        """How long the oldest publish in flight has waited for its confirm (0 if none)."""
        if not self._unconfirmed:
            return 0.0
        oldest = next(iter(self._unconfirmed.values()))
        return max(0.0, time.monotonic() - oldest.sent_at)

    @property
    def unconfirmed(self) -> int:
        return len(self._unconfirmed)

    def _watch_confirms(self) -> None:
        if self._stopped:
            return
        self._ioloop.call_later(self._watch_interval, self._watch_confirms)
        waited = self.oldest_unconfirmed_s
        pub = self._pub
        if waited < self._confirm_timeout or pub is None or not pub.is_open:
            return
        oldest = next(iter(self._unconfirmed.values()))
        count = len(self._unconfirmed)
        self.stats.confirm_timeouts += count
        self._timeouts_in_a_row += 1
        log.error(
            "confirm timeout name=%s broker=%s unconfirmed=%d oldest_message_id=%s "
            "waited_s=%.1f bound_s=%s: failing them (their publishers retry)",
            self.name,
            self._where,
            count,
            oldest.message_id,
            waited,
            self._confirm_timeout,
        )
        if self._timeouts_in_a_row >= 2:
            # The channel's successor timed out too: the node itself is the likelier fault.
            self._timeouts_in_a_row = 0
            self._next_node()
            self._recycle("confirms timed out twice in a row")
        else:
            pub.close(reply_code=200, reply_text="confirm timeout")

    def _fail_unconfirmed(self) -> None:
        pending, self._unconfirmed = self._unconfirmed, OrderedDict()
        if pending:
            log.warning("confirms failed count=%d", len(pending))
        for entry in pending.values():
            if entry.callback is not None:
                entry.callback(False)

    def _fail_backlog(self) -> None:
        backlog, self._backlog = self._backlog, deque()
        for _envelope, on_confirm in backlog:
            if on_confirm is not None:
                on_confirm(False)

    def _flush_backlog(self) -> None:
        backlog, self._backlog = self._backlog, deque()
        for envelope, on_confirm in backlog:
            try:
                self.publish(envelope, on_confirm)
            except Unpublishable as error:  # its publisher hears False; its next try raises
                log.error("backlog publish refused message_id=%s: %s", envelope.message_id, error)
                if on_confirm is not None:
                    on_confirm(False)

    def _close_when_confirmed(self, conn: Any, deadline: float) -> None:
        if conn is not self._conn or not conn.is_open:
            return
        if (self._unconfirmed or self._backlog) and time.monotonic() < deadline:
            self._ioloop.call_later(_STOP_POLL, lambda: self._close_when_confirmed(conn, deadline))
            return
        if self._unconfirmed or self._backlog:
            log.warning(
                "stop: confirms still outstanding after %ss count=%d",
                STOP_TIMEOUT,
                len(self._unconfirmed) + len(self._backlog),
            )
        conn.close()

    # --- consuming -----------------------------------------------------------------------

    def _on_message(
        self,
        consumer: _Consumer,
        channel: Channel,
        method: Any,
        properties: spec.BasicProperties,
        body: bytes,
    ) -> None:
        if consumer not in self._consumers:
            return  # cancelled: its closing channel gives the message back
        consumer.unsettled[method.delivery_tag] = None
        delivery = AmqpDelivery(consumer, channel, method, properties, body)
        if delivery.stream_offset is not None and not consumer.kind_known:
            consumer.stream = True
        consumer.subscription.handler(delivery)


def _ignore(*_args: Any) -> None:
    pass


def _declare_exchange(
    exchange: Exchange, channel: Channel, callback: Callable[[Any], None]
) -> None:
    channel.exchange_declare(
        exchange=exchange.name, exchange_type=exchange.type, durable=True, callback=callback
    )


def _declare_queue(queue: Queue, channel: Channel, callback: Callable[[Any], None]) -> None:
    # Durable, never auto-delete; quorum queues and streams require both.
    channel.queue_declare(
        queue=queue.name, durable=True, arguments=dict(queue.arguments), callback=callback
    )


def _unbind(binding: Binding, channel: Channel, callback: Callable[[Any], None]) -> None:
    # RabbitMQ answers unbind-ok for a binding that does not exist.
    channel.queue_unbind(
        queue=binding.queue,
        exchange=binding.exchange,
        routing_key=binding.routing_key,
        callback=callback,
    )


def _bind(binding: Binding, channel: Channel, callback: Callable[[Any], None]) -> None:
    channel.queue_bind(
        queue=binding.queue,
        exchange=binding.exchange,
        routing_key=binding.routing_key,
        callback=callback,
    )
