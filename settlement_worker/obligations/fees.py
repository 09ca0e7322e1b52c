"""Exchange fees: basis points on the trade value, per product, the same for every member.

There is one schedule for the whole exchange. A rule may depend on the product, never on
the member: a small firm buying one 100 kg lot pays the same rate as a large smelter, and no
member can negotiate a better one (see docs/members/settlement.md).

For each side::

    fee = round_half_up(trade_value_minor * bps / 10000)     # to the minor unit (fen)
    fee = max(fee, minimum_minor)                            # only if bps > 0

Half-up (0.5 fen rounds to 1 fen) is the rounding customers expect from a price list and
is the same for buyer and seller. Values are never negative, so half-up and half-away-from-
zero agree. A side whose rate is 0 pays nothing: the minimum applies only to a side that is
charged at all, so a zero rate really means free. ``minimum_minor`` is in minor units of
the obligation's currency (fen for CNY products, cents for USD ones).

Pure: no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, NamedTuple

from rex.fields import FieldError, int_in
from settlement_worker.obligations.rules import Obligation

__all__ = [
    "ANY_PRODUCT",
    "MAX_BPS",
    "FeeRule",
    "FeeSchedule",
    "Fees",
    "fee_minor",
    "fees_for",
]

#: The ``product`` of the default rule, which covers every product without an override.
ANY_PRODUCT: Final = "*"
#: 10,000 basis points = 100 %.
MAX_BPS: Final = 10_000


@dataclass(frozen=True, slots=True)
class FeeRule:
    """Fee rates for one product (or ``"*"``, every product without its own rule)."""

    product: str
    buyer_bps: int
    seller_bps: int
    minimum_minor: int = 0

    def __post_init__(self) -> None:
        if not isinstance(self.product, str) or not self.product:
            raise FieldError("product", f"must be a product symbol or '*', got {self.product!r}")
        int_in("buyer_bps", self.buyer_bps, 0, MAX_BPS)
        int_in("seller_bps", self.seller_bps, 0, MAX_BPS)
        int_in("minimum_minor", self.minimum_minor, 0, None)


@dataclass(frozen=True, slots=True)
class FeeSchedule:
    """The exchange's fee schedule: a default rule and per-product overrides."""

    default: FeeRule
    overrides: tuple[FeeRule, ...] = ()

    def __post_init__(self) -> None:
        if self.default.product != ANY_PRODUCT:
            raise FieldError(
                "default",
                f"the default rule must be for {ANY_PRODUCT!r}, not {self.default.product!r}",
            )
        seen: set[str] = set()
        for rule in self.overrides:
            if rule.product == ANY_PRODUCT:
                raise FieldError(
                    "overrides", f"an override must name a product, not {ANY_PRODUCT!r}"
                )
            if rule.product in seen:
                raise FieldError("overrides", f"two rules for product {rule.product!r}")
            seen.add(rule.product)

    def rule_for(self, product: str) -> FeeRule:
        """The rule for ``product``: its override, or the default."""
        for rule in self.overrides:
            if rule.product == product:
                return rule
        return self.default


class Fees(NamedTuple):
    """What each side of one trade owes the exchange, in minor units of its currency."""

    buyer_minor: int
    seller_minor: int


def fee_minor(value_minor: int, bps: int, minimum_minor: int = 0) -> int:
    """``value_minor * bps / 10000`` rounded half-up, raised to ``minimum_minor`` when
    ``bps > 0``.

    E.g. 12,345 fen at 2 bps = 2.469 fen -> 2 fen; 12,500 fen at 2 bps = 2.5 fen -> 3 fen.
    """
    if value_minor < 0:
        raise ValueError(f"a trade value is never negative, got {value_minor}")
    if bps == 0:
        return 0
    rounded = (value_minor * bps + MAX_BPS // 2) // MAX_BPS
    return max(rounded, minimum_minor)


def fees_for(obligation: Obligation, schedule: FeeSchedule) -> Fees:
    """The buyer's and the seller's fee on the trade behind ``obligation``."""
    rule = schedule.rule_for(obligation.product)
    value = obligation.amount.minor
    return Fees(
        buyer_minor=fee_minor(value, rule.buyer_bps, rule.minimum_minor),
        seller_minor=fee_minor(value, rule.seller_bps, rule.minimum_minor),
    )
