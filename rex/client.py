"""The member SDK: connect as a member, place, cancel and replace orders, await answers,
iterate execution reports, read market data.

    with Client("ganzhou-magnet", "secret") as client:
        report = client.place("PRND-OX", "buy", 1000, 415_000)
        print(report.status, report.order_id)

Blocking (pika's BlockingConnection), as a member's program usually wants. Every request is
published with a publisher confirm and the member's `user_id`, which RabbitMQ verifies.
Reports are read from the member's own queue `rex.member.<id>`; each is acked only when
handed out (by `await_answer` or `executions`), so one read past and never handed out goes
back to the queue when the client closes. Duplicates (a report sent again after an engine
take-over) are dropped by exec_id.
Market data is read from the product's public stream, which needs no queue of one's own.
Settlement requests (`set_receipt_limits`, `set_payment_method`, `settlement_settings`,
`endorse_bill`, `discount_bill`, `bills`) go to `rex.settlement.requests`; their answers
come to the same queue, acked when handed out. `OperatorClient` sends them on members'
behalf.
"""

from __future__ import annotations

import datetime as dt
import time
import uuid
from collections import deque
from collections.abc import Iterator, Mapping
from decimal import Decimal
from types import TracebackType
from typing import Any

import pika
from pika.adapters.blocking_connection import BlockingChannel

from rex import topology
from rex.bus.pika_io import coalesce_writes
from rex.config import DEFAULT_BROKER_URL
from rex.protocol import (
    CONTENT_TYPE,
    BookSnapshot,
    CancelRequest,
    ExecutionReport,
    MassCancelRequest,
    NewOrderRequest,
    PublicTrade,
    ReplaceRequest,
    Request,
    decode_message,
    decode_messages,
    encode,
    pack,
    unpack,
)
from rex.settlement_requests import (
    ANSWER_ROUTING_WORD,
    DISCOUNT_BILL,
    ENDORSE_BILL,
    SET_PAYMENT_METHOD,
    SET_RECEIPT_LIMITS,
    SHOW_BILLS,
    SHOW_SETTLEMENT_SETTINGS,
    SettlementAnswer,
)
from rex.vocabulary import OrderType, SelfTradePrevention, Side, TimeInForce

coalesce_writes()  # one send() per loop turn, not per AMQP frame
SETTLEMENT_EVENT = "settlement_event"  # settlement_worker.events.SettlementEvent.kind

FIRST_ANSWERS = {
    "new",
    "partially_filled",
    "filled",
    "cancelled",
    "replaced",
    "rejected",
    "expired",
    "mass_cancelled",
}


class ClientError(Exception):
    pass


class Client:
    def __init__(
        self,
        member: str,
        password: str,
        url: str = DEFAULT_BROKER_URL,
        *,
        prefetch: int = 1000,
        login: str | None = None,  # the RabbitMQ user, if not the member id (rex.identity)
    ) -> None:
        params = pika.URLParameters(url)
        self.login = login or member
        params.credentials = pika.PlainCredentials(self.login, password)
        self.member = member
        self._connection = pika.BlockingConnection(params)
        self._channel: BlockingChannel = self._connection.channel()
        self._channel.confirm_delivery()
        self._channel.basic_qos(prefetch_count=prefetch)
        self._prefetch = prefetch
        self._tags: dict[str, int] = {}  # exec_id -> delivery tag, until handed out
        self._unread: dict[int, int] = {}  # delivery tag -> its reports not yet handed out
        self._buffer: deque[ExecutionReport] = deque()  # read, not yet handed out
        self._inbox: deque[ExecutionReport] = deque()  # just received
        self._events: deque[tuple[dict[str, Any], int]] = deque()  # settlement events, tags
        self._seen: set[str] = set()
        # Answers to settlement requests, by request id, with their delivery tags: acked
        # when handed out, like reports.
        self._answers: dict[str, tuple[SettlementAnswer, int]] = {}
        self._queue = topology.member_queue(member)  # where reports and answers arrive
        self._consumer_tag: str | None = None
        self._ids = (f"{member}-{uuid.uuid4().hex[:12]}-{n}" for n in range(1 << 62))

    # ----------------------------------------------------------------- requests

    def send(self, request: Request) -> str:
        """Publish a request (confirmed by the broker); returns its message_id."""
        message_id = next(self._ids)
        try:
            self._channel.basic_publish(
                topology.REQUESTS,
                topology.request_key(self.member, request.product),
                encode(request),
                pika.BasicProperties(
                    content_type=CONTENT_TYPE,
                    delivery_mode=2,
                    type=request.kind,
                    message_id=message_id,
                    timestamp=int(time.time()),
                    user_id=self.login,
                ),
                mandatory=True,
            )
        except pika.exceptions.UnroutableError as error:
            raise ClientError("the exchange is not accepting requests (no route)") from error
        return message_id

    def place(
        self,
        product: str,
        side: Side | str,
        quantity: int,
        price: int | None = None,
        *,
        time_in_force: TimeInForce | str = TimeInForce.GTC,
        expire_time: int | None = None,
        post_only: bool = False,
        stp: SelfTradePrevention | str = SelfTradePrevention.CANCEL_NEWEST,
        client_order_id: str | None = None,
        wait: float | None = 10.0,
    ) -> ExecutionReport | str:
        """A new order (market if no price). With `wait`, returns its first answer;
        without, returns its client order id at once."""
        cid = client_order_id or self.new_client_order_id()
        request = NewOrderRequest(
            client_order_id=cid,
            product=product,
            side=Side(side),
            quantity=quantity,
            order_type=OrderType.MARKET if price is None else OrderType.LIMIT,
            price=price,
            time_in_force=TimeInForce(time_in_force),
            expire_time=expire_time,
            post_only=post_only,
            stp=SelfTradePrevention(stp),
        )
        return self._request(request, wait)

    def cancel(
        self, product: str, orig_client_order_id: str, *, wait: float | None = 10.0
    ) -> ExecutionReport | str:
        request = CancelRequest(self.new_client_order_id(), orig_client_order_id, product)
        return self._request(request, wait)

    def replace(
        self,
        product: str,
        orig_client_order_id: str,
        *,
        price: int | None = None,
        quantity: int | None = None,
        wait: float | None = 10.0,
    ) -> ExecutionReport | str:
        request = ReplaceRequest(
            self.new_client_order_id(), orig_client_order_id, product, price, quantity
        )
        return self._request(request, wait)

    def mass_cancel(self, product: str, *, wait: float | None = 10.0) -> ExecutionReport | str:
        return self._request(MassCancelRequest(self.new_client_order_id(), product), wait)

    def new_client_order_id(self) -> str:
        return uuid.uuid4().hex[:20]

    def _request(self, request: Request, wait: float | None) -> ExecutionReport | str:
        self.send(request)
        if wait is None:
            return request.client_order_id
        return self.await_answer(request.client_order_id, wait)

    # ----------------------------------------------------------------- settlement requests

    def send_settlement_request(
        self,
        kind: str,
        fields: Mapping[str, Any],
        *,
        member: str | None = None,
        reason: str | None = None,
    ) -> str:
        """Publish a settlement request (confirmed by the broker); returns its message_id,
        which its answer carries as ``request_id``. ``member``: whose settings (a member
        names only itself, or nobody; an operator must name one)."""
        body = dict(fields)
        if member is not None:
            body["member"] = member
        if reason is not None:
            body["reason"] = reason
        message_id = next(self._ids)
        try:
            self._channel.basic_publish(
                topology.SETTLEMENT_REQUESTS,
                topology.settlement_request_key(self.member, kind),
                pack(body),
                pika.BasicProperties(
                    content_type=CONTENT_TYPE,
                    delivery_mode=2,
                    type=kind,
                    message_id=message_id,
                    timestamp=int(time.time()),
                    user_id=self.login,
                ),
                mandatory=True,
            )
        except pika.exceptions.UnroutableError as error:
            raise ClientError("settlement is not accepting requests (no route)") from error
        return message_id

    def await_settlement_answer(self, request_id: str, timeout: float = 10.0) -> SettlementAnswer:
        """The answer to the settlement request ``request_id``; execution reports read
        meanwhile stay buffered for ``executions()``."""
        deadline = time.monotonic() + timeout
        while True:
            found = self._answers.pop(request_id, None)
            if found is not None:
                answer, tag = found
                if self._channel.is_open:
                    self._channel.basic_ack(tag)
                return answer
            if time.monotonic() >= deadline:
                raise TimeoutError(f"no answer to settlement request {request_id} in {timeout} s")
            for report in self._read(min(deadline, time.monotonic() + 0.1), once=True):
                self._buffer.append(report)  # kept, unacked, for executions()

    def _settlement_request(
        self,
        kind: str,
        fields: Mapping[str, Any],
        member: str | None,
        reason: str | None,
        wait: float | None,
    ) -> SettlementAnswer | str:
        request_id = self.send_settlement_request(kind, fields, member=member, reason=reason)
        return request_id if wait is None else self.await_settlement_answer(request_id, wait)

    def set_receipt_limits(
        self,
        changes: Mapping[str, Any],
        *,
        reason: str,
        member: str | None = None,
        if_version: int | None = None,
        wait: float | None = 10.0,
    ) -> SettlementAnswer | str:
        """Change receipt limits (``accept_bills``, ``max_bill_face_minor`` in fen or
        ``"unlimited"``, ``max_tenor_days``, ``accepted_acceptors`` (ids or ``"any"``),
        ``accept_commercial``, ``max_bill_share_bps``); the fields not named keep their
        values. With ``if_version``, only if the settings are still at that version. With
        ``wait``, returns the answer; without, the request id at once."""
        fields: dict[str, Any] = {"changes": dict(changes)}
        if if_version is not None:
            fields["if_version"] = if_version
        return self._settlement_request(SET_RECEIPT_LIMITS, fields, member, reason, wait)

    def set_payment_method(
        self,
        pays: Mapping[str, Any],
        *,
        reason: str,
        member: str | None = None,
        if_version: int | None = None,
        wait: float | None = 10.0,
    ) -> SettlementAnswer | str:
        """Replace the payment method: ``{"method": "cash"}``, or a bill with ``acceptor``
        (bank acceptance), ``tenor_days`` and optionally ``min_tenor_days``."""
        fields: dict[str, Any] = {"pays": dict(pays)}
        if if_version is not None:
            fields["if_version"] = if_version
        return self._settlement_request(SET_PAYMENT_METHOD, fields, member, reason, wait)

    def settlement_settings(
        self, member: str | None = None, wait: float = 10.0
    ) -> SettlementAnswer:
        """The payment method and receipt limits in force, and their version, in the
        answer's ``detail``."""
        answer = self._settlement_request(SHOW_SETTLEMENT_SETTINGS, {}, member, None, wait)
        assert isinstance(answer, SettlementAnswer)
        return answer

    def endorse_bill(
        self,
        bill_id: str,
        to: str,
        *,
        reason: str,
        on: dt.date | None = None,
        member: str | None = None,
        wait: float | None = 10.0,
    ) -> SettlementAnswer | str:
        """Endorse the whole bill ``bill_id``, which the member holds, to the member ``to``.
        ``on``: the business date meant (refused unless it is the exchange's today; default
        today). Accepted: the bill after it in the answer's ``detail["bill"]``; refused by a
        bill rule: reason ``bill_rule``, the rule in ``detail["rule"]``."""
        fields: dict[str, Any] = {"bill_id": bill_id, "to": to}
        if on is not None:
            fields["on"] = on.isoformat()
        return self._settlement_request(ENDORSE_BILL, fields, member, reason, wait)

    def discount_bill(
        self,
        bill_id: str,
        bank: str,
        annual_rate: Decimal | str,
        *,
        reason: str,
        on: dt.date | None = None,
        member: str | None = None,
        wait: float | None = 10.0,
    ) -> SettlementAnswer | str:
        """Sell the bill ``bill_id`` to ``bank`` at ``annual_rate``, a fraction
        (``Decimal("0.0135")`` is 1.35 %; a float is refused: it is not exact). The answer's
        ``detail["discount"]`` has the days, interest and proceeds in minor units."""
        if not isinstance(annual_rate, Decimal | str):
            raise TypeError(f"annual_rate must be a Decimal or a string, not {annual_rate!r}")
        fields: dict[str, Any] = {
            "bill_id": bill_id,
            "bank": bank,
            # Positional notation: str() would write a small Decimal with an exponent.
            "annual_rate": annual_rate if isinstance(annual_rate, str) else f"{annual_rate:f}",
        }
        if on is not None:
            fields["on"] = on.isoformat()
        return self._settlement_request(DISCOUNT_BILL, fields, member, reason, wait)

    def bills(
        self,
        *,
        include_closed: bool = False,
        bill_id: str | None = None,
        member: str | None = None,
        wait: float = 10.0,
    ) -> SettlementAnswer:
        """The member's bills (outstanding ones, or all with ``include_closed``; or just
        ``bill_id``), each with its roles and chain, in ``detail["bills"]``."""
        fields: dict[str, Any] = {"include_closed": include_closed}
        if bill_id is not None:
            fields["bill_id"] = bill_id
        answer = self._settlement_request(SHOW_BILLS, fields, member, None, wait)
        assert isinstance(answer, SettlementAnswer)
        return answer

    # ----------------------------------------------------------------- reports

    def await_answer(self, client_order_id: str, timeout: float = 10.0) -> ExecutionReport:
        """The first report for `client_order_id`; other reports stay buffered for
        `executions()`."""
        for report in self._buffer:
            if report.client_order_id == client_order_id:
                self._buffer.remove(report)
                return self._hand_out(report)
        deadline = time.monotonic() + timeout
        for report in self._read(deadline):
            if report.client_order_id == client_order_id:
                return self._hand_out(report)
            self._buffer.append(report)
            if len(self._buffer) >= self._prefetch:
                # Unacked reports fill the prefetch window; the answer could never arrive.
                raise ClientError(
                    f"{len(self._buffer)} unread reports are buffered: read executions()"
                )
        raise TimeoutError(f"no answer for {client_order_id} within {timeout} s")

    def executions(self, timeout: float | None = None) -> Iterator[ExecutionReport]:
        """Execution reports as they come (buffered ones first); stops after `timeout`
        seconds with nothing new, or never if None."""
        while self._buffer:
            yield self._hand_out(self._buffer.popleft())
        while True:
            deadline = None if timeout is None else time.monotonic() + timeout
            got = False
            for report in self._read(deadline, once=True):
                got = True
                yield self._hand_out(report)
            if not got and timeout is not None:
                return

    def _read(self, deadline: float | None, once: bool = False) -> Iterator[ExecutionReport]:
        """Reports from the member's queue until `deadline` (or the first one if `once`)."""
        if self._consumer_tag is None:
            self._consumer_tag = self._channel.basic_consume(self._queue, self._on_message)
        while True:
            while self._inbox:
                report = self._inbox.popleft()
                yield report
                if once:
                    return
            remaining = 1.0 if deadline is None else deadline - time.monotonic()
            if remaining <= 0:
                return
            self._connection.process_data_events(time_limit=min(remaining, 1.0))
            if once and not self._inbox and deadline is not None and time.monotonic() >= deadline:
                return

    def settlement_events(self, timeout: float = 1.0) -> Iterator[dict[str, Any]]:
        """Settlement events (obligations, bills, payments) that reached the member's queue,
        each acked as it is handed out; stops after `timeout` quiet seconds."""
        deadline = time.monotonic() + timeout
        while True:
            while self._events:
                event, tag = self._events.popleft()
                if self._channel.is_open:
                    self._channel.basic_ack(tag)
                deadline = time.monotonic() + timeout
                yield event
            if time.monotonic() >= deadline:
                return
            for report in self._read(time.monotonic() + 0.1, once=True):
                self._buffer.append(report)  # kept, unacked, for executions()

    def _hand_out(self, report: ExecutionReport) -> ExecutionReport:
        """A report is acked only when the caller gets it: one read past and left unread
        goes back to the queue when the client closes, and is not lost."""
        tag = self._tags.pop(report.exec_id, None)
        if tag is not None:
            self._ack_one_of(tag)
        return report

    def _ack_one_of(self, tag: int) -> None:
        """One report of delivery ``tag`` is handed out: ack the delivery with its last."""
        left = self._unread[tag] - 1
        if left:
            self._unread[tag] = left
            return
        del self._unread[tag]
        if self._channel.is_open:
            self._channel.basic_ack(tag)

    def _on_message(
        self,
        channel: BlockingChannel,
        method: Any,
        properties: pika.BasicProperties,
        body: bytes,
    ) -> None:
        if properties.type == SettlementAnswer.kind:
            try:
                answer = SettlementAnswer.decode(body)
            except (ValueError, KeyError, TypeError):
                channel.basic_ack(method.delivery_tag)  # not an answer this client can read
                return
            self._answers[answer.request_id] = (answer, method.delivery_tag)
            return
        if properties.type == SETTLEMENT_EVENT:
            self._events.append((unpack(body), method.delivery_tag))
            return
        try:
            reports = decode_messages(properties.type or "", body, ExecutionReport)
        except ValueError:
            channel.basic_ack(method.delivery_tag)  # a kind this client does not know
            return
        tag = method.delivery_tag
        fresh = [r for r in reports if r.exec_id not in self._seen]  # not sent again after
        if not fresh:  # an engine take-over
            channel.basic_ack(tag)
            return
        self._unread[tag] = len(fresh)
        for report in fresh:
            self._seen.add(report.exec_id)
            self._tags[report.exec_id] = tag
            self._inbox.append(report)

    # ----------------------------------------------------------------- market data

    def book(self, product: str, timeout: float = 1.0) -> BookSnapshot | None:
        """The latest top-of-book snapshot on the product's public stream (the stream's last
        chunk first; the whole stream if that chunk holds none)."""
        for offset in ("last", "first"):
            latest: BookSnapshot | None = None
            for kind, body in self._tail(product, offset, timeout):
                if kind == BookSnapshot.kind:
                    latest = decode_message(kind, body, BookSnapshot)
            if latest is not None:
                return latest
        return None

    def trades(self, product: str, timeout: float = 1.0) -> list[PublicTrade]:
        """The public trade tape of the product (what the stream still holds)."""
        return [
            trade
            for kind, body in self._tail(product, "first", timeout)
            if kind.startswith(PublicTrade.kind)
            for trade in decode_messages(kind, body, PublicTrade)
        ]

    def marketdata(
        self, product: str, offset: str | int = "next", timeout: float | None = None
    ) -> Iterator[PublicTrade | BookSnapshot]:
        """Subscribe to a product's public trades and book snapshots as they are published
        (`offset`: "next" for new ones only, "first", "last", or a stream offset). Stops after
        `timeout` quiet seconds, or never if None."""
        for kind, body in self._tail(product, offset, timeout):
            if kind.startswith(PublicTrade.kind):  # one public trade or a batch
                yield from decode_messages(kind, body, PublicTrade)
            elif kind == BookSnapshot.kind:
                yield decode_message(kind, body, BookSnapshot)

    def _tail(
        self, product: str, offset: str | int, timeout: float | None
    ) -> Iterator[tuple[str, bytes]]:
        """Read a market-data stream until it has been quiet for `timeout` seconds (or for
        ever if None)."""
        channel = self._connection.channel()
        channel.basic_qos(prefetch_count=500)
        try:
            for method, properties, body in channel.consume(
                topology.marketdata_log(product),
                arguments={"x-stream-offset": offset},
                inactivity_timeout=timeout,
            ):
                if method is None:
                    return
                channel.basic_ack(method.delivery_tag)
                yield properties.type or "", body
        finally:
            if channel.is_open:
                channel.close()

    # ----------------------------------------------------------------- lifecycle

    def close(self) -> None:
        if self._connection.is_open:
            self._connection.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self.close()


class OperatorClient(Client):
    """An operator's connection, for settlement requests on members' behalf.

    It logs in as the operator user of ``url`` (``REX_BROKER_URL``: the services' login is
    an operator unless ``REX_OPERATORS`` names others). An operator has no member queue, so
    its answers come to a private queue of its own, bound to ``rex.settlement`` with
    ``<operator>.settlement_answer`` before anything is sent (the user needs configure and
    write on ``amq.gen-.*`` and read on ``rex.settlement``). The member acted for receives
    the same answer on its own queue."""

    def __init__(self, url: str = DEFAULT_BROKER_URL, *, prefetch: int = 100) -> None:
        credentials = pika.URLParameters(url).credentials
        super().__init__(credentials.username, credentials.password, url, prefetch=prefetch)
        declared = self._channel.queue_declare("", exclusive=True, auto_delete=True)
        self._queue = declared.method.queue
        self._channel.queue_bind(
            self._queue, topology.SETTLEMENT, routing_key=f"{self.member}.{ANSWER_ROUTING_WORD}"
        )


def report_line(report: ExecutionReport) -> str:
    """One readable line for a report (used by the `rex` command)."""
    parts: list[Any] = [report.status, report.product, report.client_order_id]
    if report.order_id is not None:
        parts.append(f"order {report.order_id}")
    if report.side:
        parts.append(report.side)
    if report.last_quantity:
        parts.append(f"filled {report.last_quantity} @ {report.last_price}")
    parts.append(f"cum {report.cumulative_quantity} leaves {report.leaves_quantity}")
    if report.reason:
        parts.append(f"({report.reason}: {report.text})")
    return "  ".join(str(p) for p in parts)
