"""Checking one value read from configuration (or a member's request): the one set of
checks every loader uses -- products and members (rex/config.py), settlement.toml,
holidays.toml, receipt limits and payment methods, fees -- so that a value is refused in
the same words wherever it comes from.

Each check returns the value, or raises ``error`` (a :class:`FieldError` by default; a
loader may pass its own subclass) naming the field and saying what it must be and what it
got, with its TOML type where that matters (TOML ``true`` is not the integer 1).
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Collection, Iterable, Mapping
from decimal import Decimal
from typing import Any

__all__ = [
    "FieldError",
    "boolean",
    "check_keys",
    "describe_value",
    "did_you_mean",
    "identifier",
    "int_in",
    "is_int",
    "matching",
    "positive_int",
    "text",
]

#: An id: a member, a bank, an acceptor (also a RabbitMQ user name).
_ID_RE = re.compile(r"[A-Za-z0-9_-]{1,32}")


class FieldError(ValueError):
    """One field is invalid: ``field`` and ``reason`` (a loader adds the file and entry)."""

    def __init__(self, field: str, reason: str) -> None:
        self.field = field
        self.reason = reason
        super().__init__(f"field {field!r}: {reason}")

    def __reduce__(self) -> tuple[Any, tuple[Any, ...]]:
        return type(self), (self.field, self.reason)


def describe_value(value: object) -> str:
    """A value as an error message shows it, with its TOML type when that matters."""
    if isinstance(value, bool):
        return f"boolean {str(value).lower()}"
    if isinstance(value, int | Decimal):
        return str(value)
    if isinstance(value, str):
        return f"string {value!r}"
    if isinstance(value, float):
        return f"float {value!r}"
    if isinstance(value, dict):
        return "a table"
    if isinstance(value, list):
        return "an array"
    return f"{type(value).__name__} {value!r}"


def is_int(value: object) -> bool:
    """An integer that is not a boolean (bool is an int subclass)."""
    return isinstance(value, int) and not isinstance(value, bool)


def int_in(
    name: str,
    value: object,
    low: int,
    high: int | None = None,
    *,
    error: type[FieldError] = FieldError,
) -> int:
    """An integer from ``low`` to ``high`` (no upper bound if None), both included."""
    if is_int(value) and low <= value and (high is None or value <= high):  # type: ignore[operator]
        assert isinstance(value, int)
        return value
    bound = f"from {low} to {high}" if high is not None else f">= {low}"
    raise error(name, f"must be an integer {bound}, got {describe_value(value)}")


def positive_int(name: str, value: object, *, error: type[FieldError] = FieldError) -> int:
    if is_int(value) and value > 0:  # type: ignore[operator]
        assert isinstance(value, int)
        return value
    raise error(name, f"must be a positive integer, got {describe_value(value)}")


def boolean(name: str, value: object, *, error: type[FieldError] = FieldError) -> bool:
    if isinstance(value, bool):
        return value
    raise error(name, f"must be a boolean (true or false), got {describe_value(value)}")


def text(name: str, value: object, *, error: type[FieldError] = FieldError) -> str:
    """A string with something in it."""
    if not isinstance(value, str) or not value.strip():
        raise error(name, f"must be a non-empty string, got {describe_value(value)}")
    return value


def matching(
    name: str,
    value: object,
    pattern: re.Pattern[str],
    what: str,
    *,
    error: type[FieldError] = FieldError,
) -> str:
    """A string that ``pattern`` matches whole; ``what`` says what that is."""
    if not isinstance(value, str) or pattern.fullmatch(value) is None:
        raise error(name, f"must be {what}, got {describe_value(value)}")
    return value


def identifier(name: str, value: object, *, error: type[FieldError] = FieldError) -> str:
    return matching(name, value, _ID_RE, "an id (1-32 letters, digits, '_' or '-')", error=error)


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    """``did you mean 'a', 'b' or 'c'?`` for the choices closest to a mistyped ``word``
    (those it begins, then the most alike); empty if none is close."""
    known = list(choices)
    begun = [c for c in known if c.startswith(word)] if word else []
    alike = [c for c in difflib.get_close_matches(word, known, n=3) if c not in begun]
    close = [repr(c) for c in (begun + alike)[:3]]
    if not close:
        return ""
    listed = close[0] if len(close) == 1 else f"{', '.join(close[:-1])} or {close[-1]}"
    return f"did you mean {listed}?"


def check_keys(
    table: Mapping[str, object],
    allowed: Collection[str],
    *,
    prefix: str = "",
    error: type[FieldError] = FieldError,
) -> None:
    """Every key of ``table`` is one of ``allowed``: a typo must not pass silently."""
    for key in table:
        if key not in allowed:
            hint = did_you_mean(str(key), allowed)
            hint = f"{hint} " if hint else ""
            raise error(prefix + str(key), f"unknown key ({hint}allowed: {', '.join(allowed)})")
