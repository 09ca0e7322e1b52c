"""The order book of one product: price-time priority matching, pure and deterministic.

No I/O and no clock reads: every command carries its own timestamp, and the same commands
always give the same events. Both sides keep their price levels in a SortedDict under a sort
key where smaller is better (ask price, negated bid price), so one matching loop serves both
sides. Each level is a FIFO queue; cancels mark the entry dead and the queue drops it lazily.
"""

from __future__ import annotations

import dataclasses
from collections import deque
from collections.abc import Callable, Iterator
from heapq import heappop, heappush
from itertools import islice
from typing import Any

from sortedcontainers import SortedDict

from rex.config import Product, TradingStatus
from rex.price_band import PriceBand
from rex.rules import order_problem, replace_problem, status_problem
from rex.vocabulary import OrderType, Reason, SelfTradePrevention, Side, TimeInForce

from .events import (
    BandChanged,
    LevelChanged,
    OrderAccepted,
    OrderCancelled,
    OrderExpired,
    OrderRejected,
    OrderReplaced,
    Record,
    StatusChanged,
    Trade,
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

_NO_LEVEL = 1 << 62  # sort key of an empty side: worse than any real price
_MARKET_KEY = _NO_LEVEL - 1  # a market order takes any price in the book
_NEVER = 1 << 126  # no GTD order is due
_BUY, _SELL = Side.BUY, Side.SELL
_LIMIT = OrderType.LIMIT
_GTC, _IOC, _FOK, _GTD = TimeInForce.GTC, TimeInForce.IOC, TimeInForce.FOK, TimeInForce.GTD
_CANCEL_NEWEST = SelfTradePrevention.CANCEL_NEWEST
_CANCEL_BOTH = SelfTradePrevention.CANCEL_BOTH
_OPEN = TradingStatus.OPEN
_REQUESTED = Reason.REQUESTED
_DEAD_ENTRIES_BEFORE_COMPACTING = 64


def _resting_price(order: Order) -> int:
    """The price of an order in the book (only limit orders rest, so it has one)."""
    assert order.price is not None
    return order.price


class Level(deque[Order]):
    """One price level: a FIFO queue of orders plus its live totals."""

    __slots__ = ("dead", "order_count", "price", "quantity")

    def __init__(self, price: int) -> None:
        super().__init__()
        self.price = price
        self.quantity = 0  # live quantity resting here
        self.order_count = 0  # live orders resting here
        self.dead = 0  # entries in the queue that have left the book


class BookSide:
    """The levels of one side, keyed so that the smallest key is the best price."""

    __slots__ = ("best", "is_buy", "levels", "side")

    def __init__(self, side: Side) -> None:
        self.side = side
        self.is_buy = side is _BUY
        self.levels: SortedDict = SortedDict()
        self.best = _NO_LEVEL  # key of the best level

    def key(self, price: int) -> int:
        return -price if self.is_buy else price

    def reset_best(self) -> None:
        levels = self.levels
        self.best = levels.peekitem(0)[0] if levels else _NO_LEVEL

    def best_level(self) -> Level | None:
        return self.levels.get(self.best)  # type: ignore[no-any-return]

    def top(self, depth: int) -> tuple[PriceLevel, ...]:
        return tuple(
            PriceLevel(level.price, level.quantity, level.order_count)
            for level in islice(self.levels.values(), depth)
        )


@dataclasses.dataclass(slots=True)
class BookState:
    """Everything an OrderBook holds beyond its product: what a market image stores, so a
    restored book goes on exactly as the original would.

    Levels are best first, their queues as they are (entries that have left the book
    included). `orders` are the resting orders in acceptance order (mass cancel walks them),
    each the very object queued in its level. `expiries` is the heap as it is, stale entries
    included. `best_bid` / `best_ask` are the sides' sort keys of their best level."""

    status: TradingStatus
    sequence: int
    trade_sequence: int
    bids: list[Level]
    asks: list[Level]
    best_bid: int
    best_ask: int
    orders: dict[int, Order]
    expiries: list[tuple[int, int]]
    next_expiry: int
    band: PriceBand | None = None  # None: products.toml's (an image from before bands)


class OrderBook:
    """Price-time priority book for one product. Commands in, events out."""

    def __init__(self, product: Product, status: TradingStatus | None = None) -> None:
        self.product = product
        self.status: TradingStatus = product.status if status is None else status
        self.sequence = 0  # last event sequence number; gapless
        self.trade_sequence = 0  # last trade number; gapless, trades only
        self._tick = product.tick
        self._lot = product.lot
        self._max_quantity = product.max_quantity
        self._band_low = product.band_low
        self._band_high = product.band_high
        self._bids = BookSide(_BUY)
        self._asks = BookSide(_SELL)
        self._orders: dict[int, Order] = {}  # resting orders by order id, in acceptance order
        self._expiries: list[tuple[int, int]] = []  # heap of (expire_time, order_id)
        self._next_expiry = _NEVER
        self._handlers: dict[type, Callable[[Any], list[Record]]] = {
            Order: self.submit,
            CancelOrder: self.cancel,
            ReplaceOrder: self.replace,
            MassCancel: self.mass_cancel,
            SetTradingStatus: self.set_status,
            SetPriceBand: self.set_band,
            AdvanceTime: self.advance_time,
        }

    # ----------------------------------------------------------------- commands

    def apply(self, command: Command) -> list[Record]:
        """Apply any command; the one entry point the engine service uses."""
        return self._handlers[type(command)](command)

    def submit(self, order: Order) -> list[Record]:
        """Take a new order: reject it, or accept it, match it, and rest what is left.
        The book owns `order` from here on. This is the hot path: kept flat on purpose."""
        ts = order.timestamp
        events: list[Record] = []
        if ts >= self._next_expiry:
            self._expire_due(ts, events)
        price = order.price
        quantity = order.quantity
        tif = order.time_in_force
        # A plain GTC limit order that breaks no rule passes this one test; anything else
        # goes through the full rule list, which names the rule it breaks.
        if not (
            price is not None
            and tif is _GTC
            and self.status is _OPEN
            and 0 < quantity <= self._max_quantity
            and not quantity % self._lot
            and not price % self._tick
            and self._band_low <= price <= self._band_high
            and order.order_type is _LIMIT
            and not order.post_only
            and order.expire_time is None
            and order.order_id not in self._orders
        ):
            reason = self._check_new(order)
            if reason is not None:
                self.sequence += 1
                events.append(
                    (OrderRejected, self.sequence, ts, order.order_id, order.member, reason)
                )
                return events
        side = order.side
        order.remaining = quantity
        order.filled = 0
        seq = self.sequence = self.sequence + 1
        events.append(
            (
                OrderAccepted,
                seq,
                ts,
                order.order_id,
                order.member,
                order.client_order_id,
                side,
                price,
                quantity,
            )
        )
        if side is _BUY:
            opposite = self._asks
            limit_key = _MARKET_KEY if price is None else price
        else:
            opposite = self._bids
            limit_key = _MARKET_KEY if price is None else -price
        if opposite.best <= limit_key:
            if tif is _FOK and not self._can_fill(order, limit_key, opposite):
                self._end(order, Reason.FILL_OR_KILL, ts, events)
                return events
            if self._match(order, limit_key, opposite, ts, events):
                self._end(order, Reason.SELF_TRADE, ts, events)
                return events
            if not order.remaining:
                return events
        if price is None or tif is _IOC:  # a market FOK order is killed as FOK, not IOC
            self._end(
                order,
                Reason.FILL_OR_KILL if tif is _FOK else Reason.IMMEDIATE_OR_CANCEL,
                ts,
                events,
            )
        elif tif is _FOK:
            self._end(order, Reason.FILL_OR_KILL, ts, events)
        else:  # rest it; this is _rest() written out, as most orders end here
            if side is _BUY:
                own = self._bids
                key = -price
            else:
                own = self._asks
                key = price
            level = own.levels.get(key)
            if level is None:
                level = own.levels[key] = Level(price)
                if key < own.best:
                    own.best = key
            level.append(order)
            level.quantity += order.remaining
            level.order_count += 1
            self._orders[order.order_id] = order
            if tif is _GTD:
                self._schedule_expiry(order)
            self.sequence = seq = self.sequence + 1
            events.append((LevelChanged, seq, ts, side, price, level.quantity, level.order_count))
        return events

    def cancel(self, cmd: CancelOrder) -> list[Record]:
        ts = cmd.timestamp
        events: list[Record] = []
        if ts >= self._next_expiry:
            self._expire_due(ts, events)
        order = self._orders.get(cmd.order_id)
        if order is None or order.member != cmd.member:
            # Someone else's order is as unknown to a member as a missing one.
            self.sequence += 1
            events.append(
                (OrderRejected, self.sequence, ts, cmd.order_id, cmd.member, Reason.UNKNOWN_ORDER)
            )
            return events
        remaining, level_quantity, level_count = self._unlink(order)
        seq = self.sequence
        side = order.side
        price = order.price
        events.append(
            (
                OrderCancelled,
                seq + 1,
                ts,
                order.order_id,
                order.member,
                order.client_order_id,
                side,
                price,
                remaining,
                order.filled,
                _REQUESTED,
            )
        )
        events.append((LevelChanged, seq + 2, ts, side, price, level_quantity, level_count))
        self.sequence = seq + 2
        return events

    def replace(self, cmd: ReplaceOrder) -> list[Record]:
        ts = cmd.timestamp
        events = self._expired_by(ts)
        order = self._orders.get(cmd.order_id)
        reason = self._check_replace(cmd, order)
        if reason is not None or order is None:
            self.sequence += 1
            events.append(
                (
                    OrderRejected,
                    self.sequence,
                    ts,
                    cmd.order_id,
                    cmd.member,
                    reason or Reason.UNKNOWN_ORDER,
                )
            )
            return events
        price = _resting_price(order) if cmd.price is None else cmd.price
        quantity = order.quantity if cmd.quantity is None else cmd.quantity
        if cmd.client_order_id is not None:
            order.client_order_id = cmd.client_order_id
        if price == order.price and quantity < order.quantity:
            self._reduce(order, quantity, ts, events)
        else:
            self._move(order, price, quantity, ts, events)
        return events

    def mass_cancel(self, cmd: MassCancel) -> list[Record]:
        ts = cmd.timestamp
        events = self._expired_by(ts)
        for order in [o for o in self._orders.values() if o.member == cmd.member]:
            self._remove(order, Reason.MASS_CANCEL, ts, events)
        return events

    def set_status(self, cmd: SetTradingStatus) -> list[Record]:
        """Open, halt or close trading. A halt keeps the book; cancels are still accepted."""
        ts = cmd.timestamp
        events = self._expired_by(ts)
        self.status = cmd.status
        self.sequence += 1
        events.append((StatusChanged, self.sequence, ts, cmd.status))
        return events

    def set_band(self, cmd: SetPriceBand) -> list[Record]:
        """Check new orders and replaces against low..high from now on. Orders resting
        outside the new band stay, as they were accepted: they still trade, and may be
        cancelled or changed in quantity; a replace that gives a price needs one inside."""
        ts = cmd.timestamp
        events = self._expired_by(ts)
        self._band_low = cmd.low
        self._band_high = cmd.high
        self.sequence += 1
        events.append((BandChanged, self.sequence, ts, cmd.low, cmd.high))
        return events

    def advance_time(self, cmd: AdvanceTime) -> list[Record]:
        return self._expired_by(cmd.timestamp)

    # ----------------------------------------------------------------- queries

    @property
    def band(self) -> PriceBand:
        """The price band in force: products.toml's until a SetPriceBand."""
        return PriceBand(self._band_low, self._band_high)

    def order(self, order_id: int) -> Order | None:
        """The resting order with that id, if it is in the book."""
        return self._orders.get(order_id)

    def orders(self) -> Iterator[Order]:
        """Resting orders in acceptance order."""
        return iter(self._orders.values())

    def best_bid(self) -> PriceLevel | None:
        level = self._bids.best_level()
        return None if level is None else PriceLevel(level.price, level.quantity, level.order_count)

    def best_ask(self) -> PriceLevel | None:
        level = self._asks.best_level()
        return None if level is None else PriceLevel(level.price, level.quantity, level.order_count)

    def depth(self, levels: int = 10) -> Depth:
        """Top-N level-2 snapshot, as of event `sequence`."""
        return Depth(
            self.product.symbol, self.sequence, self._bids.top(levels), self._asks.top(levels)
        )

    def queue(self, side: Side, price: int) -> list[int]:
        """Order ids resting at one price, in time priority."""
        book_side = self._bids if side is _BUY else self._asks
        level = book_side.levels.get(book_side.key(price))
        return [] if level is None else [o.order_id for o in level if o.remaining]

    # ----------------------------------------------------------------- image

    def export_state(self) -> BookState:
        """The book's whole state, for a market image. A view, not a copy: encode it before
        the book takes another command."""
        return BookState(
            self.status,
            self.sequence,
            self.trade_sequence,
            list(self._bids.levels.values()),
            list(self._asks.levels.values()),
            self._bids.best,
            self._asks.best,
            self._orders,
            self._expiries,
            self._next_expiry,
            self.band,
        )

    def restore_state(self, state: BookState) -> None:
        """Continue from `state` (from `export_state`, through an image) instead of where
        this book is. The book owns the levels and orders from here on."""
        for side, levels, best in (
            (self._bids, state.bids, state.best_bid),
            (self._asks, state.asks, state.best_ask),
        ):
            side.levels = SortedDict((side.key(level.price), level) for level in levels)
            if len(side.levels) != len(levels):
                raise ValueError(f"two {side.side} levels at one price")
            side.best = best
        self.status = state.status
        self.sequence = state.sequence
        self.trade_sequence = state.trade_sequence
        self._orders = state.orders
        self._expiries = state.expiries
        self._next_expiry = state.next_expiry
        if state.band is not None:
            self._band_low, self._band_high = state.band.low, state.band.high

    # ----------------------------------------------------------------- checks

    def _check_new(self, cmd: Order) -> Reason | None:
        reason = status_problem(self.status) or order_problem(
            self.product,
            cmd.order_type,
            cmd.price,
            cmd.quantity,
            cmd.time_in_force,
            cmd.expire_time,
            cmd.post_only,
            cmd.timestamp,
            self.band,
        )
        if reason is not None:
            return reason
        price = cmd.price
        if cmd.post_only and price is not None:
            if cmd.side is _BUY:
                if self._asks.best <= price:
                    return Reason.POST_ONLY_WOULD_TAKE
            elif self._bids.best <= -price:
                return Reason.POST_ONLY_WOULD_TAKE
        if cmd.order_id in self._orders:
            return Reason.DUPLICATE_ORDER_ID
        return None

    def _check_replace(self, cmd: ReplaceOrder, order: Order | None) -> Reason | None:
        if order is None or order.member != cmd.member:
            return Reason.UNKNOWN_ORDER
        reason = status_problem(self.status) or replace_problem(
            self.product, cmd.price, cmd.quantity, self.band
        )
        if reason is not None:
            return reason
        if cmd.quantity is not None and cmd.quantity <= order.filled:
            return Reason.QUANTITY_BELOW_FILLED
        price = _resting_price(order) if cmd.price is None else cmd.price
        quantity = order.quantity if cmd.quantity is None else cmd.quantity
        if price == order.price and quantity == order.quantity:
            return Reason.NOTHING_TO_REPLACE
        if order.post_only and price != order.price:
            is_buy = order.side is _BUY
            opposite = self._asks if is_buy else self._bids
            if opposite.best <= (price if is_buy else -price):
                return Reason.POST_ONLY_WOULD_TAKE
        return None

    # ----------------------------------------------------------------- matching

    def _match(
        self, taker: Order, limit_key: int, opposite: BookSide, ts: int, events: list[Record]
    ) -> bool:
        """Trade `taker` against `opposite` while prices cross. True if self-trade
        prevention stopped the taker (its remainder is then to be cancelled)."""
        levels = opposite.levels
        orders = self._orders
        append = events.append
        taker_id = taker.order_id
        member = taker.member
        taker_cid = taker.client_order_id
        stp = taker.stp
        aggressor = taker.side
        maker_side = opposite.side
        remaining = taker.remaining
        filled = taker.filled
        seq = self.sequence
        trade_seq = self.trade_sequence
        stopped = False
        while remaining and opposite.best <= limit_key:
            key = opposite.best
            level = levels[key]
            price = level.price
            before = level.quantity
            while remaining and level.order_count:
                maker = level[0]
                maker_remaining = maker.remaining
                if not maker_remaining:  # left the book earlier; drop the entry
                    level.popleft()
                    level.dead -= 1
                    continue
                if maker.member == member:
                    if stp is _CANCEL_NEWEST:
                        stopped = True
                        break
                    level.popleft()
                    level.order_count -= 1
                    level.quantity -= maker_remaining
                    maker.remaining = 0
                    del orders[maker.order_id]
                    seq += 1
                    append(
                        (
                            OrderCancelled,
                            seq,
                            ts,
                            maker.order_id,
                            maker.member,
                            maker.client_order_id,
                            maker_side,
                            price,
                            maker_remaining,
                            maker.filled,
                            Reason.SELF_TRADE,
                        )
                    )
                    if stp is _CANCEL_BOTH:
                        stopped = True
                        break
                    continue
                fill = remaining if remaining < maker_remaining else maker_remaining
                remaining -= fill
                filled += fill
                maker_remaining -= fill
                maker.remaining = maker_remaining
                maker_filled = maker.filled + fill
                maker.filled = maker_filled
                level.quantity -= fill
                trade_seq += 1
                seq += 1
                append(
                    (
                        Trade,
                        seq,
                        ts,
                        trade_seq,
                        price,
                        fill,
                        aggressor,
                        taker_id,
                        member,
                        taker_cid,
                        filled,
                        remaining,
                        maker.order_id,
                        maker.member,
                        maker.client_order_id,
                        maker_filled,
                        maker_remaining,
                    )
                )
                if not maker_remaining:
                    level.popleft()
                    level.order_count -= 1
                    del orders[maker.order_id]
            if level.quantity != before:
                seq += 1
                append(
                    (LevelChanged, seq, ts, maker_side, price, level.quantity, level.order_count)
                )
            if not level.order_count:
                del levels[key]
                opposite.best = levels.peekitem(0)[0] if levels else _NO_LEVEL
            if stopped:
                break
        taker.remaining = remaining
        taker.filled = filled
        self.sequence = seq
        self.trade_sequence = trade_seq
        return stopped

    def _can_fill(self, taker: Order, limit_key: int, opposite: BookSide) -> bool:
        """Would `taker` fill in full right now? Walks the queues as matching would,
        including where self-trade prevention would stop it."""
        needed = taker.remaining
        member = taker.member
        cancel_oldest = taker.stp is SelfTradePrevention.CANCEL_OLDEST
        for level in opposite.levels.values():
            if opposite.key(level.price) > limit_key:
                return False
            for maker in level:
                if not maker.remaining:
                    continue
                if maker.member == member:
                    if cancel_oldest:
                        continue
                    return False
                needed -= maker.remaining
                if needed <= 0:
                    return True
        return False

    # ----------------------------------------------------------------- book keeping

    def _rest(self, order: Order, ts: int, events: list[Record]) -> None:
        price: int = order.price  # type: ignore[assignment]  # only limit orders rest
        if order.side is _BUY:
            side = self._bids
            key = -price
        else:
            side = self._asks
            key = price
        level = side.levels.get(key)
        if level is None:
            level = Level(price)
            side.levels[key] = level
            if key < side.best:
                side.best = key
        level.append(order)
        level.quantity += order.remaining
        level.order_count += 1
        self._orders[order.order_id] = order
        if order.expire_time is not None:
            self._schedule_expiry(order)
        self.sequence += 1
        events.append(
            (LevelChanged, self.sequence, ts, side.side, price, level.quantity, level.order_count)
        )

    def _expired_by(self, ts: int) -> list[Record]:
        """A command's events start with the GTD orders due by its timestamp. (`submit` and
        `cancel`, the hot paths, do this inline.)"""
        events: list[Record] = []
        if ts >= self._next_expiry:
            self._expire_due(ts, events)
        return events

    def _schedule_expiry(self, order: Order) -> None:
        expire_time: int = order.expire_time  # type: ignore[assignment]
        heappush(self._expiries, (expire_time, order.order_id))
        if expire_time < self._next_expiry:
            self._next_expiry = expire_time

    def _unlink(self, order: Order) -> tuple[int, int, int]:
        """Take a resting order out of its level. Returns what it had left, and the level's
        quantity and order count after; the caller reports the order, then the level."""
        price: int = order.price  # type: ignore[assignment]  # only limit orders rest
        if order.side is _BUY:
            side = self._bids
            key = -price
        else:
            side = self._asks
            key = price
        level: Level = side.levels[key]
        remaining = order.remaining
        level.order_count -= 1
        level.quantity -= remaining
        order.remaining = 0
        del self._orders[order.order_id]
        if not level.order_count:
            del side.levels[key]
            if key == side.best:
                side.reset_best()
        elif level[0] is order:
            level.popleft()
        elif level[-1] is order:
            level.pop()
        else:  # leave it queued, marked dead; compact once the dead outnumber the live
            level.dead += 1
            if level.dead > _DEAD_ENTRIES_BEFORE_COMPACTING and level.dead > level.order_count:
                live = [o for o in level if o.remaining]
                level.clear()
                level.extend(live)
                level.dead = 0
        return remaining, level.quantity, level.order_count

    def _remove(self, order: Order, reason: Reason | None, ts: int, events: list[Record]) -> None:
        """Take a resting order out of the book and report it -- cancelled for `reason`, or
        expired if there is none -- then the level change."""
        remaining, level_quantity, level_count = self._unlink(order)
        seq = self.sequence
        ended = (order.order_id, order.member, order.client_order_id, order.side, order.price)
        if reason is None:
            events.append((OrderExpired, seq + 1, ts, *ended, remaining, order.filled))
        else:
            events.append((OrderCancelled, seq + 1, ts, *ended, remaining, order.filled, reason))
        events.append(
            (LevelChanged, seq + 2, ts, order.side, order.price, level_quantity, level_count)
        )
        self.sequence = seq + 2

    def _end(self, order: Order, reason: Reason, ts: int, events: list[Record]) -> None:
        """Cancel what is left of an order that never rested (IOC, FOK, market, STP)."""
        remaining = order.remaining
        order.remaining = 0
        self.sequence += 1
        events.append(
            (
                OrderCancelled,
                self.sequence,
                ts,
                order.order_id,
                order.member,
                order.client_order_id,
                order.side,
                order.price,
                remaining,
                order.filled,
                reason,
            )
        )

    def _reduce(self, order: Order, quantity: int, ts: int, events: list[Record]) -> None:
        """Replace that only lowers the quantity: the order keeps its place in the queue."""
        cut = order.quantity - quantity
        side = self._bids if order.side is _BUY else self._asks
        level: Level = side.levels[side.key(order.price)]  # type: ignore[arg-type]
        order.quantity = quantity
        order.remaining -= cut
        level.quantity -= cut
        seq = self.sequence
        events.append(
            (
                OrderReplaced,
                seq + 1,
                ts,
                order.order_id,
                order.member,
                order.client_order_id,
                order.side,
                order.price,
                quantity,
                order.remaining,
                order.filled,
                True,
            )
        )
        events.append(
            (LevelChanged, seq + 2, ts, order.side, order.price, level.quantity, level.order_count)
        )
        self.sequence = seq + 2

    def _move(self, order: Order, price: int, quantity: int, ts: int, events: list[Record]) -> None:
        """Replace that changes the price or raises the quantity: the order goes to the back
        of the queue at its (new) price, and may trade at once if the new price crosses."""
        _, level_quantity, level_count = self._unlink(order)
        moved = dataclasses.replace(order, price=price, quantity=quantity)
        moved.filled = order.filled
        moved.remaining = quantity - order.filled
        seq = self.sequence
        events.append(
            (
                OrderReplaced,
                seq + 1,
                ts,
                moved.order_id,
                moved.member,
                moved.client_order_id,
                moved.side,
                price,
                quantity,
                moved.remaining,
                moved.filled,
                False,
            )
        )
        events.append(
            (LevelChanged, seq + 2, ts, order.side, order.price, level_quantity, level_count)
        )
        self.sequence = seq + 2
        is_buy = moved.side is _BUY
        opposite = self._asks if is_buy else self._bids
        limit_key = price if is_buy else -price
        if opposite.best <= limit_key and self._match(moved, limit_key, opposite, ts, events):
            self._end(moved, Reason.SELF_TRADE, ts, events)
        elif moved.remaining:
            self._rest(moved, ts, events)

    def _expire_due(self, now: int, events: list[Record]) -> None:
        heap = self._expiries
        while heap and heap[0][0] <= now:
            expire_time, order_id = heappop(heap)
            order = self._orders.get(order_id)
            if order is None or order.expire_time != expire_time:
                continue  # already gone, or moved and rescheduled
            self._remove(order, None, now, events)
        self._next_expiry = heap[0][0] if heap else _NEVER
