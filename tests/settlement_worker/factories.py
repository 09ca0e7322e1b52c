"""Small builders shared by the settlement-plan tests.

Products are built in code (not read from config/) so a change to the shipped prices does
not silently change the arithmetic these tests check by hand.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from pathlib import Path

from rex.config import Product
from rex.money import Money
from settlement_worker.obligations.rules import Obligation, obligation_id_for

REPO = Path(__file__).resolve().parents[2]
CONFIG = REPO / "config"
TRADE_DATE = dt.date(2024, 10, 15)
BANKS = ("icbc-baotou", "boc-ganzhou", "ccb-ningbo", "abc-hohhot")


def product(
    symbol: str = "PRND-OX",
    currency: str = "CNY",
    tick: int = 50,
    lot: int = 100,
    reference_price: int = 415_000,
) -> Product:
    """A product priced per tonne and traded in kilograms (1000 kg per price unit)."""
    return Product(
        symbol=symbol,
        name=f"{symbol} for tests",
        currency=currency,
        price_unit=f"{currency}/t",
        tick=tick,
        quantity_unit="kg",
        lot=lot,
        reference_price=reference_price,
        band_percent=Decimal(10),
        quantity_per_price_unit=1000,
    )


def obligation(
    amount_minor: int,
    *,
    currency: str = "CNY",
    payer: str = "baotou-metals",
    payee: str = "ningbo-alloy",
    symbol: str = "PRND-OX",
    trade_id: str = "T-1",
) -> Obligation:
    """An obligation of exactly ``amount_minor``, for plan tests that need no product."""
    return Obligation(
        obligation_id=obligation_id_for(trade_id),
        trade_id=trade_id,
        payer=payer,
        payee=payee,
        amount=Money(amount_minor, currency),
        product=symbol,
        trade_date=TRADE_DATE,
    )
