"""Ledger rules: balanced per currency, immutable entries, idempotent ids, reversals."""

from __future__ import annotations

import dataclasses
from datetime import UTC, date, datetime, timedelta, timezone

import pytest

from settlement_worker.ledger.rules import (
    EXCHANGE,
    AccountId,
    AccountKind,
    AlreadyReversed,
    ConflictingEntry,
    InvalidEntry,
    JournalEntry,
    Ledger,
    Posting,
    UnknownEntry,
)

T0 = datetime(2026, 3, 2, 9, 30, tzinfo=UTC)
DAY = date(2026, 3, 2)

BUYER_CASH = AccountId("buyer", AccountKind.CASH, "CNY")
BUYER_PAYABLES = AccountId("buyer", AccountKind.PAYABLES, "CNY")
SELLER_CASH = AccountId("seller", AccountKind.CASH, "CNY")
SELLER_RECEIVABLES = AccountId("seller", AccountKind.RECEIVABLES, "CNY")
BUYER_FEES = AccountId("buyer", AccountKind.FEES, "CNY")
FEE_INCOME = AccountId(EXCHANGE, AccountKind.FEE_INCOME, "CNY")
CLEARING_CNY = AccountId(EXCHANGE, AccountKind.CLEARING, "CNY")
CLEARING_USD = AccountId(EXCHANGE, AccountKind.CLEARING, "USD")
BUYER_CASH_USD = AccountId("buyer", AccountKind.CASH, "USD")


def entry(entry_id: str, *postings: Posting, **kwargs: object) -> JournalEntry:
    fields: dict[str, object] = {
        "reason": "trade",
        "reference": "T-1",
        "effective": DAY,
        "created_at": T0,
    }
    fields.update(kwargs)
    return JournalEntry(entry_id, postings, **fields)  # type: ignore[arg-type]


def pay(entry_id: str, amount: int) -> JournalEntry:
    """The buyer pays the seller ``amount`` fen in cash."""
    return entry(entry_id, Posting.credit(BUYER_CASH, amount), Posting.debit(SELLER_CASH, amount))


def test_debit_is_positive_and_credit_is_negative() -> None:
    assert Posting.debit(SELLER_CASH, 100).amount == 100
    assert Posting.credit(BUYER_CASH, 100).amount == -100
    with pytest.raises(InvalidEntry):
        Posting.debit(SELLER_CASH, -1)


def test_posting_must_balance_per_currency() -> None:
    # 100 CNY debit against 100 USD credit nets to zero in integers but not in money.
    with pytest.raises(InvalidEntry, match="per currency"):
        entry("e1", Posting(BUYER_CASH, 100), Posting(CLEARING_USD, -100))
    with pytest.raises(InvalidEntry, match="CNY \\+1"):
        entry("e2", Posting(BUYER_CASH, 101), Posting(SELLER_CASH, -100))
    # An FX entry is fine when each currency nets to zero on its own:
    # buyer sells 72.00 CNY for 10.00 USD through the clearing accounts.
    fx = entry(
        "fx",
        Posting.credit(BUYER_CASH, 7200),
        Posting.debit(CLEARING_CNY, 7200),
        Posting.debit(BUYER_CASH_USD, 1000),
        Posting.credit(CLEARING_USD, 1000),
    )
    assert fx.currencies() == {"CNY", "USD"}


def test_entry_needs_at_least_two_postings() -> None:
    with pytest.raises(InvalidEntry, match="two postings"):
        entry("e1", Posting(BUYER_CASH, 1))
    with pytest.raises(InvalidEntry):
        entry("e2")


def test_zero_amount_posting_is_refused() -> None:
    with pytest.raises(InvalidEntry, match="zero"):
        Posting(BUYER_CASH, 0)


def test_same_account_twice_in_one_entry_is_refused_not_merged() -> None:
    with pytest.raises(InvalidEntry, match="appears twice"):
        entry(
            "e1",
            Posting(BUYER_CASH, -60),
            Posting(BUYER_CASH, -40),
            Posting(SELLER_CASH, 100),
        )


def test_created_at_must_be_timezone_aware_utc() -> None:
    with pytest.raises(InvalidEntry, match="timezone-aware"):
        JournalEntry("e1", pay("x", 1).postings, "trade", "T-1", DAY, datetime(2026, 3, 2, 9, 30))
    beijing = timezone(timedelta(hours=8))
    with pytest.raises(InvalidEntry, match="UTC"):
        entry("e2", *pay("x", 1).postings, created_at=T0.astimezone(beijing))
    with pytest.raises(InvalidEntry, match="date"):
        entry("e3", *pay("x", 1).postings, effective=T0)


def test_member_kinds_belong_to_members_and_exchange_kinds_to_the_exchange() -> None:
    with pytest.raises(InvalidEntry):
        AccountId("buyer", AccountKind.FEE_INCOME, "CNY")
    with pytest.raises(InvalidEntry):
        AccountId(EXCHANGE, AccountKind.CASH, "CNY")
    with pytest.raises(ValueError):
        AccountId("buyer", AccountKind.CASH, "XYZ")


def test_journal_entries_are_immutable() -> None:
    e = pay("e1", 100)
    with pytest.raises(dataclasses.FrozenInstanceError):
        e.reason = "edited"  # type: ignore[misc]
    ledger = Ledger()
    ledger.post(e)
    assert isinstance(ledger.entries(), tuple)  # a copy: the journal cannot be edited through it
    assert not any(hasattr(ledger, name) for name in ("edit", "delete", "remove", "update"))


def test_post_updates_balances_with_the_sign_convention() -> None:
    ledger = Ledger()
    assert ledger.post(pay("e1", 12_345)) is True
    assert ledger.balance(BUYER_CASH) == -12_345
    assert ledger.balance(SELLER_CASH) == 12_345
    assert ledger.balance(FEE_INCOME) == 0  # never used
    assert ledger.total_by_currency() == {"CNY": 0}


def test_same_entry_id_twice_is_idempotent() -> None:
    ledger = Ledger()
    assert ledger.post(pay("e1", 100)) is True
    assert ledger.post(pay("e1", 100)) is False  # a retried request
    assert len(ledger) == 1
    assert ledger.balance(SELLER_CASH) == 100


def test_same_entry_id_with_different_content_conflicts() -> None:
    ledger = Ledger()
    ledger.post(pay("e1", 100))
    with pytest.raises(ConflictingEntry):
        ledger.post(pay("e1", 101))
    with pytest.raises(ConflictingEntry):
        ledger.post(entry("e1", *pay("x", 100).postings, reference="T-2"))
    assert ledger.balance(SELLER_CASH) == 100
    assert len(ledger) == 1


def test_ledger_sums_to_zero_per_currency_after_every_post() -> None:
    ledger = Ledger()
    ledger.post(pay("e1", 500_000))
    assert ledger.total_by_currency() == {"CNY": 0}
    ledger.post(
        entry(
            "fx",
            Posting.credit(BUYER_CASH, 7200),
            Posting.debit(CLEARING_CNY, 7200),
            Posting.debit(BUYER_CASH_USD, 1000),
            Posting.credit(CLEARING_USD, 1000),
        )
    )
    assert ledger.total_by_currency() == {"CNY": 0, "USD": 0}


def test_reverse_builds_a_negated_correcting_entry_without_posting_it() -> None:
    ledger = Ledger()
    original = entry(
        "fee-1",
        Posting.debit(BUYER_FEES, 250),
        Posting.credit(FEE_INCOME, 250),
        reason="fee",
    )
    ledger.post(original)
    later = T0 + timedelta(days=1)
    reversal = ledger.reverse("fee-1", "fee-1-rev", later, "dispute resolved: fee waived")
    assert len(ledger) == 1  # building a reversal does not post it
    assert reversal.corrects == "fee-1"
    assert reversal.reference == original.reference
    assert reversal.effective == date(2026, 3, 3)  # the UTC day of the correction
    assert {p.account: p.amount for p in reversal.postings} == {BUYER_FEES: -250, FEE_INCOME: 250}
    assert ledger.post(reversal) is True
    assert ledger.balance(BUYER_FEES) == 0 and ledger.balance(FEE_INCOME) == 0
    # The original is still there, untouched: corrections never edit.
    assert ledger.entry("fee-1") == original
    assert [e.entry_id for e in ledger.entries()] == ["fee-1", "fee-1-rev"]
    assert ledger.reversal_of("fee-1") == reversal


def test_an_entry_can_be_reversed_only_once() -> None:
    ledger = Ledger()
    ledger.post(pay("e1", 100))
    ledger.post(ledger.reverse("e1", "r1", T0, "wrong amount"))
    with pytest.raises(AlreadyReversed):
        ledger.reverse("e1", "r2", T0, "again")
    # Nor by a hand-built full reversal under another id.
    with pytest.raises(AlreadyReversed):
        ledger.post(entry("r3", *(-p for p in pay("x", 100).postings), corrects="e1"))
    # Reversing the reversal is allowed: it reinstates the original.
    ledger.post(ledger.reverse("r1", "r1-rev", T0, "reversal was a mistake"))
    assert ledger.balance(SELLER_CASH) == 100


def test_retried_reverse_and_post_is_idempotent() -> None:
    ledger = Ledger()
    ledger.post(pay("e1", 100))
    assert ledger.post(ledger.reverse("e1", "r1", T0, "wrong")) is True
    assert ledger.post(ledger.reverse("e1", "r1", T0, "wrong")) is False
    assert ledger.balance(SELLER_CASH) == 0


def test_correction_must_name_a_posted_entry() -> None:
    ledger = Ledger()
    with pytest.raises(UnknownEntry):
        ledger.post(entry("c1", *pay("x", 5).postings, corrects="nope"))
    with pytest.raises(UnknownEntry):
        ledger.reverse("nope", "r", T0, "why")
    with pytest.raises(InvalidEntry):
        entry("c2", *pay("x", 5).postings, corrects="c2")  # cannot correct itself
    assert len(ledger) == 0


def test_rebuild_from_the_journal_gives_the_same_balances() -> None:
    ledger = Ledger()
    ledger.post(pay("e1", 700))
    ledger.post(
        entry(
            "e2",
            Posting.debit(SELLER_RECEIVABLES, 300),
            Posting.credit(BUYER_PAYABLES, 300),
        )
    )
    ledger.post(ledger.reverse("e1", "r1", T0, "wrong"))
    rebuilt = Ledger.rebuild(ledger.entries())
    assert rebuilt.balances() == ledger.balances()
    assert rebuilt.entries() == ledger.entries()
    # A journal with a retried (identical) entry rebuilds to the same ledger.
    assert Ledger.rebuild([*ledger.entries(), ledger.entry("e2")]).balances() == ledger.balances()


def test_balances_are_listed_in_account_order_including_zeroes() -> None:
    ledger = Ledger()
    ledger.post(pay("e1", 1))
    ledger.post(ledger.reverse("e1", "r1", T0, "oops"))
    assert list(ledger.balances().items()) == [(BUYER_CASH, 0), (SELLER_CASH, 0)]
