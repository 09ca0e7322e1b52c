"""The exchange through real RabbitMQ: gateway and engine processes, members via the SDK."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pika
import pytest

from rex import topology
from rex.client import Client
from rex.log_reader import StreamReader
from rex.protocol import ExecutionReport, unpack_messages
from tests.system.conftest import Exchange, wait_for_answer

pytestmark = pytest.mark.broker


@pytest.fixture(scope="module")
def running(exchange: Exchange) -> Iterator[Exchange]:
    exchange.start("gateway", "gateway", "--tick-interval", "0.5")
    exchange.start("engine-main", "engine", "--group", "main")
    with exchange.client("gamma") as gamma:
        try:
            wait_for_answer(gamma, "PRND-OX")
            wait_for_answer(gamma, "DY-OX")
        except TimeoutError:
            pytest.fail("exchange did not come up:\n" + exchange.log_tail())
    yield exchange


def report(result: ExecutionReport | str) -> ExecutionReport:
    assert isinstance(result, ExecutionReport), result
    return result


def settlement_trades(exchange: Exchange) -> list[dict[str, object]]:
    """Everything on rex.settlement.trades, without consuming it."""
    connection = pika.BlockingConnection(pika.URLParameters(exchange.url))
    try:
        channel = connection.channel()
        bodies = []
        while True:
            method, props, body = channel.basic_get(topology.SETTLEMENT_TRADES, auto_ack=False)
            if method is None:
                break
            bodies.extend(unpack_messages(props.type, body))
        return bodies  # closing without ack puts them back
    finally:
        connection.close()


def test_two_members_trade_and_each_gets_its_reports(running: Exchange) -> None:
    with running.client("alpha") as alpha, running.client("beta") as beta:
        before = {t["trade_id"] for t in settlement_trades(running)}
        ask = report(alpha.place("PRND-OX", "sell", 1000, 501_000, client_order_id="a-ask-1"))
        assert (ask.status, ask.leaves_quantity, ask.price) == ("new", 1000, 501_000)
        bid = report(beta.place("PRND-OX", "buy", 400, 501_500, client_order_id="b-bid-1"))
        assert (bid.status, bid.last_price, bid.last_quantity, bid.leaves_quantity) == (
            "filled",
            501_000,
            400,
            0,
        )
        fill = alpha.await_answer("a-ask-1", timeout=10)
        assert (fill.status, fill.cumulative_quantity, fill.leaves_quantity) == (
            "partially_filled",
            400,
            600,
        )
        assert fill.trade_id == bid.trade_id
        trades = [t for t in settlement_trades(running) if t["trade_id"] not in before]
        assert len(trades) == 1
        assert (trades[0]["buyer"], trades[0]["seller"], trades[0]["quantity"]) == (
            running.members["beta"],
            running.members["alpha"],
            400,
        )
        tape = [t for t in beta.trades("PRND-OX") if t.trade_id == bid.trade_id]
        assert len(tape) == 1 and tape[0].price == 501_000
        book = beta.book("PRND-OX")
        assert book is not None and [501_000, 600, 1] in book.asks
        alpha.cancel("PRND-OX", "a-ask-1")


def test_public_market_data_names_no_member(running: Exchange) -> None:
    with running.client("alpha") as alpha, running.client("beta") as beta:
        alpha.place("PRND-OX", "sell", 100, 504_000, client_order_id="pub-ask")
        beta.place("PRND-OX", "buy", 100, 504_000, client_order_id="pub-bid")
        tape = alpha.trades("PRND-OX")
        assert tape, "expected trades on the tape"
        text = repr(tape)
        assert all(m not in text for m in running.members.values())


@pytest.mark.parametrize(
    ("order", "reason"),
    [
        ({"quantity": 100, "price": 500_010}, "price_not_on_tick"),
        ({"quantity": 150, "price": 500_000}, "quantity_not_on_lot"),
        ({"quantity": 100, "price": 600_000}, "outside_price_band"),
        ({"quantity": 0, "price": 500_000}, "quantity_out_of_range"),
        ({"quantity": 100, "price": 500_000, "product": "NO-SUCH"}, "unknown_product"),
        ({"quantity": 100, "price": 499_000, "time_in_force": "GTD"}, "missing_expire_time"),
        ({"quantity": 100, "price": 499_000, "expire_time": 1}, "expire_time_not_allowed"),
        (
            {"quantity": 100, "price": 499_000, "time_in_force": "GTD", "expire_time": 1},
            "expire_time_in_past",
        ),
        (
            {"quantity": 100, "price": 499_000, "time_in_force": "IOC", "post_only": True},
            "post_only_not_allowed",
        ),
    ],
)
def test_gateway_rejects_with_reason(
    running: Exchange, order: dict[str, object], reason: str
) -> None:
    with running.client("alpha") as alpha:
        product = str(order.pop("product", "PRND-OX"))
        result = report(alpha.place(product, "buy", **order))  # type: ignore[arg-type]
        assert (result.status, result.reason, result.leaves_quantity) == ("rejected", reason, 0)


def test_post_only_that_would_take_is_rejected(running: Exchange) -> None:
    with running.client("alpha") as alpha, running.client("beta") as beta:
        report(alpha.place("PRND-OX", "sell", 100, 502_000, client_order_id="po-ask"))
        result = report(beta.place("PRND-OX", "buy", 100, 502_000, post_only=True))
        assert (result.status, result.reason) == ("rejected", "post_only_would_take")
        alpha.cancel("PRND-OX", "po-ask")


def test_self_trade_is_prevented(running: Exchange) -> None:
    with running.client("alpha") as alpha:
        report(alpha.place("PRND-OX", "sell", 100, 503_000, client_order_id="st-ask"))
        result = report(alpha.place("PRND-OX", "buy", 100, 503_000, client_order_id="st-bid"))
        assert (result.status, result.reason) == ("cancelled", "self_trade")
        alpha.cancel("PRND-OX", "st-ask")


def test_duplicate_client_order_id_is_rejected(running: Exchange) -> None:
    with running.client("alpha") as alpha:
        first = report(alpha.place("PRND-OX", "buy", 100, 480_000, client_order_id="dup-1"))
        assert first.status == "new"
        again = report(alpha.place("PRND-OX", "buy", 100, 480_000, client_order_id="dup-1"))
        assert (again.status, again.reason) == ("rejected", "duplicate_client_order_id")
        alpha.cancel("PRND-OX", "dup-1")


def test_unknown_order_and_another_members_order_are_unknown(running: Exchange) -> None:
    with running.client("alpha") as alpha, running.client("beta") as beta:
        report(alpha.place("PRND-OX", "buy", 100, 481_000, client_order_id="mine-1"))
        theirs = report(beta.cancel("PRND-OX", "mine-1"))
        assert (theirs.status, theirs.reason) == ("rejected", "unknown_order")
        missing = report(alpha.cancel("PRND-OX", "never-sent"))
        assert (missing.status, missing.reason) == ("rejected", "unknown_order")
        mine = report(alpha.cancel("PRND-OX", "mine-1"))
        assert (mine.status, mine.orig_client_order_id, mine.leaves_quantity) == (
            "cancelled",
            "mine-1",
            0,
        )


def test_halted_product_rejects_new_orders(running: Exchange) -> None:
    import subprocess
    import sys

    def rex(*args: str) -> None:
        # As an operator account with market_ops, through the gateway's operator desk.
        env = {**running.env, "REX_OPERATOR_URL": running.operator_url("market")}
        subprocess.run(
            [sys.executable, "-m", "cli", *args], env=env, check=True, capture_output=True
        )

    with running.client("alpha") as alpha:
        rex("halt", "DY-OX")
        time.sleep(0.5)
        result = report(alpha.place("DY-OX", "buy", 100, 1_800_000))
        assert (result.status, result.reason) == ("rejected", "product_halted")
        rex("resume", "DY-OX")
        time.sleep(0.5)
        result = report(alpha.place("DY-OX", "buy", 100, 1_800_000, time_in_force="IOC"))
        assert result.status == "cancelled" and result.reason == "immediate_or_cancel"


def test_malformed_request_is_answered_and_no_user_id_is_dead_lettered(running: Exchange) -> None:
    member = running.members["alpha"]
    params = pika.URLParameters(running.url)
    params.credentials = pika.PlainCredentials(member, "e2e-secret")
    with running.client("alpha") as alpha:
        connection = pika.BlockingConnection(params)
        channel = connection.channel()
        channel.confirm_delivery()
        props = dict(
            content_type="application/msgpack", delivery_mode=2, timestamp=int(time.time())
        )
        channel.basic_publish(
            topology.REQUESTS,
            f"{member}.PRND-OX",
            b"\xc1garbage",
            pika.BasicProperties(type="new_order", message_id="mal-1", user_id=member, **props),
        )
        channel.basic_publish(
            topology.REQUESTS,
            f"{member}.PRND-OX",
            b"\x80",
            pika.BasicProperties(type="new_order", message_id="anon-1", **props),
        )
        connection.close()
        answers = [r for r in alpha.executions(timeout=5) if r.exec_id.endswith("mal-1")]
        assert [(r.status, r.reason) for r in answers] == [("rejected", "malformed")]
    admin_connection = pika.BlockingConnection(pika.URLParameters(running.url))
    try:
        channel = admin_connection.channel()
        deadline = time.monotonic() + 10
        found = False
        while time.monotonic() < deadline and not found:
            method, props_, _ = channel.basic_get(topology.DEAD_LETTERS, auto_ack=True)
            if method is not None and props_.message_id == "anon-1":
                found = True
            elif method is None:
                time.sleep(0.2)
        assert found, "the request without user_id was not dead-lettered"
    finally:
        admin_connection.close()


def test_sdk_client_dedupes_and_iterates_executions(running: Exchange) -> None:
    with running.client("gamma") as gamma:
        cid = gamma.place("DY-OX", "sell", 100, 1_850_000, wait=None)
        assert isinstance(cid, str)
        got = [r for r in gamma.executions(timeout=5) if r.client_order_id == cid]
        assert [r.status for r in got] == ["new"]
        report(gamma.cancel("DY-OX", cid))


def log_entries(exchange: Exchange, short: str) -> list[tuple[str, list[dict[str, object]]]]:
    """(type, reports) of every entry in a member's log, read as the operator (reading a
    stream takes nothing from it)."""
    connection = pika.BlockingConnection(pika.URLParameters(exchange.url))
    try:
        reader = StreamReader(connection, topology.member_log(exchange.members[short]), "first")
        found = []
        quiet_until = time.monotonic() + 1.0
        while time.monotonic() < quiet_until:
            connection.process_data_events(time_limit=0.1)
            while (entry := reader.take()) is not None:
                found.append((entry.type or "", unpack_messages(entry.type, entry.body)))
                quiet_until = time.monotonic() + 0.5
        reader.close()
        return found
    finally:
        connection.close()


def test_a_sweeps_reports_arrive_as_one_batch_and_a_client_stopping_half_way_gets_the_rest(
    running: Exchange,
) -> None:
    with running.client("alpha") as alpha:
        for n, price in enumerate((1_901_000, 1_902_000, 1_903_000)):
            report(alpha.place("DY-OX", "sell", 100, price, client_order_id=f"sweep-ask-{n}"))
    with running.client("beta") as beta:
        cid = beta.place("DY-OX", "buy", 300, 1_903_000, wait=None)
        time.sleep(1.0)  # the reports arrive; the client hands none out before it closes
    mine = [
        (kind, [r["status"] for r in reports])
        for kind, reports in log_entries(running, "beta")
        if any(r["client_order_id"] == cid for r in reports)
    ]
    assert mine == [("execution_batch", ["partially_filled", "partially_filled", "filled"])]
    with running.client("beta") as beta:  # takes the first of the batch, then stops
        first = next(r for r in beta.executions(timeout=3) if r.client_order_id == cid)
    with running.client("beta") as beta:
        rest = [r for r in beta.executions(timeout=3) if r.client_order_id == cid]
    assert [(r.status, r.last_price) for r in [first, *rest]] == [
        ("partially_filled", 1_901_000),
        ("partially_filled", 1_902_000),
        ("filled", 1_903_000),
    ]
    with running.client("beta") as beta:
        assert [r for r in beta.executions(timeout=1) if r.client_order_id == cid] == []


def test_orders_and_reports_survive_a_gateway_restart(running: Exchange) -> None:
    import signal

    with running.client("alpha") as alpha:
        running.kill("gateway", signal.SIGKILL)
        cid = alpha.place("PRND-OX", "buy", 100, 482_000, wait=None)  # waits in the queue
        running.start("gateway", "gateway", "--tick-interval", "0.5")
        answer = alpha.await_answer(str(cid), timeout=30)
        assert answer.status == "new"
        report(alpha.cancel("PRND-OX", str(cid)))


def _client_for(running: Exchange, short: str) -> Client:
    return running.client(short)


def test_sdk_subscribes_to_market_data_as_it_is_published(running: Exchange) -> None:
    import threading

    with running.client("gamma") as watcher:
        seen: list[object] = []

        def trade_soon() -> None:
            time.sleep(1.0)
            with running.client("alpha") as alpha, running.client("beta") as beta:
                alpha.place("DY-OX", "sell", 100, 1_801_000, client_order_id="md-ask")
                beta.place("DY-OX", "buy", 100, 1_801_000, client_order_id="md-bid")

        seller = threading.Thread(target=trade_soon)
        seller.start()
        for message in watcher.marketdata("DY-OX", offset="next", timeout=5):
            seen.append(message)
            if getattr(message, "kind", "") == "public_trade":
                break
        seller.join()
    trades = [m for m in seen if getattr(m, "kind", "") == "public_trade"]
    assert trades and trades[0].price == 1_801_000  # type: ignore[attr-defined]


def test_rex_order_takes_an_expiry_in_exchange_time_and_names_the_band(
    running: Exchange,
) -> None:
    """`--expire` without an offset is Beijing time: two seconds from now there, the order
    rests and then expires (read as UTC it would rest 8 hours; the other way it would be
    in the past). A price outside the band is refused with the band in the text."""
    import datetime as dt

    from rex.exchange_time import EXCHANGE_TIME

    alpha = running.members["alpha"]
    soon = dt.datetime.now(EXCHANGE_TIME) + dt.timedelta(seconds=3)
    naive = soon.replace(tzinfo=None).isoformat(timespec="milliseconds")
    placed = running.rex(
        "order", "PRND-OX", "buy", "100", "451000", "--expire", naive, "--member", alpha,
        "--client-order-id", "gtd-iso-1",
    )  # fmt: skip
    assert placed.returncode == 0, placed.stderr
    assert placed.stdout.startswith("new  PRND-OX  gtd-iso-1"), placed.stdout
    with running.client("alpha") as alpha_reads:  # after the command: it reads alpha's queue too
        expired = [
            r.status for r in alpha_reads.executions(timeout=6) if r.client_order_id == "gtd-iso-1"
        ]
    assert expired == ["expired"]
    refused = running.rex("order", "PRND-OX", "buy", "100", "600000", "--member", alpha)
    assert refused.returncode == 1
    assert refused.stdout.rstrip().endswith(
        "(outside_price_band: The price is outside today's band, 450000..550000 CNY/t "
        "(both included).)"
    ), refused.stdout
