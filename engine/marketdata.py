"""Level-2 market data: depth snapshots, and a mirror that rebuilds depth from the
incremental `LevelChanged` events (what a market-data subscriber keeps)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

from sortedcontainers import SortedDict

from rex.vocabulary import Side

from .events import LevelChanged, Record


class PriceLevel(NamedTuple):
    price: int
    quantity: int
    orders: int


@dataclass(slots=True, frozen=True)
class Depth:
    """Top-N snapshot of a book, best price first on each side."""

    product: str
    sequence: int  # the book's event sequence the snapshot is consistent with
    bids: tuple[PriceLevel, ...]
    asks: tuple[PriceLevel, ...]

    @property
    def best_bid(self) -> PriceLevel | None:
        return self.bids[0] if self.bids else None

    @property
    def best_ask(self) -> PriceLevel | None:
        return self.asks[0] if self.asks else None


class DepthMirror:
    """Applies incremental level changes; `depth()` then equals the book's own snapshot."""

    def __init__(self, product: str) -> None:
        self.product = product
        self.sequence = 0
        self._bids: SortedDict = SortedDict()  # key -price: best first
        self._asks: SortedDict = SortedDict()

    def apply(self, records: list[Record]) -> None:
        for record in records:
            self.sequence = record[1]
            if record[0] is LevelChanged:
                _, _, _, side, price, quantity, orders = record
                levels = self._bids if side is Side.BUY else self._asks
                key = -price if side is Side.BUY else price
                if quantity:
                    levels[key] = PriceLevel(price, quantity, orders)
                else:
                    levels.pop(key, None)

    def depth(self, levels: int = 10) -> Depth:
        return Depth(
            self.product,
            self.sequence,
            tuple(self._bids.values()[:levels]),
            tuple(self._asks.values()[:levels]),
        )
