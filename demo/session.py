"""The scripted trading session: several members, several products, crossing orders, a
partial fill, a sweep, cancels, a replace, a reject, a market order and a small firm."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class Step:
    member: str
    kind: str  # new_order | cancel | replace
    body: dict[str, Any]
    note: str = ""
    expect: tuple[str, ...] = field(default=())  # first-answer statuses the step should give


def order(
    member: str,
    cid: str,
    product: str,
    side: str,
    quantity: int,
    price: int | None,
    note: str = "",
    expect: str = "",
) -> Step:
    body: dict[str, Any] = {
        "client_order_id": cid,
        "product": product,
        "side": side,
        "quantity": quantity,
    }
    if price is None:
        body["order_type"] = "market"
        body["time_in_force"] = "IOC"
    else:
        body["price"] = price
    return Step(member, "new_order", body, note, (expect,) if expect else ())


def cancel(member: str, cid: str, orig: str, product: str, note: str = "") -> Step:
    return Step(
        member,
        "cancel",
        {"client_order_id": cid, "orig_client_order_id": orig, "product": product},
        note,
        ("cancelled",),
    )


def replace(member: str, cid: str, orig: str, product: str, note: str = "", **change: int) -> Step:
    return Step(
        member,
        "replace",
        {"client_order_id": cid, "orig_client_order_id": orig, "product": product, **change},
        note,
        ("replaced",),
    )


BT, GZ, NB, IM, XY = (
    "baotou-metals",
    "ganzhou-magnet",
    "ningbo-alloy",
    "inner-mongolia-trading",
    "xinyu-pvc",
)

SESSION: tuple[Step, ...] = (
    order(
        BT,
        "bt-1",
        "PRND-OX",
        "sell",
        2_000,
        415_500,
        "Baotou Metals offers 2 t of Pr-Nd oxide at 415,500 CNY/t",
        "new",
    ),
    order(
        IM,
        "im-1",
        "PRND-OX",
        "sell",
        1_000,
        416_000,
        "Inner Mongolia Trading offers 1 t at 416,000",
        "new",
    ),
    order(
        GZ,
        "gz-1",
        "PRND-OX",
        "buy",
        1_500,
        415_500,
        "Ganzhou Magnet buys 1.5 t at 415,500: a partial fill of Baotou's offer",
        "filled",
    ),
    order(
        NB,
        "nb-1",
        "PRND-OX",
        "buy",
        1_500,
        416_000,
        "Ningbo Alloy sweeps: Baotou's last 500 kg, then 1 t from Inner Mongolia",
        "partially_filled",
    ),
    order(
        GZ,
        "gz-2",
        "DY-OX",
        "buy",
        200,
        1_745_000,
        "Ganzhou bids for 200 kg of dysprosium oxide",
        "new",
    ),
    replace(GZ, "gz-3", "gz-2", "DY-OX", "Ganzhou raises its bid to 1,748,000", price=1_748_000),
    order(
        NB,
        "nb-2",
        "DY-OX",
        "buy",
        200,
        1_745_250,
        "Ningbo's bid is off the 500 CNY tick: rejected",
        "rejected",
    ),
    order(
        BT,
        "bt-2",
        "DY-OX",
        "sell",
        100,
        1_748_000,
        "Baotou sells 100 kg into Ganzhou's bid",
        "filled",
    ),
    cancel(GZ, "gz-4", "gz-3", "DY-OX", "Ganzhou cancels the rest of its bid"),
    order(
        XY,
        "xy-1",
        "RE-STAB",
        "buy",
        300,
        15_200,
        "Xinyu, a small PVC workshop, bids for 300 kg of stabiliser",
        "new",
    ),
    order(
        IM,
        "im-2",
        "RE-STAB",
        "sell",
        500,
        15_100,
        "Inner Mongolia sells 500 kg: 300 kg trade at Xinyu's 15,200",
        "partially_filled",
    ),
    order(BT, "bt-3", "ND-OX", "sell", 1_000, 420_000, "Baotou offers 1 t of Nd oxide", "new"),
    order(
        XY, "xy-2", "ND-OX", "buy", 100, None, "Xinyu buys 100 kg of Nd oxide at market", "filled"
    ),
)
