"""The exchange's clock for people: times are shown, and read when given without an
offset, in the exchange's time zone, Beijing time (Asia/Shanghai: UTC+8, no daylight
saving since 1991, so a fixed offset needs no time-zone database).

The system itself keeps times as integer nanoseconds since the epoch (UTC); only what a
person reads or types goes through here.
"""

from __future__ import annotations

import datetime as dt
from typing import Final

__all__ = ["EXCHANGE_TIME", "format_ns", "parse_time_ns"]

EXCHANGE_TIME: Final = dt.timezone(dt.timedelta(hours=8), "CST")
NS_PER_S: Final = 1_000_000_000
_NS_PER_US: Final = 1_000


def format_ns(timestamp_ns: int, timespec: str = "milliseconds") -> str:
    """``1763433725123000000`` as ``2025-11-18T10:42:05.123+08:00`` (ISO 8601, exchange
    time; ``timespec`` as for :meth:`datetime.isoformat`)."""
    seconds, ns = divmod(timestamp_ns, NS_PER_S)
    moment = dt.datetime.fromtimestamp(seconds, EXCHANGE_TIME)
    return moment.replace(microsecond=ns // _NS_PER_US).isoformat(timespec=timespec)


def parse_time_ns(text: str) -> int:
    """An ISO 8601 date and time (``2026-12-03T15:00``, ``2026-12-03 15:00:30``, with an
    offset such as ``+08:00`` or ``Z``, or without: then it is exchange time) as epoch
    nanoseconds. A date alone is refused: which moment of the day would be a guess."""
    stripped = text.strip()
    if "T" not in stripped and " " not in stripped:
        raise ValueError(
            f"{text!r} has no time of day: give a date and time, e.g. 2026-12-03T15:00"
            " (exchange time, UTC+8) or 2026-12-03T07:00Z"
        )
    try:
        moment = dt.datetime.fromisoformat(stripped)
    except ValueError:
        raise ValueError(
            f"{text!r} is not an ISO 8601 date and time, e.g. 2026-12-03T15:00 or"
            " 2026-12-03T15:00+08:00"
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=EXCHANGE_TIME)
    epoch = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
    delta = moment - epoch
    return (delta.days * 86_400 + delta.seconds) * NS_PER_S + delta.microseconds * _NS_PER_US
