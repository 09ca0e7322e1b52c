"""Numbered ids that two processes can never both take: ``D-1``, ``OFF-2``, ``OTC-PRND-OX-3``.

Counting the rows (``COUNT(*) + 1``) races on PostgreSQL: two transactions count the same
rows, take the same number, and the second insert fails on the primary key. Here a number
comes from the series' row in ``id_counters`` (migration v0006), incremented in the
caller's transaction: PostgreSQL locks that row until the transaction ends, so a second
taker waits and gets the next number (SQLite's writers are serialised anyway). A
transaction that rolls back gives its number back, so a series has no gaps.

The lock is held until commit, so take the number early when what follows must see the
other takers' rows (a dispute's "one open dispute per subject" check reads the disputes
committed before it).
"""

from __future__ import annotations

from settlement_worker.store import Transaction

__all__ = ["give_back", "take_number"]


def take_number(tx: Transaction, series: str) -> int:
    """The next number of ``series`` (1 for a new series), locked until commit."""
    tx.execute(
        "INSERT INTO id_counters (name, last) VALUES (?, 0) ON CONFLICT (name) DO NOTHING",
        [series],
    )
    rows = tx.execute(
        "UPDATE id_counters SET last = last + 1 WHERE name = ? RETURNING last", [series]
    )
    return int(rows[0][0])


def give_back(tx: Transaction, series: str, number: int) -> None:
    """Return ``number``, taken in this transaction and not used (the row is still locked
    by it, so no later number was taken meanwhile)."""
    tx.execute(
        "UPDATE id_counters SET last = last - 1 WHERE name = ? AND last = ?", [series, number]
    )
