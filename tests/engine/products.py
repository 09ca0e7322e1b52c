"""The small product the book properties trade: few prices and sizes, so random orders
collide, cross and queue often."""

from __future__ import annotations

from decimal import Decimal

from rex.config import Product

# Band 950..1050 on a tick of 10; lot 2, at most 40 per order.
PRODUCT = Product(
    symbol="TEST",
    name="Test",
    currency="CNY",
    price_unit="CNY/t",
    tick=10,
    quantity_unit="kg",
    lot=2,
    reference_price=1000,
    band_percent=Decimal(5),
    max_quantity=40,
)
