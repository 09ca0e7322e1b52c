"""The auditor's search of the audit log (``audit_search``): bounds on every field, pages,
and who may send it -- only an operator account with the role ``audit``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from rex.bus import Delivery
from rex.operators import OperatorAccount, Role
from rex.protocol import pack, unpack
from settlement_worker.audit.operations import search_page
from settlement_worker.audit.requests import audit_request_kinds
from settlement_worker.audit.rules import MAX_LIMIT, AuditQuery, QueryError, parse_query
from settlement_worker.requests.desk import Outcome, RequestDesk
from settlement_worker.store import AuditRow, Store
from settlement_worker.store.sqlite import SqliteStore
from tests.settlement_worker.helpers import BUYER, MEMBERS, SELLER

ACCOUNTS = {
    "auditor": OperatorAccount("auditor", "A", frozenset({Role.AUDIT}), "E1"),
    "settle": OperatorAccount("settle", "S", frozenset({Role.SETTLEMENT_OPS}), "E2"),
    "market": OperatorAccount("market", "M", frozenset({Role.MARKET_OPS}), "E3"),
    "gone": OperatorAccount("gone", "G", frozenset({Role.AUDIT}), "E4", enabled=False),
}


class Stub(Delivery):
    def __init__(self, body: dict[str, Any], login: str, n: int) -> None:
        self.body, self.type, self.user_id = pack(body), "audit_search", login
        self.message_id, self.routing_key = f"a-{n}", f"{login}.audit_search"
        self.exchange, self.timestamp, self.headers, self.redelivered = "x", 1, {}, False

    def ack(self, multiple: bool = False) -> None:
        pass

    def reject(self, requeue: bool = False) -> None:
        pass


@pytest.fixture
def store(tmp_path: Path) -> Store:
    store = SqliteStore(tmp_path / "settlement.sqlite3")
    store.migrate()
    with store.transaction() as tx:
        tx.audit_many(
            [
                AuditRow(1_000, f"member:{BUYER}", "bill", "B-1", "endorsed", {"to": SELLER}),
                AuditRow(2_000, "operator:settle", "dispute", "D-1", "rejected", {"note": "ok"}),
                AuditRow(3_000, f"member:{SELLER}", "bill", "B-1", "discounted", {"rate": "0.01"}),
                AuditRow(4_000, "system", "obligation", "O-1", "settled", {}),
            ]
        )
    return store


def ask(store: Store, login: str, body: dict[str, Any]) -> dict[str, Any]:
    """The answer the desk wrote for one request from ``login``."""
    desk = RequestDesk(store, audit_request_kinds(), MEMBERS, ACCOUNTS)
    ask.n = getattr(ask, "n", 0) + 1  # type: ignore[attr-defined]
    n = ask.n  # type: ignore[attr-defined]
    assert desk.handle(Stub(body, login, n)) is Outcome.ANSWERED
    [(status, reason)] = store.query(
        "SELECT status, reason FROM settlement_requests WHERE message_id = ?", [f"a-{n}"]
    )
    [(payload,)] = store.query(
        "SELECT body FROM outbox WHERE event_id = ?", [f"answer/{login}/a-{n}/{login}"]
    )
    return {"status": status, "reason": reason, "payload": payload}


def entries(store: Store, query: AuditQuery) -> list[tuple[str, str]]:
    with store.transaction() as tx:
        page = search_page(tx, query)
    return [(e["actor"], e["action"]) for e in page["entries"]]


def test_filters_by_actor_subject_and_time(store: Store) -> None:
    assert entries(store, AuditQuery(actor=f"member:{BUYER}")) == [(f"member:{BUYER}", "endorsed")]
    assert entries(store, AuditQuery(subject_type="bill", subject_id="B-1")) == [
        (f"member:{BUYER}", "endorsed"),
        (f"member:{SELLER}", "discounted"),
    ]
    assert entries(store, AuditQuery(since_ns=2_000, until_ns=4_000)) == [
        ("operator:settle", "rejected"),
        (f"member:{SELLER}", "discounted"),
    ]


def test_pages_follow_on_from_next_after_seq(store: Store) -> None:
    with store.transaction() as tx:
        first = search_page(tx, AuditQuery(limit=3))
        second = search_page(tx, AuditQuery(after_seq=first["next_after_seq"], limit=3))
    assert [e["action"] for e in first["entries"]] == ["endorsed", "rejected", "discounted"]
    assert [e["action"] for e in second["entries"]] == ["settled"]
    assert second["next_after_seq"] is None


def test_a_page_stops_before_the_answer_outgrows_its_bound(store: Store) -> None:
    with store.transaction() as tx:
        big = [
            AuditRow(5_000 + i, "system", "x", f"X-{i}", "big", {"n": "z" * 2_000})
            for i in range(200)
        ]
        tx.audit_many(big)
        page = search_page(tx, AuditQuery(subject_type="x", limit=MAX_LIMIT))
    # 256 KiB of rows of about 2.1 KB each: fewer than asked, and a next page.
    assert 100 < len(page["entries"]) < 200
    assert page["next_after_seq"] == page["entries"][-1]["seq"]


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"member": "x", "actor": "y", "colour": "red"}, "colour"),
        ({"actor": "a" * 81}, "actor"),
        ({"actor": "line\nforged"}, "actor"),
        ({"subject_id": 7}, "subject_id"),
        ({"subject_type": ""}, "subject_type"),
        ({"limit": 0}, "limit"),
        ({"limit": MAX_LIMIT + 1}, "limit"),
        ({"limit": True}, "limit"),
        ({"after_seq": -1}, "after_seq"),
        ({"since_ns": 2**63}, "since_ns"),
        ({"since_ns": 5, "until_ns": 5}, "until_ns"),
        ({"until_ns": "tomorrow"}, "until_ns"),
    ],
)
def test_every_field_is_bounded(params: dict[str, Any], field: str) -> None:
    with pytest.raises(QueryError) as refused:
        parse_query(params)
    assert refused.value.field == field


def test_the_auditor_searches_without_a_reason(store: Store) -> None:
    answer = ask(store, "auditor", {"actor": "operator:settle"})
    assert (answer["status"], answer["reason"]) == ("accepted", None)
    detail = unpack(bytes(answer["payload"]))["detail"]
    assert [(e["actor"], e["subject_id"], e["action"]) for e in detail["entries"]] == [
        ("operator:settle", "D-1", "rejected")
    ]
    assert detail["next_after_seq"] is None


def test_a_bad_field_is_refused_malformed(store: Store) -> None:
    answer = ask(store, "auditor", {"limit": 10_000})
    assert (answer["status"], answer["reason"]) == ("rejected", "malformed")


@pytest.mark.parametrize("login", ["settle", "market", "gone"])
def test_only_the_audit_role_may_search(store: Store, login: str) -> None:
    answer = ask(store, login, {})
    assert (answer["status"], answer["reason"]) == ("rejected", "not_permitted")


def test_a_member_may_not_search(store: Store) -> None:
    answer = ask(store, BUYER, {})
    assert (answer["status"], answer["reason"]) == ("rejected", "not_permitted")


def test_the_auditor_names_no_member(store: Store) -> None:
    answer = ask(store, "auditor", {"member": BUYER})
    assert (answer["status"], answer["reason"]) == ("rejected", "malformed")
