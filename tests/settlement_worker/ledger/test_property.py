"""Property tests: the ledger's invariants hold for any sequence of valid operations."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from settlement_worker.ledger.rules import (
    EXCHANGE,
    AccountId,
    AccountKind,
    AlreadyReversed,
    InvalidEntry,
    JournalEntry,
    Ledger,
    Posting,
)

T0 = datetime(2026, 1, 1, tzinfo=UTC)

# A small world, so entries collide on accounts and reversals hit real entries.
ACCOUNTS = [
    AccountId(owner, kind, currency)
    for currency in ("CNY", "USD")
    for owner, kind in (
        ("m1", AccountKind.CASH),
        ("m1", AccountKind.PAYABLES),
        ("m2", AccountKind.CASH),
        ("m2", AccountKind.RECEIVABLES),
        ("m2", AccountKind.FEES),
        (EXCHANGE, AccountKind.CLEARING),
        (EXCHANGE, AccountKind.FEE_INCOME),
    )
]

amounts = st.integers(min_value=-(10**12), max_value=10**12).filter(bool)


@st.composite
def balanced_legs(draw: st.DrawFn, currency: str) -> list[Posting]:
    """2+ postings in one currency that sum to zero: the last one balances the others."""
    pool = [a for a in ACCOUNTS if a.currency == currency]
    chosen = draw(st.lists(st.sampled_from(pool), min_size=2, max_size=5, unique=True))
    legs = [Posting(a, draw(amounts)) for a in chosen[:-1]]
    rest = -sum(p.amount for p in legs)
    # If the first legs already net to zero (possible with 2+ of them) they are the entry.
    if rest:
        legs.append(Posting(chosen[-1], rest))
    return legs


@st.composite
def balanced_postings(draw: st.DrawFn) -> tuple[Posting, ...]:
    currencies = draw(st.sampled_from([["CNY"], ["USD"], ["CNY", "USD"]]))
    return tuple(p for c in currencies for p in draw(balanced_legs(c)))


@dataclass(frozen=True)
class Post:
    postings: tuple[Posting, ...]


@dataclass(frozen=True)
class Reverse:
    pick: int


@dataclass(frozen=True)
class Retry:
    pick: int


operations = st.lists(
    st.one_of(
        balanced_postings().map(Post),
        st.integers(min_value=0, max_value=10**6).map(Reverse),
        st.integers(min_value=0, max_value=10**6).map(Retry),
    ),
    max_size=40,
)


@given(operations)
@settings(max_examples=200, deadline=None)
def test_ledger_stays_balanced_and_rebuilds_exactly(ops: list[Post | Reverse | Retry]) -> None:
    ledger = Ledger()
    expected: dict[AccountId, int] = {}
    for n, op in enumerate(ops):
        created = T0 + timedelta(minutes=n)
        if isinstance(op, Post):
            e = JournalEntry(f"e{n}", op.postings, "trade", f"T{n}", created.date(), created)
            assert ledger.post(e) is True
        elif isinstance(op, Reverse) and len(ledger):
            target = ledger.entries()[op.pick % len(ledger)]
            try:
                e = ledger.reverse(target.entry_id, f"r{n}", created, "correction")
            except AlreadyReversed:
                assert ledger.reversal_of(target.entry_id) is not None
                continue
            assert ledger.post(e) is True
        elif isinstance(op, Retry) and len(ledger):
            # A retried post of an entry already in the ledger changes nothing.
            before = dict(ledger.balances())
            assert ledger.post(ledger.entries()[op.pick % len(ledger)]) is False
            assert ledger.balances() == before
            continue
        else:
            continue
        for p in e.postings:
            expected[p.account] = expected.get(p.account, 0) + p.amount
        assert all(total == 0 for total in ledger.total_by_currency().values())
    assert dict(ledger.balances()) == expected
    rebuilt = Ledger.rebuild(ledger.entries())
    assert rebuilt.balances() == ledger.balances()
    assert rebuilt.entries() == ledger.entries()


@given(
    st.lists(st.tuples(st.sampled_from(ACCOUNTS), amounts), min_size=2, max_size=6),
)
def test_unbalanced_entries_are_always_refused(legs: list[tuple[AccountId, int]]) -> None:
    nets: dict[str, int] = {}
    for account, amount in legs:
        nets[account.currency] = nets.get(account.currency, 0) + amount
    duplicate = len({a for a, _ in legs}) < len(legs)
    postings = tuple(Posting(a, x) for a, x in legs)
    if any(nets.values()) or duplicate:
        with pytest.raises(InvalidEntry):
            JournalEntry("e", postings, "trade", "T", T0.date(), T0)
    else:
        JournalEntry("e", postings, "trade", "T", T0.date(), T0)
