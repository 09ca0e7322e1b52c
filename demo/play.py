"""Play the session on a venue and print what happened."""

from __future__ import annotations

import sys
from typing import Any, TextIO

from rex.config import Product

from .session import SESSION
from .summary import book_lines, fills, positions_table, trades_table
from .venues import Venue


def describe(report: dict[str, Any]) -> str:
    line = f"{report['member']:<24}{report['status']:<18}{report.get('client_order_id') or '':<8}"
    if report.get("last_quantity"):
        line += f" {report['last_quantity']:,} @ {report['last_price']:,}"
    if report.get("reason") and report["status"] in ("rejected", "cancelled", "expired"):
        line += f" ({report['reason']})"
    return line


def play(venue: Venue, products: dict[str, Product], out: TextIO = sys.stdout) -> int:
    """Returns the number of steps whose first answer was not what the script expects."""
    reports: list[dict[str, Any]] = []
    surprises = 0
    for number, step in enumerate(SESSION, 1):
        print(f"\n{number:>2}. {step.note}", file=out)
        got = [
            r for r in venue.play(step) if not str(r.get("client_order_id")).startswith("probe-")
        ]
        reports.extend(got)
        for report in got:
            print(f"      {describe(report)}", file=out)
        first = next(
            (r for r in got if r.get("client_order_id") == step.body["client_order_id"]), None
        )
        if step.expect and (first is None or first["status"] not in step.expect):
            surprises += 1
            print(f"      !! expected {'/'.join(step.expect)}", file=out)
    all_fills = fills(reports)
    print("\nTrades", file=out)
    for line in trades_table(all_fills, products):
        print(f"  {line}", file=out)
    print("\nBooks (top 3 levels)", file=out)
    for symbol in products:
        book = venue.book(symbol)
        if book is not None and (book["bids"] or book["asks"]):
            for line in book_lines(symbol, book):
                print(f"  {line}", file=out)
    print("\nPositions (from each member's fills)", file=out)
    for line in positions_table(all_fills, products):
        print(f"  {line}", file=out)
    return surprises
