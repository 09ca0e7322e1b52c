"""Load the settlement holiday calendar from TOML (``config/holidays.toml``).

File format::

    weekend = [5, 6]            # optional; weekday numbers, Monday 0 ... Sunday 6

    [[holidays]]                # one table per holiday: a single day ...
    name = "Dragon Boat Festival"
    date = 2026-06-19

    [[holidays]]                # ... or an inclusive range of days
    name = "Spring Festival"
    first = 2026-02-15
    last = 2026-02-23

    [[workdays]]                # weekend days worked instead (China's 调休); optional
    name = "Spring Festival make-up day"
    date = 2026-02-14

Dates may be TOML dates (``2026-02-15``) or strings (``"2026-02-15"``). Loading is strict,
like the rest of REX's configuration: an unknown key, an impossible date, a range that runs
backwards or longer than :data:`MAX_RANGE_DAYS`, a date listed twice, or a make-up workday
that is not on a weekend is a :class:`~rex.config.ConfigError` naming the file, the entry
and the field. A wrong holiday calendar silently changes discount proceeds, so it must not
load "mostly".

This is the only module in the settlement core that does I/O (it reads one file); the
calendar it returns is a plain value.
"""

from __future__ import annotations

import datetime as dt
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Final

from rex.config import ConfigError, read_toml
from rex.fields import FieldError, check_keys
from settlement_worker.bills.discount import HolidayCalendar

__all__ = ["MAX_RANGE_DAYS", "load_calendar"]

#: Longest holiday range accepted: China's longest break is about nine days; a month
#: guards against a typo such as a year in the wrong place.
MAX_RANGE_DAYS: Final = 31

_ISO_DATE_RE: Final = re.compile(r"\d{4}-\d{2}-\d{2}")
_TOP_LEVEL: Final = ("weekend", "holidays", "workdays")


class _EntryError(Exception):
    def __init__(self, field: str | None, reason: str) -> None:
        super().__init__(reason)
        self.field = field
        self.reason = reason


def _as_date(field: str, value: object) -> dt.date:
    if isinstance(value, dt.datetime | dt.time):
        raise _EntryError(field, f"must be a date without a time, got {value.isoformat()}")
    if isinstance(value, dt.date):
        return value
    if isinstance(value, str):
        text = value.strip()
        if _ISO_DATE_RE.fullmatch(text):
            try:
                return dt.date.fromisoformat(text)
            except ValueError as exc:
                raise _EntryError(field, f"not a valid date: {value!r} ({exc})") from None
        raise _EntryError(field, f"must be a date YYYY-MM-DD, got {value!r}")
    raise _EntryError(field, f"must be a date YYYY-MM-DD, got {type(value).__name__} {value!r}")


def _check_keys(table: Mapping[str, Any], allowed: tuple[str, ...]) -> None:
    try:
        check_keys(table, allowed)
    except FieldError as error:
        raise _EntryError(error.field, error.reason) from None
    name = table.get("name")
    if not isinstance(name, str) or not name.strip():
        raise _EntryError("name", "required: a non-empty string")


def _holiday_days(table: Mapping[str, Any]) -> list[dt.date]:
    _check_keys(table, ("name", "date", "first", "last"))
    if "date" in table:
        if "first" in table or "last" in table:
            raise _EntryError("date", "give either 'date' or 'first' and 'last', not both")
        return [_as_date("date", table["date"])]
    if "first" not in table or "last" not in table:
        raise _EntryError(None, "needs 'date', or both 'first' and 'last'")
    first = _as_date("first", table["first"])
    last = _as_date("last", table["last"])
    if last < first:
        raise _EntryError("last", f"{last} is before first {first}")
    span = (last - first).days + 1
    if span > MAX_RANGE_DAYS:
        raise _EntryError("last", f"range of {span} days is longer than {MAX_RANGE_DAYS}")
    return [first + dt.timedelta(days=n) for n in range(span)]


def _tables(path: Path, doc: Mapping[str, Any], key: str) -> list[Any]:
    tables = doc.get(key, [])
    if not isinstance(tables, list):
        raise ConfigError(path, f"{key!r} must be an array of tables ([[{key}]])")
    return tables


def _label(kind: str, index: int, table: object) -> str:
    name = table.get("name") if isinstance(table, dict) else None
    return f"{kind} #{index} ({name!r})" if isinstance(name, str) and name else f"{kind} #{index}"


def _weekend(path: Path, doc: Mapping[str, Any]) -> tuple[int, ...]:
    raw = doc.get("weekend", [5, 6])
    ok = isinstance(raw, list) and all(
        isinstance(d, int) and not isinstance(d, bool) and 0 <= d <= 6 for d in raw
    )
    if not ok or len(set(raw)) >= 7:
        raise ConfigError(
            path,
            f"must be a list of weekday numbers 0 (Monday) to 6 (Sunday), not all seven, "
            f"got {raw!r}",
            field="weekend",
        )
    return tuple(raw)


def load_calendar(path: str | os.PathLike[str]) -> HolidayCalendar:
    """Read a holiday calendar; raise :class:`~rex.config.ConfigError` on any bad entry."""
    path = Path(path)
    doc = read_toml(path)
    for key in doc:
        if key not in _TOP_LEVEL:
            raise ConfigError(path, f"unknown top-level key {key!r} (allowed: {_TOP_LEVEL})")
    if "holidays" not in doc:
        raise ConfigError(path, "no [[holidays]] entries")
    weekend = _weekend(path, doc)

    holidays: dict[dt.date, str] = {}
    for index, table in enumerate(_tables(path, doc, "holidays"), start=1):
        label = _label("holiday", index, table)
        try:
            if not isinstance(table, dict):
                raise _EntryError(None, "must be a table")
            for day in _holiday_days(table):
                if day in holidays:
                    raise _EntryError(None, f"{day} is already listed by {holidays[day]}")
                holidays[day] = label
        except _EntryError as exc:
            raise ConfigError(path, exc.reason, entry=label, field=exc.field) from None

    workdays: dict[dt.date, str] = {}
    for index, table in enumerate(_tables(path, doc, "workdays"), start=1):
        label = _label("workday", index, table)
        try:
            if not isinstance(table, dict):
                raise _EntryError(None, "must be a table")
            _check_keys(table, ("name", "date"))
            if "date" not in table:
                raise _EntryError("date", "required field is missing")
            day = _as_date("date", table["date"])
            if day.weekday() not in weekend:
                raise _EntryError("date", f"{day} is a {day:%A}, already a working day")
            if day in holidays:
                raise _EntryError("date", f"{day} is also a holiday ({holidays[day]})")
            if day in workdays:
                raise _EntryError("date", f"{day} is already listed by {workdays[day]}")
            workdays[day] = label
        except _EntryError as exc:
            raise ConfigError(path, exc.reason, entry=label, field=exc.field) from None

    return HolidayCalendar(frozenset(holidays), weekend, frozenset(workdays))
