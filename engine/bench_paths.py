"""Cost per operation on each path through the book, REX against the minimal book.

    python -m engine.bench_paths [--orders N]

Three synthetic phases on one product: N buy orders resting over 200 price levels (the
*rest* path), every second one cancelled from the middle of its queue (*cancel*), then sell
orders that each take three resting orders, emptying levels as they go (*take*). Prints a
table and, last, one JSON object. This says where time goes; engine.bench is the headline.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable
from typing import Any

from rex.vocabulary import Side

from .baseline import MinimalBook
from .bench import workload_product
from .book import OrderBook
from .orders import CancelOrder, Order
from .runtime import settle_memory

LEVELS = 200
TICK = 50
LOW = 480_000


def _per_op(run: Callable[[], None], count: int) -> float:
    started = time.perf_counter()
    run()
    return (time.perf_counter() - started) / count * 1e9


def measure(orders: int) -> dict[str, dict[str, float]]:
    header = {"product": "X", "tick": TICK, "lot": 100, "reference_price": 500_000}
    product = workload_product(header)
    bids = [Order(i, str(i), Side.BUY, 100, LOW + (i % LEVELS) * TICK) for i in range(orders)]
    cancels = [CancelOrder(i, str(i)) for i in range(0, orders, 2)]
    sells = [Order(orders + i, str(orders + i), Side.SELL, 300, LOW) for i in range(orders // 6)]
    settle_memory()
    book = OrderBook(product)

    def rex_rest() -> None:
        for order in bids:
            book.submit(order)

    def rex_cancel() -> None:
        for cancel in cancels:
            book.cancel(cancel)

    def rex_take() -> None:
        for order in sells:
            book.submit(order)

    rex = {
        "rest": _per_op(rex_rest, len(bids)),
        "cancel": _per_op(rex_cancel, len(cancels)),
        "take": _per_op(rex_take, len(sells)),
    }
    minimal = MinimalBook()
    trades: list[tuple[int, int, int, int]] = []

    def on_trade(taker: int, maker: int, price: int, quantity: int) -> None:
        trades.append((taker, maker, price, quantity))

    def min_rest() -> None:
        for order in bids:
            minimal.add(order.order_id, True, order.price or 0, 100, on_trade)

    def min_cancel() -> None:
        for cancel in cancels:
            minimal.cancel(cancel.order_id)

    def min_take() -> None:
        for order in sells:
            minimal.add(order.order_id, False, order.price or 0, 300, on_trade)

    base = {
        "rest": _per_op(min_rest, len(bids)),
        "cancel": _per_op(min_cancel, len(cancels)),
        "take": _per_op(min_take, len(sells)),
    }
    return {"rex_ns": rex, "minimal_ns": base}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m engine.bench_paths")
    parser.add_argument("--orders", type=int, default=200_000)
    args = parser.parse_args(argv)
    figures = measure(args.orders)
    for path in ("rest", "cancel", "take"):
        rex, base = figures["rex_ns"][path], figures["minimal_ns"][path]
        print(f"{path:7s} rex {rex:7.0f} ns/op   minimal {base:7.0f} ns/op   x{rex / base:.2f}")
    out: dict[str, Any] = {k: {p: round(v) for p, v in d.items()} for k, d in figures.items()}
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
