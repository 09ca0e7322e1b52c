"""The exchange's vocabulary, shared by every service and by the wire protocol.

One enum per concept, one `Reason` enum for every reject and cancel cause (as exchange-core
keeps one result code table). Values are the exact strings that travel on the wire.
"""

from __future__ import annotations

from enum import StrEnum


class Side(StrEnum):
    BUY = "buy"
    SELL = "sell"


class OrderType(StrEnum):
    LIMIT = "limit"
    MARKET = "market"


class TimeInForce(StrEnum):
    GTC = "GTC"  # good till cancelled
    IOC = "IOC"  # immediate or cancel: what does not trade at once is cancelled
    FOK = "FOK"  # fill or kill: trades in full at once, or not at all
    GTD = "GTD"  # good till date: expires at expire_time


class SelfTradePrevention(StrEnum):
    """What happens when an order would trade against another order of the same member.

    The incoming (aggressing) order's mode decides.
    """

    CANCEL_NEWEST = "cancel_newest"  # the incoming order's remainder is cancelled
    CANCEL_OLDEST = "cancel_oldest"  # the resting order is cancelled, matching goes on
    CANCEL_BOTH = "cancel_both"  # both are cancelled


class Reason(StrEnum):
    """Machine codes for rejects and cancels. docs/members/protocol.md lists each with its
    meaning."""

    # Request shape and reference data
    MALFORMED = "malformed"
    UNKNOWN_PRODUCT = "unknown_product"
    UNKNOWN_MEMBER = "unknown_member"
    UNKNOWN_ORDER = "unknown_order"
    DUPLICATE_ORDER_ID = "duplicate_order_id"
    DUPLICATE_CLIENT_ORDER_ID = "duplicate_client_order_id"
    # Price and quantity rules
    MISSING_PRICE = "missing_price"
    PRICE_NOT_ALLOWED = "price_not_allowed"
    PRICE_NOT_ON_TICK = "price_not_on_tick"
    OUTSIDE_PRICE_BAND = "outside_price_band"
    QUANTITY_NOT_ON_LOT = "quantity_not_on_lot"
    QUANTITY_OUT_OF_RANGE = "quantity_out_of_range"
    QUANTITY_BELOW_FILLED = "quantity_below_filled"
    NOTHING_TO_REPLACE = "nothing_to_replace"
    # Order-type and time-in-force combinations
    INVALID_TIME_IN_FORCE = "invalid_time_in_force"
    MISSING_EXPIRE_TIME = "missing_expire_time"
    EXPIRE_TIME_NOT_ALLOWED = "expire_time_not_allowed"
    EXPIRE_TIME_IN_PAST = "expire_time_in_past"
    POST_ONLY_WOULD_TAKE = "post_only_would_take"
    POST_ONLY_NOT_ALLOWED = "post_only_not_allowed"
    # Product state and member limits
    PRODUCT_HALTED = "product_halted"
    PRODUCT_CLOSED = "product_closed"
    RATE_LIMITED = "rate_limited"  # no longer sent: over-rate requests wait (gateway/lanes.py)
    # Why an accepted order ended without trading in full
    REQUESTED = "requested"
    MASS_CANCEL = "mass_cancel"
    SELF_TRADE = "self_trade"
    IMMEDIATE_OR_CANCEL = "immediate_or_cancel"
    FILL_OR_KILL = "fill_or_kill"
    EXPIRED = "expired"

    @property
    def text(self) -> str:
        """A human sentence for the `text` field of a report."""
        return _TEXT[self]


#: Why an accepted order ended without trading in full (a cancel or an expiry); every other
#: reason is a reject's.
END_REASONS: frozenset[Reason] = frozenset(
    {
        Reason.REQUESTED,
        Reason.MASS_CANCEL,
        Reason.SELF_TRADE,
        Reason.IMMEDIATE_OR_CANCEL,
        Reason.FILL_OR_KILL,
        Reason.EXPIRED,
    }
)
REJECT_REASONS: frozenset[Reason] = frozenset(Reason) - END_REASONS

_TEXT: dict[Reason, str] = {
    Reason.MALFORMED: "The request could not be decoded or a field has the wrong type.",
    Reason.UNKNOWN_PRODUCT: "No product with that symbol is listed.",
    Reason.UNKNOWN_MEMBER: "The sending user is not an enabled member of the exchange.",
    Reason.UNKNOWN_ORDER: "No open order of yours has that id.",
    Reason.DUPLICATE_ORDER_ID: "An order with that exchange order id already exists.",
    Reason.DUPLICATE_CLIENT_ORDER_ID: "That client_order_id has already been used.",
    Reason.MISSING_PRICE: "A limit order needs a price.",
    Reason.PRICE_NOT_ALLOWED: "A market order carries no price.",
    Reason.PRICE_NOT_ON_TICK: "The price is not a multiple of the product's tick.",
    Reason.OUTSIDE_PRICE_BAND: "The price is outside today's band around the reference price.",
    Reason.QUANTITY_NOT_ON_LOT: "The quantity is not a multiple of the product's lot.",
    Reason.QUANTITY_OUT_OF_RANGE: "The quantity must be positive and at most the product maximum.",
    Reason.QUANTITY_BELOW_FILLED: "A replace cannot cut the quantity to or below what has filled.",
    Reason.NOTHING_TO_REPLACE: "A replace must change the price or the quantity.",
    Reason.INVALID_TIME_IN_FORCE: "That time in force does not go with this order type.",
    Reason.MISSING_EXPIRE_TIME: "A GTD order needs an expire_time.",
    Reason.EXPIRE_TIME_NOT_ALLOWED: "Only GTD orders carry an expire_time.",
    Reason.EXPIRE_TIME_IN_PAST: "The expire_time has already passed.",
    Reason.POST_ONLY_WOULD_TAKE: "The post-only order would have traded on arrival.",
    Reason.POST_ONLY_NOT_ALLOWED: "Post-only needs a resting limit order (GTC or GTD).",
    Reason.PRODUCT_HALTED: "Trading in this product is halted.",
    Reason.PRODUCT_CLOSED: "Trading in this product is closed.",
    Reason.RATE_LIMITED: "Too many requests; slow down.",
    Reason.REQUESTED: "Cancelled at the member's request.",
    Reason.MASS_CANCEL: "Cancelled by a mass cancel of the member's orders.",
    Reason.SELF_TRADE: "Cancelled to prevent a trade between two orders of the same member.",
    Reason.IMMEDIATE_OR_CANCEL: "The part that could not trade at once was cancelled.",
    Reason.FILL_OR_KILL: "The order could not trade in full at once and was cancelled.",
    Reason.EXPIRED: "The order reached its expire_time.",
}
