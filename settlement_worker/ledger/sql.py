"""Journal entries as store rows, and exact nanosecond timestamps.

Shared by everything that books: the trade booking, bills, disputes. ``created_at`` is
kept as integer ns since the epoch in the store and as a UTC datetime in a
:class:`~settlement_worker.ledger.rules.JournalEntry`; the conversions here never go through a
float.
"""

from __future__ import annotations

import datetime as dt

from settlement_worker.ledger.rules import JournalEntry
from settlement_worker.store import EntryRow, PostingRow

__all__ = ["entry_row", "from_ns", "to_ns"]

_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


def to_ns(when: dt.datetime) -> int:
    """Exact ns since the epoch (no float on the way)."""
    delta = when - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000_000 + delta.microseconds * 1_000


def from_ns(ns: int) -> dt.datetime:
    """A UTC datetime, to the microsecond (a datetime holds no more)."""
    return _EPOCH + dt.timedelta(microseconds=ns // 1_000)


def entry_row(entry: JournalEntry) -> EntryRow:
    return EntryRow(
        entry_id=entry.entry_id,
        kind=entry.reason,
        reference=entry.reference,
        effective_date=entry.effective.isoformat(),
        created_at=to_ns(entry.created_at),
        postings=tuple(
            PostingRow(p.account.owner, p.account.kind.value, p.account.currency, p.amount)
            for p in entry.postings
        ),
        corrects=entry.corrects,
    )
