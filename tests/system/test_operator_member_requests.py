"""Issue 12, the members' settlement steps an operator takes for them and the operator's
bill steps, through real RabbitMQ against `python -m settlement_worker` on SQLite: `rex
bills endorse|discount|mature|dishonour`, `rex dispute open` and `rex offline
report|confirm|decline|cancel` send settlement requests as the login of $REX_OPERATOR_URL.
An operator account with settlement_ops gets them done and the store's audit names
`operator:<name>`; market_ops, audit, a member's login, the services' guest and a disabled
account are refused with what to do, and the store is as it was. Members send the same
requests for themselves with the SDK, and may not send them for another member.

Here beta pays by 90-day ICBC bank-acceptance bills, which alpha and gamma take: a trade
beta buys from alpha leaves a bill held by alpha."""

from __future__ import annotations

import dataclasses
import sqlite3
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from rex.protocol import TradeMessage
from rex.settlement_protocol import SettlementAnswer
from settlement_worker.obligations.settle import trade_date
from tests.system.conftest import ROOT, Exchange, publish_trades
from tests.system.test_operator_settlement import member_url, rex_as

pytestmark = pytest.mark.broker

SETTLEMENT_TOML = """
[fees]
default = {{ buyer_bps = 2, seller_bps = 2 }}

[[banks]]
id = "icbc-baotou"
name = "Industrial and Commercial Bank of China, Baotou Branch"
city = "Baotou"

[payment]
bank = "icbc-baotou"

[[members]]
id = "{beta}"
pays = {{ method = "bank_acceptance", acceptor = "icbc-baotou", tenor_days = 90 }}

[[members]]
id = "{alpha}"
receives = {{ accept_bills = true }}

[[members]]
id = "{gamma}"
receives = {{ accept_bills = true }}
"""


@pytest.fixture(scope="module")
def running(exchange: Exchange) -> Iterator[Exchange]:
    config = Path(exchange.env["REX_CONFIG_DIR"])
    (config / "settlement.toml").write_text(SETTLEMENT_TOML.format(**exchange.members))
    (config / "holidays.toml").write_text((ROOT / "config" / "holidays.toml").read_text())
    for unset in ("REX_DATABASE_URL", "REX_OPERATORS"):  # SQLite; guest is no operator
        exchange.env.pop(unset, None)
    exchange.start("settlement", "settlement_worker", "--no-payer")
    with exchange.client("alpha") as alpha:
        try:
            alpha.settlement_settings(wait=30)
        except TimeoutError:
            pytest.fail("the settlement worker did not come up:\n" + exchange.log_tail())
    yield exchange


def query(exchange: Exchange, sql: str, *params: object) -> list[tuple[object, ...]]:
    path = Path(exchange.env["REX_DATA_DIR"]) / "settlement.sqlite3"
    with sqlite3.connect(path) as db:
        return [tuple(r) for r in db.execute(sql, params).fetchall()]


def eventually(
    what: Callable[[], list[tuple[object, ...]]], exchange: Exchange
) -> list[tuple[object, ...]]:
    deadline = time.monotonic() + 20
    while not (found := what()):
        assert time.monotonic() < deadline, exchange.log_tail()
        time.sleep(0.2)
    return found


@dataclasses.dataclass(frozen=True)
class Subjects:
    """What the commands act on: alpha's bill, a trade of alpha's and gamma's, a pending
    offline report of alpha's with beta."""

    bill: str
    trade: str
    offline: str


def book(exchange: Exchange, trade_id: str, buyer: str, seller: str) -> None:
    message = TradeMessage(
        trade_id=trade_id,
        product="PRND-OX",
        price=500_000,
        quantity=100,
        buyer=exchange.members[buyer],
        seller=exchange.members[seller],
        buy_order_id=1,
        sell_order_id=2,
        aggressor="buy",
        sequence=1,
        timestamp=time.time_ns(),
        currency="CNY",
    )
    publish_trades(exchange.url, [message], twice_every=10**9)


@pytest.fixture(scope="module")
def subjects(running: Exchange) -> Subjects:
    tag = uuid.uuid4().hex[:8]
    book(running, f"PRND-OX-bill-{tag}", "beta", "alpha")
    book(running, f"PRND-OX-cash-{tag}", "gamma", "alpha")
    alpha = running.members["alpha"]
    [(bill,)] = eventually(
        lambda: query(running, "SELECT bill_id FROM bills WHERE holder = ?", alpha), running
    )
    eventually(
        lambda: query(
            running, "SELECT 1 FROM obligations WHERE trade_id = ?", f"PRND-OX-cash-{tag}"
        ),
        running,
    )
    reported = rex_as(running, running.operator_url("settle"), *report(running, f"pending-{tag}"))
    assert reported.returncode == 0, reported.stderr + running.log_tail()
    offline = reported.stdout.split()[1]
    return Subjects(bill, f"PRND-OX-cash-{tag}", offline)


def report(exchange: Exchange, ref: str) -> tuple[str, ...]:
    alpha, beta = exchange.members["alpha"], exchange.members["beta"]
    return (
        "offline", "report", "--member", alpha, "--counterparty", beta, "--product", "PRND-OX",
        "--side", "sell", "--price", "500000", "--quantity", "100", "--ref", ref,
    )  # fmt: skip


#: Every command that changes something, by the request kind it sends.
COMMANDS: dict[str, Callable[[Exchange, Subjects], tuple[str, ...]]] = {
    "endorse_bill": lambda x, s: (
        "bills", "endorse", s.bill, "--member", x.members["alpha"], "--to", x.members["gamma"],
    ),
    "discount_bill": lambda x, s: (
        "bills", "discount", s.bill, "--member", x.members["alpha"], "--bank", "icbc-baotou",
        "--rate", "0.015",
    ),
    "bill_mature": lambda x, s: ("bills", "mature"),
    "bill_dishonour": lambda x, s: ("bills", "dishonour", s.bill),
    "open_dispute": lambda x, s: (
        "dispute", "open", "--member", x.members["gamma"], "--trade", s.trade, "--reason", "grade",
    ),
    "report_offline_trade": lambda x, s: report(x, f"other-{uuid.uuid4().hex[:6]}"),
    "confirm_offline_trade": lambda x, s: (
        "offline", "confirm", s.offline, "--member", x.members["beta"], "--price", "500000",
        "--quantity", "100",
    ),
    "decline_offline_trade": lambda x, s: (
        "offline", "decline", s.offline, "--member", x.members["beta"], "--reason", "no",
    ),
    "cancel_offline_trade": lambda x, s: (
        "offline", "cancel", s.offline, "--member", x.members["alpha"], "--reason", "typo",
    ),
}  # fmt: skip
PROG = {"bills": "rex bills", "dispute": "rex dispute", "offline": "rex offline"}


def state_of(exchange: Exchange) -> tuple[object, ...]:
    """Everything the commands could change."""
    return tuple(
        query(exchange, f"SELECT * FROM {table} ORDER BY 1")
        for table in ("bills", "disputes", "offline_trades", "audit_log", "payments", "obligations")
    )


@pytest.mark.parametrize("kind", list(COMMANDS))
@pytest.mark.parametrize(("short", "role"), [("market", "market_ops"), ("audit", "audit")])
def test_an_account_without_settlement_ops_is_refused_and_nothing_changes(
    running: Exchange, subjects: Subjects, kind: str, short: str, role: str
) -> None:
    before = state_of(running)
    args = COMMANDS[kind](running, subjects)
    done = rex_as(running, running.operator_url(short), *args)
    name = running.operators[short]
    assert (done.returncode, done.stdout, done.stderr) == (
        1,
        "",
        f"{PROG[args[0]]}: refused (not_permitted): {kind} needs the role settlement_ops; "
        f"operator {name!r} has {role}\n",
    )
    assert state_of(running) == before


@pytest.mark.parametrize("kind", list(COMMANDS))
@pytest.mark.parametrize("who", ["member", "guest", "disabled"])
def test_no_usable_operator_account_is_refused_and_nothing_changes(
    running: Exchange, subjects: Subjects, kind: str, who: str
) -> None:
    before = state_of(running)
    url = {"member": member_url(running), "guest": None, "disabled": running.operator_url("gone")}
    args = COMMANDS[kind](running, subjects)
    done = rex_as(running, url[who], *args)
    if who == "disabled":  # provisioning leaves a disabled account no broker login
        assert done.returncode == 5, done.stderr
        assert f"refused the login of user {running.operators['gone']!r}" in done.stderr
    else:
        login, url_from = {
            "member": (running.members["alpha"], "$REX_OPERATOR_URL"),
            "guest": ("guest", "$REX_BROKER_URL"),
        }[who]
        assert done.returncode == 2, done.stderr
        assert done.stderr.startswith(
            f"{PROG[args[0]]}: {url_from}: user {login!r} is no operator account of "
        ), done.stderr
    assert done.stdout == ""
    assert state_of(running) == before


@pytest.mark.parametrize("kind", list(COMMANDS))
def test_a_typed_operator_is_refused_and_nothing_is_sent(
    running: Exchange, subjects: Subjects, kind: str
) -> None:
    before = state_of(running)
    sent = query(running, "SELECT COUNT(*) FROM settlement_requests")
    done = rex_as(running, running.operator_url("settle"), *COMMANDS[kind](running, subjects),
                  "--operator", "li")  # fmt: skip
    assert done.returncode == 2 and "--operator is refused" in done.stderr, done.stderr
    time.sleep(0.3)
    assert query(running, "SELECT COUNT(*) FROM settlement_requests") == sent
    assert state_of(running) == before


def audit_actors(exchange: Exchange, subject: str) -> list[str]:
    rows = query(exchange, "SELECT actor FROM audit_log WHERE subject_id = ? ORDER BY seq", subject)
    return [str(r[0]) for r in rows]


def test_settlement_ops_does_each_step_audited_as_the_login(
    running: Exchange, subjects: Subjects
) -> None:
    url, settle = running.operator_url("settle"), f"operator:{running.operators['settle']}"

    def run(kind: str) -> str:
        done = rex_as(running, url, *COMMANDS[kind](running, subjects))
        assert done.returncode == 0, kind + ": " + done.stderr + running.log_tail()
        return done.stdout

    # The pending report the fixture made as settle, for alpha; beta confirms it, by settle.
    assert audit_actors(running, subjects.offline) == [settle]
    assert "booked:" in run("confirm_offline_trade")
    assert audit_actors(running, subjects.offline) == [settle, settle]
    for step in ("decline", "cancel"):  # two more reports, withdrawn
        reported = rex_as(running, url, *report(running, f"{step}-{uuid.uuid4().hex[:6]}"))
        offline = reported.stdout.split()[1]
        member = running.members["beta" if step == "decline" else "alpha"]
        done = rex_as(running, url, "offline", step, offline, "--member", member, "--reason", "x")
        assert done.returncode == 0, done.stderr
        assert audit_actors(running, offline) == [settle, settle]
    assert run("open_dispute").startswith(f"opened D-1: trade {subjects.trade} is frozen")
    assert audit_actors(running, "D-1") == [settle]
    [(opened_by,)] = query(running, "SELECT opened_by FROM disputes WHERE dispute_id = 'D-1'")
    assert opened_by == running.members["gamma"]
    assert run("endorse_bill").startswith(f"endorsed {subjects.bill} to ")
    assert audit_actors(running, subjects.bill)[-1] == settle
    gamma = running.members["gamma"]
    discounted = rex_as(running, url, "bills", "discount", subjects.bill, "--member", gamma,
                        "--bank", "icbc-baotou", "--rate", "0.015")  # fmt: skip
    assert discounted.returncode == 0 and "proceeds" in discounted.stdout, discounted.stderr
    assert audit_actors(running, subjects.bill)[-1] == settle
    assert run("bill_mature").endswith(f"0 bills paid on {trade_date(time.time_ns())}\n")
    # Dishonour reaches the bill's rules: the bill is not due for 90 days.
    done = rex_as(running, url, *COMMANDS["bill_dishonour"](running, subjects))
    assert done.returncode == 1 and "refused (bill_rule: not_due)" in done.stderr, done.stderr


def ask(
    exchange: Exchange, short: str, kind: str, fields: dict[str, object], **options: str
) -> SettlementAnswer:
    with exchange.client(short) as client:
        request_id = client.send_settlement_request(kind, fields, reason="by the member", **options)
        return client.await_settlement_answer(request_id, timeout=10)


def test_members_send_their_own_steps_and_none_for_another(
    running: Exchange, subjects: Subjects
) -> None:
    alpha, beta = running.members["alpha"], running.members["beta"]
    report_fields: dict[str, object] = {
        "counterparty": beta, "product": "PRND-OX", "side": "sell", "price": 500_000,
        "quantity": 100, "ref": f"own-{uuid.uuid4().hex[:6]}",
    }  # fmt: skip
    before = state_of(running)
    for_other = ask(running, "gamma", "report_offline_trade", report_fields, member=alpha)
    assert (for_other.status, for_other.reason) == ("rejected", "not_permitted")
    opened_for_other = ask(
        running, "gamma", "open_dispute", {"trade_id": subjects.trade}, member=alpha
    )
    assert (opened_for_other.reason, opened_for_other.text) == (
        "not_permitted",
        f"{running.members['gamma']} may not act for member {alpha!r}",
    )
    assert state_of(running) == before
    reported = ask(running, "alpha", "report_offline_trade", report_fields)
    assert reported.status == "accepted", reported
    offline = reported.detail["offline_trade"]["offline_id"]
    declined = ask(running, "beta", "decline_offline_trade", {"offline_id": offline})
    assert declined.status == "accepted", declined
    assert audit_actors(running, offline) == [f"member:{alpha}", f"member:{beta}"]
    own = f"PRND-OX-own-{uuid.uuid4().hex[:6]}"
    book(running, own, "gamma", "beta")
    eventually(lambda: query(running, "SELECT 1 FROM obligations WHERE trade_id = ?", own), running)
    disputed = ask(running, "beta", "open_dispute", {"trade_id": own})
    assert disputed.status == "accepted", disputed
    assert audit_actors(running, disputed.detail["dispute_id"]) == [f"member:{beta}"]
