"""The bill part of a plan met at booking (pure): the payer's held bills endorsed first,
new bills for the rest; which held bills qualify, and in what order."""

from __future__ import annotations

import dataclasses
import datetime as dt

from rex.money import Money
from settlement_worker.bills.booking import (
    BillTerms,
    bill_id_for,
    bill_terms,
    settle_by_bills,
)
from settlement_worker.bills.rules import (
    Bill,
    BillKind,
    BillState,
    accept,
    endorse,
    issue,
)
from settlement_worker.plans.receipt_limits import PaymentKind, ReceiptLimits
from settlement_worker.plans.rules import PaymentPlan, PlannedPayment
from tests.settlement_worker.helpers import CONFIG

TODAY = dt.date(2026, 11, 18)
LIMITS = ReceiptLimits(accept_bills=True, max_bill_face_minor=50_000_000, max_tenor_days=180)


def terms(faces: tuple[int, ...] = (40_000_000,), **changes: object) -> BillTerms:
    base = BillTerms(
        obligation_id="obl-T-1",
        payer="buyer",
        payee="seller",
        currency="CNY",
        issue_date=TODAY,
        kind=BillKind.BANK_ACCEPTANCE,
        acceptor="boc-ganzhou",
        acceptor_city="Ganzhou",
        tenor_days=90,
        faces=faces,
        payee_limits=LIMITS,
    )
    return dataclasses.replace(base, **changes)  # type: ignore[arg-type]


def held(
    bill_id: str,
    face: int,
    *,
    due: dt.date = dt.date(2027, 1, 15),
    acceptor: str = "icbc-baotou",
    drawer: str = "smelter",
    issued: dt.date = dt.date(2026, 11, 2),
    transferable: bool = True,
) -> Bill:
    """A bill ``buyer`` was paid with (drawn by ``drawer`` in its favour)."""
    drawn = issue(
        bill_id,
        BillKind.BANK_ACCEPTANCE,
        drawer,
        "buyer",
        acceptor,
        "Baotou",
        Money(face, "CNY"),
        issued,
        due,
        transferable,
    )
    return accept(drawn, acceptor, issued)


def test_with_nothing_held_the_plans_bills_are_issued_and_accepted() -> None:
    done = settle_by_bills(terms((30_000_000, 29_999_999)), [])
    assert done.endorsed == ()
    assert [b.bill_id for b in done.issued] == ["bill-obl-T-1-0", "bill-obl-T-1-1"]
    first = done.issued[0]
    assert first.state is BillState.ACCEPTED and first.accepted_on == TODAY
    assert (first.drawer, first.payee, first.holder, first.acceptor) == (
        "buyer",
        "seller",
        "seller",
        "boc-ganzhou",
    )
    assert first.due_date == TODAY + dt.timedelta(days=90)
    assert [b.face.minor for b in done.issued] == [30_000_000, 29_999_999]
    assert done.total == 59_999_999


def test_a_held_bill_that_fits_is_endorsed_and_the_rest_is_issued() -> None:
    done = settle_by_bills(terms((40_000_000,)), [held("H-1", 25_000_000)])
    ((before, after),) = done.endorsed
    assert before.holder == "buyer" and after.holder == "seller"
    assert after.endorsements[-1].date == TODAY and after.state is BillState.ENDORSED
    assert [(b.bill_id, b.face.minor) for b in done.issued] == [("bill-obl-T-1-0", 15_000_000)]
    assert done.total == 40_000_000


def test_held_bills_cover_the_whole_part_and_no_bill_is_drawn() -> None:
    bills = [held("H-1", 10_000_000), held("H-2", 30_000_000)]
    done = settle_by_bills(terms((40_000_000,)), bills)
    assert sorted(after.bill_id for _, after in done.endorsed) == ["H-1", "H-2"]
    assert done.issued == ()


def test_largest_first_while_they_fit_then_earliest_due_then_id() -> None:
    bills = [
        held("H-small", 15_000_000),
        held("H-big", 30_000_000),
        held("H-mid-late", 20_000_000, due=dt.date(2027, 2, 1)),
        held("H-mid-early", 20_000_000, due=dt.date(2027, 1, 10)),
    ]
    done = settle_by_bills(terms((40_000_000,)), bills)
    # 30M fits (10M left); neither 20M fits; nor 15M. The rest is one new bill.
    assert [after.bill_id for _, after in done.endorsed] == ["H-big"]
    assert [b.face.minor for b in done.issued] == [10_000_000]
    done = settle_by_bills(terms((40_000_000,)), bills[2:])
    assert [after.bill_id for _, after in done.endorsed] == ["H-mid-early", "H-mid-late"]


def test_the_rest_is_split_under_the_payees_face_limit() -> None:
    big = terms((50_000_000, 50_000_000, 50_000_000))
    done = settle_by_bills(big, [held("H-1", 10_000_000)])
    # 140M left under a 50M face limit: 3 bills, as equal as possible, larger first.
    assert [b.face.minor for b in done.issued] == [46_666_667, 46_666_667, 46_666_666]


def test_bills_the_payee_would_not_take_stay_with_the_payer() -> None:
    listed = dataclasses.replace(LIMITS, accepted_acceptors=frozenset({"ccb-ningbo"}))
    cases = [
        (held("H-face", 60_000_000), terms((70_000_000,))),  # above the payee's face limit
        (held("H-tenor", 10, due=dt.date(2027, 5, 18), issued=TODAY), terms()),  # 181 > 180 days
        (held("H-today", 10, due=TODAY), terms()),  # due today: no tenor left
        (held("H-drawer", 10, drawer="seller"), terms()),  # back to its own drawer
        (held("H-fixed", 10, transferable=False), terms()),  # not transferable
        (held("H-acceptor", 10), terms(payee_limits=listed)),  # bank not on the list
        (held("H-later", 10, issued=dt.date(2026, 11, 19)), terms()),  # dated after the trade
        (held("H-cny", 10), terms(currency="USD")),  # another currency
    ]
    for bill, wanted in cases:
        done = settle_by_bills(wanted, [bill])
        assert done.endorsed == (), bill.bill_id
        assert done.issued  # the plan's bills instead


def test_only_the_payers_own_undiscounted_bills_qualify() -> None:
    passed_on = endorse(held("H-gone", 10), "buyer", "someone", TODAY)
    done = settle_by_bills(terms(), [passed_on])
    assert done.endorsed == ()


def test_bill_terms_from_a_plan() -> None:
    plan = PaymentPlan(
        "obl-T-1",
        "ningbo-alloy",
        "xinyu-pvc",
        Money(1_000, "CNY"),
        TODAY,
        (
            PlannedPayment(
                PaymentKind.COMMERCIAL_ACCEPTANCE, Money(600, "CNY"), "ningbo-alloy", 60
            ),
            PlannedPayment(PaymentKind.CASH, Money(400, "CNY")),
        ),
    )
    found = bill_terms(plan, CONFIG)
    assert found is not None
    assert found.kind is BillKind.COMMERCIAL_ACCEPTANCE and found.acceptor == "ningbo-alloy"
    assert found.acceptor_city == "Ningbo"  # where the drawer banks (ccb-ningbo)
    assert found.faces == (600,) and found.due_date == TODAY + dt.timedelta(days=60)
    cash = dataclasses.replace(plan, parts=(PlannedPayment(PaymentKind.CASH, Money(1_000, "CNY")),))
    assert bill_terms(cash, CONFIG) is None
    assert bill_id_for("obl-T-1", 3) == "bill-obl-T-1-3"
