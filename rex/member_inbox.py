"""What a member receives, read from its log (rex/member_log.py) by the SDK.

Three ways of reading, each on a reader of its own:

* :class:`AnswerWatch` catches the first answer to each of this client's own requests (an
  execution report for an order, cancel or replace, or a settlement answer). It reads the
  log from its end, attached before the first request is sent, so it never waits behind
  days of unread messages; for an operator, who has no member log, it reads the
  operator's private answer queue instead.
* :class:`InOrderReading` hands out one kind of message in log order from the cursor's
  anchor, each once, and checks on attaching that the log is the one the cursor was made
  on and that retention dropped nothing unread (a :class:`LogGap` otherwise).
* :func:`history` reads every message of some kinds from a sequence number or a time,
  like a FIX resend request; it leaves the cursor as it is.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections import OrderedDict, deque
from collections.abc import Callable, Collection
from dataclasses import dataclass
from typing import Final

from rex.log_reader import Delivered, Offset, StreamReader
from rex.member_log import MAX_SEEN, Anchor, Cursor, LogKind, kind_of, seen_key
from rex.protocol import ExecutionReport, decode_messages
from rex.settlement_protocol import SettlementAnswer, SettlementEvent

__all__ = [
    "MAX_AWAITED",
    "AnswerWatch",
    "History",
    "InOrderReading",
    "LogEntry",
    "LogGap",
    "Message",
    "decode_delivered",
    "message_id",
]

log = logging.getLogger("rex.client")

Message = ExecutionReport | SettlementAnswer | SettlementEvent
#: How many of its latest requests a client remembers while their answers are outstanding:
#: ``await_answer`` finds the answer to any of them (older ones are still in the log).
MAX_AWAITED: Final = 100_000


@dataclass(frozen=True, slots=True)
class LogEntry:
    """One message from the member's log, with its sequence number there (the stream
    offset; a batch's reports share one)."""

    sequence: int | None
    type: str
    message: Message

    @property
    def kind(self) -> LogKind | None:
        return kind_of(self.type)


@dataclass(frozen=True, slots=True)
class LogGap:
    """What a reader found on attaching: entries ``first``..``last`` of ``kind`` were
    dropped by retention before this cursor read them; or, with ``replaced``, the log is
    not the one the cursor was made on (deleted and made again), so reading starts over
    from its first entry, the cursor's seen ids keeping what was handed out from coming
    twice."""

    kind: LogKind
    first: int
    last: int
    replaced: bool = False

    def describe(self) -> str:
        if self.replaced:
            return (
                f"your log is not the one last read (it was made again): reading "
                f"{self.kind.value} from its first entry"
            )
        return (
            f"entries {self.first}..{self.last} of your log were dropped by retention before "
            f"they were read: {self.kind.value} among them are no longer available here "
            f"(statements and `rex executions --since` cover what is kept)"
        )


def decode_delivered(delivered: Delivered) -> list[Message]:
    """The messages in one log entry (several for a batch); ValueError if it cannot be
    read as its type says."""
    kind = kind_of(delivered.type)
    if kind is LogKind.EXECUTIONS:
        return list(decode_messages(delivered.type or "", delivered.body, ExecutionReport))
    if kind is LogKind.ANSWERS:
        try:
            return [SettlementAnswer.decode(delivered.body)]
        except (KeyError, TypeError) as error:
            raise ValueError(f"not a settlement answer: {error}") from None
    if kind is LogKind.EVENTS:
        return [SettlementEvent.decode(delivered.body)]
    raise ValueError(f"unknown message type {delivered.type!r}")


def message_id(message: Message) -> str:
    """The id a message is known by: exec_id, answer_id or event_id."""
    if isinstance(message, ExecutionReport):
        return message.exec_id
    if isinstance(message, SettlementAnswer):
        return message.answer_id
    return message.event_id


def _timestamp_ns(message: Message) -> int:
    return message.timestamp


def _epoch_ns(moment: dt.datetime) -> int:
    """Nanoseconds since the epoch, exactly (a time without zone is UTC)."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    return (moment - _EPOCH) // dt.timedelta(microseconds=1) * 1000


_EPOCH: Final = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


def _decoded(delivered: Delivered) -> list[Message]:
    try:
        return decode_delivered(delivered)
    except ValueError as error:
        log.warning("unreadable log entry %s passed over: %s", delivered.offset, error)
        return []


# ---------------------------------------------------------------------------- answers


class AnswerWatch:
    """The reports about this client's own requests and the answers to its settlement
    requests, as they arrive, kept until taken (the oldest dropped past
    :data:`MAX_AWAITED`: they are still in the log)."""

    def __init__(self, open_reader: Callable[[], StreamReader], member: str) -> None:
        self._open_reader = open_reader
        self._gateway_prefix = f"gw-{member}-"  # a gateway reject's exec_id: + message id
        self._reader: StreamReader | None = None
        # client order id -> its reports not yet taken; the ids of this client's requests
        self._reports: OrderedDict[str, deque[ExecutionReport]] = OrderedDict()
        self._order_of_message: OrderedDict[str, str] = OrderedDict()  # message id -> cid
        self._kept = 0
        self._settlement: OrderedDict[str, SettlementAnswer | None] = OrderedDict()

    def attach(self) -> None:
        """Start reading before a request is sent, so its answer cannot pass unseen."""
        if self._reader is None:
            self._reader = self._open_reader()

    def expect_order(self, client_order_id: str, request_message_id: str) -> None:
        self.attach()
        self._reports.setdefault(client_order_id, deque())
        self._order_of_message[request_message_id] = client_order_id
        while len(self._order_of_message) > MAX_AWAITED:
            self._order_of_message.popitem(last=False)
        while len(self._reports) > MAX_AWAITED or self._kept > MAX_AWAITED:
            _, dropped = self._reports.popitem(last=False)
            self._kept -= len(dropped)

    def expect_settlement(self, request_id: str) -> None:
        self.attach()
        self._settlement[request_id] = None
        while len(self._settlement) > MAX_AWAITED:
            self._settlement.popitem(last=False)

    def watches_order(self, client_order_id: str) -> bool:
        return client_order_id in self._reports

    def watches_settlement(self, request_id: str) -> bool:
        return request_id in self._settlement

    def take_report(
        self, client_order_id: str, skip: Callable[[ExecutionReport], bool]
    ) -> ExecutionReport | None:
        """The earliest report about ``client_order_id`` not yet taken and not ``skip``-ped
        (handed out by another reading meanwhile)."""
        self.drain()
        waiting = self._reports.get(client_order_id)
        while waiting:
            report = waiting.popleft()
            self._kept -= 1
            if not skip(report):
                return report
        return None

    def take_settlement_answer(self, request_id: str) -> SettlementAnswer | None:
        self.drain()
        answer = self._settlement.get(request_id)
        if answer is not None:
            del self._settlement[request_id]
        return answer

    def drain(self) -> None:
        """Look at everything the reader has received."""
        if self._reader is None:
            return
        while (delivered := self._reader.take()) is not None:
            kind = kind_of(delivered.type)
            if kind is LogKind.EXECUTIONS:
                for message in _decoded(delivered):
                    assert isinstance(message, ExecutionReport)
                    self._note_report(message)
            elif kind is LogKind.ANSWERS:
                for message in _decoded(delivered):
                    assert isinstance(message, SettlementAnswer)
                    waiting = message.request_id in self._settlement
                    if waiting and self._settlement[message.request_id] is None:
                        self._settlement[message.request_id] = message

    def _note_report(self, report: ExecutionReport) -> None:
        waiting = self._reports.get(report.client_order_id or "")
        if waiting is None and report.exec_id.startswith(self._gateway_prefix):
            # A gateway reject of a request whose client order id could not be read names
            # the request by its message id instead.
            cid = self._order_of_message.get(report.exec_id[len(self._gateway_prefix) :])
            waiting = None if cid is None else self._reports.get(cid)
        if waiting is not None and all(r.exec_id != report.exec_id for r in waiting):
            waiting.append(report)
            self._kept += 1

    def close(self) -> None:
        if self._reader is not None:
            self._reader.close()
            self._reader = None


# --------------------------------------------------------------------------- in order


class InOrderReading:
    """Hands out one kind of message in log order, each once, moving the cursor."""

    def __init__(
        self,
        open_reader: Callable[[Offset], StreamReader],
        cursor: Cursor,
        kind: LogKind,
        on_gap: Callable[[LogGap], None],
    ) -> None:
        self._open_reader = open_reader
        self._cursor = cursor
        self._kind = kind
        self._on_gap = on_gap
        self._pending: deque[LogEntry] = deque()
        self._current: Delivered | None = None  # the entry _pending came from
        anchor = cursor.anchor(kind)
        self._verify: Anchor | None = anchor
        self._reader = open_reader("first" if anchor is None else anchor.offset)

    def peek(self) -> LogEntry | None:
        """The message :meth:`next_entry` would hand out, left in place; None if none has
        arrived yet."""
        return self._pending[0] if self._fill() else None

    def next_entry(self) -> LogEntry | None:
        """The next message of this kind not handed out before, or None if none has
        arrived yet."""
        if not self._fill():
            return None
        entry = self._pending.popleft()
        self._cursor.hand_out(seen_key(self._kind, message_id(entry.message)))
        if not self._pending:
            self._pass_current()
        return entry

    def _fill(self) -> bool:
        """Make sure a message waits in _pending, if the reader has one."""
        while not self._pending:
            delivered = self._reader.take()
            if delivered is None:
                return False
            if delivered.offset is None:
                continue  # not from a stream: nothing to anchor on
            if self._verify is not None and not self._verified(delivered):
                continue
            self._current = delivered
            if kind_of(delivered.type) is self._kind:
                for message in _decoded(delivered):
                    if not self._cursor.is_seen(seen_key(self._kind, message_id(message))):
                        self._pending.append(
                            LogEntry(delivered.offset, delivered.type or "", message)
                        )
            if not self._pending:
                self._pass_current()
        return True

    def _pass_current(self) -> None:
        current = self._current
        if current is not None and current.offset is not None:
            self._cursor.passed(self._kind, current.offset, current.message_id or "")
        self._current = None

    def _verified(self, delivered: Delivered) -> bool:
        """Check the first entry read against the anchor; False if it is the anchor's own
        entry (already passed) or the log was replaced (reading starts over)."""
        anchor, self._verify = self._verify, None
        assert anchor is not None and delivered.offset is not None
        if delivered.offset == anchor.offset and (delivered.message_id or "") == anchor.message_id:
            return False
        if delivered.offset <= anchor.offset:
            self._on_gap(LogGap(self._kind, 0, anchor.offset, replaced=True))
            self._cursor.restart(self._kind)
            self._reader.close()
            self._reader = self._open_reader("first")
            return False
        if delivered.offset > anchor.offset + 1:
            self._on_gap(LogGap(self._kind, anchor.offset + 1, delivered.offset - 1))
        return True

    def close(self) -> None:
        self._reader.close()


# ---------------------------------------------------------------------------- history


class History:
    """Every message of ``kinds`` from ``since`` (a sequence number, or a time: entries
    stamped at or after it), each id once; the cursor is not consulted or moved."""

    def __init__(
        self,
        open_reader: Callable[[Offset], StreamReader],
        since: int | dt.datetime | None,
        kinds: Collection[LogKind],
    ) -> None:
        self._kinds = frozenset(kinds)
        self._since_ns = _epoch_ns(since) if isinstance(since, dt.datetime) else None
        self._reader = open_reader("first" if since is None else since)
        self._seen: OrderedDict[str, None] = OrderedDict()  # the latest ids, for copies
        self._pending: deque[LogEntry] = deque()

    def next_entry(self) -> LogEntry | None:
        while not self._pending:
            delivered = self._reader.take()
            if delivered is None:
                return None
            kind = kind_of(delivered.type)
            if kind not in self._kinds:
                continue
            assert kind is not None
            for message in _decoded(delivered):
                key = seen_key(kind, message_id(message))
                if key in self._seen:
                    continue  # a copy sent again
                if self._since_ns is not None and _timestamp_ns(message) < self._since_ns:
                    continue  # a time names the chunk it falls in: skip what came before
                self._seen[key] = None
                if len(self._seen) > MAX_SEEN:
                    self._seen.popitem(last=False)
                self._pending.append(LogEntry(delivered.offset, delivered.type or "", message))
        return self._pending.popleft()

    def close(self) -> None:
        self._reader.close()
