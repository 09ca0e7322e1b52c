"""A named deployment (REX_DEPLOYMENT=prod): members log in as prod.<id>; the gateway maps
the broker-verified login back to the member id, and everything downstream -- reports,
trades, routing keys -- carries the member id. A login that is not one of the
deployment's members is dead-lettered, never answered into a member's queue."""

from __future__ import annotations

import time
from typing import Any

from rex import topology
from rex.bus import Envelope
from rex.bus.memory import MemoryBus
from rex.protocol import pack
from tests.embedded import Exchange

DEPLOYMENT = "prod"


def send_as(exchange: Exchange, login: str, member: str, body: dict[str, Any]) -> None:
    """Publish an order logged in as ``login`` (user_id = the login, as RabbitMQ enforces),
    under routing key ``<member>.<product>`` (as the topic permission requires)."""
    bus = MemoryBus(exchange.broker, login)
    bus.start(topology.Topology(), lambda: None)
    bus.publish(
        Envelope(
            topology.REQUESTS,
            topology.request_key(member, body["product"]),
            pack(body),
            "new_order",
            f"{login}-{body['client_order_id']}",
            int(time.time()),
            user_id=login,
        )
    )
    exchange.run()


def order(cid: str, side: str) -> dict[str, Any]:
    return {
        "client_order_id": cid,
        "product": "PRND-OX",
        "side": side,
        "quantity": 100,
        "price": 500_000,
    }


def test_scoped_logins_trade_as_their_member_ids(exchange: Exchange) -> None:
    exchange.gateway.deployment = DEPLOYMENT
    send_as(exchange, "prod.alpha", "alpha", order("a1", "sell"))
    send_as(exchange, "prod.beta", "beta", order("b1", "buy"))
    alpha, beta = exchange.traders["alpha"], exchange.traders["beta"]
    assert [(r["status"], r["member"]) for r in alpha.answers("a1")] == [
        ("new", "alpha"),
        ("filled", "alpha"),
    ]
    assert [(r["status"], r["member"]) for r in beta.answers("b1")] == [("filled", "beta")]
    (trade,) = exchange.trades
    assert (trade["buyer"], trade["seller"]) == ("beta", "alpha")
    assert exchange.dead == []


def test_the_gateways_own_reject_of_a_scoped_login_reaches_its_member(exchange: Exchange) -> None:
    exchange.gateway.deployment = DEPLOYMENT
    send_as(exchange, "prod.alpha", "alpha", {**order("a1", "sell"), "product": "NOPE"})
    (report,) = exchange.traders["alpha"].reports
    assert (report["status"], report["reason"], report["member"]) == (
        "rejected",
        "unknown_product",
        "alpha",
    )
    assert report["exec_id"].startswith("gw-alpha-")


def test_a_login_of_another_deployment_is_dead_lettered_not_answered(exchange: Exchange) -> None:
    """alpha's plain login (an unnamed deployment's) and test.alpha are not prod's: answering
    them by name would put a report in prod's member alpha's queue."""
    exchange.gateway.deployment = DEPLOYMENT
    send_as(exchange, "alpha", "alpha", order("x1", "sell"))
    send_as(exchange, "test.alpha", "alpha", order("x2", "sell"))
    assert exchange.traders["alpha"].reports == []
    assert len(exchange.dead) == 2
    assert exchange.trades == []
