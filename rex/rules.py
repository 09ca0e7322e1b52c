"""Pre-trade rules that need no book: the one place they are written.

The gateway applies them to reject early; the order book applies them again (it trusts no
one), together with the rules that need the book (post-only, duplicates, ownership). Each
function returns the first rule broken, as a `Reason`, or None.

The price band is market state (rex/price_band.py): the engine passes the band in force.
The gateway passes `ANY_PRICE`, leaving the band to the engine, which alone follows the
operators' band changes in its input log. Without a band, a function checks the band of
products.toml (settlement's offline trades know no other).
"""

from __future__ import annotations

from rex.config import Product, TradingStatus
from rex.price_band import PriceBand, configured_band
from rex.vocabulary import OrderType, Reason, TimeInForce


def status_problem(status: TradingStatus) -> Reason | None:
    if status is TradingStatus.OPEN:
        return None
    return Reason.PRODUCT_HALTED if status is TradingStatus.HALTED else Reason.PRODUCT_CLOSED


def quantity_problem(product: Product, quantity: int) -> Reason | None:
    if quantity <= 0 or quantity > product.max_quantity:
        return Reason.QUANTITY_OUT_OF_RANGE
    if quantity % product.lot:
        return Reason.QUANTITY_NOT_ON_LOT
    return None


def price_problem(product: Product, price: int, band: PriceBand | None = None) -> Reason | None:
    if price % product.tick:
        return Reason.PRICE_NOT_ON_TICK
    low, high = (product.band_low, product.band_high) if band is None else (band.low, band.high)
    if price < low or price > high:
        return Reason.OUTSIDE_PRICE_BAND
    return None


def reject_text(product: Product, reason: Reason, band: PriceBand | None = None) -> str:
    """The report's text for ``reason`` on ``product``: the rule's sentence, with the
    product's own figures where the member needs them to correct the order (from the
    configuration and ``band``, the band in force -- products.toml's if None -- alone:
    deterministic)."""
    if reason is Reason.OUTSIDE_PRICE_BAND:
        shown = configured_band(product) if band is None else band
        return f"The price is outside today's band, {shown} {product.price_unit} (both included)."
    if reason is Reason.PRICE_NOT_ON_TICK:
        return (
            f"The price is not a multiple of the product's tick, {product.tick}"
            f" {product.price_unit}."
        )
    if reason is Reason.QUANTITY_NOT_ON_LOT:
        return (
            f"The quantity is not a multiple of the product's lot, {product.lot}"
            f" {product.quantity_unit}."
        )
    if reason is Reason.QUANTITY_OUT_OF_RANGE:
        return (
            f"The quantity must be positive and at most {product.max_quantity}"
            f" {product.quantity_unit}."
        )
    return reason.text


def order_problem(
    product: Product,
    order_type: OrderType,
    price: int | None,
    quantity: int,
    time_in_force: TimeInForce,
    expire_time: int | None,
    post_only: bool,
    now: int,
    band: PriceBand | None = None,
) -> Reason | None:
    """A new order's own rules, in the documented order (docs/internals/engine.md). Times in
    ns; ``band`` the band in force (products.toml's if None)."""
    reason = quantity_problem(product, quantity)
    if reason is not None:
        return reason
    if order_type is OrderType.LIMIT:
        if price is None:
            return Reason.MISSING_PRICE
        reason = price_problem(product, price, band)
        if reason is not None:
            return reason
    else:
        if price is not None:
            return Reason.PRICE_NOT_ALLOWED
        if time_in_force is TimeInForce.GTD:
            return Reason.INVALID_TIME_IN_FORCE  # a market order never rests
    if time_in_force is TimeInForce.GTD:
        if expire_time is None:
            return Reason.MISSING_EXPIRE_TIME
        if expire_time <= now:
            return Reason.EXPIRE_TIME_IN_PAST
    elif expire_time is not None:
        return Reason.EXPIRE_TIME_NOT_ALLOWED
    if post_only and (
        price is None or time_in_force is TimeInForce.IOC or time_in_force is TimeInForce.FOK
    ):
        return Reason.POST_ONLY_NOT_ALLOWED
    return None


def replace_problem(
    product: Product, price: int | None, quantity: int | None, band: PriceBand | None = None
) -> Reason | None:
    """A replace's own rules (the book adds: owner, filled quantity, change, post-only)."""
    if price is None and quantity is None:
        return Reason.NOTHING_TO_REPLACE
    if price is not None:
        reason = price_problem(product, price, band)
        if reason is not None:
            return reason
    if quantity is not None:
        return quantity_problem(product, quantity)
    return None
