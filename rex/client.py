"""The member SDK: connect as a member, place, cancel and replace orders, await answers,
read execution reports and settlement events, read market data.

    with Client("ganzhou-magnet", "secret") as client:
        report = client.place("PRND-OX", "buy", 1000, 415_000)
        print(report.status, report.order_id)
        for report in client.executions(timeout=1):
            print(report.status)

Blocking (pika's BlockingConnection), as a member's program usually wants. Every request is
published with a publisher confirm and the member's `user_id`, which RabbitMQ verifies.

Everything sent to the member is in its log, the stream `rex.member.<id>.log`
(rex/member_log.py; docs/members/protocol.md, "Your log"). Reading takes nothing away from it, so
a message read past, left unread, or read by a client that then crashed is never lost:
`executions()`, `settlement_events()` and `settlement_answers()` hand out each message once,
in log order, from where this member's read position (its cursor) stands, and move it on;
`await_answer()` and `await_settlement_answer()` hand out the answer to a request of this
client. The cursor is kept in a file per broker, vhost and login (`$REX_CURSOR_DIR`) unless
the caller passes `cursor=`, and is saved on `close()` and every half second while
reading: a client that crashes may hand out again what it handed out in its last half
second (drop repeats by id), never less. `history()` reads the log again from a sequence
number or a time. Copies sent again after an engine take-over carry the same id and are
handed out once.
Market data is read from the product's public stream, which needs no queue of one's own.
Settlement requests (`set_receipt_limits`, `set_payment_method`, `settlement_settings`,
`endorse_bill`, `discount_bill`, `bills`) go to `rex.settlement.requests`; their answers
come to the member's log too. `OperatorClient` sends them on members' behalf.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
import uuid
from collections.abc import Callable, Collection, Iterator, Mapping
from decimal import Decimal
from types import TracebackType
from typing import Any, TypeVar

import pika
from pika.adapters.blocking_connection import BlockingChannel

from rex import topology
from rex.broker_addresses import BrokerAddressError, parse_addresses
from rex.bus.pika_io import coalesce_writes
from rex.config import DEFAULT_BROKER_URL
from rex.log_reader import LogReaderError, Offset, StreamReader
from rex.member_inbox import (
    AnswerWatch,
    History,
    InOrderReading,
    LogEntry,
    LogGap,
    Message,
    message_id,
)
from rex.member_log import (
    Cursor,
    CursorFileError,
    CursorStore,
    FileCursorStore,
    LogKind,
    MemoryCursorStore,
    seen_key,
)
from rex.protocol import (
    CONTENT_TYPE,
    BookSnapshot,
    CancelRequest,
    ExecutionReport,
    MassCancelRequest,
    NewOrderRequest,
    PriceBandMessage,
    PublicTrade,
    ReplaceRequest,
    Request,
    decode_message,
    decode_messages,
    encode,
    pack,
    unpack,
)
from rex.settlement_protocol import (
    DISCOUNT_BILL,
    ENDORSE_BILL,
    SET_PAYMENT_METHOD,
    SET_RECEIPT_LIMITS,
    SHOW_BILLS,
    SHOW_SETTLEMENT_SETTINGS,
    SettlementAnswer,
    SettlementEvent,
)
from rex.vocabulary import OrderType, SelfTradePrevention, Side, TimeInForce

__all__ = [
    "Client",
    "ClientError",
    "LogEntry",
    "LogGap",
    "OperatorClient",
    "entry_dict",
    "entry_line",
    "report_line",
]

coalesce_writes()  # one send() per loop turn, not per AMQP frame
T = TypeVar("T")
log = logging.getLogger("rex.client")

#: Seconds between saves of the cursor while reading (and on close).
CURSOR_SAVE_INTERVAL_S = 0.5


# The broker refused the request (nack): its queue is at its bound (docs/members/protocol.md).
QUEUE_FULL = (
    "{what} refused the request: its request queue is full, so nothing was sent; send it "
    "again in a few seconds"
)


class ClientError(Exception):
    pass


def _log_gap(gap: LogGap) -> None:
    log.warning("%s", gap.describe())


class Client:
    def __init__(
        self,
        member: str,
        password: str,
        url: str = DEFAULT_BROKER_URL,
        *,
        login: str | None = None,
        cursor: CursorStore | None = None,
        on_gap: Callable[[LogGap], None] = _log_gap,
        prefetch: int = 500,
    ) -> None:
        """Log in as ``login`` (default: the member id; a deployment sharing its broker
        scopes logins, docs/operators/runbook.md) and read the member's log with ``cursor``
        (default: the file for this broker, vhost and login). ``on_gap`` hears of entries
        lost to retention before they were read (default: a logged warning)."""
        try:
            # One node, or a cluster's (rex.broker_addresses): the first that answers.
            nodes = parse_addresses(url).parameters()
        except BrokerAddressError as error:
            raise ClientError(str(error)) from None
        params = nodes[0]
        self.member = member
        self.login = login or member
        for node in nodes:
            node.credentials = pika.PlainCredentials(self.login, password)
        self._connection = pika.BlockingConnection(nodes)
        self._channel: BlockingChannel = self._connection.channel()
        self._channel.confirm_delivery()
        self._prefetch = prefetch
        self._log = topology.member_log(member)
        self._store: CursorStore = cursor or FileCursorStore.for_login(
            params.host, params.port, params.virtual_host, self.login
        )
        try:
            self.cursor: Cursor = self._store.load()
        except CursorFileError as error:
            self._connection.close()
            raise ClientError(str(error)) from None
        self._saved_at = time.monotonic()
        self._on_gap = on_gap
        self._watch = AnswerWatch(self._answer_reader, member)
        self._readings: dict[LogKind, InOrderReading] = {}
        self._ids = (f"{member}-{uuid.uuid4().hex[:12]}-{n}" for n in range(1 << 62))

    def _reader(self, offset: Offset | None, queue: str | None = None) -> StreamReader:
        try:
            return StreamReader(
                self._connection, queue or self._log, offset, prefetch=self._prefetch
            )
        except LogReaderError as error:
            raise ClientError(str(error)) from error.__cause__  # the broker's refusal

    def _answer_reader(self) -> StreamReader:
        return self._reader("next")

    def _pump(self, seconds: float) -> None:
        self._connection.process_data_events(time_limit=max(seconds, 0.0))

    # ----------------------------------------------------------------- requests

    def send(self, request: Request) -> str:
        """Publish a request (confirmed by the broker); returns its message_id."""
        message_id = next(self._ids)
        self._watch.expect_order(request.client_order_id, message_id)
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
        except pika.exceptions.NackError as error:
            raise ClientError(QUEUE_FULL.format(what="the exchange")) from error
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
        self._watch.expect_settlement(message_id)
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
        except pika.exceptions.NackError as error:
            raise ClientError(QUEUE_FULL.format(what="settlement")) from error
        return message_id

    def await_settlement_answer(self, request_id: str, timeout: float = 10.0) -> SettlementAnswer:
        """The answer to the settlement request ``request_id`` not handed out before: one
        this client sent, or (an operator acting for this member, say) one in the log
        after the read position. Handed out: `settlement_answers()` does not give it
        again."""
        found = self._await(
            LogKind.ANSWERS,
            lambda: self._watch.take_settlement_answer(request_id),
            self._watch.watches_settlement(request_id),
            lambda m: isinstance(m, SettlementAnswer) and m.request_id == request_id,
            timeout,
        )
        if not isinstance(found, SettlementAnswer):
            raise TimeoutError(f"no answer to settlement request {request_id} in {timeout} s")
        return found

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

    # ----------------------------------------------------------------- what the member receives

    def await_answer(self, client_order_id: str, timeout: float = 10.0) -> ExecutionReport:
        """The next report about ``client_order_id``, a request this client sent, not
        handed out before: first its answer (for a request whose id the gateway could not
        read, its reject, found by the request's message id), then fills and the like.
        Handed out: `executions()` does not give it again. For a request this client did
        not send, the first such report in the log after the read position."""
        found = self._await(
            LogKind.EXECUTIONS,
            lambda: self._watch.take_report(client_order_id, self._already_handed_out),
            self._watch.watches_order(client_order_id),
            lambda m: isinstance(m, ExecutionReport) and m.client_order_id == client_order_id,
            timeout,
        )
        if not isinstance(found, ExecutionReport):
            raise TimeoutError(f"no answer for {client_order_id} within {timeout} s")
        return found

    def _await(
        self,
        kind: LogKind,
        take: Callable[[], Message | None],
        watched: bool,
        matches: Callable[[Message], bool],
        timeout: float,
    ) -> Message | None:
        """A message of ``kind`` handed out: from the answer watch (``take``) if it watches
        the request, else the first unread one in the log that ``matches``; None if none
        came within ``timeout`` seconds."""
        found = (
            self._wait_for(take, timeout) if watched else self._find_unread(kind, matches, timeout)
        )
        if found is not None:
            self._handed_out(kind, message_id(found))
        return found

    def _wait_for(self, take: Callable[[], Message | None], timeout: float) -> Message | None:
        deadline = time.monotonic() + timeout
        while (found := take()) is None:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return None
            self._pump(min(remaining, 0.2))
        return found

    def _find_unread(
        self, kind: LogKind, matches: Callable[[Message], bool], timeout: float
    ) -> Message | None:
        """The first message of ``kind`` after the read position, not handed out, that
        ``matches``; the ones passed over stay unread."""
        anchor = self.cursor.anchor(kind)
        scan = History(self._reader, None if anchor is None else anchor.offset, (kind,))
        deadline = time.monotonic() + timeout
        try:
            while True:
                entry = scan.next_entry()
                if entry is None:
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        return None
                    self._pump(min(remaining, 0.2))
                    continue
                key = seen_key(kind, message_id(entry.message))
                if not self.cursor.is_seen(key) and matches(entry.message):
                    return entry.message
        finally:
            scan.close()

    def _already_handed_out(self, report: ExecutionReport) -> bool:
        return self.cursor.is_seen(seen_key(LogKind.EXECUTIONS, report.exec_id))

    def entries(
        self, kinds: LogKind | Collection[LogKind], timeout: float | None = None
    ) -> Iterator[LogEntry]:
        """The messages of ``kinds`` not handed out before, each with its sequence number,
        in log order within a kind (across kinds, the earliest of those received first);
        stops after ``timeout`` seconds with nothing new (never if None)."""
        readings = [self._reading(k) for k in ((kinds,) if isinstance(kinds, LogKind) else kinds)]

        def next_entry() -> LogEntry | None:
            ready = [
                (entry.sequence or 0, i) for i, r in enumerate(readings) if (entry := r.peek())
            ]
            return readings[min(ready)[1]].next_entry() if ready else None

        yield from self._drive(next_entry, timeout, self._save_now_and_then)

    def _reading(self, kind: LogKind) -> InOrderReading:
        reading = self._readings.get(kind)
        if reading is None:
            reading = InOrderReading(self._reader, self.cursor, kind, self._on_gap)
            self._readings[kind] = reading
        return reading

    def executions(self, timeout: float | None = None) -> Iterator[ExecutionReport]:
        """Execution reports not handed out before, in the order they were sent."""
        for entry in self.entries(LogKind.EXECUTIONS, timeout):
            assert isinstance(entry.message, ExecutionReport)
            yield entry.message

    def settlement_events(self, timeout: float = 1.0) -> Iterator[SettlementEvent]:
        """Settlement events (obligations, bills, payments, disputes) not handed out
        before (docs/members/protocol.md, "Settlement events")."""
        for entry in self.entries(LogKind.EVENTS, timeout):
            assert isinstance(entry.message, SettlementEvent)
            yield entry.message

    def settlement_answers(self, timeout: float = 1.0) -> Iterator[SettlementAnswer]:
        """Answers to settlement requests not handed out before: those no client awaited,
        such as an operator's change on the member's behalf."""
        for entry in self.entries(LogKind.ANSWERS, timeout):
            assert isinstance(entry.message, SettlementAnswer)
            yield entry.message

    def history(
        self,
        since: int | dt.datetime | None = None,
        kinds: Collection[LogKind] = tuple(LogKind),
        timeout: float = 1.0,
    ) -> Iterator[LogEntry]:
        """Everything of ``kinds`` the log holds from sequence number ``since``, or from
        the time ``since`` (kept at least ``topology.MEMBER_LOG_MAX_AGE``), or from its
        start; each id once. A replay: the cursor is neither used nor moved. Stops after
        ``timeout`` quiet seconds."""
        reading = History(self._reader, since, kinds)
        try:
            yield from self._drive(reading.next_entry, timeout, lambda: None)
        finally:
            reading.close()

    def _drive(
        self,
        next_entry: Callable[[], T | None],
        timeout: float | None,
        after_each: Callable[[], None],
    ) -> Iterator[T]:
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            entry = next_entry()
            if entry is not None:
                yield entry
                after_each()
                deadline = None if timeout is None else time.monotonic() + timeout
                continue
            remaining = 1.0 if deadline is None else deadline - time.monotonic()
            if remaining <= 0:
                return
            self._pump(min(remaining, 0.2))

    def _handed_out(self, kind: LogKind, message_id: str) -> None:
        self.cursor.hand_out(seen_key(kind, message_id))
        self._save_now_and_then()

    def _save_now_and_then(self) -> None:
        if time.monotonic() - self._saved_at >= CURSOR_SAVE_INTERVAL_S:
            self.save_cursor()

    def save_cursor(self) -> None:
        """Keep the read position now (also done on close and while reading)."""
        try:
            self._store.save(self.cursor)
        except CursorFileError as error:
            raise ClientError(str(error)) from None
        self._saved_at = time.monotonic()

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

    def band(self, product: str, timeout: float = 1.0) -> PriceBandMessage | None:
        """The latest price band an operator set for the product that the public stream
        still holds (a day's worth); None if none: the band is then products.toml's, or
        one set more than a day ago (a rejected order's text names the band in force)."""
        latest: PriceBandMessage | None = None
        for kind, body in self._tail(product, "first", timeout):
            if kind == PriceBandMessage.kind:
                latest = decode_message(kind, body, PriceBandMessage)
        return latest

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
    ) -> Iterator[PublicTrade | BookSnapshot | PriceBandMessage]:
        """Subscribe to a product's public trades, book snapshots and price bands as they are
        published
        (`offset`: "next" for new ones only, "first", "last", or a stream offset). Stops after
        `timeout` quiet seconds, or never if None."""
        for kind, body in self._tail(product, offset, timeout):
            if kind.startswith(PublicTrade.kind):  # one public trade or a batch
                yield from decode_messages(kind, body, PublicTrade)
            elif kind == BookSnapshot.kind:
                yield decode_message(kind, body, BookSnapshot)
            elif kind == PriceBandMessage.kind:
                yield decode_message(kind, body, PriceBandMessage)

    def _tail(
        self, product: str, offset: str | int, timeout: float | None
    ) -> Iterator[tuple[str, bytes]]:
        """Read a market-data stream until it has been quiet for `timeout` seconds (or for
        ever if None)."""
        reader = self._reader(offset, topology.marketdata_log(product))

        def next_message() -> tuple[str, bytes] | None:
            delivered = reader.take()
            return None if delivered is None else (delivered.type or "", delivered.body)

        try:
            yield from self._drive(next_message, timeout, lambda: None)
        finally:
            reader.close()

    # ----------------------------------------------------------------- lifecycle

    def close(self) -> None:
        """Stop reading, save the cursor, close the connection."""
        try:
            if self._connection.is_open:
                for reading in self._readings.values():
                    reading.close()
                self._watch.close()
        finally:
            self._readings.clear()
            self.save_cursor()
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
    """An operator account's connection, for settlement requests on members' behalf.

    It logs in as the user of ``url`` (``REX_OPERATOR_URL``), which must be the login of
    the operator account ``operator`` (operators.toml; rex.identity: ``<deployment>.<name>``),
    and publishes under the account's name; the settlement worker lets it act for a member
    with the role ``settlement_ops``. The answers come to the account's own answer stream
    (``rex.operator.<name>.answers``), read from "next"; the member acted for receives the
    same answer in its own log. ``operator`` None (the login is no account):
    ``not_an_account`` is raised once the broker took the login, so that a broker that is
    down, or a wrong password, is said first."""

    def __init__(
        self,
        url: str,
        operator: str | None,
        *,
        not_an_account: Exception | None = None,
        prefetch: int = 100,
    ) -> None:
        credentials = parse_addresses(url).parameters()[0].credentials
        super().__init__(
            operator or credentials.username,
            credentials.password,
            url,
            login=credentials.username,
            cursor=MemoryCursorStore(),
            prefetch=prefetch,
        )
        if operator is None:
            self.close()
            raise not_an_account or ClientError(f"{self.login!r} is no operator account")
        self._answers_stream = topology.operator_answers(operator)

    def _answer_reader(self) -> StreamReader:
        return self._reader("next", self._answers_stream)

    def entries(
        self, kinds: LogKind | Collection[LogKind], timeout: float | None = None
    ) -> Iterator[LogEntry]:
        raise ClientError("an operator has no member log: read a member's as that member")


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


def entry_dict(entry: LogEntry) -> dict[str, Any]:
    """An entry of the member's log as `rex executions --json` prints it: its sequence,
    its type and the message as it travels (docs/members/protocol.md)."""
    message = entry.message
    if isinstance(message, ExecutionReport):
        wire: Any = unpack(encode(message))
    elif isinstance(message, SettlementAnswer):
        wire = unpack(message.encode())
    else:
        wire = unpack(message.envelope().body)
    return {"sequence": entry.sequence, "type": entry.type, "message": wire}


def entry_line(entry: LogEntry) -> str:
    """One readable line for an entry of the member's log, led by its sequence number."""
    message = entry.message
    if isinstance(message, ExecutionReport):
        text = report_line(message)
    elif isinstance(message, SettlementAnswer):
        outcome = message.status if message.accepted else f"{message.status} ({message.reason})"
        text = f"answer to {message.request} {message.request_id}: {outcome}"
        if message.sender != message.member:
            text += f"  sent by {message.sender}"
    else:
        text = f"{message.event}  {message.subject_id}"
        shown = ("amount", "currency", "face", "state")
        text += "".join(f"  {k} {message.detail[k]}" for k in shown if k in message.detail)
    return f"#{entry.sequence}  {text}"
