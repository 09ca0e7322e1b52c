"""A slow, obviously-correct model of the order book: the reference the property tests
compare engine/book.py against, and the second book the per-rule tests run on
(engine/book_protocol.py).

Written from the rules, not from engine/book.py: one plain list of resting orders, linear
scans, no sorted containers, no lazy deletion, no fast paths. Every question ("what is the
best ask?", "who is next in the queue?", "what does this level hold now?") is answered by
looking at the whole list again.

The list `resting` holds the resting orders in the order they joined their queue. That one
order serves as both
  * time priority within a price: the earlier in the list, the earlier in the queue; and
  * acceptance order (for `orders()` and mass cancel): an order that a replace sends to the
    back of its queue counts as accepted again at that replace, so it moves to the end of
    the list; a replace that keeps priority leaves it where it is.

Where the rules leave a choice open, the model takes the reading below (and the book agrees):
  * post-only "would take" means its price crosses any resting order on the other side,
    the member's own orders included;
  * GTD orders falling due at the same command expire earliest expire_time first, then by
    order id.

It speaks the book's event vocabulary and numbering: each command's events are numbered
on from the last (`sequence`), trades have their own count (`trade_sequence`), and a
LevelChanged follows whatever changed a level -- an order resting, cancelled, expired or
cut, and a taker's trades and self-trade cancels at one price, once per price -- saying
what the level holds after it.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from rex.config import Product, TradingStatus
from rex.price_band import PriceBand, configured_band
from rex.vocabulary import OrderType, Reason, SelfTradePrevention, Side, TimeInForce

from .events import (
    BandChanged,
    Event,
    LevelChanged,
    OrderAccepted,
    OrderCancelled,
    OrderExpired,
    OrderRejected,
    OrderReplaced,
    Record,
    StatusChanged,
    Trade,
    record_of,
)
from .marketdata import Depth, PriceLevel
from .orders import (
    AdvanceTime,
    CancelOrder,
    Command,
    MassCancel,
    Order,
    ReplaceOrder,
    SetPriceBand,
    SetTradingStatus,
)

BUY, SELL = Side.BUY, Side.SELL


@dataclass(eq=False)  # compared by identity: list.remove() must take out this very order
class RefOrder:
    """An accepted order as the model keeps it."""

    order_id: int
    member: str
    client_order_id: str
    side: Side
    price: int | None  # None for a market order
    quantity: int  # total, filled part included
    time_in_force: TimeInForce
    expire_time: int | None
    post_only: bool
    stp: SelfTradePrevention
    filled: int = 0

    @property
    def remaining(self) -> int:
        return self.quantity - self.filled

    @property
    def limit(self) -> int:
        """The price of a resting order (only limit orders rest, so it has one)."""
        assert self.price is not None
        return self.price


class ReferenceBook:
    def __init__(self, product: Product) -> None:
        self.product = product
        self.status: TradingStatus = product.status
        # The prices new orders and replaces may have; resting orders outside a new band
        # stay where they are.
        self.band: PriceBand = configured_band(product)
        self.resting: list[RefOrder] = []
        self.sequence = 0  # events so far; the next event is number sequence + 1
        self.trade_sequence = 0  # trades so far

    # ------------------------------------------------------------------ queries

    def order(self, order_id: int) -> RefOrder | None:
        for order in self.resting:
            if order.order_id == order_id:
                return order
        return None

    def orders(self) -> Iterator[RefOrder]:
        return iter(list(self.resting))

    def level(self, side: Side, price: int) -> PriceLevel:
        """What rests at one price now (quantity and orders 0 if nothing)."""
        queue = self._queue(side, price)
        return PriceLevel(price, sum(o.remaining for o in queue), len(queue))

    def levels(self, side: Side) -> list[PriceLevel]:
        """Price levels of one side, best price first."""
        prices = sorted({o.limit for o in self.resting if o.side is side}, reverse=side is BUY)
        return [self.level(side, price) for price in prices]

    def best_bid(self) -> PriceLevel | None:
        levels = self.levels(BUY)
        return levels[0] if levels else None

    def best_ask(self) -> PriceLevel | None:
        levels = self.levels(SELL)
        return levels[0] if levels else None

    def depth(self, levels: int = 10) -> Depth:
        bids, asks = self.levels(BUY)[:levels], self.levels(SELL)[:levels]
        return Depth(self.product.symbol, self.sequence, tuple(bids), tuple(asks))

    def queue(self, side: Side, price: int) -> list[int]:
        return [o.order_id for o in self._queue(side, price)]

    def _queue(self, side: Side, price: int) -> list[RefOrder]:
        """Orders resting at one price, oldest first."""
        return [o for o in self.resting if o.side is side and o.price == price]

    # ------------------------------------------------------------------ commands

    def apply(self, command: Command) -> list[Record]:
        events: list[Event] = []
        # Orders due expire first, whatever the command is.
        self._expire(command.timestamp, events)
        if isinstance(command, Order):
            self._new_order(command, events)
        elif isinstance(command, CancelOrder):
            self._cancel(command, events)
        elif isinstance(command, ReplaceOrder):
            self._replace(command, events)
        elif isinstance(command, MassCancel):
            for order in list(self.resting):
                if order.member == command.member:
                    self._cancel_resting(order, Reason.MASS_CANCEL, command.timestamp, events)
        elif isinstance(command, SetTradingStatus):
            self.status = command.status
            events.append(StatusChanged(0, command.timestamp, command.status))
        elif isinstance(command, SetPriceBand):
            self.band = PriceBand(command.low, command.high)
            events.append(BandChanged(0, command.timestamp, command.low, command.high))
        else:
            assert isinstance(command, AdvanceTime)  # nothing to do beyond expiring
        for event in events:  # numbered last: every event of the book has its number
            self.sequence += 1
            event.sequence = self.sequence
        return [record_of(event) for event in events]

    def _expire(self, now: int, events: list[Event]) -> None:
        due = [o for o in self.resting if o.expire_time is not None and o.expire_time <= now]
        due.sort(key=lambda o: (o.expire_time, o.order_id))  # earliest due first
        for order in due:
            self.resting.remove(order)
            events.append(
                OrderExpired(
                    0,
                    now,
                    order.order_id,
                    order.member,
                    order.client_order_id,
                    order.side,
                    order.limit,
                    order.remaining,
                    order.filled,
                )
            )
            self._level_changed(order.side, order.limit, now, events)

    def _new_order(self, cmd: Order, events: list[Event]) -> None:
        ts = cmd.timestamp
        reason = self._check_new(cmd)
        if reason is not None:
            events.append(OrderRejected(0, ts, cmd.order_id, cmd.member, reason))
            return
        order = RefOrder(
            order_id=cmd.order_id,
            member=cmd.member,
            client_order_id=cmd.client_order_id,
            side=cmd.side,
            price=cmd.price,
            quantity=cmd.quantity,
            time_in_force=cmd.time_in_force,
            expire_time=cmd.expire_time,
            post_only=cmd.post_only,
            stp=cmd.stp,
        )
        events.append(
            OrderAccepted(
                0, ts, order.order_id, order.member, order.client_order_id, order.side,
                order.price, order.quantity,
            )
        )  # fmt: skip
        if order.time_in_force is TimeInForce.FOK and not self._can_fill_now(order):
            self._end(order, Reason.FILL_OR_KILL, ts, events)  # killed whole, nothing traded
            return
        stopped = self._match(order, ts, events)
        if order.remaining == 0:
            return
        if stopped:
            self._end(order, Reason.SELF_TRADE, ts, events)
        elif order.price is None or order.time_in_force is TimeInForce.IOC:
            self._end(order, Reason.IMMEDIATE_OR_CANCEL, ts, events)
        else:
            # A FOK order that passed its check has filled in full, so only GTC and GTD
            # orders get here.
            assert order.time_in_force in (TimeInForce.GTC, TimeInForce.GTD)
            self._rest(order, ts, events)

    def _cancel(self, cmd: CancelOrder, events: list[Event]) -> None:
        order = self.order(cmd.order_id)
        if order is None or order.member != cmd.member:
            events.append(
                OrderRejected(0, cmd.timestamp, cmd.order_id, cmd.member, Reason.UNKNOWN_ORDER)
            )
            return
        self._cancel_resting(order, Reason.REQUESTED, cmd.timestamp, events)

    def _replace(self, cmd: ReplaceOrder, events: list[Event]) -> None:
        ts = cmd.timestamp
        order = self.order(cmd.order_id)
        reason = self._check_replace(cmd, order)
        if reason is not None:
            events.append(OrderRejected(0, ts, cmd.order_id, cmd.member, reason))
            return
        assert order is not None and order.price is not None
        old_price = order.price
        new_price = order.price if cmd.price is None else cmd.price
        new_quantity = order.quantity if cmd.quantity is None else cmd.quantity
        keeps_priority = new_price == order.price and new_quantity < order.quantity
        if cmd.client_order_id is not None:
            order.client_order_id = cmd.client_order_id  # the order goes by its new id now
        order.price = new_price
        order.quantity = new_quantity
        if not keeps_priority:
            self.resting.remove(order)  # leaves the queue; joins the back of one below
        events.append(
            OrderReplaced(
                0, ts, order.order_id, order.member, order.client_order_id, order.side,
                new_price, new_quantity, order.remaining, order.filled, keeps_priority,
            )
        )  # fmt: skip
        self._level_changed(order.side, old_price, ts, events)
        if keeps_priority:
            return
        stopped = self._match(order, ts, events)  # the replaced order may cross at once
        if stopped:
            self._end(order, Reason.SELF_TRADE, ts, events)
        elif order.remaining:
            self._rest(order, ts, events)

    # ------------------------------------------------------------------ checks

    def _status_reason(self) -> Reason | None:
        if self.status is TradingStatus.HALTED:
            return Reason.PRODUCT_HALTED
        if self.status is TradingStatus.CLOSED:
            return Reason.PRODUCT_CLOSED
        return None

    def _quantity_reason(self, quantity: int) -> Reason | None:
        if quantity <= 0 or quantity > self.product.max_quantity:
            return Reason.QUANTITY_OUT_OF_RANGE
        if quantity % self.product.lot != 0:
            return Reason.QUANTITY_NOT_ON_LOT
        return None

    def _price_reason(self, price: int) -> Reason | None:
        if price % self.product.tick != 0:
            return Reason.PRICE_NOT_ON_TICK
        if not self.band.low <= price <= self.band.high:
            return Reason.OUTSIDE_PRICE_BAND
        return None

    def _check_new(self, cmd: Order) -> Reason | None:
        """The first rule the new order breaks, in the book's documented order."""
        reason = self._status_reason() or self._quantity_reason(cmd.quantity)
        if reason is not None:
            return reason
        tif = cmd.time_in_force
        if cmd.order_type is OrderType.LIMIT:
            if cmd.price is None:
                return Reason.MISSING_PRICE
            reason = self._price_reason(cmd.price)
            if reason is not None:
                return reason
        else:
            if cmd.price is not None:
                return Reason.PRICE_NOT_ALLOWED
            if tif is TimeInForce.GTD:
                return Reason.INVALID_TIME_IN_FORCE
        if tif is TimeInForce.GTD:
            if cmd.expire_time is None:
                return Reason.MISSING_EXPIRE_TIME
            if cmd.expire_time <= cmd.timestamp:
                return Reason.EXPIRE_TIME_IN_PAST
        elif cmd.expire_time is not None:
            return Reason.EXPIRE_TIME_NOT_ALLOWED
        if cmd.post_only:
            if cmd.price is None or tif in (TimeInForce.IOC, TimeInForce.FOK):
                return Reason.POST_ONLY_NOT_ALLOWED
            if self._crossing(cmd.side, cmd.price):
                return Reason.POST_ONLY_WOULD_TAKE
        if self.order(cmd.order_id) is not None:
            return Reason.DUPLICATE_ORDER_ID
        return None

    def _check_replace(self, cmd: ReplaceOrder, order: RefOrder | None) -> Reason | None:
        if order is None or order.member != cmd.member:
            return Reason.UNKNOWN_ORDER  # someone else's order is as good as unknown
        reason = self._status_reason()
        if reason is not None:
            return reason
        if cmd.price is None and cmd.quantity is None:
            return Reason.NOTHING_TO_REPLACE
        if cmd.price is not None:
            reason = self._price_reason(cmd.price)
            if reason is not None:
                return reason
        if cmd.quantity is not None:
            reason = self._quantity_reason(cmd.quantity)
            if reason is not None:
                return reason
            if cmd.quantity <= order.filled:
                return Reason.QUANTITY_BELOW_FILLED
        new_price = order.price if cmd.price is None else cmd.price
        new_quantity = order.quantity if cmd.quantity is None else cmd.quantity
        if new_price == order.price and new_quantity == order.quantity:
            return Reason.NOTHING_TO_REPLACE
        if order.post_only and new_price != order.price:
            assert new_price is not None
            if self._crossing(order.side, new_price):
                return Reason.POST_ONLY_WOULD_TAKE
        return None

    # ------------------------------------------------------------------ matching

    def _crossing(self, side: Side, price: int | None) -> list[RefOrder]:
        """Resting orders an incoming order of that side and price (None: market) could
        meet, in the order matching meets them: best price first, oldest first within a
        price. Own orders included: self-trade prevention is the caller's business."""

        def acceptable(maker: RefOrder) -> bool:
            if price is None:
                return True
            return maker.limit <= price if side is BUY else maker.limit >= price

        makers = [o for o in self.resting if o.side is not side and acceptable(o)]
        # Sorting is stable, so orders at the same price keep their time priority.
        if side is BUY:
            makers.sort(key=lambda o: o.limit)  # cheapest ask first
        else:
            makers.sort(key=lambda o: -o.limit)  # highest bid first
        return makers

    def _can_fill_now(self, taker: RefOrder) -> bool:
        """Would a FOK order trade its whole quantity right now, given self-trade
        prevention? With cancel_oldest, own orders would be cancelled and passed over;
        with the other modes the first own order stops the order there."""
        available = 0
        for maker in self._crossing(taker.side, taker.price):
            if maker.member == taker.member:
                if taker.stp is SelfTradePrevention.CANCEL_OLDEST:
                    continue
                break
            available += maker.remaining
        return available >= taker.remaining

    def _match(self, taker: RefOrder, ts: int, events: list[Event]) -> bool:
        """Trade the taker against the book, one maker at a time. Returns True if
        self-trade prevention stopped it (its remainder is then to be cancelled). Each price
        it took something from gets one LevelChanged, when the taker is done there."""
        maker_side = SELL if taker.side is BUY else BUY
        touched: int | None = None  # the price taken from, whose LevelChanged is due

        def leave_level() -> None:
            if touched is not None:
                self._level_changed(maker_side, touched, ts, events)

        while taker.remaining:
            makers = self._crossing(taker.side, taker.price)
            if touched is not None and (not makers or makers[0].limit != touched):
                leave_level()
                touched = None
            if not makers:
                return False
            maker = makers[0]
            if maker.member == taker.member:
                if taker.stp is SelfTradePrevention.CANCEL_NEWEST:
                    leave_level()
                    return True
                self.resting.remove(maker)
                self._end(maker, Reason.SELF_TRADE, ts, events)
                touched = maker.limit
                if taker.stp is SelfTradePrevention.CANCEL_BOTH:
                    leave_level()
                    return True
                continue  # cancel_oldest: go on with the next maker
            quantity = min(taker.remaining, maker.remaining)
            taker.filled += quantity
            maker.filled += quantity
            self.trade_sequence += 1
            events.append(
                Trade(
                    0, ts, self.trade_sequence, maker.limit, quantity, taker.side,
                    taker.order_id, taker.member, taker.client_order_id,
                    taker.filled, taker.remaining,
                    maker.order_id, maker.member, maker.client_order_id,
                    maker.filled, maker.remaining,
                )
            )  # fmt: skip
            touched = maker.limit
            if maker.remaining == 0:
                self.resting.remove(maker)
        leave_level()
        return False

    # ------------------------------------------------------------------ book keeping

    def _rest(self, order: RefOrder, ts: int, events: list[Event]) -> None:
        self.resting.append(order)
        self._level_changed(order.side, order.limit, ts, events)

    def _level_changed(self, side: Side, price: int, ts: int, events: list[Event]) -> None:
        level = self.level(side, price)
        events.append(LevelChanged(0, ts, side, price, level.quantity, level.orders))

    def _cancel_resting(
        self, order: RefOrder, reason: Reason, ts: int, events: list[Event]
    ) -> None:
        self.resting.remove(order)
        self._end(order, reason, ts, events)
        self._level_changed(order.side, order.limit, ts, events)

    def _end(self, order: RefOrder, reason: Reason, ts: int, events: list[Event]) -> None:
        events.append(
            OrderCancelled(
                0, ts, order.order_id, order.member, order.client_order_id, order.side,
                order.price, order.remaining, order.filled, reason,
            )
        )  # fmt: skip
