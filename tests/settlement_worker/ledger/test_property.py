"""Property tests: the invariants hold for any sequence of valid operations."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rex.config import CURRENCY_MINOR_UNITS
from rex.money import Money
from settlement_worker.bills.discount import (
    HolidayCalendar,
    discount_days,
    discount_interest,
    discount_proceeds,
)
from settlement_worker.bills.rules import (
    Bill,
    BillKind,
    BillRuleViolation,
    accept,
    endorse,
    issue,
)
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


# --------------------------------------------------------------------------- bills

MEMBERS = ["seller", "a", "b", "c", "buyer"]


@given(
    st.lists(
        st.tuples(
            st.sampled_from(MEMBERS),
            st.sampled_from(MEMBERS),
            st.integers(min_value=-3, max_value=40),
        ),
        max_size=25,
    )
)
@settings(max_examples=200, deadline=None)
def test_endorsement_chains_stay_continuous_and_append_only(
    attempts: list[tuple[str, str, int]],
) -> None:
    bill: Bill = accept(
        issue(
            "B-P",
            BillKind.BANK_ACCEPTANCE,
            "buyer",
            "seller",
            "bank",
            "Baotou",
            Money(10_000_00, "CNY"),
            date(2026, 3, 2),
            date(2026, 4, 2),
        ),
        "bank",
        date(2026, 3, 2),
    )
    day = date(2026, 3, 2)
    for frm, to, step in attempts:
        on = day + timedelta(days=step)
        try:
            after = endorse(bill, frm, to, on)
        except BillRuleViolation as exc:
            # Refused for a stated rule; the bill we hold is unchanged (it is a value).
            assert exc.code in {"not_holder", "self_endorsement", "overdue", "backdated"}
            continue
        assert after.endorsements[: len(bill.endorsements)] == bill.endorsements
        assert len(after.endorsements) == len(bill.endorsements) + 1
        bill, day = after, on
    holder = bill.payee
    for n, link in enumerate(bill.endorsements, start=1):
        assert link.sequence == n
        assert link.from_holder == holder
        holder = link.to_holder
    assert bill.holder == holder


# ------------------------------------------------------------------------ discount

rates = st.decimals(min_value=Decimal(0), max_value=Decimal("0.2"), places=6)
faces = st.integers(min_value=100, max_value=10**13)
day_counts = st.integers(min_value=0, max_value=400)


@given(faces, rates, day_counts, st.sampled_from(sorted(CURRENCY_MINOR_UNITS)))
def test_discount_proceeds_are_positive_and_at_most_face(
    face: int, rate: Decimal, days: int, currency: str
) -> None:
    proceeds = discount_proceeds(Money(face, currency), rate, days)
    assert 0 < proceeds.amount <= face
    assert proceeds.amount + discount_interest(face, rate, days) == face


@given(faces, rates, rates, day_counts, day_counts)
def test_discount_proceeds_never_rise_with_days_or_rate(
    face: int, r1: Decimal, r2: Decimal, d1: int, d2: int
) -> None:
    (r_lo, r_hi), (d_lo, d_hi) = sorted((r1, r2)), sorted((d1, d2))
    money = Money(face, "CNY")
    assert discount_proceeds(money, r_lo, d_lo) >= discount_proceeds(money, r_lo, d_hi)
    assert discount_proceeds(money, r_lo, d_lo) >= discount_proceeds(money, r_hi, d_lo)


@given(faces, rates, day_counts)
def test_discount_interest_is_the_exact_value_rounded_half_up(
    face: int, rate: Decimal, days: int
) -> None:
    exact = Decimal(face) * rate * days / 360  # Decimal has ample precision at these sizes
    interest = discount_interest(face, rate, days)
    assert interest - Decimal("0.5") <= exact < interest + Decimal("0.5")


@given(
    st.dates(min_value=date(2026, 1, 1), max_value=date(2027, 12, 31)),
    st.integers(min_value=0, max_value=200),
    st.frozensets(st.dates(min_value=date(2026, 1, 1), max_value=date(2028, 3, 31))),
    st.booleans(),
)
def test_discount_days_count_to_a_business_day_maturity(
    start: date, tenor: int, holidays: frozenset[date], other_city: bool
) -> None:
    calendar = HolidayCalendar(holidays)
    due = start + timedelta(days=tenor)
    days = discount_days(start, due, calendar, other_city)
    maturity = start + timedelta(days=days - (3 if other_city else 0))
    assert maturity >= due
    assert calendar.is_business_day(maturity)
    # Every day between the due date and the maturity is a non-business day.
    assert all(
        not calendar.is_business_day(due + timedelta(days=k)) for k in range((maturity - due).days)
    )


@given(
    st.integers(min_value=-(10**15), max_value=10**15),
    st.sampled_from(sorted(CURRENCY_MINOR_UNITS)),
)
def test_money_round_trips_through_decimal(amount: int, currency: str) -> None:
    money = Money(amount, currency)
    assert Money.of(money.to_decimal(), currency) == money
    assert Money.of(str(money.to_decimal()), currency) == money
