"""Fees: basis points of the trade value, half-up to the fen, same for every member."""

from __future__ import annotations

import pytest

from rex.fields import FieldError
from settlement_worker.obligations.fees import FeeRule, Fees, FeeSchedule, fee_minor, fees_for
from tests.settlement_worker.factories import obligation

SCHEDULE = FeeSchedule(
    default=FeeRule("*", buyer_bps=2, seller_bps=2),
    overrides=(FeeRule("TB-OX", buyer_bps=3, seller_bps=1, minimum_minor=1_000),),
)


def test_fee_is_basis_points_of_the_trade_value() -> None:
    # 539,565.00 CNY (53,956,500 fen) at 2 bps: 53,956,500 x 2 / 10,000 = 10,791.3 -> 10,791 fen
    assert fees_for(obligation(53_956_500), SCHEDULE) == Fees(10_791, 10_791)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (12_500, 3),  # 12,500 x 2 / 10,000 = 2.5    -> half rounds up: 3
        (12_499, 2),  # 2.4998                        -> 2
        (7_500, 2),  # 1.5                            -> 2
        (2_500, 1),  # 0.5                            -> 1
        (2_499, 0),  # 0.4998                         -> 0 (no minimum in this rule)
        (17_500, 4),  # 3.5                           -> 4
    ],
)
def test_fee_rounds_half_up_to_the_fen(value: int, expected: int) -> None:
    assert fee_minor(value, 2) == expected


def test_fee_minimum_applies() -> None:
    # One 100 kg lot of stabiliser, 150,100 fen, at 2 bps = 30.02 -> 30 fen;
    # a 1.00 CNY (100 fen) minimum raises it to 100 fen.
    assert fee_minor(150_100, 2, minimum_minor=100) == 100
    # Above the minimum the minimum does nothing: 53,956,500 x 2 bps = 10,791 fen.
    assert fee_minor(53_956_500, 2, minimum_minor=100) == 10_791


def test_a_side_with_a_zero_rate_pays_nothing_even_with_a_minimum() -> None:
    assert fee_minor(53_956_500, 0, minimum_minor=100) == 0


def test_product_override_applies_to_its_product_only() -> None:
    # TB-OX: 174,000,000 fen (5,800,000 CNY/t x 300 kg):
    #   buyer 3 bps = 52,200 fen; seller 1 bp = 17,400 fen (both above the 1,000 fen minimum)
    assert fees_for(obligation(174_000_000, symbol="TB-OX"), SCHEDULE) == Fees(52_200, 17_400)
    # The same value in another product takes the default 2 + 2 bps = 34,800 fen each.
    assert fees_for(obligation(174_000_000, symbol="DY-OX"), SCHEDULE) == Fees(34_800, 34_800)


def test_the_same_schedule_for_every_member() -> None:
    # The schedule has no member in it: a small firm pays what a large one pays.
    small = obligation(150_100, payer="xinyu-pvc", payee="baotou-metals")
    large = obligation(150_100, payer="baotou-metals", payee="ganzhou-magnet")
    assert fees_for(small, SCHEDULE) == fees_for(large, SCHEDULE) == Fees(30, 30)


def test_usd_fees_are_in_cents() -> None:
    # 11,502.00 USD = 1,150,200 cents at 2 bps = 230.04 -> 230 cents = 2.30 USD
    assert fees_for(obligation(1_150_200, currency="USD"), SCHEDULE) == Fees(230, 230)


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"buyer_bps": -1}, "buyer_bps"),
        ({"seller_bps": 10_001}, "seller_bps"),
        ({"buyer_bps": True}, "buyer_bps"),
        ({"minimum_minor": -5}, "minimum_minor"),
        ({"product": ""}, "product"),
    ],
)
def test_fee_rule_refuses_bad_values(kwargs: dict[str, object], field: str) -> None:
    values: dict[str, object] = {"product": "*", "buyer_bps": 2, "seller_bps": 2}
    values.update(kwargs)
    with pytest.raises(FieldError) as info:
        FeeRule(**values)  # type: ignore[arg-type]
    assert info.value.field == field


def test_schedule_refuses_a_duplicate_override_or_a_product_default() -> None:
    rule = FeeRule("TB-OX", 3, 3)
    with pytest.raises(FieldError, match="two rules"):
        FeeSchedule(FeeRule("*", 2, 2), (rule, rule))
    with pytest.raises(FieldError, match="default rule"):
        FeeSchedule(rule)
