"""An exchange in one process on the memory bus: gateway, engine, members (the `exchange`
fixture of tests/conftest.py)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from demo.embedded import EmbeddedExchange
from rex.config import Member, Product

PRODUCTS = [
    Product(
        symbol="PRND-OX",
        name="Pr-Nd oxide",
        currency="CNY",
        price_unit="CNY/t",
        tick=50,
        quantity_unit="kg",
        lot=100,
        reference_price=500_000,
        band_percent=Decimal(10),
        quantity_per_price_unit=1000,
    ),
    Product(
        symbol="DY-OX",
        name="Dysprosium oxide",
        currency="CNY",
        price_unit="CNY/t",
        tick=500,
        quantity_unit="kg",
        lot=100,
        reference_price=1_800_000,
        band_percent=Decimal(7),
        quantity_per_price_unit=1000,
    ),
]
MEMBERS = {
    m: Member(id=m, name=m, password="x", rate_limit=rate)
    for m, rate in (("alpha", 1000), ("beta", 1000), ("slow", 2))
}


class Trader:
    """A member's connection in the embedded exchange."""

    def __init__(self, exchange: EmbeddedExchange, member: str) -> None:
        self.exchange = exchange
        self.member = member

    @property
    def reports(self) -> list[dict[str, Any]]:
        return self.exchange.reports[self.member]

    def send(self, kind: str, body: dict[str, Any], **props: Any) -> str:
        return self.exchange.send(self.member, kind, body, **props)

    def order(
        self, cid: str, side: str, quantity: int, price: int | None = None, **extra: Any
    ) -> str:
        body = {
            "client_order_id": cid,
            "product": extra.pop("product", "PRND-OX"),
            "side": side,
            "quantity": quantity,
            **extra,
        }
        if price is not None:
            body["price"] = price
        else:
            body.setdefault("order_type", "market")
        return self.send("new_order", body)

    def answers(self, cid: str) -> list[dict[str, Any]]:
        return [r for r in self.reports if r["client_order_id"] == cid]


class Exchange(EmbeddedExchange):
    def __init__(self) -> None:
        super().__init__(PRODUCTS, MEMBERS)
        self.engine.checkpoint_interval = 0.05
        self.traders = {m: Trader(self, m) for m in MEMBERS}
