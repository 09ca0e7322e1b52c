"""An operator sets a product's price band, through real RabbitMQ: `rex band` as a
market_ops account is done, audited with the actor the broker verified, published on
rex.marketdata, and from then on governs the engine's `outside_price_band` (an order inside
products.toml's band but outside the new one is rejected, one outside the old band but
inside the new one rests and trades). settlement_ops, audit, a disabled account, a member
and `guest` are refused, and nothing changes.

PRND-OX here: tick 50, reference 500 000, band 10% -> 450 000..550 000 CNY/t (conftest)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pika.exceptions
import pytest

from rex.protocol import ExecutionReport, pack
from tests.system.conftest import OPERATOR_PASSWORD, PASSWORD, Exchange, wait_for_answer
from tests.system.test_operator_desk import audit_lines, publish_raw, rex

pytestmark = pytest.mark.broker

PRODUCT = "PRND-OX"
NEW_LOW, NEW_HIGH = 520_000, 600_000
INSIDE_OLD_ONLY = 500_000  # 450 000..550 000, not 520 000..600 000
INSIDE_NEW_ONLY = 580_000  # the other way round
BAND_ARGS = ("band", PRODUCT, "--low", str(NEW_LOW), "--high", str(NEW_HIGH))


@pytest.fixture(scope="module")
def running(exchange: Exchange) -> Iterator[Exchange]:
    exchange.start("gateway", "gateway", "--tick-interval", "0.5")
    exchange.start("engine-main", "engine", "--group", "main")
    with exchange.client("gamma") as gamma:
        try:
            wait_for_answer(gamma, PRODUCT)
        except TimeoutError:
            pytest.fail("exchange did not come up:\n" + exchange.log_tail())
    yield exchange


def ioc(exchange: Exchange, side: str, price: int, short: str = "alpha") -> ExecutionReport:
    """An IOC order's first answer: it never rests, so tests leave nothing in the book."""
    with exchange.client(short) as client:
        result = client.place(PRODUCT, side, 100, price, time_in_force="IOC", wait=10)
    assert isinstance(result, ExecutionReport), result
    return result


def assert_band_is_the_configured_one(exchange: Exchange) -> None:
    assert ioc(exchange, "buy", INSIDE_OLD_ONLY).reason == "immediate_or_cancel"
    outside = ioc(exchange, "sell", INSIDE_NEW_ONLY)
    assert (outside.status, outside.reason) == ("rejected", "outside_price_band")
    assert outside.text == (
        "The price is outside today's band, 450000..550000 CNY/t (both included)."
    )


def ask_band(exchange: Exchange, short: str) -> tuple[dict[str, object], str]:
    name = exchange.operators[short]
    request_id = f"b-{uuid.uuid4().hex}"
    answer = publish_raw(
        exchange,
        name,
        OPERATOR_PASSWORD,
        f"{name}.set_band",
        pack({"product": PRODUCT, "band_low": NEW_LOW, "band_high": NEW_HIGH}),
        message_id=request_id,
        user_id=name,
        answers_of=name,
    )
    assert answer is not None, "no answer from the operator desk"
    return answer, request_id


@pytest.mark.parametrize(("short", "role"), [("settle", "settlement_ops"), ("audit", "audit")])
def test_an_operator_without_market_ops_is_refused(
    running: Exchange, short: str, role: str
) -> None:
    name = running.operators[short]
    done = rex(running, *BAND_ARGS, REX_OPERATOR_URL=running.operator_url(short))
    assert (done.returncode, done.stdout) == (1, "")
    assert done.stderr == (
        f"rex band: refused (role_required): set_band needs the role market_ops; "
        f"operator {name!r} has {role}\n"
    )
    answer, request_id = ask_band(running, short)
    assert (answer["verdict"], answer["reason"]) == ("refused", "role_required")
    [line] = audit_lines(running, request_id)
    assert (line["actor"], line["action"], line["product"], line["verdict"], line["band"]) == (
        f"operator:{name}",
        "set_band",
        PRODUCT,
        "role_required",
        f"{NEW_LOW}..{NEW_HIGH}",
    )
    assert_band_is_the_configured_one(running)


def test_a_disabled_account_a_member_and_guest_are_refused(running: Exchange) -> None:
    gone = rex(running, *BAND_ARGS, REX_OPERATOR_URL=running.operator_url("gone"))
    assert gone.returncode == 5, gone.stderr
    member = running.members["alpha"]
    url = running.url.replace("guest:guest", f"{member}:{PASSWORD}")
    as_member = rex(running, *BAND_ARGS, REX_OPERATOR_URL=url)
    assert as_member.returncode == 2
    assert f"user {member!r} is no operator account of" in as_member.stderr
    with pytest.raises(pika.exceptions.ChannelClosedByBroker) as refused:
        publish_raw(
            running,
            member,
            PASSWORD,
            f"{member}.set_band",
            pack({"product": PRODUCT, "band_low": NEW_LOW, "band_high": NEW_HIGH}),
            message_id=f"m-{uuid.uuid4().hex}",
            user_id=member,
        )
    assert refused.value.reply_code == 403
    request_id = f"g-{uuid.uuid4().hex}"
    publish_raw(
        running,
        "guest",
        "guest",
        f"{running.operators['market']}.set_band",
        pack({"product": PRODUCT, "band_low": NEW_LOW, "band_high": NEW_HIGH}),
        message_id=request_id,
        user_id="guest",
    )
    [line] = audit_lines(running, request_id)
    assert (line["actor"], line["action"], line["verdict"]) == (
        "login:guest",
        "set_band",
        "not_an_operator",
    )
    as_guest = rex(running, *BAND_ARGS)  # $REX_BROKER_URL: guest
    assert as_guest.returncode == 2
    assert "user 'guest' is no operator account of" in as_guest.stderr
    assert_band_is_the_configured_one(running)
    with running.client("gamma") as gamma:
        assert gamma.band(PRODUCT) is None  # no band was ever published


def test_a_band_the_product_may_not_have_is_refused(running: Exchange) -> None:
    url = running.operator_url("market")
    inverted = rex(running, "band", PRODUCT, "--low", "600000", "--high", "520000",
                   REX_OPERATOR_URL=url)  # fmt: skip
    assert inverted.returncode == 1
    assert inverted.stderr == (
        "rex band: refused (band_inverted): band_low must be below band_high, got 600000..520000\n"
    )
    off_tick = rex(running, "band", PRODUCT, "--low", "520010", "--high", "600000",
                   REX_OPERATOR_URL=url)  # fmt: skip
    assert (off_tick.returncode, off_tick.stderr.split(":")[1]) == (
        1,
        " refused (band_not_on_tick)",
    )
    usage = rex(running, "band", PRODUCT, "--low", "520000", REX_OPERATOR_URL=url)
    assert usage.returncode == 2 and "--low needs --high" in usage.stderr
    assert_band_is_the_configured_one(running)


def test_market_ops_sets_the_band_and_the_engine_applies_it(running: Exchange) -> None:
    market = running.operators["market"]
    url = running.operator_url("market")
    done = rex(running, *BAND_ARGS, REX_OPERATOR_URL=url)
    assert (done.returncode, done.stdout, done.stderr) == (
        0,
        f"{PRODUCT}: band {NEW_LOW}..{NEW_HIGH} CNY/t\n",
        "",
    )
    # Inside products.toml's band, outside the new one: the engine rejects it.
    below = ioc(running, "buy", INSIDE_OLD_ONLY)
    assert (below.status, below.reason, below.text) == (
        "rejected",
        "outside_price_band",
        "The price is outside today's band, 520000..600000 CNY/t (both included).",
    )
    # Outside products.toml's band, inside the new one: it rests, and trades.
    with running.client("alpha") as alpha, running.client("beta") as beta:
        rests = alpha.place(PRODUCT, "sell", 100, INSIDE_NEW_ONLY, wait=10)
        assert isinstance(rests, ExecutionReport)
        assert (rests.status, rests.leaves_quantity) == ("new", 100)
        takes = beta.place(PRODUCT, "buy", 100, INSIDE_NEW_ONLY, time_in_force="IOC", wait=10)
        assert isinstance(takes, ExecutionReport)
        assert (takes.status, takes.last_price, takes.last_quantity) == (
            "filled",
            INSIDE_NEW_ONLY,
            100,
        )
        # Members learn the band from market data.
        band = beta.band(PRODUCT)
    assert band is not None
    assert (band.product, band.band_low, band.band_high) == (PRODUCT, NEW_LOW, NEW_HIGH)
    # The audit line names the verified actor and the band.
    answer, request_id = ask_band(running, "market")
    assert answer["verdict"] == "done"
    [line] = audit_lines(running, request_id)
    assert (line["actor"], line["action"], line["product"], line["verdict"], line["band"]) == (
        f"operator:{market}",
        "set_band",
        PRODUCT,
        "done",
        f"{NEW_LOW}..{NEW_HIGH}",
    )
    assert line["level"] == "INFO"
    # Back to products.toml's band, given as a reference price (the percent defaults to 10).
    back = rex(running, "band", PRODUCT, "--reference", "500000", REX_OPERATOR_URL=url)
    assert (back.returncode, back.stdout) == (0, f"{PRODUCT}: band 450000..550000 CNY/t\n")
    assert_band_is_the_configured_one(running)
