"""Replay a workload file through one OrderBook and print the figures.

    python -m engine.bench --workload ../shared/workloads/book-1m.msgpack

The file is loaded and decoded first; only the replay is timed. The same run replays the
file through the minimal reference book (engine.baseline) for comparison, unless
--no-baseline. The last line printed is one JSON object.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import msgpack

from rex.config import Product
from rex.vocabulary import Side

from .baseline import MinimalBook
from .book import OrderBook
from .events import Trade, field_index
from .orders import CancelOrder, Order
from .runtime import settle_memory

WORKLOAD_FORMAT = "rex-book-workload/1"
TAKER = field_index(Trade, "taker_order_id")
MAKER = field_index(Trade, "maker_order_id")
PRICE = field_index(Trade, "price")
QUANTITY = field_index(Trade, "quantity")


@dataclass(slots=True)
class Workload:
    header: dict[str, Any]
    operations: list[list[int]]


@dataclass(slots=True)
class Result:
    orders: int
    seconds: float
    trades: int
    traded_quantity: int
    checksum: str

    @property
    def orders_per_s(self) -> float:
        return self.orders / self.seconds if self.seconds else 0.0


def load_workload(path: Path) -> Workload:
    with path.open("rb") as stream:
        unpacker = msgpack.Unpacker(stream, raw=False)
        header = next(unpacker)
        if not isinstance(header, dict) or header.get("format") != WORKLOAD_FORMAT:
            raise ValueError(f"{path}: not a {WORKLOAD_FORMAT} file")
        operations = list(unpacker)
    return Workload(header, operations)


def trade_checksum(trades: Iterable[tuple[int, int, int, int]]) -> tuple[str, int, int]:
    """sha256 over "taker maker price quantity\\n" lines, as the workload README defines."""
    digest = hashlib.sha256()
    count = quantity = 0
    for taker, maker, price, fill in trades:
        digest.update(f"{taker} {maker} {price} {fill}\n".encode())
        count += 1
        quantity += fill
    return digest.hexdigest(), count, quantity


def workload_product(header: dict[str, Any]) -> Product:
    return Product(
        symbol=str(header["product"]),
        name=str(header["product"]),
        currency="CNY",
        price_unit="CNY/t",
        tick=int(header["tick"]),
        quantity_unit="kg",
        lot=int(header["lot"]),
        reference_price=int(header["reference_price"]),
        band_percent=Decimal(10),
    )


def book_commands(workload: Workload) -> list[Order | CancelOrder]:
    """Decode the operations into the book's commands (each order its own member).
    This is part of loading, as decoding a request is the engine service's job."""
    buy, sell = Side.BUY, Side.SELL
    commands: list[Order | CancelOrder] = []
    for op in workload.operations:
        if op[0] == 0:
            _, order_id, is_buy, price, quantity = op
            commands.append(
                Order(order_id, str(order_id), buy if is_buy else sell, quantity, price)
            )
        else:
            commands.append(CancelOrder(op[1], str(op[1])))
    return commands


def replay_book(workload: Workload) -> Result:
    book = OrderBook(workload_product(workload.header))
    commands = book_commands(workload)
    submit, cancel = book.submit, book.cancel
    # Both books keep the same (taker, maker, price, quantity) tuple per trade for the checksum.
    trades: list[tuple[int, int, int, int]] = []
    keep = trades.append
    settle_memory()
    started = time.perf_counter()
    for command in commands:
        if command.__class__ is Order:
            before = book.trade_sequence
            records = submit(command)
            if book.trade_sequence != before:
                for record in records:
                    if record[0] is Trade:
                        keep((record[TAKER], record[MAKER], record[PRICE], record[QUANTITY]))
        else:
            cancel(command)  # type: ignore[arg-type]  # an order already filled: unknown_order
    seconds = time.perf_counter() - started
    checksum, count, quantity = trade_checksum(trades)
    return Result(len(commands), seconds, count, quantity, checksum)


def replay_baseline(workload: Workload) -> Result:
    book = MinimalBook()
    trades: list[tuple[int, int, int, int]] = []
    keep = trades.append

    def on_trade(taker: int, maker: int, price: int, quantity: int) -> None:
        keep((taker, maker, price, quantity))

    add, cancel = book.add, book.cancel
    settle_memory()
    started = time.perf_counter()
    for op in workload.operations:
        if op[0] == 0:
            add(op[1], op[2] == 1, op[3], op[4], on_trade)
        else:
            cancel(op[1])
    seconds = time.perf_counter() - started
    checksum, count, quantity = trade_checksum(trades)
    return Result(len(workload.operations), seconds, count, quantity, checksum)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m engine.bench", description=__doc__.split("\n")[0]
    )
    parser.add_argument(
        "--workload", type=Path, default=Path("../shared/workloads/book-1m.msgpack")
    )
    parser.add_argument(
        "--no-baseline", action="store_true", help="skip the minimal reference book"
    )
    args = parser.parse_args(argv)
    try:
        workload = load_workload(args.workload)
    except (OSError, ValueError, msgpack.UnpackException) as error:
        print(f"engine.bench: cannot load workload: {error}", file=sys.stderr)
        return 2
    header = workload.header
    expected = header.get("checksum")
    result = replay_book(workload)
    print(
        f"rex book:     {result.orders:,} operations in {result.seconds:.3f} s = "
        f"{result.orders_per_s:,.0f} ops/s, {result.trades:,} trades",
        file=sys.stderr,
    )
    figures: dict[str, Any] = {
        "orders": result.orders,
        "seconds": round(result.seconds, 4),
        "orders_per_s": round(result.orders_per_s),
        "trades": result.trades,
        "traded_quantity": result.traded_quantity,
        "checksum": result.checksum,
        "checksum_ok": result.checksum == expected,
    }
    if not args.no_baseline:
        baseline = replay_baseline(workload)
        print(
            f"minimal book: {baseline.orders:,} operations in {baseline.seconds:.3f} s = "
            f"{baseline.orders_per_s:,.0f} ops/s, {baseline.trades:,} trades",
            file=sys.stderr,
        )
        figures["baseline_orders_per_s"] = round(baseline.orders_per_s)
        figures["baseline_checksum_ok"] = baseline.checksum == expected
        figures["ratio_to_baseline"] = round(result.orders_per_s / baseline.orders_per_s, 3)
    print(json.dumps(figures))
    return 0 if result.checksum == expected else 1


if __name__ == "__main__":
    raise SystemExit(main())
