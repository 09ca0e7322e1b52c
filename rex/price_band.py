"""A product's price band: the lowest and highest price an order may have.

products.toml gives each product its first band, around ``reference_price`` by
``band_percent`` (rex.config.Product.band_low/band_high). From then on the band is market
state: an operator with the role ``market_ops`` sets it (``rex band``, the operator desk's
``set_band`` action), the desk appends a ``band`` entry to the product's engine input log,
and the engine applies it in log order, so every engine replaying the log -- and every
image of the market -- has the same band at the same entry.

Pure: no I/O, no configuration reading (a Product is only read).
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    from rex.config import Product

__all__ = [
    "ANY_PRICE",
    "MAX_BAND_FACTOR",
    "PriceBand",
    "band_around",
    "band_shape_problem",
    "configured_band",
]

MAX_PRICE: Final = (1 << 63) - 1  # a msgpack int64, as every integer on the wire
#: How far a band set by an operator may move from products.toml's reference price: both
#: limits within reference_price / 4 .. reference_price * 4. A digit too many or too few
#: in `rex band` is ten times off and is refused; a real market move (rare-earth oxides have
#: doubled in a year) fits, and products.toml's reference price can follow the market.
MAX_BAND_FACTOR: Final = 4


@dataclass(frozen=True, slots=True)
class PriceBand:
    """Prices ``low..high``, both included, in the product's price units."""

    low: int
    high: int

    def __contains__(self, price: object) -> bool:
        return isinstance(price, int) and self.low <= price <= self.high

    def __str__(self) -> str:
        return f"{self.low}..{self.high}"


#: No band at all: what the gateway checks (the band is the engine's market state, which
#: the gateway does not follow; the engine rejects an order outside it).
ANY_PRICE: Final = PriceBand(-MAX_PRICE, MAX_PRICE)


def configured_band(product: Product) -> PriceBand:
    """The band products.toml gives ``product``: its band until an operator sets another."""
    return PriceBand(product.band_low, product.band_high)


def band_around(reference: int, percent: Decimal, tick: int) -> PriceBand:
    """The band ``percent`` either side of ``reference``, exactly: the high limit rounded
    down to a tick, the low one up (how products.toml's band is computed). ``percent`` is a
    finite Decimal, 0 < percent < 100; ``tick`` > 0."""
    n, d = percent.as_integer_ratio()
    den = 100 * d * tick
    low = -(-reference * (100 * d - n) // den) * tick
    high = reference * (100 * d + n) // den * tick
    return PriceBand(low, high)


def band_shape_problem(tick: int, low: object, high: object) -> str | None:
    """What makes ``low..high`` no band for a product of this tick, or None: integers (not
    booleans) within int64, 0 < low < high, both multiples of ``tick``. The engine applies
    no band entry that breaks these, whoever wrote it."""
    for name, value in (("band_low", low), ("band_high", high)):
        if type(value) is not int or not 0 < value <= MAX_PRICE:
            return f"{name} must be a positive integer price"
    assert isinstance(low, int) and isinstance(high, int)
    if low % tick or high % tick:
        return "band_low and band_high must be multiples of the tick"
    if low >= high:
        return "band_low must be below band_high"
    return None
