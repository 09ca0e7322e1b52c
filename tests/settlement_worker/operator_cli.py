"""The settlement commands' operator path without a broker: what `as_operator` would send
as the operator account of $REX_OPERATOR_URL is handed to a request desk on the test's
store, as the worker's desk would take it from RabbitMQ (user_id the account's login), and
the desk's answer comes back. The real path, through RabbitMQ and `python -m
settlement_worker`, is tests/system/test_operator_settlement*.py."""

from __future__ import annotations

import datetime as dt
import itertools
import time
from collections.abc import Callable, Mapping
from typing import Any

import pytest

from rex.bus import Delivery
from rex.operator_login import OperatorLogin
from rex.operators import OperatorAccount, Role
from rex.protocol import pack
from rex.settlement_protocol import SettlementAnswer
from settlement_worker import cli_support
from settlement_worker.requests.desk import Outcome, RequestDesk, RequestKind
from settlement_worker.store import Store
from tests.settlement_worker.helpers import MEMBERS

#: Operator accounts by name: one of each role, and a disabled one.
ACCOUNTS = {
    "settle": OperatorAccount("settle", "S", frozenset({Role.SETTLEMENT_OPS}), "E1"),
    "market": OperatorAccount("market", "M", frozenset({Role.MARKET_OPS}), "E2"),
    "audit": OperatorAccount("audit", "A", frozenset({Role.AUDIT}), "E3"),
    "gone": OperatorAccount("gone", "G", frozenset({Role.SETTLEMENT_OPS}), "E4", enabled=False),
}
_IDS = itertools.count(1)


class Stub(Delivery):
    """A settlement request as the broker delivers it: ``login`` is the verified user_id."""

    def __init__(
        self, kind: str, body: Mapping[str, Any], login: str, sender: str, message_id: str
    ) -> None:
        self.body, self.type, self.user_id = pack(dict(body)), kind, login
        self.message_id, self.routing_key = message_id, f"{sender}.{kind}"
        self.exchange, self.timestamp, self.headers, self.redelivered = "x", 1, {}, False

    def ack(self, multiple: bool = False) -> None:
        pass

    def reject(self, requeue: bool = False) -> None:
        pass


def answer_to(store: Store, sender: str, message_id: str) -> SettlementAnswer:
    """The desk's answer to ``sender``'s request ``message_id``, from the outbox."""
    [(body,)] = store.query(
        "SELECT body FROM outbox WHERE event_id = ?",
        [f"answer/{sender}/{message_id}/{sender}"],
    )
    return SettlementAnswer.decode(bytes(body))


def desk_for(
    store: Store, kinds: Mapping[str, RequestKind], clock: Callable[[], int] = time.time_ns
) -> RequestDesk:
    """The worker's desk on ``store`` with :data:`ACCOUNTS`; ``clock``: when it takes each
    request (a request is dated by it)."""
    return RequestDesk(store, kinds, MEMBERS, ACCOUNTS, clock)


def noon(day: dt.date) -> int:
    """Noon on ``day`` in Beijing, in ns: a desk clock on that business date."""
    moment = dt.datetime.combine(day, dt.time(12), dt.timezone(dt.timedelta(hours=8)))
    return int(moment.timestamp()) * 1_000_000_000


def send(desk: RequestDesk, sender: str, kind: str, body: Mapping[str, Any]) -> SettlementAnswer:
    """``sender`` (an account or a member) sends ``kind``; the desk's answer to it."""
    message_id = f"{kind}-{next(_IDS)}"
    assert desk.handle(Stub(kind, body, sender, sender, message_id)) is Outcome.ANSWERED
    return answer_to(desk.store, sender, message_id)


def as_account(
    monkeypatch: pytest.MonkeyPatch,
    store: Store,
    kinds: Mapping[str, RequestKind],
    account: str = "settle",
    clock: Callable[[], int] = time.time_ns,
) -> list[tuple[str, dict[str, Any]]]:
    """The commands' operator requests go to a desk on ``store`` (taking them at
    ``clock``) as ``account``; the list collects each (kind, body) sent."""
    desk = desk_for(store, kinds, clock)
    sent: list[tuple[str, dict[str, Any]]] = []
    login = OperatorLogin("amqp://127.0.0.1:1/", "$REX_OPERATOR_URL", account, account, "-")

    def settlement_request(
        used: OperatorLogin, prog: str, kind: str, body: Mapping[str, Any], **_: Any
    ) -> SettlementAnswer:
        assert used is login
        sent.append((kind, dict(body)))
        return send(desk, account, kind, body)

    monkeypatch.setattr(cli_support.OperatorLogin, "from_env", classmethod(lambda *_: login))
    monkeypatch.setattr(cli_support, "settlement_request", settlement_request)
    return sent
