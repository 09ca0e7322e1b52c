"""A member's log and the reader's place in it (protocol version 2).

Everything REX sends a member -- execution reports, settlement events, answers to its
settlement requests -- is appended to one stream per member, ``rex.member.<id>.log``
(rex/topology.py), kept at least :data:`rex.topology.MEMBER_LOG_MAX_AGE`. A stream has no
delivery limit and nothing in it is taken away by reading, so no client can lose a message
by reading selectively, closing early or crashing: it reads on from where it stands.

Where it stands is the client's own :class:`Cursor`, one read position per kind of message
(a command that reads execution reports passes over settlement events without taking them)
and the ids handed out lately, so that

* separate commands hand out each message once (``rex order`` hands out its answer, and
  ``rex executions`` afterwards does not show it again), and
* a message sent again (same id, after an engine take-over or a provision migration) is
  handed out once.

The cursor is pure data; :class:`FileCursorStore` keeps it in a small file per broker,
vhost and login (``$REX_CURSOR_DIR``, default ``$XDG_STATE_HOME/rex/cursors``), and
:class:`MemoryCursorStore` keeps it in memory for a caller that keeps its own.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import tempfile
import urllib.parse
from collections import OrderedDict
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Final, Protocol

import msgpack

from rex.environment import REX_CURSOR_DIR
from rex.private_files import private_directory, private_file

__all__ = [
    "CURSOR_FORMAT",
    "MAX_SEEN",
    "Anchor",
    "Cursor",
    "CursorFileError",
    "CursorStore",
    "FileCursorStore",
    "LogKind",
    "MemoryCursorStore",
    "default_cursor_dir",
    "kind_of",
    "seen_key",
]

CURSOR_FORMAT: Final = 1
#: How many handed-out ids a cursor remembers. A copy sent again arrives within seconds of
#: the original (an engine take-over republishes what followed its last checkpoint), and an
#: answer handed out by ``await_answer`` is passed by the in-order reader long before this
#: many more messages follow, unless a program awaits this many answers and never reads.
MAX_SEEN: Final = 20_000


class LogKind(StrEnum):
    """The kinds of message in a member's log, each read on its own."""

    EXECUTIONS = "executions"  # execution reports (`execution`, `execution_batch`)
    EVENTS = "events"  # settlement events (`settlement_event`)
    ANSWERS = "answers"  # answers to settlement requests (`settlement_answer`)


_KINDS: Final[Mapping[str, LogKind]] = {
    "execution": LogKind.EXECUTIONS,
    "execution_batch": LogKind.EXECUTIONS,
    "settlement_event": LogKind.EVENTS,
    "settlement_answer": LogKind.ANSWERS,
}


def kind_of(message_type: str | None) -> LogKind | None:
    """The log kind of an AMQP message type; None for a type this client does not know
    (passed over by every reader, as protocol version 2 allows new kinds)."""
    return _KINDS.get(message_type or "")


@dataclass(frozen=True, slots=True)
class Anchor:
    """The last log entry an in-order reader passed: its offset and message id. A reader
    resumes by reading this entry again, which proves the log is still the same log and
    shows whether retention dropped entries the reader never saw."""

    offset: int
    message_id: str


@dataclass(slots=True)
class Cursor:
    """Where a member's reading stands: per kind, the anchor after which in-order reading
    resumes (none yet: from the log's first entry); and the ids handed out lately."""

    anchors: dict[LogKind, Anchor] = field(default_factory=dict)
    seen: OrderedDict[str, None] = field(default_factory=OrderedDict)
    max_seen: int = MAX_SEEN

    def anchor(self, kind: LogKind) -> Anchor | None:
        return self.anchors.get(kind)

    def passed(self, kind: LogKind, offset: int, message_id: str) -> None:
        """In-order reading of ``kind`` is done with every entry up to ``offset``."""
        current = self.anchors.get(kind)
        if current is None or offset > current.offset:
            self.anchors[kind] = Anchor(offset, message_id)

    def restart(self, kind: LogKind) -> None:
        """Read ``kind`` from the log's first entry again (the log was replaced); the seen
        ids still keep what was handed out from being handed out again."""
        self.anchors.pop(kind, None)

    def is_seen(self, key: str) -> bool:
        return key in self.seen

    def hand_out(self, key: str) -> None:
        self.seen[key] = None
        self.seen.move_to_end(key)
        while len(self.seen) > self.max_seen:
            self.seen.popitem(last=False)

    def merge(self, other: Cursor) -> None:
        """Take in what another reader of the same member recorded (the later anchor of
        each kind, and its seen ids)."""
        for kind, anchor in other.anchors.items():
            self.passed(kind, anchor.offset, anchor.message_id)
        for key in other.seen:
            if key not in self.seen:
                self.hand_out(key)

    def to_bytes(self) -> bytes:
        data: bytes = msgpack.packb(
            {
                "format": CURSOR_FORMAT,
                "anchors": {k.value: [a.offset, a.message_id] for k, a in self.anchors.items()},
                "seen": list(self.seen),
            },
            use_bin_type=True,
        )
        return data

    @classmethod
    def from_bytes(cls, data: bytes) -> Cursor:
        """A cursor from :meth:`to_bytes`; ValueError for anything else."""
        try:
            raw = msgpack.unpackb(data, raw=False)
        except (ValueError, msgpack.ExtraData, msgpack.FormatError, msgpack.StackError) as e:
            raise ValueError(f"not a cursor: {e}") from None
        if not isinstance(raw, dict) or raw.get("format") != CURSOR_FORMAT:
            raise ValueError("not a cursor of format 1")
        anchors: dict[LogKind, Anchor] = {}
        for name, value in dict(raw.get("anchors") or {}).items():
            if name not in LogKind.__members__.values():
                continue  # a kind a newer client knows
            if not (isinstance(value, list) and len(value) == 2 and isinstance(value[0], int)):
                raise ValueError(f"bad anchor for {name!r}")
            anchors[LogKind(name)] = Anchor(value[0], str(value[1]))
        seen: OrderedDict[str, None] = OrderedDict((str(k), None) for k in raw.get("seen") or ())
        return cls(anchors, seen)


def seen_key(kind: LogKind, message_id: str) -> str:
    """The key under which a handed-out message is remembered: ids are unique per kind."""
    return f"{kind.value[0]}:{message_id}"


class CursorStore(Protocol):
    """Where a cursor is kept between clients."""

    def load(self) -> Cursor: ...

    def save(self, cursor: Cursor) -> None:
        """Keep ``cursor``, merged with what another client saved meanwhile."""


class MemoryCursorStore:
    """A cursor kept in memory (``Client(..., cursor=MemoryCursorStore())``): nothing
    outlives the process, unless the caller keeps ``cursor.to_bytes()`` itself."""

    def __init__(self, cursor: Cursor | None = None) -> None:
        self.cursor = cursor or Cursor()

    def load(self) -> Cursor:
        return Cursor.from_bytes(self.cursor.to_bytes())

    def save(self, cursor: Cursor) -> None:
        self.cursor.merge(cursor)


def default_cursor_dir(env: Mapping[str, str] = os.environ) -> Path:
    """``$REX_CURSOR_DIR``, else ``$XDG_STATE_HOME/rex/cursors`` (``~/.local/state/rex/
    cursors``): a client's read positions are its state, not the exchange's data."""
    explicit = REX_CURSOR_DIR.get(env)
    if explicit is not None:
        return explicit
    state = env.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(state) / "rex" / "cursors"


def _safe(text: str) -> str:
    return urllib.parse.quote(text, safe="") or "%2F"


class FileCursorStore:
    """A cursor in a file, one per broker address, vhost and login.

    Saving locks the file, merges what another client of the same member saved since
    (positions only move forward, seen ids add up) and replaces it atomically, so two
    commands run one after the other hand out each message once, and a crash leaves the
    last saved cursor. Two readers of one kind at the same moment may both hand out the
    same message; each still gets everything.
    """

    def __init__(self, path: Path) -> None:
        self.path = path

    @classmethod
    def for_login(
        cls, host: str, port: int, vhost: str, login: str, directory: Path | None = None
    ) -> FileCursorStore:
        base = directory if directory is not None else default_cursor_dir()
        return cls(base / f"{_safe(host)}-{port}" / _safe(vhost) / f"{_safe(login)}.cursor")

    def load(self) -> Cursor:
        try:
            data = self.path.read_bytes()
        except FileNotFoundError:
            return Cursor()
        except OSError as error:
            raise CursorFileError(self.path, f"cannot read it: {error.strerror}") from None
        try:
            return Cursor.from_bytes(data)
        except ValueError as error:
            raise CursorFileError(
                self.path, f"{error}; move it away to read the log from its start again"
            ) from None

    def save(self, cursor: Cursor) -> None:
        try:
            private_directory(self.path.parent)
            with self._locked():
                with contextlib.suppress(CursorFileError):
                    cursor.merge(self.load())
                fd, temporary = tempfile.mkstemp(dir=self.path.parent, prefix=".cursor-")
                try:
                    with os.fdopen(fd, "wb") as out:
                        out.write(cursor.to_bytes())
                    os.replace(temporary, self.path)
                except BaseException:
                    with contextlib.suppress(OSError):
                        os.unlink(temporary)
                    raise
        except OSError as error:
            raise CursorFileError(self.path, f"cannot write it: {error.strerror}") from None

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        with os.fdopen(private_file(self.path.with_suffix(".lock")), "ab") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)


class CursorFileError(Exception):
    """The cursor file cannot be read or written; the message says which and what to do."""

    def __init__(self, path: Path, problem: str) -> None:
        self.path = path
        super().__init__(f"read-position file {path}: {problem} (set REX_CURSOR_DIR to move it)")
