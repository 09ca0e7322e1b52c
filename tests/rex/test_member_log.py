"""Reading a member's log with a cursor (rex/member_log.py, rex/member_inbox.py), on a log
held in memory: in-order hand-out per kind, each message once, partial batches resumed,
copies dropped, the anchor checked on attaching (retention gaps, a replaced log), history
by sequence and time, and the cursor file merged between clients."""

from __future__ import annotations

import datetime as dt
from collections import deque
from pathlib import Path

import pytest

from rex.client import entry_dict, entry_line
from rex.log_reader import Delivered
from rex.member_inbox import AnswerWatch, History, InOrderReading, LogEntry, LogGap
from rex.member_log import Cursor, FileCursorStore, LogKind, seen_key
from rex.protocol import ExecStatus, ExecutionReport, encode, join_bodies
from rex.settlement_protocol import SettlementAnswer, SettlementEvent

MEMBER = "ganzhou-magnet"


def report(n: int, cid: str = "c", ts: int = 0) -> ExecutionReport:
    return ExecutionReport(
        exec_id=f"PRND-OX-{n}",
        member=MEMBER,
        product="PRND-OX",
        status=ExecStatus.NEW,
        timestamp=ts or n,
        client_order_id=cid,
    )


class Log:
    """A member's log: entries at offsets from ``first`` (retention drops the front)."""

    def __init__(self) -> None:
        self.entries: list[tuple[str, str, bytes]] = []  # type, message id, body
        self.first = 0
        self.readers: list[FakeReader] = []

    def add_reports(self, *reports: ExecutionReport) -> int:
        if len(reports) == 1:
            self.entries.append(("execution", reports[0].exec_id, encode(reports[0])))
        else:
            body = join_bodies([encode(r) for r in reports])
            self.entries.append(("execution_batch", "batch", body))
        return len(self.entries) - 1

    def add_event(self, event_id: str, ts: int = 0) -> int:
        body = (
            SettlementEvent(event_id, MEMBER, "obligation_created", "obl-1", {}, ts).envelope().body
        )
        self.entries.append(("settlement_event", event_id, body))
        return len(self.entries) - 1

    def add_answer(self, request_id: str) -> int:
        answer = SettlementAnswer(
            f"a-{request_id}", request_id, "show_bills", MEMBER, MEMBER, "accepted", 1
        )
        self.entries.append(("settlement_answer", answer.answer_id, answer.encode()))
        return len(self.entries) - 1

    def open(self, offset: object) -> FakeReader:
        reader = FakeReader(self, offset)
        self.readers.append(reader)
        return reader


class FakeReader:
    """A StreamReader over a Log: everything from its offset is delivered at once."""

    def __init__(self, log: Log, offset: object) -> None:
        self.log = log
        if offset == "first":
            self.next = log.first
        elif offset == "next":
            self.next = len(log.entries)
        elif isinstance(offset, int):
            self.next = max(offset, log.first) if offset <= len(log.entries) else len(log.entries)
        else:
            raise AssertionError(offset)
        self.inbox: deque[Delivered] = deque()
        self.closed = False

    def take(self) -> Delivered | None:
        while self.next < len(self.log.entries):
            kind, message_id, body = self.log.entries[self.next]
            self.inbox.append(Delivered(self.next, kind, message_id, body, self.next + 1))
            self.next += 1
        return self.inbox.popleft() if self.inbox else None

    def close(self) -> None:
        self.closed = True


def reading(log: Log, cursor: Cursor, kind: LogKind, gaps: list[LogGap]) -> InOrderReading:
    return InOrderReading(log.open, cursor, kind, gaps.append)  # type: ignore[arg-type]


def drain(r: InOrderReading | History, limit: int = 1000) -> list[LogEntry]:
    out: list[LogEntry] = []
    while len(out) < limit and (entry := r.next_entry()) is not None:
        out.append(entry)
    return out


def ids(entries: list[LogEntry]) -> list[str]:
    return [getattr(e.message, "exec_id", None) or str(e.message) for e in entries]


def test_each_kind_is_read_in_order_past_the_others_and_each_message_once() -> None:
    log, cursor, gaps = Log(), Cursor(), []  # type: ignore[var-annotated]
    log.add_reports(report(1))
    log.add_event("ev-1")
    log.add_reports(report(2), report(3))
    log.add_answer("req-1")
    executions = drain(reading(log, cursor, LogKind.EXECUTIONS, gaps))
    assert ids(executions) == ["PRND-OX-1", "PRND-OX-2", "PRND-OX-3"]
    assert [e.sequence for e in executions] == [0, 2, 2]
    events = drain(reading(log, cursor, LogKind.EVENTS, gaps))
    assert [e.message.event_id for e in events] == ["ev-1"]  # type: ignore[union-attr]
    answers = drain(reading(log, cursor, LogKind.ANSWERS, gaps))
    assert [e.message.request_id for e in answers] == ["req-1"]  # type: ignore[union-attr]
    # A second reader of the same cursor hands out nothing again.
    assert drain(reading(log, cursor, LogKind.EXECUTIONS, gaps)) == []
    assert gaps == []


def test_a_reader_stopping_inside_a_batch_resumes_with_the_rest() -> None:
    log, cursor, gaps = Log(), Cursor(), []  # type: ignore[var-annotated]
    log.add_reports(report(1), report(2), report(3))
    assert ids(drain(reading(log, cursor, LogKind.EXECUTIONS, gaps), limit=1)) == ["PRND-OX-1"]
    assert ids(drain(reading(log, cursor, LogKind.EXECUTIONS, gaps))) == ["PRND-OX-2", "PRND-OX-3"]


def test_a_copy_sent_again_after_a_take_over_is_handed_out_once() -> None:
    log, cursor, gaps = Log(), Cursor(), []  # type: ignore[var-annotated]
    log.add_reports(report(1))
    log.add_reports(report(2))
    log.add_reports(report(2))  # the engine's take-over published it again
    log.add_reports(report(3))
    assert ids(drain(reading(log, cursor, LogKind.EXECUTIONS, gaps))) == [
        "PRND-OX-1",
        "PRND-OX-2",
        "PRND-OX-3",
    ]


def test_what_an_answer_watch_handed_out_is_not_handed_out_again_in_order() -> None:
    log, cursor, gaps = Log(), Cursor(), []  # type: ignore[var-annotated]
    cursor.hand_out(seen_key(LogKind.EXECUTIONS, "PRND-OX-2"))  # `rex order` showed it
    log.add_reports(report(1))
    log.add_reports(report(2))
    assert ids(drain(reading(log, cursor, LogKind.EXECUTIONS, gaps))) == ["PRND-OX-1"]


def test_entries_dropped_by_retention_before_they_were_read_are_a_gap() -> None:
    log, cursor, gaps = Log(), Cursor(), []  # type: ignore[var-annotated]
    for n in range(1, 6):
        log.add_reports(report(n))
    assert ids(drain(reading(log, cursor, LogKind.EXECUTIONS, gaps), limit=2)) == [
        "PRND-OX-1",
        "PRND-OX-2",
    ]
    log.first = 4  # retention dropped offsets 0..3: 2 and 3 were never read
    assert ids(drain(reading(log, cursor, LogKind.EXECUTIONS, gaps))) == ["PRND-OX-5"]
    assert gaps == [LogGap(LogKind.EXECUTIONS, 2, 3)]


def test_retention_dropping_only_what_was_read_is_no_gap() -> None:
    log, cursor, gaps = Log(), Cursor(), []  # type: ignore[var-annotated]
    for n in range(1, 4):
        log.add_reports(report(n))
    drain(reading(log, cursor, LogKind.EXECUTIONS, gaps), limit=2)
    log.first = 2  # the anchor's own entry (offset 1) went too, nothing unread
    assert ids(drain(reading(log, cursor, LogKind.EXECUTIONS, gaps))) == ["PRND-OX-3"]
    assert gaps == []


def test_a_log_made_again_is_read_from_its_start_without_repeating_what_was_handed_out() -> None:
    log, cursor, gaps = Log(), Cursor(), []  # type: ignore[var-annotated]
    for n in range(1, 4):
        log.add_reports(report(n))
    drain(reading(log, cursor, LogKind.EXECUTIONS, gaps))
    log.entries = []  # deleted and declared again: offsets start over
    log.add_reports(report(3))  # a copy of one handed out before
    log.add_reports(report(4))
    log.add_reports(report(5))  # at the anchor's offset: not the anchor's message
    assert ids(drain(reading(log, cursor, LogKind.EXECUTIONS, gaps))) == ["PRND-OX-4", "PRND-OX-5"]
    assert [g.replaced for g in gaps] == [True]


def test_history_reads_again_from_a_sequence_or_a_time_and_moves_no_cursor() -> None:
    log, cursor = Log(), Cursor()
    log.add_reports(report(1, ts=1_000))
    log.add_event("ev-1", ts=2_000)
    log.add_reports(report(2, ts=3_000))
    drain(reading(log, cursor, LogKind.EXECUTIONS, []))
    before = cursor.to_bytes()
    kinds = (LogKind.EXECUTIONS, LogKind.EVENTS)
    from_one = drain(History(log.open, 1, kinds))  # type: ignore[arg-type]
    assert [e.sequence for e in from_one] == [1, 2]
    moment = dt.datetime.fromtimestamp(0, dt.UTC) + dt.timedelta(microseconds=3)
    by_time = drain(History(lambda _offset: log.open("first"), moment, kinds))  # type: ignore[arg-type,return-value]
    assert [e.sequence for e in by_time] == [2]  # only what was stamped at or after it
    assert cursor.to_bytes() == before


def test_an_answer_watch_finds_a_reject_that_names_the_request_only_by_message_id() -> None:
    log = Log()
    watch = AnswerWatch(lambda: log.open("next"), MEMBER)  # type: ignore[arg-type,return-value]
    watch.expect_order("bad id", "msg-7")
    reject = ExecutionReport(
        exec_id=f"gw-{MEMBER}-msg-7",
        member=MEMBER,
        product="PRND-OX",
        status=ExecStatus.REJECTED,
        timestamp=1,
        reason="malformed",
    )
    log.add_reports(reject)
    assert watch.take_report("bad id", lambda _r: False) == reject


def test_the_cursor_file_merges_what_two_clients_saved(tmp_path: Path) -> None:
    store = FileCursorStore(tmp_path / "m.cursor")
    first, second = store.load(), store.load()
    first.passed(LogKind.EXECUTIONS, 5, "x5")
    first.hand_out("e:a")
    second.passed(LogKind.EVENTS, 2, "y2")
    second.hand_out("e:b")
    store.save(first)
    store.save(second)
    merged = store.load()
    assert merged.anchor(LogKind.EXECUTIONS) is not None
    assert merged.anchor(LogKind.EVENTS) is not None
    assert merged.is_seen("e:a") and merged.is_seen("e:b")


def test_a_damaged_cursor_file_says_what_to_do(tmp_path: Path) -> None:
    path = tmp_path / "m.cursor"
    path.write_bytes(b"\xc1 not msgpack")
    with pytest.raises(Exception, match="move it away to read the log from its start again"):
        FileCursorStore(path).load()


def test_the_cursor_remembers_a_bounded_number_of_ids() -> None:
    cursor = Cursor(max_seen=3)
    for key in "abcd":
        cursor.hand_out(key)
    assert [cursor.is_seen(k) for k in "abcd"] == [False, True, True, True]


def test_each_kind_of_entry_prints_as_a_line_and_as_json() -> None:
    event = SettlementEvent(
        "obl-1/created/m",
        MEMBER,
        "obligation_created",
        "obl-1",
        {"amount": 500, "currency": "CNY"},
        7,
    )
    answer = SettlementAnswer(
        "a-1", "req-1", "show_bills", "ops", MEMBER, "rejected", 8, "bill_rule"
    )
    entries = [
        LogEntry(3, "execution", report(1, cid="gz-1")),
        LogEntry(4, "settlement_event", event),
        LogEntry(5, "settlement_answer", answer),
    ]
    assert [entry_line(e).split("  ")[0] for e in entries] == ["#3", "#4", "#5"]
    assert "obligation_created  obl-1  amount 500  currency CNY" in entry_line(entries[1])
    assert "answer to show_bills req-1: rejected (bill_rule)  sent by ops" in entry_line(entries[2])
    wire = [entry_dict(e)["message"] for e in entries]
    assert (wire[0]["exec_id"], wire[1]["event_id"], wire[2]["answer_id"]) == (
        "PRND-OX-1",
        "obl-1/created/m",
        "a-1",
    )
