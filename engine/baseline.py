"""The minimal price-time book the benchmark measures REX against.

Deliberately bare: SortedDict of price -> deque of order ids, a dict of remaining
quantities, no events, no validation, no self-trade prevention. It is the yardstick
for "how fast can a straightforward pure-Python book go", not a part of the exchange.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable

from sortedcontainers import SortedDict

TradeSink = Callable[[int, int, int, int], None]


class MinimalBook:
    __slots__ = ("asks", "bids", "remaining", "side_price")

    def __init__(self) -> None:
        self.bids: SortedDict = SortedDict()
        self.asks: SortedDict = SortedDict()
        self.remaining: dict[int, int] = {}
        self.side_price: dict[int, tuple[bool, int]] = {}

    def add(
        self, order_id: int, is_buy: bool, price: int, quantity: int, on_trade: TradeSink
    ) -> None:
        remaining = self.remaining
        if is_buy:
            book = self.asks
            while quantity and book:
                level_price, level = book.peekitem(0)
                if level_price > price:
                    break
                quantity = self._match(order_id, level_price, level, quantity, on_trade)
                if not level:
                    del book[level_price]
            own = self.bids
        else:
            book = self.bids
            while quantity and book:
                level_price, level = book.peekitem(-1)
                if level_price < price:
                    break
                quantity = self._match(order_id, level_price, level, quantity, on_trade)
                if not level:
                    del book[level_price]
            own = self.asks
        if quantity:
            level = own.get(price)
            if level is None:
                level = own[price] = deque()
            level.append(order_id)
            remaining[order_id] = quantity
            self.side_price[order_id] = (is_buy, price)

    def _match(
        self, taker: int, price: int, level: deque[int], quantity: int, on_trade: TradeSink
    ) -> int:
        remaining = self.remaining
        while quantity and level:
            maker = level[0]
            available = remaining[maker]
            fill = quantity if quantity < available else available
            on_trade(taker, maker, price, fill)
            quantity -= fill
            if fill == available:
                level.popleft()
                del remaining[maker]
                del self.side_price[maker]
            else:
                remaining[maker] = available - fill
        return quantity

    def cancel(self, order_id: int) -> None:
        located = self.side_price.pop(order_id, None)
        if located is None:
            return
        is_buy, price = located
        del self.remaining[order_id]
        book = self.bids if is_buy else self.asks
        level = book[price]
        level.remove(order_id)
        if not level:
            del book[price]
