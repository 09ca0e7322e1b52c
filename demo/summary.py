"""What the demo prints: the trades, the books and each member's position, computed from
the execution reports the members received."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from rex.config import Product


@dataclass(frozen=True, slots=True)
class Fill:
    trade_id: str
    member: str
    product: str
    side: str
    price: int
    quantity: int


def fills(reports: Iterable[Mapping[str, Any]]) -> list[Fill]:
    seen: set[tuple[str, str]] = set()
    out = []
    for r in reports:
        if r.get("trade_id") and (r["exec_id"], r["member"]) not in seen:
            seen.add((r["exec_id"], r["member"]))
            out.append(
                Fill(
                    r["trade_id"],
                    r["member"],
                    r["product"],
                    r["side"],
                    r["last_price"],
                    r["last_quantity"],
                )
            )
    return out


def value(product: Product, price: int, quantity: int) -> Decimal:
    """Trade value in currency units, exact."""
    return Decimal(price * quantity) / product.quantity_per_price_unit


def trades_table(all_fills: list[Fill], products: Mapping[str, Product]) -> list[str]:
    by_trade: dict[str, dict[str, Fill]] = defaultdict(dict)
    for f in all_fills:
        by_trade[f.trade_id][f.side] = f
    lines = [
        f"{'trade':<14}{'product':<10}{'quantity':>10}{'price':>12}  {'buyer':<24}{'seller':<24}"
        f"{'value':>14}"
    ]
    for trade_id in sorted(by_trade, key=lambda t: (t.rsplit("-", 1)[0], int(t.rsplit("-", 1)[1]))):
        sides = by_trade[trade_id]
        any_fill = next(iter(sides.values()))
        product = products[any_fill.product]
        unit = product.quantity_unit
        lines.append(
            f"{trade_id:<14}{any_fill.product:<10}{any_fill.quantity:>7,} {unit:<2}"
            f"{any_fill.price:>12,}  {getattr(sides.get('buy'), 'member', '?'):<24}"
            f"{getattr(sides.get('sell'), 'member', '?'):<24}"
            f"{value(product, any_fill.price, any_fill.quantity):>11,.2f} {product.currency}"
        )
    return lines


def positions_table(all_fills: list[Fill], products: Mapping[str, Product]) -> list[str]:
    holdings: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    cash: dict[str, dict[str, Decimal]] = defaultdict(lambda: defaultdict(Decimal))
    for f in all_fills:
        product = products[f.product]
        sign = 1 if f.side == "buy" else -1
        holdings[f.member][f.product] += sign * f.quantity
        cash[f.member][product.currency] -= sign * value(product, f.price, f.quantity)
    lines = []
    for member in sorted(holdings):
        goods = ", ".join(
            f"{q:+,} {products[p].quantity_unit} {p}"
            for p, q in sorted(holdings[member].items())
            if q
        )
        money = ", ".join(f"{v:+,.2f} {c}" for c, v in sorted(cash[member].items()))
        lines.append(f"{member:<24}{goods:<56}{money}")
    return lines


def book_lines(product: str, book: Mapping[str, Any] | None, depth: int = 3) -> list[str]:
    if book is None:
        return [f"{product}: no activity"]
    bids = [f"{q:,}@{p:,}" for p, q, _ in book["bids"][:depth]]
    asks = [f"{q:,}@{p:,}" for p, q, _ in book["asks"][:depth]]
    return [f"{product:<10} bids {' '.join(bids) or '-':<36} asks {' '.join(asks) or '-'}"]
