"""What each bill operation posts: one test per operation and case, amounts by hand."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from rex.money import Money
from settlement_worker.bills.discount import HolidayCalendar
from settlement_worker.bills.postings import (
    discount_entry,
    dishonour_entry,
    endorse_entry,
    held_by_bank,
    issue_entry,
    maturity_entry,
)
from settlement_worker.bills.rules import (
    Bill,
    BillKind,
    accept,
    discount,
    dishonour,
    endorse,
    issue,
    pay_at_maturity,
)
from settlement_worker.ledger.rules import JournalEntry

CREATED = dt.datetime(2026, 3, 2, 8, 0, tzinfo=dt.UTC)
ISSUED = dt.date(2026, 3, 2)  # Monday
DUE = dt.date(2026, 6, 1)  # Monday
FACE = 100_000_000  # 1,000,000.00 CNY
NO_HOLIDAYS = HolidayCalendar(frozenset())


def accepted() -> Bill:
    drawn = issue(
        "B-1",
        BillKind.BANK_ACCEPTANCE,
        "buyer",
        "seller",
        "icbc-baotou",
        "Baotou",
        Money(FACE, "CNY"),
        ISSUED,
        DUE,
    )
    return accept(drawn, "icbc-baotou", ISSUED)


def lines(entry: JournalEntry) -> dict[tuple[str, str], int]:
    assert entry.reference == "B-1"  # every bill entry is about the bill: disputes find it
    return {(p.account.owner, p.account.kind.value): p.amount for p in entry.postings}


def test_issue_turns_the_trade_debt_into_the_bill() -> None:
    entry = issue_entry(accepted(), CREATED)
    assert entry.entry_id == "issue-B-1" and entry.reason == "bill_issue"
    assert entry.effective == ISSUED
    assert lines(entry) == {
        ("buyer", "payables"): FACE,
        ("buyer", "bills_payable"): -FACE,
        ("seller", "bills_receivable"): FACE,
        ("seller", "receivables"): -FACE,
    }


def test_an_endorsement_moves_the_bill_and_may_pay_the_endorsers_debt() -> None:
    bill = endorse(accepted(), "seller", "smelter", dt.date(2026, 3, 5))
    link = bill.endorsements[-1]
    plain = endorse_entry(bill, link, CREATED, pays_obligation=False)
    assert plain.entry_id == "endorse-B-1-1" and plain.effective == dt.date(2026, 3, 5)
    assert lines(plain) == {
        ("seller", "bills_receivable"): -FACE,
        ("smelter", "bills_receivable"): FACE,
    }
    paying = endorse_entry(bill, link, CREATED, pays_obligation=True)
    assert lines(paying) == {
        ("seller", "bills_receivable"): -FACE,
        ("smelter", "bills_receivable"): FACE,
        ("seller", "payables"): FACE,
        ("smelter", "receivables"): -FACE,
    }


def test_a_discount_brings_the_proceeds_in_through_bank_settlement() -> None:
    # docs/members/settlement.md's worked example: 91 days at 1.35 %, interest 3,412.50 CNY.
    sold, result = discount(
        accepted(),
        "seller",
        "icbc-baotou",
        ISSUED,
        Decimal("0.0135"),
        NO_HOLIDAYS,
        bank_city="Baotou",
    )
    entry = discount_entry(sold, "seller", result, CREATED)
    assert entry.entry_id == "discount-B-1"
    assert lines(entry) == {
        ("seller", "bills_receivable"): -FACE,
        ("exchange", "bank_settlement"): FACE - 341_250,
        ("seller", "discount_interest"): 341_250,
    }
    assert held_by_bank(sold)


def test_a_discount_on_the_due_date_has_no_interest_line() -> None:
    sold, result = discount(
        accepted(), "seller", "icbc-baotou", DUE, Decimal("0.0135"), NO_HOLIDAYS, bank_city="Baotou"
    )
    assert lines(discount_entry(sold, "seller", result, CREATED)) == {
        ("seller", "bills_receivable"): -FACE,
        ("exchange", "bank_settlement"): FACE,
    }


def test_maturity_ends_the_holders_claim_and_the_drawers_debt() -> None:
    paid = pay_at_maturity(endorse(accepted(), "seller", "smelter", ISSUED), DUE)
    entry = maturity_entry(paid, CREATED)
    assert entry.entry_id == "maturity-B-1" and entry.effective == DUE
    assert lines(entry) == {
        ("smelter", "bills_receivable"): -FACE,
        ("buyer", "bills_payable"): FACE,
    }


def test_maturity_of_a_bill_back_with_its_drawer_and_of_one_a_bank_holds() -> None:
    back = endorse(endorse(accepted(), "seller", "smelter", ISSUED), "smelter", "buyer", ISSUED)
    assert lines(maturity_entry(pay_at_maturity(back, DUE), CREATED)) == {
        ("buyer", "bills_receivable"): -FACE,
        ("buyer", "bills_payable"): FACE,
    }
    sold, _ = discount(
        accepted(), "seller", "abc-hohhot", ISSUED, Decimal("0.01"), NO_HOLIDAYS, bank_city="Hohhot"
    )
    assert lines(maturity_entry(pay_at_maturity(sold, DUE), CREATED)) == {
        ("exchange", "bank_settlement"): -FACE,  # the bank is paid: money out to it
        ("buyer", "bills_payable"): FACE,
    }


def test_dishonour_with_recourse_to_the_drawer() -> None:
    bill, parties = dishonour(accepted(), DUE)
    assert parties == ["buyer"]
    entry = dishonour_entry(bill, "buyer", CREATED)
    assert entry.entry_id == "dishonour-B-1"
    assert lines(entry) == {
        ("buyer", "bills_payable"): FACE,
        ("buyer", "payables"): -FACE,
        ("seller", "bills_receivable"): -FACE,
        ("seller", "receivables"): FACE,
    }


def test_dishonour_with_recourse_to_an_endorser_who_claims_from_the_drawer() -> None:
    bill, parties = dishonour(endorse(accepted(), "seller", "smelter", ISSUED), DUE)
    assert parties == ["seller", "buyer"]
    assert lines(dishonour_entry(bill, "seller", CREATED)) == {
        ("smelter", "bills_receivable"): -FACE,
        ("smelter", "receivables"): FACE,  # owed by the seller
        ("seller", "payables"): -FACE,
        ("seller", "receivables"): FACE,  # owed by the drawer
        ("buyer", "payables"): -FACE,
        ("buyer", "bills_payable"): FACE,
    }


def test_dishonour_of_a_discounted_bill_and_of_one_its_drawer_holds() -> None:
    sold, _ = discount(
        accepted(), "seller", "abc-hohhot", ISSUED, Decimal("0.01"), NO_HOLIDAYS, bank_city="Hohhot"
    )
    bank_held, parties = dishonour(sold, DUE)
    assert parties == ["seller", "buyer"]
    # The bank is outside the ledger: its claim is paid to it through BANK_SETTLEMENT later.
    assert lines(dishonour_entry(bank_held, "buyer", CREATED)) == {
        ("buyer", "bills_payable"): FACE,
        ("buyer", "payables"): -FACE,
    }
    back = endorse(endorse(accepted(), "seller", "smelter", ISSUED), "smelter", "buyer", ISSUED)
    own, parties = dishonour(back, DUE)
    assert parties == []
    assert lines(dishonour_entry(own, None, CREATED)) == {
        ("buyer", "bills_payable"): FACE,
        ("buyer", "bills_receivable"): -FACE,
    }
