"""Payment plans: one test per rule, exact amounts worked out by hand."""

from __future__ import annotations

import dataclasses
import datetime as dt

import pytest

from rex.money import CurrencyMismatch, Money
from settlement_worker.plans.receipt_limits import PaymentKind, PaymentMethod, ReceiptLimits
from settlement_worker.plans.rules import (
    PaymentPlan,
    PlanError,
    PlannedPayment,
    format_minor,
    plan_payment,
)
from tests.settlement_worker.factories import obligation

TODAY = dt.date(2024, 10, 15)  # 6 months later is 2025-04-15: 182 days
CASH = PaymentKind.CASH
BANK = PaymentKind.BANK_ACCEPTANCE
COMMERCIAL = PaymentKind.COMMERCIAL_ACCEPTANCE
ICBC_90 = PaymentMethod.bank_acceptance("icbc-baotou", 90)
TAKES_ANY_BILL = ReceiptLimits(accept_bills=True)
# 5,800,000 CNY/t x 300 kg of terbium oxide = 1,740,000.00 CNY
TB_LOTS = 174_000_000


def _parts(plan: PaymentPlan) -> list[tuple[str, int, str | None, int | None]]:
    return [(p.kind.value, p.amount.minor, p.acceptor, p.tenor_days) for p in plan.parts]


def test_cash_payer_pays_all_in_cash() -> None:
    plan = plan_payment(obligation(TB_LOTS), PaymentMethod.cash(), TAKES_ANY_BILL, today=TODAY)
    assert _parts(plan) == [("cash", TB_LOTS, None, None)]
    assert plan.reasons == ()


def test_bill_payer_within_every_limit_pays_one_bill_as_preferred() -> None:
    plan = plan_payment(obligation(TB_LOTS), ICBC_90, TAKES_ANY_BILL, today=TODAY)
    assert _parts(plan) == [("bank_acceptance", TB_LOTS, "icbc-baotou", 90)]
    assert plan.reasons == ()
    assert plan.issue_date == TODAY


def test_payee_refusing_bills_gets_cash_and_the_plan_says_why() -> None:
    plan = plan_payment(
        obligation(TB_LOTS, payee="ganzhou-magnet"), ICBC_90, ReceiptLimits(), today=TODAY
    )
    assert _parts(plan) == [("cash", TB_LOTS, None, None)]
    assert plan.codes == ("payee_refuses_bills",)
    assert plan.reasons[0].text == (
        "ganzhou-magnet does not accept bills; the whole 1,740,000.00 CNY is paid in cash"
    )


def test_unaccepted_acceptor_falls_back_to_cash() -> None:
    two_banks = ReceiptLimits(
        accept_bills=True, accepted_acceptors=frozenset({"ccb-ningbo", "abc-hohhot"})
    )
    plan = plan_payment(obligation(TB_LOTS), ICBC_90, two_banks, today=TODAY)
    assert _parts(plan) == [("cash", TB_LOTS, None, None)]
    assert plan.codes == ("acceptor_not_accepted",)
    assert "only from abc-hohhot, ccb-ningbo, not icbc-baotou" in plan.reasons[0].text
    # One of the listed banks is fine.
    ccb = PaymentMethod.bank_acceptance("ccb-ningbo", 90)
    assert plan_payment(obligation(TB_LOTS), ccb, two_banks, today=TODAY).codes == ()


def test_commercial_bill_from_an_unlisted_drawer_falls_back_to_cash() -> None:
    own_bill = PaymentMethod.commercial_acceptance(60)
    plan = plan_payment(
        obligation(TB_LOTS, payer="ningbo-alloy", payee="baotou-metals"),
        own_bill,
        TAKES_ANY_BILL,
        today=TODAY,
    )
    assert plan.codes == ("acceptor_not_accepted",)
    assert "commercial acceptance bills drawn by ningbo-alloy" in plan.reasons[0].text
    # With accept_commercial the drawer itself is the acceptor.
    takes_commercial = ReceiptLimits(accept_bills=True, accept_commercial=True)
    plan = plan_payment(
        obligation(TB_LOTS, payer="ningbo-alloy", payee="xinyu-pvc"),
        own_bill,
        takes_commercial,
        today=TODAY,
    )
    assert _parts(plan) == [("commercial_acceptance", TB_LOTS, "ningbo-alloy", 60)]


def test_tenor_over_payee_limit_is_shortened_when_the_payer_allows() -> None:
    payer = PaymentMethod.bank_acceptance("boc-ganzhou", 180, min_tenor_days=90)
    payee = ReceiptLimits(accept_bills=True, max_tenor_days=120)
    plan = plan_payment(obligation(TB_LOTS), payer, payee, today=TODAY)
    # 180 > 120 and 120 >= the payer's minimum 90: the bill runs 120 days.
    assert _parts(plan) == [("bank_acceptance", TB_LOTS, "boc-ganzhou", 120)]
    assert plan.codes == ("tenor_too_long",)
    assert plan.reasons[0].text == (
        "the payer's 180-day tenor is too long: ningbo-alloy accepts bills of at most 120 days; "
        "the bills run 120 days"
    )


def test_tenor_over_payee_limit_falls_back_to_cash_when_the_payer_will_not_shorten() -> None:
    payer = PaymentMethod.bank_acceptance("boc-ganzhou", 180, min_tenor_days=150)
    payee = ReceiptLimits(accept_bills=True, max_tenor_days=120)
    plan = plan_payment(obligation(TB_LOTS), payer, payee, today=TODAY)
    # 120 < the payer's minimum 150: no bill at all.
    assert _parts(plan) == [("cash", TB_LOTS, None, None)]
    assert plan.codes == ("tenor_too_long",)
    assert "issues no bill shorter than 150 days" in plan.reasons[0].text


def test_tenor_over_the_six_month_law_is_shortened_to_the_legal_limit() -> None:
    # Issued 2024-08-31, 6 months end 2025-02-28: 181 days, below the 183 configured.
    payer = PaymentMethod.bank_acceptance("icbc-baotou", 183)
    plan = plan_payment(obligation(TB_LOTS), payer, TAKES_ANY_BILL, today=dt.date(2024, 8, 31))
    assert _parts(plan) == [("bank_acceptance", TB_LOTS, "icbc-baotou", 181)]
    assert plan.codes == ("tenor_too_long",)
    assert "the law allows at most 6 months, 181 days from 2024-08-31 (to 2025-02-28)" in (
        plan.reasons[0].text
    )


def test_tenor_over_what_the_acceptor_issues_today_is_shortened() -> None:
    plan = plan_payment(
        obligation(TB_LOTS), ICBC_90, TAKES_ANY_BILL, today=TODAY, bill_tenor_days_available=30
    )
    assert _parts(plan) == [("bank_acceptance", TB_LOTS, "icbc-baotou", 30)]
    assert plan.codes == ("tenor_too_long",)
    # An acceptor issuing no bill today (0 days) means cash.
    plan = plan_payment(
        obligation(TB_LOTS), ICBC_90, TAKES_ANY_BILL, today=TODAY, bill_tenor_days_available=0
    )
    assert _parts(plan) == [("cash", TB_LOTS, None, None)]


def test_bill_share_cap_sends_the_rest_to_cash() -> None:
    half = ReceiptLimits(accept_bills=True, max_bill_share_bps=5_000)
    # 10,000.01 CNY: bill part floor(1,000,001 x 5,000 / 10,000) = floor(500,000.5) = 500,000;
    # cash 1,000,001 - 500,000 = 500,001 (the odd fen goes to cash, never to the bill).
    plan = plan_payment(obligation(1_000_001), ICBC_90, half, today=TODAY)
    assert _parts(plan) == [
        ("bank_acceptance", 500_000, "icbc-baotou", 90),
        ("cash", 500_001, None, None),
    ]
    assert plan.codes == ("bill_share_capped",)
    assert plan.reasons[0].text == (
        "ningbo-alloy accepts at most 50.00% of an obligation by bill: "
        "5,000.00 CNY by bill, 5,000.01 CNY in cash"
    )


def test_zero_bill_share_pays_all_in_cash() -> None:
    none = ReceiptLimits(accept_bills=True, max_bill_share_bps=0)
    plan = plan_payment(obligation(TB_LOTS), ICBC_90, none, today=TODAY)
    assert _parts(plan) == [("cash", TB_LOTS, None, None)]
    assert plan.codes == ("bill_share_capped",)


def test_face_limit_splits_into_equal_bills() -> None:
    face_500k = ReceiptLimits(accept_bills=True, max_bill_face_minor=50_000_000)
    # 1,740,000.00 CNY / 500,000.00 = 3.48 -> 4 bills of 1,740,000 / 4 = 435,000.00 CNY
    plan = plan_payment(obligation(TB_LOTS), ICBC_90, face_500k, today=TODAY)
    assert _parts(plan) == [("bank_acceptance", 43_500_000, "icbc-baotou", 90)] * 4
    assert plan.codes == ("face_limit_split",)
    assert plan.reasons[0].text == (
        "ningbo-alloy accepts bills of at most 500,000.00 CNY each: "
        "1,740,000.00 CNY is split into 4 bills"
    )


def test_face_limit_split_puts_the_odd_fen_on_the_first_bills() -> None:
    face_500k = ReceiptLimits(accept_bills=True, max_bill_face_minor=50_000_000)
    # 100,000,003 fen needs ceil(2.00000006) = 3 bills; 100,000,003 = 3 x 33,333,334 + 1,
    # so the first bill carries the extra fen: 33,333,335 + 33,333,334 + 33,333,334.
    plan = plan_payment(obligation(100_000_003), ICBC_90, face_500k, today=TODAY)
    assert [p.amount.minor for p in plan.parts] == [33_333_335, 33_333_334, 33_333_334]


def test_a_bill_exactly_at_the_face_limit_is_not_split() -> None:
    face = ReceiptLimits(accept_bills=True, max_bill_face_minor=TB_LOTS)
    plan = plan_payment(obligation(TB_LOTS), ICBC_90, face, today=TODAY)
    assert _parts(plan) == [("bank_acceptance", TB_LOTS, "icbc-baotou", 90)]
    assert plan.codes == ()


def test_share_cap_and_face_limit_combine() -> None:
    limits = ReceiptLimits(
        accept_bills=True, max_bill_face_minor=50_000_000, max_bill_share_bps=5_000
    )
    # bill part 1,740,000.00 x 50% = 870,000.00 CNY -> ceil(1.74) = 2 bills of 435,000.00;
    # cash 870,000.00.
    plan = plan_payment(obligation(TB_LOTS), ICBC_90, limits, today=TODAY)
    assert _parts(plan) == [
        ("bank_acceptance", 43_500_000, "icbc-baotou", 90),
        ("bank_acceptance", 43_500_000, "icbc-baotou", 90),
        ("cash", 87_000_000, None, None),
    ]
    assert plan.codes == ("bill_share_capped", "face_limit_split")


def test_bills_beyond_what_the_payer_can_issue_leave_the_remainder_in_cash() -> None:
    # The payer's acceptance line has 1,000,000.00 CNY left: 740,000.00 CNY goes in cash.
    plan = plan_payment(
        obligation(TB_LOTS),
        ICBC_90,
        TAKES_ANY_BILL,
        today=TODAY,
        bill_amount_available_minor=100_000_000,
    )
    assert _parts(plan) == [
        ("bank_acceptance", 100_000_000, "icbc-baotou", 90),
        ("cash", 74_000_000, None, None),
    ]
    assert plan.codes == ("remainder_in_cash",)
    assert plan.reasons[0].text == (
        "the payer can issue only 1,000,000.00 CNY in bills today; "
        "the remaining 740,000.00 CNY is paid in cash"
    )


def test_more_bills_than_allowed_leave_the_remainder_in_cash() -> None:
    tiny_face = ReceiptLimits(accept_bills=True, max_bill_face_minor=100)
    # 10.00 CNY with 1.00 CNY bills needs 10 bills; at most 3: 3 x 100 fen, 700 fen cash.
    plan = plan_payment(obligation(1_000), ICBC_90, tiny_face, today=TODAY, max_bills=3)
    assert [(p.kind, p.amount.minor) for p in plan.parts] == [(BANK, 100)] * 3 + [(CASH, 700)]
    assert plan.codes == ("remainder_in_cash", "face_limit_split")


def test_usd_obligation_is_paid_in_cash_because_bills_are_cny_only() -> None:
    # 11,502.00 USD = 1,150,200 cents
    plan = plan_payment(obligation(1_150_200, currency="USD"), ICBC_90, TAKES_ANY_BILL, today=TODAY)
    assert _parts(plan) == [("cash", 1_150_200, None, None)]
    assert plan.amount.currency == "USD"
    assert plan.codes == ("currency_not_billable",)
    assert plan.reasons[0].text.endswith("the whole 11,502.00 USD is paid in cash")


def test_no_zero_amount_part_when_the_bill_share_rounds_to_nothing() -> None:
    # 1 fen at 50%: floor(0.5) = 0 fen by bill; the plan is one cash part, not a 0-fen bill.
    half = ReceiptLimits(accept_bills=True, max_bill_share_bps=5_000)
    plan = plan_payment(obligation(1), ICBC_90, half, today=TODAY)
    assert _parts(plan) == [("cash", 1, None, None)]
    with pytest.raises(PlanError, match="positive amount"):
        PlannedPayment(CASH, Money(0, "CNY"))


def test_a_plan_whose_parts_do_not_sum_to_the_obligation_is_refused() -> None:
    plan = plan_payment(obligation(1_000), PaymentMethod.cash(), TAKES_ANY_BILL, today=TODAY)
    with pytest.raises(PlanError, match=r"parts sum to 9\.99 CNY, the obligation is 10\.00 CNY"):
        dataclasses.replace(plan, parts=(PlannedPayment(CASH, Money(999, "CNY")),))
    with pytest.raises(CurrencyMismatch, match="cannot add CNY and USD"):
        dataclasses.replace(plan, parts=(PlannedPayment(CASH, Money(1_000, "USD")),))
    with pytest.raises(PlanError, match="cash part"):
        dataclasses.replace(
            plan,
            parts=(
                PlannedPayment(CASH, Money(500, "CNY")),
                PlannedPayment(CASH, Money(500, "CNY")),
            ),
        )


def test_planning_inputs_are_checked() -> None:
    with pytest.raises(PlanError, match="max_bills"):
        plan_payment(obligation(1_000), ICBC_90, TAKES_ANY_BILL, today=TODAY, max_bills=0)
    with pytest.raises(PlanError, match="bill_amount_available_minor"):
        plan_payment(
            obligation(1_000), ICBC_90, TAKES_ANY_BILL, today=TODAY, bill_amount_available_minor=-1
        )


def test_plans_are_deterministic() -> None:
    limits = ReceiptLimits(
        accept_bills=True, max_bill_face_minor=7_777_777, max_bill_share_bps=3_333
    )
    first = plan_payment(obligation(TB_LOTS), ICBC_90, limits, today=TODAY)
    assert plan_payment(obligation(TB_LOTS), ICBC_90, limits, today=TODAY) == first
    # floor(174,000,000 x 3,333 / 10,000) = 57,994,200 fen by bill, in ceil(7.456...) = 8 bills
    # of 7,249,275 each (57,994,200 / 8 exactly); cash 116,005,800.
    assert [p.amount.minor for p in first.bills] == [7_249_275] * 8
    assert first.cash.minor == 116_005_800


@pytest.mark.parametrize(
    ("minor", "currency", "text"),
    [
        (53_956_500, "CNY", "539,565.00 CNY"),
        (5, "USD", "0.05 USD"),
        (2_400_003, "JPY", "2,400,003 JPY"),
    ],
)
def test_amounts_in_sentences_are_exact(minor: int, currency: str, text: str) -> None:
    assert format_minor(minor, currency) == text


def test_commercial_kind_is_kept_on_every_bill() -> None:
    limits = ReceiptLimits(
        accept_bills=True, accept_commercial=True, max_bill_face_minor=60_000_000
    )
    plan = plan_payment(
        obligation(TB_LOTS, payer="ningbo-alloy", payee="xinyu-pvc"),
        PaymentMethod.commercial_acceptance(60),
        limits,
        today=TODAY,
    )
    # ceil(1,740,000 / 600,000) = ceil(2.9) = 3 bills of 580,000.00 CNY
    assert {(p.kind, p.acceptor, p.amount.minor) for p in plan.parts} == {
        (COMMERCIAL, "ningbo-alloy", 58_000_000)
    }
    assert len(plan.parts) == 3
