"""Bill rules, one test per rule, with the NIL reasoning in the comments."""

from __future__ import annotations

import dataclasses
from datetime import date
from decimal import Decimal

import pytest

from rex.money import Money
from settlement_worker.bills.discount import HolidayCalendar
from settlement_worker.bills.rules import (
    Bill,
    BillKind,
    BillState,
    Endorsement,
    EndorsementKind,
    accept,
    cancel,
    discount,
    dishonour,
    endorse,
    is_live,
    issue,
    parties,
    pay_at_maturity,
    recourse_parties,
    roles,
    visible_chain,
    void,
)
from settlement_worker.codes import RuleViolation
from settlement_worker.plans.receipt_limits import add_months, legal_latest_due_date

NO_HOLIDAYS = HolidayCalendar(frozenset())
FACE = Money.of("1000000.00", "CNY")
ISSUED_ON = date(2026, 3, 2)  # Monday
DUE = date(2026, 6, 1)  # Monday, 3 months later


def new_bill(**overrides: object) -> Bill:
    fields: dict[str, object] = {
        "bill_id": "B-1",
        "kind": BillKind.BANK_ACCEPTANCE,
        "drawer": "buyer",
        "payee": "seller",
        "acceptor": "icbc-baotou",
        "acceptor_city": "Baotou",
        "face": FACE,
        "issue_date": ISSUED_ON,
        "due_date": DUE,
    }
    fields.update(overrides)
    return issue(**fields)  # type: ignore[arg-type]


def accepted(**overrides: object) -> Bill:
    bill = new_bill(**overrides)
    return accept(bill, bill.acceptor, ISSUED_ON)


def code_of(exc: pytest.ExceptionInfo[RuleViolation]) -> str:
    return exc.value.code


# ------------------------------------------------------------------------- issue


def test_tenor_over_six_months_is_refused() -> None:
    # Issued Thu 15 Jan 2026: latest due date 15 Jul 2026; one day more is refused.
    assert new_bill(issue_date=date(2026, 1, 15), due_date=date(2026, 7, 15)).state is (
        BillState.ISSUED
    )
    with pytest.raises(RuleViolation) as exc:
        new_bill(issue_date=date(2026, 1, 15), due_date=date(2026, 7, 16))
    assert code_of(exc) == "tenor_too_long"


def test_six_months_is_clamped_to_the_end_of_the_month() -> None:
    # 31 Aug + 6 months: there is no 31 Feb, so the latest due date is the month's last day.
    assert legal_latest_due_date(date(2026, 8, 31)) == date(2027, 2, 28)
    assert legal_latest_due_date(date(2027, 8, 31)) == date(2028, 2, 29)  # leap year
    assert add_months(date(2026, 12, 15), 1) == date(2027, 1, 15)
    new_bill(issue_date=date(2026, 8, 31), due_date=date(2027, 2, 28))
    with pytest.raises(RuleViolation) as exc:
        new_bill(issue_date=date(2026, 8, 31), due_date=date(2027, 3, 1))
    assert code_of(exc) == "tenor_too_long"


def test_tenor_must_be_positive() -> None:
    with pytest.raises(RuleViolation) as exc:
        new_bill(due_date=ISSUED_ON)
    assert code_of(exc) == "tenor_not_positive"


def test_face_must_be_positive_money() -> None:
    with pytest.raises(RuleViolation) as exc:
        new_bill(face=Money(0, "CNY"))
    assert code_of(exc) == "non_positive_face"


def test_commercial_bill_is_accepted_by_its_drawer() -> None:
    bill = new_bill(kind=BillKind.COMMERCIAL_ACCEPTANCE, acceptor="buyer")
    assert accept(bill, "buyer", ISSUED_ON).state is BillState.ACCEPTED
    with pytest.raises(RuleViolation) as exc:
        new_bill(kind=BillKind.COMMERCIAL_ACCEPTANCE, acceptor="icbc-baotou")
    assert code_of(exc) == "wrong_acceptor"
    with pytest.raises(RuleViolation) as exc:
        new_bill(kind=BillKind.BANK_ACCEPTANCE, acceptor="buyer")
    assert code_of(exc) == "wrong_acceptor"


def test_drawer_and_payee_must_differ() -> None:
    with pytest.raises(RuleViolation) as exc:
        new_bill(payee="buyer")
    assert code_of(exc) == "invalid_party"


# ------------------------------------------------------------------------ accept


def test_only_the_acceptor_can_accept() -> None:
    bill = new_bill()
    with pytest.raises(RuleViolation) as exc:
        accept(bill, "buyer", ISSUED_ON)
    assert code_of(exc) == "not_acceptor"
    done = accept(bill, "icbc-baotou", date(2026, 3, 3))
    assert done.state is BillState.ACCEPTED and done.accepted_on == date(2026, 3, 3)
    with pytest.raises(RuleViolation) as exc:
        accept(done, "icbc-baotou", date(2026, 3, 3))
    assert code_of(exc) == "already_accepted"


def test_unaccepted_bill_cannot_be_endorsed_discounted_or_paid() -> None:
    bill = new_bill()
    with pytest.raises(RuleViolation) as exc:
        endorse(bill, "seller", "supplier", ISSUED_ON)
    assert code_of(exc) == "not_accepted"
    with pytest.raises(RuleViolation) as exc:
        discount(bill, "seller", "bank", ISSUED_ON, Decimal("0.01"), NO_HOLIDAYS, bank_city="X")
    assert code_of(exc) == "not_accepted"
    with pytest.raises(RuleViolation) as exc:
        pay_at_maturity(bill, DUE)
    assert code_of(exc) == "not_accepted"


def test_only_the_drawer_can_cancel_and_only_before_acceptance() -> None:
    bill = new_bill()
    with pytest.raises(RuleViolation) as exc:
        cancel(bill, "seller", ISSUED_ON)
    assert code_of(exc) == "not_drawer"
    cancelled = cancel(bill, "buyer", ISSUED_ON)
    assert cancelled.state is BillState.CANCELLED
    with pytest.raises(RuleViolation) as exc:
        accept(cancelled, "icbc-baotou", ISSUED_ON)
    assert code_of(exc) == "cancelled"
    with pytest.raises(RuleViolation) as exc:
        cancel(accepted(), "buyer", ISSUED_ON)
    assert code_of(exc) == "already_accepted"


# ----------------------------------------------------------------------- endorse


def test_endorsement_moves_the_bill_and_records_the_link() -> None:
    bill = accepted()
    moved = endorse(bill, "seller", "supplier", date(2026, 3, 10))
    assert moved.holder == "supplier"
    assert moved.state is BillState.ENDORSED
    assert moved.endorsements == (Endorsement("seller", "supplier", date(2026, 3, 10), 1),)
    # The original value is untouched: operations return new bills.
    assert bill.holder == "seller" and bill.endorsements == ()
    with pytest.raises(dataclasses.FrozenInstanceError):
        moved.holder = "someone"  # type: ignore[misc]


def test_endorsement_must_be_the_whole_bill() -> None:
    bill = accepted()
    with pytest.raises(RuleViolation) as exc:
        endorse(bill, "seller", "supplier", ISSUED_ON, amount=Money.of("400000.00", "CNY"))
    assert code_of(exc) == "partial_endorsement"
    with pytest.raises(RuleViolation) as exc:  # same number, wrong currency: not the face
        endorse(bill, "seller", "supplier", ISSUED_ON, amount=Money(FACE.minor, "USD"))
    assert code_of(exc) == "partial_endorsement"
    assert endorse(bill, "seller", "supplier", ISSUED_ON, amount=FACE).holder == "supplier"


def test_only_the_current_holder_can_endorse() -> None:
    bill = endorse(accepted(), "seller", "supplier", ISSUED_ON)
    # The seller no longer holds it: endorsing it again would break the chain.
    with pytest.raises(RuleViolation) as exc:
        endorse(bill, "seller", "other", ISSUED_ON)
    assert code_of(exc) == "not_holder"


def test_not_transferable_bill_cannot_be_endorsed_or_discounted() -> None:
    bill = accepted(transferable=False)
    with pytest.raises(RuleViolation) as exc:
        endorse(bill, "seller", "supplier", ISSUED_ON)
    assert code_of(exc) == "not_transferable"
    with pytest.raises(RuleViolation) as exc:
        discount(bill, "seller", "bank", ISSUED_ON, Decimal("0.01"), NO_HOLIDAYS, bank_city="X")
    assert code_of(exc) == "not_transferable"
    assert pay_at_maturity(bill, DUE).state is BillState.PAID  # it can still be paid
    # Nor can a chain be smuggled in by building the value directly.
    endorsed = endorse(accepted(), "seller", "supplier", ISSUED_ON)
    with pytest.raises(RuleViolation) as exc:
        dataclasses.replace(endorsed, transferable=False)
    assert code_of(exc) == "not_transferable"


def test_overdue_bill_cannot_be_endorsed() -> None:
    bill = accepted()
    assert endorse(bill, "seller", "supplier", DUE).holder == "supplier"  # on the due date: ok
    with pytest.raises(RuleViolation) as exc:
        endorse(bill, "seller", "supplier", date(2026, 6, 2))
    assert code_of(exc) == "overdue"


def test_dishonoured_paid_or_discounted_bill_cannot_be_endorsed() -> None:
    bill = accepted()
    dishonoured, _ = dishonour(bill, DUE)
    with pytest.raises(RuleViolation) as exc:
        endorse(dishonoured, "seller", "supplier", DUE)
    assert code_of(exc) == "dishonoured"
    with pytest.raises(RuleViolation) as exc:
        endorse(pay_at_maturity(bill, DUE), "seller", "supplier", DUE)
    assert code_of(exc) == "already_paid"
    sold, _ = discount(
        bill, "seller", "bank", ISSUED_ON, Decimal("0.01"), NO_HOLIDAYS, bank_city="Baotou"
    )
    with pytest.raises(RuleViolation) as exc:
        endorse(sold, "bank", "supplier", ISSUED_ON)
    assert code_of(exc) == "discounted"


def test_endorsement_to_oneself_is_refused() -> None:
    with pytest.raises(RuleViolation) as exc:
        endorse(accepted(), "seller", "seller", ISSUED_ON)
    assert code_of(exc) == "self_endorsement"


def test_backdated_endorsement_is_refused() -> None:
    bill = endorse(accepted(), "seller", "supplier", date(2026, 3, 10))
    with pytest.raises(RuleViolation) as exc:
        endorse(bill, "supplier", "mine", date(2026, 3, 9))
    assert code_of(exc) == "backdated"


def test_endorsement_chain_is_append_only() -> None:
    b1 = endorse(accepted(), "seller", "a", date(2026, 3, 3))
    b2 = endorse(b1, "a", "b", date(2026, 3, 4))
    b3 = endorse(b2, "b", "c", date(2026, 3, 5))
    assert b3.endorsements[:2] == b2.endorsements and b2.endorsements[:1] == b1.endorsements
    assert [e.sequence for e in b3.endorsements] == [1, 2, 3]
    # Rewriting history, even keeping the chain continuous, is refused on construction.
    rewritten = (Endorsement("seller", "x", date(2026, 3, 3), 1), *b3.endorsements[1:])
    with pytest.raises(RuleViolation) as exc:
        dataclasses.replace(b3, endorsements=rewritten)
    assert code_of(exc) == "chain_broken"


def test_chain_must_be_continuous_and_numbered() -> None:
    bill = endorse(accepted(), "seller", "a", date(2026, 3, 3))
    gap = (bill.endorsements[0], Endorsement("b", "c", date(2026, 3, 4), 2))
    with pytest.raises(RuleViolation) as exc:
        dataclasses.replace(bill, endorsements=gap, holder="c")
    assert code_of(exc) == "chain_broken"
    renumbered = (dataclasses.replace(bill.endorsements[0], sequence=2),)
    with pytest.raises(RuleViolation) as exc:
        dataclasses.replace(bill, endorsements=renumbered)
    assert code_of(exc) == "chain_broken"
    with pytest.raises(RuleViolation) as exc:
        dataclasses.replace(bill, holder="seller")  # holder must be the chain's last endorsee
    assert code_of(exc) == "chain_broken"


# ---------------------------------------------------------------------- discount


def test_discount_sells_the_bill_to_the_bank_for_the_proceeds() -> None:
    bill = endorse(accepted(), "seller", "supplier", ISSUED_ON)
    sold, result = discount(
        bill,
        "supplier",
        "ccb-baotou",
        ISSUED_ON,
        Decimal("0.0135"),
        NO_HOLIDAYS,
        bank_city=" baotou ",
    )
    # Same city: 91 days (2 Mar -> 1 Jun 2026); 100,000,000 x 0.0135 x 91 / 360 = 341,250.
    assert result.days == 91 and not result.other_city
    assert result.interest == Money(341_250, "CNY")
    assert result.proceeds == Money(99_658_750, "CNY")
    assert sold.state is BillState.DISCOUNTED
    assert sold.holder == "ccb-baotou"
    assert sold.endorsements[-1] == Endorsement(
        "supplier", "ccb-baotou", ISSUED_ON, 2, EndorsementKind.DISCOUNT
    )


def test_discount_with_acceptor_in_another_city_adds_three_days() -> None:
    _, result = discount(
        accepted(),
        "seller",
        "boc-shanghai",
        ISSUED_ON,
        Decimal("0.0135"),
        NO_HOLIDAYS,
        bank_city="Shanghai",
    )
    # 91 + 3 = 94 days: 100,000,000 x 0.0135 x 94 / 360 = 126,900,000 / 360 = 352,500 fen.
    assert result.other_city and result.days == 94
    assert result.interest == Money(352_500, "CNY")


def test_discounted_bill_cannot_be_discounted_again() -> None:
    sold, _ = discount(
        accepted(), "seller", "bank", ISSUED_ON, Decimal("0.01"), NO_HOLIDAYS, bank_city="Baotou"
    )
    with pytest.raises(RuleViolation) as exc:
        discount(sold, "bank", "bank2", ISSUED_ON, Decimal("0.01"), NO_HOLIDAYS, bank_city="Baotou")
    assert code_of(exc) == "already_discounted"


def test_discount_after_maturity_is_refused_as_overdue() -> None:
    with pytest.raises(RuleViolation) as exc:
        discount(
            accepted(),
            "seller",
            "bank",
            date(2026, 6, 2),
            Decimal("0.01"),
            NO_HOLIDAYS,
            bank_city="Baotou",
        )
    assert code_of(exc) == "overdue"


def test_discount_by_someone_else_is_refused() -> None:
    with pytest.raises(RuleViolation) as exc:
        discount(
            accepted(), "buyer", "bank", ISSUED_ON, Decimal("0.01"), NO_HOLIDAYS, bank_city="Baotou"
        )
    assert code_of(exc) == "not_holder"


def test_discount_with_a_bad_rate_is_refused_with_the_rate_code() -> None:
    with pytest.raises(RuleViolation) as exc:
        discount(
            accepted(),
            "seller",
            "bank",
            ISSUED_ON,
            Decimal("1.35"),
            NO_HOLIDAYS,
            bank_city="Baotou",
        )
    assert code_of(exc) == "invalid_rate"


# ------------------------------------------------------------- maturity, recourse


def test_payment_only_at_or_after_maturity_and_only_once() -> None:
    bill = accepted()
    with pytest.raises(RuleViolation) as exc:
        pay_at_maturity(bill, date(2026, 5, 29))
    assert code_of(exc) == "not_due"
    paid = pay_at_maturity(bill, DUE)
    assert paid.state is BillState.PAID and paid.closed_on == DUE
    with pytest.raises(RuleViolation) as exc:
        pay_at_maturity(paid, DUE)
    assert code_of(exc) == "already_paid"
    with pytest.raises(RuleViolation) as exc:
        dishonour(paid, DUE)
    assert code_of(exc) == "already_paid"


def test_dishonour_not_before_maturity() -> None:
    with pytest.raises(RuleViolation) as exc:
        dishonour(accepted(), date(2026, 5, 31))
    assert code_of(exc) == "not_due"


def test_dishonour_recourse_runs_back_along_the_chain() -> None:
    # buyer draws to seller; seller -> a -> b -> c. c holds it when it is dishonoured and
    # may pursue b (most recent endorser), then a, then seller (the payee, first endorser),
    # then the drawer.
    bill = accepted()
    for frm, to, day in (("seller", "a", 3), ("a", "b", 4), ("b", "c", 5)):
        bill = endorse(bill, frm, to, date(2026, 3, day))
    dishonoured, recourse = dishonour(bill, DUE)
    assert dishonoured.state is BillState.DISHONOURED
    assert recourse == ["b", "a", "seller", "buyer"]


def test_unendorsed_dishonoured_bill_gives_the_payee_recourse_to_the_drawer() -> None:
    _, recourse = dishonour(accepted(), DUE)
    assert recourse == ["buyer"]


def test_discounting_bank_has_recourse_to_the_member_who_sold_it() -> None:
    bill = endorse(accepted(), "seller", "a", ISSUED_ON)
    sold, _ = discount(
        bill, "a", "bank", ISSUED_ON, Decimal("0.01"), NO_HOLIDAYS, bank_city="Baotou"
    )
    _, recourse = dishonour(sold, DUE)
    assert recourse == ["a", "seller", "buyer"]


def test_holder_who_held_before_has_no_recourse_against_later_parties() -> None:
    # seller -> a -> b -> a: a held it before b did, so b owes a nothing (NIL art. 69);
    # a may pursue only seller and buyer.
    bill = accepted()
    for frm, to in (("seller", "a"), ("a", "b"), ("b", "a")):
        bill = endorse(bill, frm, to, ISSUED_ON)
    assert recourse_parties(bill) == ["seller", "buyer"]
    # Endorsed back to the drawer: the drawer has no recourse at all.
    bill = endorse(bill, "a", "buyer", ISSUED_ON)
    assert recourse_parties(bill) == []


# ----------------------------------------------------------------------- privacy


def test_chain_is_visible_to_parties_only() -> None:
    bill = accepted()
    for frm, to in (("seller", "a"), ("a", "b")):
        bill = endorse(bill, frm, to, ISSUED_ON)
    for member in ("buyer", "seller", "a", "b", "icbc-baotou"):
        assert visible_chain(bill, member) == bill.endorsements
    assert parties(bill) == {"buyer", "seller", "a", "b", "icbc-baotou"}
    with pytest.raises(RuleViolation) as exc:
        visible_chain(bill, "competitor")
    assert code_of(exc) == "not_a_party"


def test_an_upheld_dispute_voids_an_outstanding_bill_and_keeps_its_chain() -> None:
    endorsed = endorse(accepted(), "seller", "smelter", date(2026, 3, 10))
    voided = void(endorsed, date(2026, 3, 12))
    assert voided.state is BillState.CANCELLED and voided.closed_on == date(2026, 3, 12)
    assert voided.endorsements == endorsed.endorsements  # the chain is not rewritten
    assert void(endorsed, date(2026, 3, 1)).closed_on == date(2026, 3, 10)  # not before it
    with pytest.raises(RuleViolation) as exc:
        endorse(voided, "smelter", "other", date(2026, 3, 13))
    assert code_of(exc) == "cancelled"
    for closed, code in (
        (pay_at_maturity(accepted(), DUE), "already_paid"),
        (dishonour(accepted(), DUE)[0], "dishonoured"),
    ):
        with pytest.raises(RuleViolation) as exc:
            void(closed, DUE)
        assert code_of(exc) == code


def test_is_live_and_roles() -> None:
    bill = endorse(accepted(), "seller", "smelter", ISSUED_ON)
    assert is_live(bill.state) and is_live(BillState.ISSUED)
    assert not is_live(BillState.PAID) and not is_live(BillState.CANCELLED)
    assert roles(bill, "smelter") == ["holder"]
    assert roles(bill, "seller") == ["endorser", "payee"]
    assert roles(bill, "buyer") == ["drawer"]
    assert roles(bill, "icbc-baotou") == ["acceptor"]
    assert roles(bill, "stranger") == []
