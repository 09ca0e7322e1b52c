"""rex.logs: one JSON object per line, whatever a member put into the values logged."""

from __future__ import annotations

import json
import logging
import sys
import threading
import warnings
from collections.abc import Iterator

import pytest

from rex import logs

FORGED = "2026-11-23T14:05:00.001Z ERROR service=gateway rex.gateway forged"
# Every way a value could end a line for some reader: LF, CR, CRLF, the separators
# str.splitlines knows (VT, FF, FS, GS, RS, NEL, LS, PS), a NUL, ESC, DEL, a lone surrogate.
BREAKERS = ["\n", "\r", "\r\n", "\v", "\f", "\x1c", "\x1d", "\x1e", "\x85", "\u2028", "\u2029"]
OTHERS = ["\x00", "\x1b[2J", "\x7f", "\ud800"]


def record(message: str, *args: object, level: int = logging.WARNING) -> logging.LogRecord:
    return logging.LogRecord("rex.gateway", level, __file__, 1, message, args, None)


def test_a_line_is_one_json_object_with_its_keys_in_a_stable_order() -> None:
    line = logs.JsonFormatter("gateway").format(record("reject message_id=%s", "m-1"))
    entry = json.loads(line)
    assert list(entry) == ["time", "level", "service", "logger", "message"]
    assert entry["level"] == "WARNING"
    assert entry["service"] == "gateway"
    assert entry["logger"] == "rex.gateway"
    assert entry["message"] == "reject message_id=m-1"
    assert entry["time"].endswith("Z") and len(entry["time"]) == len("2026-11-23T14:05:00.001Z")


@pytest.mark.parametrize("breaker", BREAKERS + OTHERS)
def test_no_character_in_a_value_can_make_a_line_of_its_own(breaker: str) -> None:
    message_id = f"m-1{breaker}{FORGED}"
    line = logs.JsonFormatter("gateway").format(record("reject message_id=%s", message_id))
    assert line.splitlines() == [line]
    assert line.isprintable()  # no control character reaches the file raw
    assert json.loads(line)["message"] == f"reject message_id={message_id}"
    line.encode("utf-8")  # no lone surrogate: writable as UTF-8


def test_non_ascii_text_stays_readable() -> None:
    line = logs.JsonFormatter("settlement").format(record("member=%s", "包头稀土"))
    assert "包头稀土" in line


def test_an_exception_is_kept_in_the_same_line() -> None:
    try:
        raise ConnectionResetError(104, "Connection reset by peer\nINFO forged")
    except ConnectionResetError:
        event = record("bus connection lost", level=logging.ERROR)
        event.exc_info = sys.exc_info()
    line = logs.JsonFormatter("gateway").format(event)
    assert line.splitlines() == [line]
    entry = json.loads(line)
    assert list(entry) == [*logs.KEYS, "exception"]
    assert entry["exception"].startswith("Traceback (most recent call last):")
    assert "ConnectionResetError: [Errno 104] Connection reset by peer" in entry["exception"]


def test_a_message_whose_arguments_do_not_fit_is_still_one_line() -> None:
    line = logs.JsonFormatter("gateway").format(record("reject id=%d", "m-1\nx"))
    assert json.loads(line)["message"] == (
        "unformattable log message 'reject id=%d' args=('m-1\\nx',): %d format: a real number"
        " is required, not str"
    )


def test_parse_reads_a_line_back_and_refuses_what_is_not_one() -> None:
    line = logs.JsonFormatter("engine").format(record("engine=main active"))
    assert logs.parse(line) == json.loads(line)
    for other in ["", "Traceback (most recent call last):", "[1, 2]", '{"time": 1}', FORGED]:
        assert logs.parse(other) is None


def test_readable_shows_a_line_as_text_with_its_controls_escaped() -> None:
    formatter = logs.JsonFormatter("gateway")
    line = formatter.format(record("reject message_id=%s", f"m-1\n{FORGED}"))
    shown = logs.readable(line)
    time = json.loads(line)["time"]
    assert shown == f"{time} WARNING service=gateway rex.gateway reject message_id=m-1\\n{FORGED}"
    assert logs.readable("not a log line") == "not a log line"


@pytest.fixture
def service_logging() -> Iterator[None]:
    """logs.setup changes the process's logging; put back what pytest had."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    hooks = sys.excepthook, threading.excepthook, sys.unraisablehook
    try:
        yield
    finally:
        root.handlers[:] = handlers
        root.setLevel(level)
        sys.excepthook, threading.excepthook, sys.unraisablehook = hooks
        logging.captureWarnings(False)


def lines_written(capsys: pytest.CaptureFixture[str]) -> list[dict[str, str]]:
    return [json.loads(line) for line in capsys.readouterr().err.splitlines()]


@pytest.mark.usefixtures("service_logging")
def test_setup_writes_json_lines_to_stderr(capsys: pytest.CaptureFixture[str]) -> None:
    logs.setup("gateway")
    logging.getLogger("rex.gateway").error("reject message_id=%s", f"x\n{FORGED}")
    [entry] = lines_written(capsys)
    assert entry["service"] == "gateway"
    assert entry["message"] == f"reject message_id=x\n{FORGED}"


@pytest.mark.usefixtures("service_logging")
def test_uncaught_and_ignored_exceptions_and_warnings_are_log_lines_too(
    capsys: pytest.CaptureFixture[str],
) -> None:
    logs.setup("engine")
    try:
        raise RuntimeError("book broken")
    except RuntimeError:
        sys.excepthook(*sys.exc_info())
    thread = threading.Thread(target=lambda: 1 / 0, name="worker")
    thread.start()
    thread.join()
    warnings.warn("old option", DeprecationWarning, stacklevel=1)

    class Leaky:
        def __del__(self) -> None:
            raise OSError("close failed")

    Leaky()  # its finaliser's error Python can only report
    crashed, in_thread, warned, ignored = lines_written(capsys)
    assert (crashed["level"], crashed["message"]) == (
        "CRITICAL",
        "uncaught RuntimeError: the process stops",
    )
    assert "RuntimeError: book broken" in crashed["exception"]
    assert in_thread["message"] == "uncaught ZeroDivisionError in thread worker"
    assert "ZeroDivisionError" in in_thread["exception"]
    assert warned["logger"] == "py.warnings" and "old option" in warned["message"]
    assert ignored["level"] == "ERROR" and ignored["message"].startswith("ignored OSError in ")
    assert "OSError: close failed" in ignored["exception"]
