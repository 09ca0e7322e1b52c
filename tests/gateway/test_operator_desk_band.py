"""The operator desk's set_band on the memory bus: market_ops appends a BAND entry to the
product's engine input log; every other account, and every band the product may not have,
is refused with its own reason, appends nothing, and is audited with the band asked for."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from prometheus_client import generate_latest

from rex import metrics
from rex.operator_requests import REFUSALS, Refusal
from rex.operators import Action
from tests.gateway.test_operator_desk import Desk, audit, count

BAND = {"product": "PRND-OX", "band_low": 520_000, "band_high": 600_000}


def bands(desk: Desk) -> list[Any]:
    return [e for e in desk.inputs if e.kind == "band"]


def test_market_ops_appends_the_band_to_the_input_log(caplog: pytest.LogCaptureFixture) -> None:
    desk = Desk()
    before = count("set_band", "done")
    with caplog.at_level(logging.INFO, logger="rex.gateway.operators"):
        desk.send("li-wei", "set_band", BAND)
    [entry] = bands(desk)
    assert (entry.product, entry.received, entry.band_low, entry.band_high, entry.status) == (
        "PRND-OX",
        7,
        520_000,
        600_000,
        None,
    )
    assert [e for e in desk.inputs if e.kind == "status"] == []
    [answer] = desk.answers["li-wei"]
    assert (answer.action, answer.product, answer.verdict, answer.reason) == (
        "set_band",
        "PRND-OX",
        "done",
        None,
    )
    assert count("set_band", "done") - before == 1
    assert audit(caplog) == [
        {
            "actor": "operator:li-wei",
            "action": "set_band",
            "product": "PRND-OX",
            "verdict": "done",
            "request_id": "r-1",
            "band": "520000..600000",
        }
    ]
    assert caplog.records[-1].levelno == logging.INFO


@pytest.mark.parametrize(
    ("login", "reason", "text"),
    [
        ("zhang", "role_required", "set_band needs the role market_ops; operator 'zhang' has "
         "settlement_ops"),
        ("chen", "role_required", "set_band needs the role market_ops; operator 'chen' has audit"),
        ("gone", "account_disabled", "the operator account is disabled in operators.toml"),
    ],
)  # fmt: skip
def test_an_account_without_market_ops_is_refused_and_nothing_is_appended(
    login: str, reason: str, text: str, caplog: pytest.LogCaptureFixture
) -> None:
    desk = Desk()
    before = count("set_band", reason)
    with caplog.at_level(logging.INFO, logger="rex.gateway.operators"):
        desk.send(login, "set_band", BAND)
    assert bands(desk) == []
    [answer] = desk.answers[login]
    assert (answer.verdict, answer.reason, answer.text) == ("refused", reason, text)
    assert count("set_band", reason) - before == 1
    [line] = audit(caplog)
    assert (line["actor"], line["action"], line["verdict"], line["band"]) == (
        f"operator:{login}",
        "set_band",
        reason,
        "520000..600000",
    )


@pytest.mark.parametrize("login", ["guest", "alpha"])
def test_a_login_that_is_no_account_is_refused(
    login: str, caplog: pytest.LogCaptureFixture
) -> None:
    desk = Desk()
    with caplog.at_level(logging.INFO, logger="rex.gateway.operators"):
        desk.send(login, "set_band", BAND, key="li-wei.set_band")
    assert bands(desk) == []
    [line] = audit(caplog)
    assert (line["actor"], line["verdict"], line["band"]) == (
        f"login:{login}",
        "not_an_operator",
        "520000..600000",  # as asked
    )


@pytest.mark.parametrize(
    ("low", "high", "reason", "text"),
    [
        (520_010, 600_000, "band_not_on_tick", "band_low and band_high must be multiples of the "
         "product's tick (50 CNY/t), got 520010..600000"),
        (520_000, 600_001, "band_not_on_tick", "got 520000..600001"),
        (600_000, 520_000, "band_inverted", "band_low must be below band_high, got "
         "600000..520000"),
        (600_000, 600_000, "band_inverted", "got 600000..600000"),
        (124_950, 600_000, "band_out_of_range", "the band must lie within 1/4 and 4 times the "
         "product's reference_price (products.toml): 125000..2000000 CNY/t for PRND-OX, got "
         "124950..600000"),
        (520_000, 2_000_050, "band_out_of_range", "got 520000..2000050"),
        (0, 600_000, "bad_request", "'band_low' must be a positive integer price"),
        (-50, 600_000, "bad_request", "'band_low' must be a positive integer price"),
        (True, 600_000, "bad_request", "'band_low' must be a positive integer price"),
        (520_000, "600000", "bad_request", "'band_high' must be a positive integer price"),
        (520_000, 600_000.0, "bad_request", "'band_high' must be a positive integer price"),
        (520_000, 1 << 63, "bad_request", "'band_high' must be a positive integer price"),
    ],
)  # fmt: skip
def test_a_band_the_product_may_not_have_is_refused(
    low: Any, high: Any, reason: str, text: str, caplog: pytest.LogCaptureFixture
) -> None:
    desk = Desk()
    before = count("set_band", reason)
    with caplog.at_level(logging.INFO, logger="rex.gateway.operators"):
        desk.send("li-wei", "set_band", {"product": "PRND-OX", "band_low": low, "band_high": high})
    assert bands(desk) == []
    [answer] = desk.answers["li-wei"]
    assert (answer.verdict, answer.reason) == ("refused", reason)
    assert text in answer.text
    assert count("set_band", reason) - before == 1
    [line] = audit(caplog)
    assert line["verdict"] == reason


def test_the_limits_of_the_range_are_allowed() -> None:
    desk = Desk()
    desk.send("li-wei", "set_band", {"product": "PRND-OX", "band_low": 125_000,
                                     "band_high": 2_000_000})  # fmt: skip
    assert [(e.band_low, e.band_high) for e in bands(desk)] == [(125_000, 2_000_000)]


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ({"product": "PRND-OX"}, "bad_request"),  # no band
        ({"product": "PRND-OX", "band_low": 520_000}, "bad_request"),
        ({**BAND, "band_percent": "10"}, "bad_request"),
        ({**BAND, "actor": "li-wei"}, "bad_request"),
        ({**BAND, "product": "NO-SUCH"}, "unknown_product"),
    ],
)
def test_a_malformed_set_band_is_refused(body: dict[str, Any], reason: str) -> None:
    desk = Desk()
    desk.send("li-wei", "set_band", body)
    assert bands(desk) == []
    [answer] = desk.answers["li-wei"]
    assert (answer.verdict, answer.reason) == ("refused", reason)


def test_a_status_action_takes_no_band() -> None:
    desk = Desk()
    desk.send("li-wei", "halt", BAND)
    assert desk.inputs == []
    [answer] = desk.answers["li-wei"]
    assert (answer.reason, answer.text) == ("bad_request", "unknown fields 'band_high', 'band_low'")


def test_every_band_refusal_has_its_text_and_a_metric_series() -> None:
    Desk()  # starts the desk's series at zero
    exposed = generate_latest(metrics.GATEWAY_REGISTRY).decode()
    for verdict in ("done", "band_not_on_tick", "band_inverted", "band_out_of_range"):
        assert verdict == "done" or REFUSALS[Refusal(verdict)]
        assert (
            f'rex_gateway_operator_actions_total{{action="{Action.SET_BAND}",verdict="{verdict}"}}'
            in exposed
        )
