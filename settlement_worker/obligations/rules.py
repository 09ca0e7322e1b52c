"""What a trade obliges: the buyer owes the seller the trade value, exactly.

A price is whole currency units per price unit (yuan per tonne) and a quantity is in
quantity units (kilograms), so the value of a trade in minor units (fen, cents) is::

    price * quantity * 10**minor_units(currency) / quantity_per_price_unit

:class:`rex.config.Product` guarantees at load time that ``tick * lot * 10**minor`` is
divisible by ``quantity_per_price_unit``, so for every on-tick price and on-lot quantity the
division is exact. This module relies on that, and still checks it: a remainder would mean
money created or lost by rounding, so it raises :class:`ObligationError` instead of
rounding.

Pure: no I/O and no clock. The trade date is the caller's (the settlement worker derives it
from the trade's UTC timestamp or the exchange's trading day).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from enum import StrEnum
from typing import Final

from rex.config import CURRENCY_MINOR_UNITS, Product
from rex.fields import FieldError
from rex.money import Money
from rex.protocol import TradeMessage

__all__ = [
    "Obligation",
    "ObligationError",
    "ObligationState",
    "obligation_for",
    "obligation_from_trade",
    "obligation_id_for",
    "trade_value_minor",
]

_OBLIGATION_PREFIX: Final = "obl-"


class ObligationState(StrEnum):
    """Where an obligation stands: open until its payments and bills cover it, settled
    then; cancelled when an upheld dispute reverses its trade (and open again if a
    cancelled bill leaves it unpaid)."""

    OPEN = "open"
    SETTLED = "settled"
    CANCELLED = "cancelled"


class ObligationError(ValueError):
    """A trade whose obligation cannot be computed exactly (bad input or inexact value)."""


def _is_int(value: object) -> bool:
    # bool is an int subclass; `True` is not a quantity.
    return isinstance(value, int) and not isinstance(value, bool)


def trade_value_minor(product: Product, price: int, quantity: int) -> int:
    """The value of ``quantity`` at ``price`` in minor units of ``product.currency``.

    E.g. PRND-OX at 415,050 CNY/t for 1,300 kg:
    415050 * 1300 * 100 / 1000 = 53,956,500 fen = 539,565.00 CNY.

    Raises :class:`ObligationError` if price or quantity is not a positive integer, or if
    the value is not a whole number of minor units (which a validated product makes
    impossible for on-tick prices and on-lot quantities).
    """
    if not _is_int(price) or price <= 0:
        raise ObligationError(f"{product.symbol}: price must be a positive integer, got {price!r}")
    if not _is_int(quantity) or quantity <= 0:
        raise ObligationError(
            f"{product.symbol}: quantity must be a positive integer, got {quantity!r}"
        )
    per = product.quantity_per_price_unit
    minor: int = 10 ** CURRENCY_MINOR_UNITS[product.currency]
    value, remainder = divmod(price * quantity * minor, per)
    if remainder:
        raise ObligationError(
            f"{product.symbol}: {price} {product.price_unit} x {quantity} "
            f"{product.quantity_unit} / {per} is not a whole number of {product.currency} "
            f"minor units (off-tick price or off-lot quantity?); refusing to round money"
        )
    return value


def obligation_id_for(trade_id: str) -> str:
    """The obligation's id: derived from the trade id, so a redelivered trade maps to the
    same obligation and settlement can deduplicate on it."""
    return _OBLIGATION_PREFIX + trade_id


def _check_id(name: str, value: object) -> str:
    if not isinstance(value, str) or not value.strip():
        raise FieldError(name, f"must be a non-empty string, got {value!r}")
    return value


@dataclass(frozen=True, slots=True)
class Obligation:
    """The buyer (payer) owes the seller (payee) ``amount``.

    Fees are not part of it: they are owed to the exchange, by both sides, and computed
    from the same trade value by :func:`settlement_worker.obligations.fees.fees_for`.
    """

    obligation_id: str
    trade_id: str
    payer: str
    payee: str
    amount: Money
    product: str
    trade_date: dt.date

    def __post_init__(self) -> None:
        _check_id("trade_id", self.trade_id)
        if self.obligation_id != obligation_id_for(self.trade_id):
            raise FieldError(
                "obligation_id",
                f"must be {obligation_id_for(self.trade_id)!r} (derived from the trade id), "
                f"got {self.obligation_id!r}",
            )
        _check_id("payer", self.payer)
        _check_id("payee", self.payee)
        if self.payer == self.payee:
            raise FieldError("payee", f"payer and payee are the same member {self.payer!r}")
        if not isinstance(self.amount, Money) or self.amount.minor <= 0:
            raise FieldError("amount", f"must be positive Money, got {self.amount!r}")
        _check_id("product", self.product)
        # A datetime is a date too; refuse it, so no time zone sneaks into a trade date.
        if not isinstance(self.trade_date, dt.date) or isinstance(self.trade_date, dt.datetime):
            raise FieldError("trade_date", f"must be a date, got {self.trade_date!r}")


def obligation_for(
    *,
    trade_id: str,
    buyer: str,
    seller: str,
    price: int,
    quantity: int,
    product: Product,
    trade_date: dt.date,
) -> Obligation:
    """The obligation a trade in ``product`` creates: the buyer owes the seller its value."""
    return Obligation(
        obligation_id=obligation_id_for(trade_id),
        trade_id=trade_id,
        payer=buyer,
        payee=seller,
        amount=Money(trade_value_minor(product, price, quantity), product.currency),
        product=product.symbol,
        trade_date=trade_date,
    )


def obligation_from_trade(trade: TradeMessage, product: Product, trade_date: dt.date) -> Obligation:
    """:func:`obligation_for` on a trade message, checking it is a trade in ``product``.

    A symbol or currency that does not match the configured product means settlement and
    the engine disagree on configuration; better to stop than to settle in the wrong money.
    """
    if trade.product != product.symbol:
        raise ObligationError(
            f"trade {trade.trade_id!r} is in {trade.product!r}, not {product.symbol!r}"
        )
    if trade.currency != product.currency:
        raise ObligationError(
            f"trade {trade.trade_id!r} is in {trade.currency!r} but {product.symbol} "
            f"settles in {product.currency!r}"
        )
    return obligation_for(
        trade_id=trade.trade_id,
        buyer=trade.buyer,
        seller=trade.seller,
        price=trade.price,
        quantity=trade.quantity,
        product=product,
        trade_date=trade_date,
    )
