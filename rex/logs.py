"""Every service's log: one JSON object per line, so no value can make a line of its own.

A line is ``{"time", "level", "service", "logger", "message"}``, in that order, with
``"exception"`` (the traceback's text) after them when the event carries one. The message
is what the caller wrote, usually key=value pairs; a member's message id, routing key or
order field inside it is a JSON string like any other, so a newline or any other control
character in it is written escaped (``\\n``), and with it every character that
``str.splitlines`` would break a line at (U+0085, U+2028, U+2029, ...). Non-ASCII text
stays as it is, for people to read. docs/operators/operations.md describes the format.

:func:`parse` reads a line back (None for one that is not REX's) and :func:`readable`
shows it as a person reads a log: ``time LEVEL service=... logger message``.
"""

from __future__ import annotations

import json
import logging
import sys
import threading
import time
from types import TracebackType
from typing import Final

from rex.environment import REX_LOG_LEVEL

#: The keys of a line, in the order they are written; "exception" only when there is one.
KEYS: Final = ("time", "level", "service", "logger", "message")
EXCEPTION_KEY: Final = "exception"
#: The attribute of a record holding its own keys (`with_fields`), written after KEYS.
FIELDS_ATTRIBUTE: Final = "rex_fields"


def with_fields(**fields: str) -> dict[str, dict[str, str]]:
    """``extra=`` for a log call whose line carries ``fields`` as keys of their own (an
    audit line's actor, action, ...), so a reader need not parse the message for them.
    A field may not replace one of KEYS."""
    clash = sorted(set(fields) & {*KEYS, EXCEPTION_KEY})
    if clash:
        raise ValueError(f"log fields {clash} are keys every line has")
    return {FIELDS_ATTRIBUTE: fields}


# json.dumps escapes U+0000..U+001F inside strings; these it leaves as they are, and each
# would still end a line for some reader (str.splitlines, a terminal) or not be UTF-8 at all
# (a lone surrogate): DEL and the C1 controls, the separators splitlines knows, surrogates.
_STILL_RAW: Final = [*range(0x7F, 0xA0), 0x2028, 0x2029, *range(0xD800, 0xE000)]
_ESCAPES: Final = {code: f"\\u{code:04x}" for code in _STILL_RAW}
# For a person's screen: every control character of a message shown, not obeyed.
_SHOWN: Final = {
    **{code: f"\\x{code:02x}" for code in range(0x20)},
    **_ESCAPES,
    ord("\n"): "\\n",
    ord("\r"): "\\r",
    ord("\t"): "\\t",
}


def line_of(entry: dict[str, str]) -> str:
    """`entry` as one line of JSON: no character in it can break or end the line."""
    return json.dumps(entry, ensure_ascii=False).translate(_ESCAPES)


class JsonFormatter(logging.Formatter):
    """Formats a record as one line of JSON (the module's docstring says which)."""

    def __init__(self, service: str) -> None:
        super().__init__()
        self.service = service

    def format(self, record: logging.LogRecord) -> str:
        seconds = time.gmtime(record.created)
        entry = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", seconds) + f".{int(record.msecs):03d}Z",
            "level": record.levelname,
            "service": self.service,
            "logger": record.name,
            "message": _message(record),
        }
        fields = getattr(record, FIELDS_ATTRIBUTE, None)
        if isinstance(fields, dict):
            for key, value in fields.items():
                if key not in entry and key != EXCEPTION_KEY:
                    entry[str(key)] = str(value)
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        details = [text for text in (record.exc_text, record.stack_info) if text]
        if details:
            entry[EXCEPTION_KEY] = "\n".join(details)
        return line_of(entry)


def _message(record: logging.LogRecord) -> str:
    """The record's message; one whose arguments do not fit its format is still a line (the
    logging module would print its own traceback to stderr, as text)."""
    try:
        return record.getMessage()
    except (TypeError, ValueError, KeyError) as error:
        return f"unformattable log message {record.msg!r} args={record.args!r}: {error}"


def setup(service: str) -> None:
    """Log to stderr at ``REX_LOG_LEVEL``, one JSON line per event. The handler is in place
    before the level is read, so the ConfigError of a bad level can itself be logged (at
    INFO). What would otherwise reach stderr as text goes through the log too: an exception
    nothing caught (the main thread's or another thread's, at CRITICAL, with its traceback),
    one Python could only ignore (a finaliser's, at ERROR) and Python's warnings."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter(service))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.INFO)
    logging.getLogger("pika").setLevel(logging.CRITICAL)  # the bus logs what matters
    logging.captureWarnings(True)
    sys.excepthook = _log_uncaught
    threading.excepthook = _log_uncaught_in_thread
    sys.unraisablehook = _log_unraisable
    root.setLevel(REX_LOG_LEVEL.get())


def _log_uncaught(
    kind: type[BaseException], error: BaseException, traceback: TracebackType | None
) -> None:
    logging.getLogger("rex").critical(
        "uncaught %s: the process stops", kind.__name__, exc_info=(kind, error, traceback)
    )


def _log_uncaught_in_thread(args: threading.ExceptHookArgs) -> None:
    if args.exc_type is SystemExit:  # as Python's own hook: a thread's exit is no error
        return
    name = args.thread.name if args.thread is not None else "unknown"
    logging.getLogger("rex").critical(
        "uncaught %s in thread %s",
        args.exc_type.__name__,
        name,
        exc_info=(args.exc_type, args.exc_value or args.exc_type(), args.exc_traceback),
    )


def _log_unraisable(unraisable: sys.UnraisableHookArgs) -> None:
    kind = unraisable.exc_type
    logging.getLogger("rex").error(
        "ignored %s in %r: %s",
        kind.__name__,
        unraisable.object,
        unraisable.err_msg or "exception ignored",
        exc_info=(kind, unraisable.exc_value or kind(), unraisable.exc_traceback),
    )


def parse(line: str) -> dict[str, str] | None:
    """The entry a REX log line holds; None for a line that is not one (another program's
    output in the same file, say)."""
    try:
        entry = json.loads(line)
    except ValueError:
        return None
    if not isinstance(entry, dict) or not all(isinstance(entry.get(k), str) for k in KEYS):
        return None
    return {str(key): str(value) for key, value in entry.items()}


def readable(line: str) -> str:
    """A REX log line as a person reads it, ``time LEVEL service=... logger message``, the
    exception on the lines after it; control characters in the message stay escaped. A
    line that is not REX's comes back as it is."""
    entry = parse(line)
    if entry is None:
        return line
    message = entry["message"].translate(_SHOWN)
    text = (
        f"{entry['time']} {entry['level']} service={entry['service']} {entry['logger']} {message}"
    )
    exception = entry.get(EXCEPTION_KEY)
    return text if exception is None else f"{text}\n{exception}"
