"""The contract's finer rules (docs/members/protocol.md) through real RabbitMQ: every reject and
cancel reason, replace and mass cancel, `leaves_quantity` on final reports, trade sequences,
the `rex` command line, the metrics endpoints, a SIGTERM'd gateway, and the SDK's market
data. One gateway and one engine process serve the whole module (its own vhost).

Prices are kept apart per test so that no test trades against another's orders, and each
test removes what it leaves in the book (a failing one mass-cancels, see `tidy`).

`unknown_member` is not covered: it cannot be reached through the broker. Members are
RabbitMQ users provisioned from the same members.toml the gateway reads, and RabbitMQ
refuses a `user_id` that differs from the login, so every request the gateway sees comes
from a configured member.
"""

from __future__ import annotations

import random
import re
import signal
import socket
import subprocess
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager, suppress

import pika
import pytest
from prometheus_client.parser import text_string_to_metric_families

from rex import topology
from rex.client import Client
from rex.protocol import ExecutionReport, NewOrderRequest, unpack
from rex.vocabulary import OrderType, Side, TimeInForce
from tests.system.conftest import PASSWORD, Exchange, wait_for_answer

pytestmark = pytest.mark.broker

ENDING = {"filled", "cancelled", "expired", "rejected"}  # statuses that end an order
NS_2020 = 1_600_000_000_000_000_000  # a plausible lower bound for an ns timestamp


def free_ports(count: int) -> list[int]:
    """Ports nothing listens on, below the ephemeral range: a port from bind(("", 0)) is an
    ephemeral one, which an outgoing connection may take before the service binds it."""
    ports: list[int] = []
    with ExitStack() as held:  # held until all are picked, so they differ
        for port in random.sample(range(20_000, 32_000), 500):
            probe = held.enter_context(socket.socket())
            try:
                probe.bind(("0.0.0.0", port))  # where prometheus_client listens
            except OSError:
                continue
            ports.append(port)
            if len(ports) == count:
                return ports
    raise RuntimeError("no free ports")


@pytest.fixture(scope="module")
def metrics_ports() -> dict[str, int]:
    gateway, engine = free_ports(2)
    return {"gateway": gateway, "engine": engine}


def start_gateway(exchange: Exchange, port: int) -> None:
    exchange.start("gateway", "gateway", "--tick-interval", "0.5", "--metrics-port", str(port))


@pytest.fixture(scope="module")
def running(exchange: Exchange, metrics_ports: dict[str, int]) -> Iterator[Exchange]:
    start_gateway(exchange, metrics_ports["gateway"])
    exchange.start(
        "engine-main", "engine", "--group", "main", "--metrics-port", str(metrics_ports["engine"])
    )
    with exchange.client("gamma") as gamma:
        try:
            wait_for_answer(gamma, "PRND-OX")
            wait_for_answer(gamma, "DY-OX")
        except TimeoutError:
            pytest.fail("exchange did not come up:\n" + exchange.log_tail())
    yield exchange


# --------------------------------------------------------------------------- helpers


def report(result: ExecutionReport | str) -> ExecutionReport:
    assert isinstance(result, ExecutionReport), result
    return result


def collect(
    client: Client,
    want: Callable[[ExecutionReport], bool],
    count: int,
    timeout: float = 10.0,
    settle: float = 0.3,
) -> list[ExecutionReport]:
    """The client's reports that `want` accepts, in arrival order: until `count` of them
    have come (or `timeout`), then whatever else comes within `settle` seconds (so a test
    can tell "exactly n" from "at least n")."""
    got: list[ExecutionReport] = []
    deadline = time.monotonic() + timeout
    while len(got) < count and time.monotonic() < deadline:
        for r in client.executions(timeout=0.3):
            if want(r):
                got.append(r)
                if len(got) >= count:
                    break
    if settle:
        got.extend(r for r in client.executions(timeout=settle) if want(r))
    return got


@contextmanager
def tidy(exchange: Exchange, product: str, *shorts: str) -> Iterator[None]:
    """If the block fails, mass-cancel these members' orders in `product` so that later tests
    start clean. Sent without waiting, from a fresh connection: another client of the member
    may still be consuming its queue and would take the answer."""
    try:
        yield
    except BaseException:
        for short in shorts:
            with suppress(Exception), exchange.client(short) as client:
                client.mass_cancel(product, wait=None)
        raise


def gateway_reject_id(member: str, message_id: str) -> str:
    return f"gw-{member}-{message_id}"


def ioc_bid(client: Client, cid: str) -> str:
    """Publish a harmless order (IOC bid far below any ask); returns its message_id."""
    return client.send(
        NewOrderRequest(cid, "PRND-OX", Side.BUY, 100, price=455_000, time_in_force=TimeInForce.IOC)
    )


def scrape(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        text: str = response.read().decode()
        return text


def sample(text: str, name: str, **labels: str) -> float:
    """The value of one sample in a Prometheus text page (0 if absent)."""
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()):
                return float(s.value)
    return 0.0


def settlement_trades(exchange: Exchange) -> list[dict[str, object]]:
    """Everything on rex.settlement.trades, in queue order, without consuming it. Each read
    counts as a delivery against the queue's delivery limit (5): read it at most twice."""
    connection = pika.BlockingConnection(pika.URLParameters(exchange.url))
    try:
        channel = connection.channel()
        bodies = []
        while True:
            method, _props, body = channel.basic_get(topology.SETTLEMENT_TRADES, auto_ack=False)
            if method is None:
                break
            bodies.append(unpack(body))
        return bodies  # closing without ack puts them back
    finally:
        connection.close()


# --------------------------------------------------------------------------- new order rules


@pytest.mark.parametrize(
    ("order", "reason"),
    [
        ({"order_type": OrderType.LIMIT, "price": None}, "missing_price"),
        ({"order_type": OrderType.MARKET, "price": 500_000}, "price_not_allowed"),
        (
            {"order_type": OrderType.MARKET, "price": None, "time_in_force": TimeInForce.GTD},
            "invalid_time_in_force",
        ),
    ],
    ids=["missing_price", "price_not_allowed", "invalid_time_in_force"],
)
def test_new_order_breaking_a_type_rule_is_rejected_with_its_reason(
    running: Exchange, order: dict[str, object], reason: str
) -> None:
    cid = f"rule-{reason}"
    if order.get("time_in_force") is TimeInForce.GTD:
        order = {**order, "expire_time": time.time_ns() // 1_000_000 + 60_000}
    with running.client("alpha") as alpha:
        alpha.send(NewOrderRequest(cid, "PRND-OX", Side.BUY, 100, **order))  # type: ignore[arg-type]
        answer = alpha.await_answer(cid, timeout=10)
    assert (answer.status, answer.reason, answer.order_id) == ("rejected", reason, None)
    assert (answer.quantity, answer.cumulative_quantity, answer.leaves_quantity) == (100, 0, 0)
    assert answer.product == "PRND-OX" and answer.text


# --------------------------------------------------------------------------- replace


def test_quantity_below_filled_replace_is_rejected(running: Exchange) -> None:
    with (
        running.client("alpha") as alpha,
        running.client("beta") as beta,
        tidy(running, "PRND-OX", "alpha"),
    ):
        ask = report(alpha.place("PRND-OX", "sell", 300, 512_000, client_order_id="qbf-ask"))
        assert ask.status == "new"
        bid = report(beta.place("PRND-OX", "buy", 200, 512_000, client_order_id="qbf-bid"))
        assert (bid.status, bid.last_quantity) == ("filled", 200)
        fill = alpha.await_answer("qbf-ask")
        assert (fill.status, fill.cumulative_quantity, fill.leaves_quantity) == (
            "partially_filled",
            200,
            100,
        )
        for quantity in (200, 100):  # at, and below, what has filled
            answer = report(alpha.replace("PRND-OX", "qbf-ask", quantity=quantity))
            assert (answer.status, answer.reason, answer.orig_client_order_id) == (
                "rejected",
                "quantity_below_filled",
                "qbf-ask",
            )
            assert answer.client_order_id not in (None, "qbf-ask")
            assert answer.leaves_quantity == 0
        done = report(alpha.cancel("PRND-OX", "qbf-ask"))  # the order was left alone
        assert (done.status, done.order_id, done.cumulative_quantity, done.leaves_quantity) == (
            "cancelled",
            ask.order_id,
            200,
            0,
        )


@pytest.mark.parametrize(
    "change",
    [{}, {"price": 468_000, "quantity": 100}],
    ids=["gateway-no-field", "engine-same-price-and-quantity"],
)
def test_nothing_to_replace_is_rejected(running: Exchange, change: dict[str, int]) -> None:
    cid = f"ntr-{len(change)}"
    with running.client("alpha") as alpha, tidy(running, "PRND-OX", "alpha"):
        order = report(alpha.place("PRND-OX", "buy", 100, 468_000, client_order_id=cid))
        assert order.status == "new"
        answer = report(alpha.replace("PRND-OX", cid, **change))
        assert (answer.status, answer.reason, answer.orig_client_order_id) == (
            "rejected",
            "nothing_to_replace",
            cid,
        )
        assert answer.leaves_quantity == 0
        done = report(alpha.cancel("PRND-OX", cid))  # still there, under its old id
        assert (done.status, done.order_id, done.leaves_quantity) == (
            "cancelled",
            order.order_id,
            0,
        )


def test_replace_quantity_down_keeps_order_id_and_priority_and_takes_the_new_id(
    running: Exchange,
) -> None:
    with (
        running.client("alpha") as alpha,
        running.client("beta") as beta,
        running.client("gamma") as gamma,
        tidy(running, "PRND-OX", "alpha", "beta"),
    ):
        first = report(alpha.place("PRND-OX", "sell", 300, 508_000, client_order_id="rp-a"))
        second = report(beta.place("PRND-OX", "sell", 100, 508_000, client_order_id="rp-b"))
        assert (first.status, second.status) == ("new", "new")

        replaced = report(alpha.replace("PRND-OX", "rp-a", quantity=200))
        new_id = replaced.client_order_id
        assert new_id not in (None, "rp-a")
        assert (
            replaced.status,
            replaced.order_id,
            replaced.orig_client_order_id,
            replaced.price,
            replaced.quantity,
            replaced.cumulative_quantity,
            replaced.leaves_quantity,
        ) == ("replaced", first.order_id, "rp-a", 508_000, 200, 0, 200)

        # Time priority kept: a buyer at that price meets alpha's order before beta's.
        taker = report(gamma.place("PRND-OX", "buy", 100, 508_000, client_order_id="rp-g"))
        assert (taker.status, taker.last_price, taker.last_quantity) == ("filled", 508_000, 100)
        fill = alpha.await_answer(str(new_id))  # fills carry the order's current id
        assert (fill.status, fill.order_id, fill.cumulative_quantity, fill.leaves_quantity) == (
            "partially_filled",
            first.order_id,
            100,
            100,
        )

        old = report(alpha.cancel("PRND-OX", "rp-a"))
        assert (old.status, old.reason, old.orig_client_order_id) == (
            "rejected",
            "unknown_order",
            "rp-a",
        )
        done = report(alpha.cancel("PRND-OX", str(new_id)))
        assert (
            done.status,
            done.reason,
            done.order_id,
            done.orig_client_order_id,
            done.cumulative_quantity,
            done.leaves_quantity,
        ) == ("cancelled", "requested", first.order_id, new_id, 100, 0)
        untouched = report(beta.cancel("PRND-OX", "rp-b"))
        assert (untouched.status, untouched.cumulative_quantity) == ("cancelled", 0)


# --------------------------------------------------------------------------- IOC, FOK, GTD


def test_fill_or_kill_that_cannot_fill_in_full_is_cancelled(running: Exchange) -> None:
    with (
        running.client("alpha") as alpha,
        running.client("beta") as beta,
        tidy(running, "PRND-OX", "beta"),
    ):
        ask = report(beta.place("PRND-OX", "sell", 100, 514_000, client_order_id="fok-ask"))
        assert ask.status == "new"
        answer = report(
            alpha.place(
                "PRND-OX", "buy", 200, 514_000, time_in_force="FOK", client_order_id="fok-bid"
            )
        )
        assert (answer.status, answer.reason, answer.cumulative_quantity) == (
            "cancelled",
            "fill_or_kill",
            0,
        )
        assert answer.leaves_quantity == 0 and answer.order_id is not None
        assert collect(alpha, lambda r: r.client_order_id == "fok-bid", 1, timeout=0.5) == []
        done = report(beta.cancel("PRND-OX", "fok-ask"))  # nothing of it traded
        assert (done.status, done.cumulative_quantity, done.leaves_quantity) == ("cancelled", 0, 0)


def test_immediate_or_cancel_remainder_is_cancelled(running: Exchange) -> None:
    with (
        running.client("alpha") as alpha,
        running.client("beta") as beta,
        tidy(running, "PRND-OX", "beta"),
    ):
        report(beta.place("PRND-OX", "sell", 100, 516_000, client_order_id="ioc-ask"))
        first = report(
            alpha.place(
                "PRND-OX", "buy", 300, 516_000, time_in_force="IOC", client_order_id="ioc-bid"
            )
        )
        assert (
            first.status,
            first.last_price,
            first.last_quantity,
            first.cumulative_quantity,
            first.leaves_quantity,
        ) == ("partially_filled", 516_000, 100, 100, 200)
        rest = alpha.await_answer("ioc-bid")
        assert (
            rest.status,
            rest.reason,
            rest.order_id,
            rest.cumulative_quantity,
            rest.leaves_quantity,
        ) == ("cancelled", "immediate_or_cancel", first.order_id, 100, 0)
        maker = beta.await_answer("ioc-ask")
        assert (maker.status, maker.leaves_quantity) == ("filled", 0)


def test_gtd_order_expires_at_its_expire_time(running: Exchange) -> None:
    with running.client("alpha") as alpha, tidy(running, "PRND-OX", "alpha"):
        expire_ms = time.time_ns() // 1_000_000 + 1_500
        order = report(
            alpha.place(
                "PRND-OX",
                "buy",
                100,
                466_000,
                time_in_force="GTD",
                expire_time=expire_ms,
                client_order_id="gtd-1",
            )
        )
        assert (order.status, order.leaves_quantity) == ("new", 100)
        expired = alpha.await_answer("gtd-1", timeout=6)
        reported_at = time.time_ns() // 1_000_000
        assert (
            expired.status,
            expired.reason,
            expired.order_id,
            expired.cumulative_quantity,
            expired.leaves_quantity,
        ) == ("expired", "expired", order.order_id, 0, 0)
        assert expire_ms <= expired.timestamp // 1_000_000 <= reported_at
        gone = report(alpha.cancel("PRND-OX", "gtd-1"))
        assert (gone.status, gone.reason) == ("rejected", "unknown_order")


# --------------------------------------------------------------------------- mass cancel


def test_mass_cancel_is_answered_mass_cancelled_then_one_cancel_per_order(
    running: Exchange,
) -> None:
    with running.client("beta") as beta, tidy(running, "DY-OX", "beta"):
        bid = report(beta.place("DY-OX", "buy", 100, 1_700_000, client_order_id="mc-bid"))
        ask = report(beta.place("DY-OX", "sell", 200, 1_900_000, client_order_id="mc-ask"))
        assert (bid.status, ask.status) == ("new", "new")
        cid = str(beta.mass_cancel("DY-OX", wait=None))
        orders = {"mc-bid", "mc-ask"}
        got = collect(beta, lambda r: r.client_order_id == cid or r.client_order_id in orders, 3)
    answer, *cancels = got
    assert (answer.status, answer.client_order_id, answer.order_id, answer.leaves_quantity) == (
        "mass_cancelled",
        cid,
        None,
        0,
    )
    assert re.search(r"\b2\b", answer.text or ""), answer.text
    assert sorted(
        (r.client_order_id, r.status, r.reason, r.order_id, r.leaves_quantity) for r in cancels
    ) == [
        ("mc-ask", "cancelled", "mass_cancel", ask.order_id, 0),
        ("mc-bid", "cancelled", "mass_cancel", bid.order_id, 0),
    ]


# --------------------------------------------------------------------------- leaves_quantity


def test_leaves_quantity_is_zero_on_every_report_that_ends_an_order(running: Exchange) -> None:
    seen: list[ExecutionReport] = []
    with (
        running.client("alpha") as alpha,
        running.client("beta") as beta,
        tidy(running, "PRND-OX", "alpha", "beta"),
    ):
        expire_ms = time.time_ns() // 1_000_000 + 1_000
        for result in (
            alpha.place(
                "PRND-OX",
                "buy",
                100,
                462_000,
                time_in_force="GTD",
                expire_time=expire_ms,
                client_order_id="lv-gtd",
            ),
            alpha.place("PRND-OX", "sell", 300, 520_000, client_order_id="lv-ask"),
            beta.place("PRND-OX", "buy", 100, 520_000, client_order_id="lv-bid-1"),  # filled
            beta.place(  # partially filled, the rest cancelled (IOC)
                "PRND-OX", "buy", 300, 520_000, time_in_force="IOC", client_order_id="lv-bid-2"
            ),
            alpha.place("PRND-OX", "sell", 100, 521_000, client_order_id="lv-ask-2"),
            alpha.cancel("PRND-OX", "lv-ask-2"),  # cancelled on request
            alpha.place("PRND-OX", "sell", 100, 522_000, client_order_id="lv-ask-3"),
            alpha.place("PRND-OX", "buy", 100, 522_000, client_order_id="lv-st"),  # self-trade
            alpha.cancel("PRND-OX", "lv-ask-3"),
            alpha.place("PRND-OX", "buy", 100, 500_010),  # rejected by the gateway
            alpha.cancel("PRND-OX", "lv-never"),  # rejected by the engine
        ):
            seen.append(report(result))
        seen.append(alpha.await_answer("lv-gtd", timeout=6))  # expired
        seen.extend(collect(alpha, lambda r: True, 0, settle=0.5))
        seen.extend(collect(beta, lambda r: True, 0, settle=0.3))
    statuses = {r.status for r in seen}
    assert statuses >= ENDING | {"new", "partially_filled"}, statuses
    for r in seen:
        if r.status in ENDING:
            assert r.leaves_quantity == 0, r
        elif r.quantity is not None:
            assert r.leaves_quantity == r.quantity - r.cumulative_quantity > 0, r


# --------------------------------------------------------------------------- the rex CLI


def rex_as(exchange: Exchange, short: str, *args: str) -> subprocess.CompletedProcess[str]:
    """`rex <args> --member <id> --password <pw>`. While it runs, no SDK client of the same
    member may be consuming: the member's queue would hand the answer to either."""
    return exchange.rex(*args, "--member", exchange.members[short], "--password", PASSWORD)


def test_cli_order_prints_new_and_book_shows_the_level(running: Exchange) -> None:
    with tidy(running, "PRND-OX", "alpha"):
        placed = rex_as(
            running, "alpha", "order", "PRND-OX", "sell", "100", "505000",
            "--client-order-id", "cli-ask",
        )  # fmt: skip
        assert placed.returncode == 0, placed.stderr
        assert placed.stdout.startswith("new  PRND-OX  cli-ask  order "), placed.stdout
        assert "leaves 100" in placed.stdout
        book = rex_as(running, "beta", "book", "PRND-OX")
        assert book.returncode == 0, book.stderr
        assert book.stdout.startswith("PRND-OX  sequence"), book.stdout
        assert re.search(r"\|\s+505000\s+100\s*$", book.stdout, re.M), book.stdout
        with running.client("alpha") as sdk:
            assert report(sdk.cancel("PRND-OX", "cli-ask")).status == "cancelled"


def test_cli_cancel_prints_cancelled(running: Exchange) -> None:
    with tidy(running, "PRND-OX", "alpha"):
        with running.client("alpha") as sdk:
            placed = report(sdk.place("PRND-OX", "sell", 100, 505_500, client_order_id="cli-c"))
            assert placed.status == "new"
        done = rex_as(running, "alpha", "cancel", "PRND-OX", "cli-c")
        assert done.returncode == 0, done.stderr
        assert done.stdout.startswith("cancelled  PRND-OX  "), done.stdout
        assert f"order {placed.order_id}" in done.stdout
        assert "leaves 0" in done.stdout and "(requested:" in done.stdout


def test_cli_trades_prints_a_trade_after_one_happens(running: Exchange) -> None:
    with tidy(running, "PRND-OX", "alpha"):
        with running.client("alpha") as sdk:
            assert report(sdk.place("PRND-OX", "sell", 100, 506_000)).status == "new"
        bought = rex_as(running, "beta", "order", "PRND-OX", "buy", "100", "506000")
        assert bought.returncode == 0, bought.stderr
        assert bought.stdout.startswith("filled  PRND-OX  "), bought.stdout
        assert "filled 100 @ 506000" in bought.stdout and "leaves 0" in bought.stdout
        tape = rex_as(running, "gamma", "trades", "PRND-OX", "--limit", "1")
        assert tape.returncode == 0, tape.stderr
        lines = tape.stdout.splitlines()
        assert len(lines) == 1, tape.stdout
        stamp = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+08:00"  # exchange time
        assert re.fullmatch(stamp + r"\s+PRND-OX-\d+\s+100 @ 506000  buy", lines[0]), lines


def test_cli_rejected_order_exits_1(running: Exchange) -> None:
    rejected = rex_as(running, "alpha", "order", "PRND-OX", "buy", "100", "500010")
    assert rejected.returncode == 1, (rejected.stdout, rejected.stderr)
    assert rejected.stdout.startswith("rejected  PRND-OX  "), rejected.stdout
    assert "(price_not_on_tick: " in rejected.stdout


def test_reports_read_past_by_a_closed_client_are_not_lost(running: Exchange) -> None:
    with tidy(running, "PRND-OX", "beta"):
        with running.client("beta") as beta:
            report(beta.place("PRND-OX", "sell", 100, 509_000, client_order_id="keep-ask"))
        with running.client("alpha") as alpha:
            assert report(alpha.place("PRND-OX", "buy", 100, 509_000)).status == "filled"
        # beta's fill waits in its queue; this command reads past it to its own answer
        placed = rex_as(running, "beta", "order", "PRND-OX", "buy", "100", "455000", "--tif", "IOC")
        assert placed.stdout.startswith("cancelled"), placed.stdout
        with running.client("beta") as beta:
            later = collect(beta, lambda r: r.client_order_id == "keep-ask", 1, timeout=3)
        assert [(r.status, r.last_quantity) for r in later] == [("filled", 100)]


# --------------------------------------------------------------------------- metrics


def test_gateway_metrics_count_requests_and_rejects_by_reason(
    running: Exchange, metrics_ports: dict[str, int]
) -> None:
    port = metrics_ports["gateway"]
    before = scrape(port)
    with running.client("alpha") as alpha:
        ok = report(alpha.place("PRND-OX", "buy", 100, 455_000, time_in_force="IOC"))
        assert ok.reason == "immediate_or_cancel"
        bad = report(alpha.place("PRND-OX", "buy", 100, 500_010))
        assert bad.reason == "price_not_on_tick"
    after = scrape(port)
    requests = "rex_gateway_requests_total"
    rejects = "rex_gateway_rejects_total"
    assert sample(after, requests, kind="new_order") - sample(
        before, requests, kind="new_order"
    ) == pytest.approx(2)
    assert sample(after, rejects, reason="price_not_on_tick") - sample(
        before, rejects, reason="price_not_on_tick"
    ) == pytest.approx(1)
    assert re.search(r'^rex_gateway_requests_total\{kind="new_order"\} [1-9]', after, re.M)
    assert re.search(r'^rex_gateway_rejects_total\{reason="price_not_on_tick"\} [1-9]', after, re.M)


def test_engine_metrics_show_the_active_group(
    running: Exchange, metrics_ports: dict[str, int]
) -> None:
    text = scrape(metrics_ports["engine"])
    assert 'rex_engine_active{group="main"} 1.0' in text.splitlines()
    assert sample(text, "rex_engine_inputs_total", product="PRND-OX", kind="new_order") > 0


# --------------------------------------------------------------------------- SIGTERM


def test_gateway_exits_0_on_sigterm_and_loses_no_request(
    running: Exchange, metrics_ports: dict[str, int]
) -> None:
    with running.client("gamma") as gamma:
        before = [f"term-a{n}" for n in range(20)]
        for cid in before:  # in the queue or in the gateway's hands when the signal comes
            ioc_bid(gamma, cid)
        gateway = running.processes.pop("gateway")
        gateway.send_signal(signal.SIGTERM)
        started = time.monotonic()
        status = gateway.wait(timeout=10)
        assert status == 0, running.log_tail()
        assert time.monotonic() - started < 10
        during = [f"term-b{n}" for n in range(5)]
        for cid in during:  # nobody is reading: they wait in rex.gateway.requests
            ioc_bid(gamma, cid)
        start_gateway(running, metrics_ports["gateway"])
        cids = set(before + during)
        answers = collect(gamma, lambda r: r.client_order_id in cids, len(cids), timeout=30)
    assert sorted(str(r.client_order_id) for r in answers) == sorted(cids), "lost or doubled"
    assert {(r.status, r.reason, r.leaves_quantity) for r in answers} == {
        ("cancelled", "immediate_or_cancel", 0)
    }


# --------------------------------------------------------------------------- SDK market data


def test_sdk_book_reflects_a_new_resting_order(running: Exchange) -> None:
    with running.client("gamma") as gamma, tidy(running, "DY-OX", "gamma"):
        before = gamma.book("DY-OX", timeout=0.5)
        order = report(gamma.place("DY-OX", "buy", 300, 1_750_000, client_order_id="bk-bid"))
        assert order.status == "new"
        during = gamma.book("DY-OX", timeout=0.5)
        assert during is not None
        assert [1_750_000, 300, 1] in during.bids, during
        assert before is None or during.sequence > before.sequence
        report(gamma.cancel("DY-OX", "bk-bid"))
        after = gamma.book("DY-OX", timeout=0.5)
        assert after is not None and after.sequence > during.sequence
        assert all(level[0] != 1_750_000 for level in after.bids), after


def make_trades(exchange: Exchange, product: str, count: int) -> list[str]:
    """`count` trades of 100 between alpha (maker) and beta; returns their trade ids."""
    price = {"PRND-OX": 510_000, "DY-OX": 1_810_000}[product]
    trade_ids = []
    with (
        exchange.client("alpha") as alpha,
        exchange.client("beta") as beta,
        tidy(exchange, product, "alpha"),
    ):
        for _ in range(count):
            assert report(alpha.place(product, "sell", 100, price)).status == "new"
            fill = report(beta.place(product, "buy", 100, price))
            assert (fill.status, fill.last_price) == ("filled", price)
            trade_ids.append(str(fill.trade_id))
    return trade_ids


def test_sdk_trades_returns_the_tape_in_sequence_order(running: Exchange) -> None:
    made = make_trades(running, "PRND-OX", 2)
    with running.client("gamma") as gamma:
        tape = gamma.trades("PRND-OX", timeout=0.5)
    sequences = [t.sequence for t in tape]
    assert sequences == list(range(1, len(tape) + 1)), sequences
    assert [t.trade_id for t in tape[-2:]] == made
    assert all(t.trade_id == f"PRND-OX-{t.sequence}" for t in tape)
    assert [t.timestamp for t in tape] == sorted(t.timestamp for t in tape)


def test_trade_sequence_is_gapless_from_1_per_product_and_timestamps_are_ns(
    running: Exchange,
) -> None:
    last = {product: make_trades(running, product, 2)[-1] for product in ("PRND-OX", "DY-OX")}
    trades = settlement_trades(running)
    if not set(last.values()) <= {t["trade_id"] for t in trades}:  # a confirm may lag a little
        time.sleep(1.0)
        trades = settlement_trades(running)
    now = time.time_ns()
    by_product: dict[str, list[dict[str, object]]] = {}
    for trade in trades:
        by_product.setdefault(str(trade["product"]), []).append(trade)
    assert set(by_product) == {"PRND-OX", "DY-OX"}
    for product, ordered in by_product.items():
        sequences = [t["sequence"] for t in ordered]
        assert sequences == list(range(1, len(ordered) + 1)), (product, sequences)
        assert ordered[-1]["trade_id"] == last[product]
        for t in ordered:
            assert (t["trade_id"], t["currency"]) == (f"{product}-{t['sequence']}", "CNY")
            assert isinstance(t["timestamp"], int) and NS_2020 < t["timestamp"] <= now, t
