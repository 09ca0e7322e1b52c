"""Bill requests through the real worker's request desk on the memory bus, on SQLite and
PostgreSQL: the holder endorses and discounts a bill, an operator acts for it, members list
their bills with the chains they may see; every refusal is answered ``bill_rule`` (or a
desk reason) and changes nothing; a redelivered request is applied once.

Trade 1 (the shipped configuration): ganzhou-magnet buys 1,000 kg of PRND-OX from
baotou-metals and pays with a 180-day BOC Ganzhou bill, which baotou-metals holds.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from rex.money import Money
from rex.protocol import unpack
from rex.settlement_protocol import SettlementAnswer
from settlement_worker.bills.discount import quote_discount
from settlement_worker.bills.holidays import load_calendar
from settlement_worker.bills.operations import BillDesk
from settlement_worker.bills.requests import bill_request_kinds
from settlement_worker.disputes.operations import open_in_store
from settlement_worker.disputes.rules import Actor, SubjectType
from settlement_worker.member_settings.requests import settings_request_kinds
from settlement_worker.reports.reconcile import reconcile
from settlement_worker.store import Store
from tests.settlement_worker.helpers import (
    BACKENDS,
    CONFIG,
    ENABLED,
    SETTINGS,
    T0,
    opened_store,
    trade,
)
from tests.settlement_worker.request_helpers import OPERATOR, Worker

CALENDAR = load_calendar(SETTINGS.config_dir / "holidays.toml")
KINDS = {
    **settings_request_kinds(CONFIG),
    **bill_request_kinds(BillDesk(CONFIG, CALENDAR), ENABLED),
}
DRAWER = "ganzhou-magnet"
HOLDER = "baotou-metals"
THIRD = "xinyu-pvc"  # takes any bill
OUTSIDER = "ningbo-alloy"  # no party to the bill; takes ICBC and CCB bills only
BILL = "bill-obl-PRND-OX-1-0"
FACE = 41_500_000
DUE = dt.date(2027, 5, 17)
DAY = 86_400 * 10**9
TODAY = dt.date(2026, 11, 20)  # the desk's clock: T0 + 2 days (T0 is 2026-11-18 in Beijing)
WHY = "pays our invoice XY-118"


class Desk(Worker):
    """The worker with the settings and bill requests, trade 1 booked, and a clock that
    starts on TODAY."""

    def __init__(self, store: Store) -> None:
        self.now = T0 + 2 * DAY
        super().__init__(store, KINDS, clock=lambda: self.now)
        self.book(trade(1))

    def ask(self, sender: str, kind: str, body: dict[str, Any], **options: Any) -> SettlementAnswer:
        return self.answer(sender, self.send(sender, kind, body, **options))


@pytest.fixture(params=BACKENDS)
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    with opened_store(request.param, tmp_path) as opened:
        yield opened.store


def endorsement(to: str = THIRD, **extra: Any) -> dict[str, Any]:
    return {"bill_id": BILL, "to": to, "reason": WHY, **extra}


def sale(rate: Any = "0.0135", bank: str = "icbc-baotou", **extra: Any) -> dict[str, Any]:
    return {"bill_id": BILL, "bank": bank, "annual_rate": rate, "reason": WHY, **extra}


def holders(store: Store) -> list[tuple[str, str, str]]:
    rows = store.query("SELECT bill_id, holder, state FROM bills ORDER BY bill_id")
    return [(r[0], r[1], r[2]) for r in rows]


def events(store: Store) -> list[str]:
    """Routing keys of the bill events in the outbox after issue (answers left out)."""
    rows = store.query(
        "SELECT routing_key FROM outbox WHERE event_id LIKE ? AND event_id NOT LIKE ? ORDER BY seq",
        [f"{BILL}/%", f"{BILL}/issued/%"],
    )
    return [r[0] for r in rows]


def balance(store: Store, owner: str, kind: str) -> int:
    return store.balances().get((owner, kind, "CNY"), 0)


def clean(store: Store) -> None:
    report = reconcile(store)
    assert report.clean, [str(d) for d in report.differences]


def rejected(answer: SettlementAnswer, reason: str, rule: str | None = None) -> None:
    assert (answer.status, answer.reason) == ("rejected", reason), answer
    assert answer.detail.get("rule") == rule, answer
    assert answer.text


# --------------------------------------------------------------------------- accepted


def test_the_holder_endorses_a_bill_to_another_member(store: Store) -> None:
    desk = Desk(store)
    answer = desk.ask(HOLDER, "endorse_bill", endorsement())
    assert answer.accepted and answer.member == HOLDER, answer
    bill = answer.detail["bill"]
    assert (bill["bill_id"], bill["holder"], bill["state"], bill["face"]) == (
        BILL,
        THIRD,
        "endorsed",
        FACE,
    )
    assert bill["chain"] == [
        {"sequence": 1, "from": HOLDER, "to": THIRD, "kind": "transfer", "on": "2026-11-20"}
    ]
    assert bill["roles"] == ["endorser", "payee"]
    assert holders(store) == [(BILL, THIRD, "endorsed")]
    assert balance(store, HOLDER, "bills_receivable") == 0
    assert balance(store, THIRD, "bills_receivable") == FACE
    audit = store.query(
        "SELECT actor, action, detail FROM audit_log WHERE subject_id = ? ORDER BY seq", [BILL]
    )
    actor, action, detail = audit[-1]
    assert (actor, action) == (f"member:{HOLDER}", "endorsed")
    assert WHY in str(detail)  # the member's why is the audit row's
    # The bill events, through the outbox, to both parties' queues.
    assert events(store) == [f"{HOLDER}.bill_endorsed", f"{THIRD}.bill_endorsed"]
    told = [unpack(d.body) for d in desk.inbox[THIRD] if d.type == "settlement_event"]
    assert [(e["event"], e["subject_id"], e["detail"]["endorser"]) for e in told] == [
        ("bill_endorsed", BILL, HOLDER)
    ]
    assert store.query("SELECT kind, status FROM settlement_requests") == [
        ("endorse_bill", "accepted")
    ]
    clean(store)


def test_the_holder_discounts_a_bill_at_a_bank(store: Store) -> None:
    desk = Desk(store)
    answer = desk.ask(HOLDER, "discount_bill", sale(on=TODAY.isoformat()))
    assert answer.accepted, answer
    # BOC Ganzhou's bill at ICBC Baotou: another city, 3 more days.
    quote = quote_discount(Money(FACE, "CNY"), Decimal("0.0135"), TODAY, DUE, CALENDAR, True)
    assert answer.detail["discount"] == {
        "bank": "icbc-baotou",
        "on": "2026-11-20",
        "annual_rate": "0.0135",
        "days": quote.days,
        "other_city": True,
        "interest": quote.interest.minor,
        "proceeds": quote.proceeds.minor,
        "currency": "CNY",
    }
    assert answer.detail["bill"]["state"] == "discounted"
    assert holders(store) == [(BILL, "icbc-baotou", "discounted")]
    assert balance(store, HOLDER, "discount_interest") == quote.interest.minor
    assert events(store) == [f"{HOLDER}.bill_discounted"]  # the bank gets none
    again = desk.ask(HOLDER, "discount_bill", sale())
    rejected(again, "bill_rule", "already_discounted")
    clean(store)


def test_an_operator_endorses_for_the_holder_and_both_are_answered(store: Store) -> None:
    desk = Desk(store)
    request_id = desk.send(OPERATOR, "endorse_bill", {**endorsement(), "member": HOLDER})
    to_operator, to_member = desk.answer(OPERATOR, request_id), desk.answer(HOLDER, request_id)
    assert to_operator.accepted and to_member.accepted
    assert to_member.sender == OPERATOR and to_member.member == HOLDER
    actor = store.query(
        "SELECT actor FROM audit_log WHERE subject_id = ? AND action = 'endorsed'", [BILL]
    )
    assert actor == [(f"operator:{OPERATOR}",)]
    # For the drawer, who does not hold it, the operator is refused like the drawer.
    refused = desk.ask(OPERATOR, "endorse_bill", {**endorsement(HOLDER), "member": DRAWER})
    rejected(refused, "bill_rule", "not_holder")
    clean(store)


def test_members_see_their_bills_with_the_chain(store: Store) -> None:
    desk = Desk(store)
    desk.ask(HOLDER, "endorse_bill", endorsement())
    seen = {m: desk.ask(m, "show_bills", {}) for m in (DRAWER, HOLDER, THIRD, OUTSIDER)}
    assert all(a.accepted for a in seen.values())
    roles = {m: [b["roles"] for b in a.detail["bills"]] for m, a in seen.items()}
    assert roles == {
        DRAWER: [["drawer"]],
        HOLDER: [["endorser", "payee"]],
        THIRD: [["holder"]],
        OUTSIDER: [],
    }
    (bill,) = seen[DRAWER].detail["bills"]
    assert [(c["from"], c["to"]) for c in bill["chain"]] == [(HOLDER, THIRD)]
    assert (bill["due_date"], bill["currency"], bill["transferable"]) == (
        DUE.isoformat(),
        "CNY",
        True,
    )
    assert seen[THIRD].detail["truncated"] is False
    one = desk.ask(THIRD, "show_bills", {"bill_id": BILL})
    assert [b["bill_id"] for b in one.detail["bills"]] == [BILL]
    rejected(desk.ask(OUTSIDER, "show_bills", {"bill_id": BILL}), "bill_rule", "unknown_bill")
    # Closed bills only when asked for.
    with store.transaction() as tx:
        tx.execute("UPDATE bills SET state = 'paid', closed_on = ?", [DUE.isoformat()])
    assert desk.ask(THIRD, "show_bills", {}).detail["bills"] == []
    closed = desk.ask(THIRD, "show_bills", {"include_closed": True}).detail["bills"]
    assert [(b["bill_id"], b["state"], b["closed_on"]) for b in closed] == [
        (BILL, "paid", DUE.isoformat())
    ]


def test_a_redelivered_request_is_applied_and_answered_once(store: Store) -> None:
    desk = Desk(store)
    desk.send(HOLDER, "endorse_bill", endorsement(), message_id="same-id")
    desk.send(HOLDER, "endorse_bill", endorsement(), message_id="same-id")
    assert [a.request_id for a in desk.answers(HOLDER)] == ["same-id"]
    assert store.query("SELECT COUNT(*) FROM bill_endorsements") == [(1,)]
    assert events(store) == [f"{HOLDER}.bill_endorsed", f"{THIRD}.bill_endorsed"]
    # A rejected one is answered once too, and stays rejected.
    desk.send(DRAWER, "endorse_bill", endorsement(), message_id="bad-id")
    desk.send(DRAWER, "endorse_bill", endorsement(), message_id="bad-id")
    assert [a.request_id for a in desk.answers(DRAWER)] == ["bad-id"]
    clean(store)


# -------------------------------------------------------------------------- rejections


def untransferable(store: Store) -> None:
    with store.transaction() as tx:
        tx.execute("UPDATE bills SET transferable = 0")


def disputed(store: Store) -> None:
    with store.transaction() as tx:
        open_in_store(tx, SubjectType.BILL, BILL, Actor.member(DRAWER), "forged?", T0 + 1)


Setup = Callable[[Store], None] | None

REJECTIONS: list[tuple[str, str, str, dict[str, Any], Setup, int, str, str | None]] = [
    # (id, sender, kind, body, setup, days after TODAY, reason, rule)
    ("not the holder", DRAWER, "endorse_bill", endorsement(HOLDER), None, 0, "bill_rule",
     "not_holder"),
    ("no party to the bill", OUTSIDER, "endorse_bill", endorsement(), None, 0, "bill_rule",
     "unknown_bill"),
    ("unknown bill", HOLDER, "endorse_bill", {**endorsement(), "bill_id": "bill-x"}, None, 0,
     "bill_rule", "unknown_bill"),
    ("overdue", HOLDER, "endorse_bill", endorsement(), None, (DUE - TODAY).days + 1,
     "bill_rule", "overdue"),
    ("not transferable", HOLDER, "endorse_bill", endorsement(), untransferable, 0, "bill_rule",
     "not_transferable"),
    ("frozen by a dispute", HOLDER, "endorse_bill", endorsement(), disputed, 0, "bill_rule",
     "bill_frozen"),
    ("endorsee's limits refuse it", HOLDER, "endorse_bill", endorsement(OUTSIDER), None, 0,
     "bill_rule", "receipt_limits"),
    ("endorsee is the drawer", HOLDER, "endorse_bill", endorsement(DRAWER), None, 0,
     "bill_rule", "receipt_limits"),
    ("endorsee is a bank", HOLDER, "endorse_bill", endorsement("icbc-baotou"), None, 0,
     "bill_rule", "unknown_member"),
    ("to oneself", HOLDER, "endorse_bill", endorsement(HOLDER), None, 0, "bill_rule",
     "self_endorsement"),
    ("dated yesterday", HOLDER, "endorse_bill", endorsement(on="2026-11-19"), None, 0,
     "bill_rule", "not_today"),
    ("dated tomorrow", HOLDER, "discount_bill", sale(on="2026-11-21"), None, 0, "bill_rule",
     "not_today"),
    ("for another member's bill", DRAWER, "endorse_bill", {**endorsement(), "member": HOLDER},
     None, 0, "not_permitted", None),
    ("no reason", HOLDER, "endorse_bill", {"bill_id": BILL, "to": THIRD}, None, 0,
     "reason_required", None),
    ("no endorsee", HOLDER, "endorse_bill", {"bill_id": BILL, "reason": WHY}, None, 0,
     "malformed", None),
    ("unknown field", HOLDER, "endorse_bill", endorsement(amount=FACE), None, 0, "malformed",
     None),
    ("bill id not text", HOLDER, "endorse_bill", {**endorsement(), "bill_id": 7}, None, 0,
     "malformed", None),
    ("not a date", HOLDER, "endorse_bill", endorsement(on="2026-02-30"), None, 0, "malformed",
     None),
    ("rate as a float", HOLDER, "discount_bill", sale(0.0135), None, 0, "malformed", None),
    ("rate with an exponent", HOLDER, "discount_bill", sale("1e-999999999"), None, 0,
     "malformed", None),
    ("rate as a percentage", HOLDER, "discount_bill", sale("1.35"), None, 0, "bill_rule",
     "invalid_rate"),
    ("unknown bank", HOLDER, "discount_bill", sale(bank="hsbc-hk"), None, 0, "bill_rule",
     "unknown_bank"),
    ("discount by the drawer", DRAWER, "discount_bill", sale(), None, 0, "bill_rule",
     "not_holder"),
    ("discount after the due date", HOLDER, "discount_bill", sale(), None,
     (DUE - TODAY).days + 1, "bill_rule", "overdue"),
    ("show with a flag not a bool", HOLDER, "show_bills", {"include_closed": 1}, None, 0,
     "malformed", None),
]  # fmt: skip


def snapshot(store: Store) -> list[Any]:
    return [
        store.query("SELECT bill_id, holder, state, version FROM bills"),
        store.query("SELECT COUNT(*) FROM bill_endorsements"),
        store.query("SELECT COUNT(*) FROM journal_entries"),
        store.query("SELECT COUNT(*) FROM audit_log"),
        store.query("SELECT COUNT(*) FROM outbox WHERE type <> 'settlement_answer'"),
    ]


@pytest.mark.parametrize(
    ("sender", "kind", "body", "setup", "days", "reason", "rule"),
    [pytest.param(*case[1:], id=case[0]) for case in REJECTIONS],
)
def test_each_refusal_is_answered_with_its_rule_and_changes_nothing(
    store: Store,
    sender: str,
    kind: str,
    body: dict[str, Any],
    setup: Setup,
    days: int,
    reason: str,
    rule: str | None,
) -> None:
    desk = Desk(store)
    if setup is not None:
        setup(store)
    desk.now += days * DAY
    before = snapshot(store)
    answer = desk.ask(sender, kind, body)
    rejected(answer, reason, rule)
    if rule is not None and kind != "show_bills":
        assert answer.detail["bill_id"] == body["bill_id"]
    assert snapshot(store) == before
    assert store.query("SELECT status, reason FROM settlement_requests") == [("rejected", reason)]
