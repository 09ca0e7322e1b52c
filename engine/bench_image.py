"""Cost of a market image: encode and decode one product's Market with a deep book.

    python -m engine.bench_image --orders 100000

Builds the Market through its input (so the member and request indexes fill as in a
session): N resting limit orders from 1 000 members over 200 levels a side, every tenth
GTD, plus a tenth more orders cancelled from the middle of their queues (dead entries).
Then times encode_image and decode_image, best of 3. The last line printed is one JSON
object. The engine pauses matching for this long each time it publishes an image.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Any

from rex.protocol import CancelRequest, EngineInput, InputKind, NewOrderRequest
from rex.vocabulary import Side, TimeInForce

from .bench import workload_product
from .image import decode_image, encode_image
from .market import NS_PER_MS, Market
from .runtime import settle_memory

LEVELS = 200  # a side
TICK = 50
REFERENCE = 500_000
MEMBERS = 1_000
START = 1_800_000_000 * 1_000_000_000  # ns; the inputs' clock


def build_market(orders: int) -> Market:
    """A Market with `orders` resting orders and some dead entries behind cancels."""
    header = {"product": "PRND-OX", "tick": TICK, "lot": 100, "reference_price": REFERENCE}
    product = workload_product(header)
    market = Market(product)
    symbol = product.symbol
    extra = orders // 10
    placed = orders + extra
    for n in range(placed):
        member = f"member-{n % MEMBERS:04d}"
        side = Side.BUY if n % 2 else Side.SELL
        offset = TICK * (1 + (n // 2) % LEVELS)
        price = REFERENCE - offset if side is Side.BUY else REFERENCE + offset
        now = START + n * 1_000
        gtd = n % 10 == 0
        request = NewOrderRequest(
            f"c{n}",
            symbol,
            side,
            100 * (1 + n % 7),
            price=price,
            time_in_force=TimeInForce.GTD if gtd else TimeInForce.GTC,
            expire_time=now // NS_PER_MS + 86_400_000 if gtd else None,
        )
        market.handle(EngineInput(InputKind.NEW_ORDER, symbol, now, member, f"r{n}", request))
    for n in range(3, 3 + 11 * extra, 11):  # from the middle of their queues
        now = START + (placed + n) * 1_000
        cancel = CancelRequest(f"x{n}", f"c{n}", symbol)
        member = f"member-{n % MEMBERS:04d}"
        market.handle(EngineInput(InputKind.CANCEL, symbol, now, member, f"x{n}", cancel))
    return market


def _best_of(runs: int, work: Any) -> tuple[float, Any]:
    best = float("inf")
    result = None
    for _ in range(runs):
        started = time.perf_counter()
        result = work()
        best = min(best, time.perf_counter() - started)
    return best, result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m engine.bench_image", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--orders", type=int, default=100_000, help="resting orders")
    args = parser.parse_args(argv)
    market = build_market(args.orders)
    resting = sum(1 for _ in market.book.orders())
    settle_memory()
    through = 1
    encode_s, image = _best_of(3, lambda: encode_image(market, through))
    decode_s, (restored, _) = _best_of(
        3, lambda: decode_image(market.product, image, snapshot_interval_ns=0)
    )
    if encode_image(restored, through) != image:
        print("engine.bench_image: the restored market differs", file=sys.stderr)
        return 1
    print(
        f"image of {resting:,} resting orders: {len(image):,} bytes, "
        f"encode {encode_s * 1000:.1f} ms, decode {decode_s * 1000:.1f} ms",
        file=sys.stderr,
    )
    figures = {
        "orders": resting,
        "image_bytes": len(image),
        "encode_s": round(encode_s, 4),
        "decode_s": round(decode_s, 4),
    }
    print(json.dumps(figures))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
