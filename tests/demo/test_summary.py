"""What the demo prints at the end (demo/summary.py), from execution reports made by hand:
each fill once, the trades table in trade order, positions and cash exact, the books.

PRND-OX: 1 000 kg per price unit, so 1 000 kg at 415 000 CNY/t is 415 000.00 CNY."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from demo.summary import Fill, book_lines, fills, positions_table, trades_table, value
from tests.settlement_worker.factories import product

PRODUCTS = {"PRND-OX": product()}


def report(trade: int, member: str, side: str, price: int, quantity: int) -> dict[str, Any]:
    return {
        "exec_id": f"x-{trade}-{side}",
        "trade_id": f"PRND-OX-{trade}",
        "member": member,
        "product": "PRND-OX",
        "side": side,
        "last_price": price,
        "last_quantity": quantity,
    }


def both_sides(trade: int, price: int, quantity: int) -> list[Fill]:
    return fills(
        [
            report(trade, "ganzhou-magnet", "buy", price, quantity),
            report(trade, "baotou-metals", "sell", price, quantity),
        ]
    )


def test_each_fill_is_counted_once_and_reports_without_a_trade_are_not_fills() -> None:
    fill = report(1, "ganzhou-magnet", "buy", 415_000, 1_000)
    new = {"exec_id": "x-0", "trade_id": None, "member": "ganzhou-magnet"}
    assert fills([new, fill, dict(fill)]) == [
        Fill("PRND-OX-1", "ganzhou-magnet", "PRND-OX", "buy", 415_000, 1_000)
    ]


def test_value_is_exact_in_currency_units() -> None:
    assert value(PRODUCTS["PRND-OX"], 415_050, 100) == Decimal("41505")
    assert value(PRODUCTS["PRND-OX"], 415_050, 1) == Decimal("415.05")


def test_the_trades_table_names_buyer_seller_and_value_in_trade_order() -> None:
    lines = trades_table(both_sides(10, 415_000, 1_000) + both_sides(9, 415_050, 100), PRODUCTS)
    assert lines[0].split() == ["trade", "product", "quantity", "price", "buyer", "seller", "value"]
    assert [line.split() for line in lines[1:]] == [
        [
            "PRND-OX-9",
            "PRND-OX",
            "100",
            "kg",
            "415,050",
            "ganzhou-magnet",
            "baotou-metals",
            "41,505.00",
            "CNY",
        ],
        [
            "PRND-OX-10",
            "PRND-OX",
            "1,000",
            "kg",
            "415,000",
            "ganzhou-magnet",
            "baotou-metals",
            "415,000.00",
            "CNY",
        ],
    ]


def test_positions_net_goods_and_cash_per_member() -> None:
    lines = positions_table(both_sides(1, 415_000, 1_000) + both_sides(2, 415_050, 100), PRODUCTS)
    assert [line.split() for line in lines] == [
        ["baotou-metals", "-1,100", "kg", "PRND-OX", "+456,505.00", "CNY"],
        ["ganzhou-magnet", "+1,100", "kg", "PRND-OX", "-456,505.00", "CNY"],
    ]


def test_a_book_shows_its_best_levels_and_a_quiet_product_says_so() -> None:
    book = {"bids": [[415_000, 300, 1], [414_950, 100, 1]], "asks": []}
    assert book_lines("PRND-OX", book, depth=1) == [
        f"{'PRND-OX':<10} bids {'300@415,000':<36} asks -"
    ]
    assert book_lines("DY-OX", None) == ["DY-OX: no activity"]
