"""Commands the order book takes, and the resting order it keeps.

Commands are plain slotted dataclasses built by the engine service from the input log.
Every command carries `timestamp` (ns since the Unix epoch, UTC): the book's only clock.
Treat commands as immutable once built; events may refer to them.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from rex.config import TradingStatus
from rex.vocabulary import OrderType, SelfTradePrevention, Side, TimeInForce


@dataclass(slots=True)
class Order:
    """A member's order: the submit command, and then the book's working copy of it.

    The caller fills in the request fields and passes the order to `OrderBook.submit`; from
    then on the book owns it and keeps `remaining` and `filled` (one object per order keeps
    the hot path lean). `remaining == 0` on an order still queued in a level marks an entry
    that has left the book (cancelled, expired, or moved by a replace); levels drop such
    entries lazily, so a cancel is O(1).
    """

    order_id: int  # exchange-assigned, unique per product
    member: str
    side: Side
    quantity: int  # total quantity, product quantity units, on lot
    price: int | None = None  # product price units, on tick; None for market orders
    order_type: OrderType = OrderType.LIMIT
    time_in_force: TimeInForce = TimeInForce.GTC
    expire_time: int | None = None  # ns since epoch; GTD only
    post_only: bool = False
    stp: SelfTradePrevention = SelfTradePrevention.CANCEL_NEWEST
    client_order_id: str = ""
    timestamp: int = 0
    remaining: int = field(default=0, init=False)  # kept by the book
    filled: int = field(default=0, init=False)  # kept by the book


@dataclass(slots=True)
class CancelOrder:
    order_id: int
    member: str  # only the owner may cancel; anyone else is told the order is unknown
    timestamp: int = 0


@dataclass(slots=True)
class ReplaceOrder:
    """Change price and/or total quantity. Lowering the quantity at the same price keeps time
    priority; a new price or a larger quantity sends the order to the back of the queue."""

    order_id: int
    member: str
    price: int | None = None
    quantity: int | None = None  # new total quantity, filled part included
    timestamp: int = 0
    client_order_id: str | None = None  # the order's new client id, if it takes one


@dataclass(slots=True)
class MassCancel:
    """The member's kill switch: cancel every open order it has in this book."""

    member: str
    timestamp: int = 0


@dataclass(slots=True)
class SetTradingStatus:
    status: TradingStatus
    timestamp: int = 0


@dataclass(slots=True)
class SetPriceBand:
    """Prices low..high (both included) from now on; the caller checked the band's shape
    (rex.price_band.band_shape_problem)."""

    low: int
    high: int
    timestamp: int = 0


@dataclass(slots=True)
class AdvanceTime:
    """Move the book's clock forward: GTD orders due by `timestamp` expire."""

    timestamp: int


Command = (
    Order | CancelOrder | ReplaceOrder | MassCancel | SetTradingStatus | SetPriceBand | AdvanceTime
)
