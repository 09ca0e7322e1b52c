"""Trade value and obligations: exact unit conversion, never rounded."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from rex.fields import FieldError
from rex.money import Money
from rex.protocol import TradeMessage
from settlement_worker.obligations.rules import (
    Obligation,
    ObligationError,
    obligation_for,
    obligation_from_trade,
    trade_value_minor,
)
from tests.settlement_worker.factories import TRADE_DATE, obligation, product


def test_trade_value_converts_price_per_tonne_and_kilograms_to_fen() -> None:
    # 415,050 CNY/t x 1,300 kg = 415,050 x 1.3 t = 539,565.00 CNY = 53,956,500 fen
    # exactly: 415050 * 1300 * 100 / 1000 = 53,956,500
    assert trade_value_minor(product(), 415_050, 1_300) == 53_956_500


def test_trade_value_of_one_small_lot() -> None:
    # A PVC workshop's single 100 kg lot of stabiliser at 15,010 CNY/t:
    # 15,010 x 0.1 t = 1,501.00 CNY = 150,100 fen
    stab = product("RE-STAB", tick=10, reference_price=15_000)
    assert trade_value_minor(stab, 15_010, 100) == 150_100


def test_usd_product_settles_in_usd_cents() -> None:
    usd = product("PRND-OX-USD", currency="USD", tick=10, reference_price=57_500)
    # 57,510 USD/t x 200 kg = 57,510 x 0.2 t = 11,502.00 USD = 1,150,200 cents
    assert trade_value_minor(usd, 57_510, 200) == 1_150_200
    obl = obligation_for(
        trade_id="T-USD",
        buyer="ningbo-alloy",
        seller="baotou-metals",
        price=57_510,
        quantity=200,
        product=usd,
        trade_date=TRADE_DATE,
    )
    assert (obl.amount.minor, obl.amount.currency) == (1_150_200, "USD")


def test_currency_without_minor_units_settles_in_whole_units() -> None:
    # JPY has no minor unit: 10**0 = 1. tick 10 x lot 100 / 1000 = 1 yen, exact.
    jpy = product("PRND-OX-JPY", currency="JPY", tick=10, reference_price=8_000_000)
    # 8,000,010 JPY/t x 300 kg = 8,000,010 x 0.3 t = 2,400,003 JPY
    assert trade_value_minor(jpy, 8_000_010, 300) == 2_400_003


def test_inexact_trade_value_is_refused_not_rounded() -> None:
    # An off-tick price on an off-lot quantity: 415,001 x 1 kg = 415.001 CNY = 41,500.1 fen.
    with pytest.raises(ObligationError, match="not a whole number of CNY minor units"):
        trade_value_minor(product(), 415_001, 1)


@pytest.mark.parametrize(("price", "quantity"), [(0, 100), (-50, 100), (415_000, 0), (True, 100)])
def test_non_positive_or_boolean_price_and_quantity_are_refused(price: int, quantity: int) -> None:
    with pytest.raises(ObligationError, match="must be a positive integer"):
        trade_value_minor(product(), price, quantity)


def test_obligation_runs_from_buyer_to_seller_with_an_id_derived_from_the_trade() -> None:
    obl = obligation_for(
        trade_id="PRND-OX-000042",
        buyer="xinyu-pvc",
        seller="baotou-metals",
        price=415_000,
        quantity=100,
        product=product(),
        trade_date=TRADE_DATE,
    )
    # 415,000 x 0.1 t = 41,500.00 CNY = 4,150,000 fen
    assert obl == Obligation(
        obligation_id="obl-PRND-OX-000042",
        trade_id="PRND-OX-000042",
        payer="xinyu-pvc",
        payee="baotou-metals",
        amount=Money(4_150_000, "CNY"),
        product="PRND-OX",
        trade_date=TRADE_DATE,
    )


def _trade(**changes: object) -> TradeMessage:
    fields: dict[str, object] = {
        "trade_id": "T-9",
        "product": "PRND-OX",
        "price": 415_000,
        "quantity": 200,
        "buyer": "ningbo-alloy",
        "seller": "ganzhou-magnet",
        "buy_order_id": 1,
        "sell_order_id": 2,
        "aggressor": "buy",
        "sequence": 9,
        "timestamp": 0,
        "currency": "CNY",
    }
    fields.update(changes)
    return TradeMessage(**fields)  # type: ignore[arg-type]


def test_obligation_from_trade_message() -> None:
    obl = obligation_from_trade(_trade(), product(), TRADE_DATE)
    # 415,000 x 0.2 t = 83,000.00 CNY
    assert (obl.payer, obl.payee, obl.amount.minor) == ("ningbo-alloy", "ganzhou-magnet", 8_300_000)


@pytest.mark.parametrize(
    ("changes", "fragment"),
    [({"product": "ND-OX"}, "is in 'ND-OX'"), ({"currency": "USD"}, "settles in 'CNY'")],
)
def test_obligation_from_trade_refuses_a_trade_of_another_product_or_currency(
    changes: dict[str, object], fragment: str
) -> None:
    with pytest.raises(ObligationError, match=fragment):
        obligation_from_trade(_trade(**changes), product(), TRADE_DATE)


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"payee": "baotou-metals"}, "payee"),  # a member cannot owe itself
        ({"amount": Money(0, "CNY")}, "amount"),
        ({"amount": 100}, "amount"),  # an amount is Money, with its currency
        ({"obligation_id": "other"}, "obligation_id"),
        ({"trade_date": dt.datetime(2024, 10, 15, 9, 30)}, "trade_date"),
    ],
)
def test_obligation_validates_its_fields(changes: dict[str, object], field: str) -> None:
    base = obligation(100)
    values: dict[str, Any] = {name: getattr(base, name) for name in Obligation.__dataclass_fields__}
    values.update(changes)
    with pytest.raises(FieldError) as info:
        Obligation(**values)
    assert info.value.field == field
