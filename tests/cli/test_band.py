"""`rex band`'s command line: what it sends for each form, and the mistakes it stops
before logging in (exit status 2). The desk's judging is tests/gateway/test_operator_desk_band.py;
the command against a running exchange, tests/system/test_operator_band.py."""

from __future__ import annotations

import argparse
from decimal import Decimal

import pytest

from cli import main as cli
from cli.market_status import _band_of
from rex.operators import Action
from rex.price_band import PriceBand
from tests.engine.helpers import PRODUCT


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    """The exit status (argparse's errors exit, rex's main returns) and stderr."""
    try:
        status = cli.main(list(argv))
    except SystemExit as exited:
        status = int(exited.code or 0)
    return status, capsys.readouterr().err


@pytest.mark.parametrize(
    ("argv", "said"),
    [
        (["--low", "520000"], "--low needs --high"),
        (["--low", "520000", "--high", "600000", "--percent", "5"], "and no --percent"),
        (["--reference", "500000", "--high", "600000"], "--high goes with --low"),
        (["--low", "520000", "--reference", "500000"], "not allowed with argument"),
        (["--reference", "500000", "--percent", "100"], "greater than 0 and less than 100"),
        (["--reference", "500000", "--percent", "ten"], "greater than 0 and less than 100"),
        (["--reference", "500000", "--percent", "NaN"], "greater than 0 and less than 100"),
        (["--low", "5.5", "--high", "600000"], "invalid int value"),
        ([], "one of the arguments --low --reference is required"),
    ],
)  # fmt: skip
def test_a_wrong_command_line_is_a_usage_error(
    capsys: pytest.CaptureFixture[str], argv: list[str], said: str
) -> None:
    status, err = run(capsys, "band", "PRND-OX", *argv)
    assert status == 2
    assert said in err


@pytest.mark.parametrize(
    ("args", "band"),
    [
        ({"low": 520_000, "high": 600_000, "reference": None, "percent": None}, (520_000, 600_000)),
        # products.toml's band_percent (10) by default: products.toml's band again.
        ({"low": None, "high": None, "reference": 500_000, "percent": None}, (450_000, 550_000)),
        ({"low": None, "high": None, "reference": 420_000, "percent": Decimal("7.5")},
         (388_500, 451_500)),
    ],
)  # fmt: skip
def test_the_request_carries_the_two_limits(args: dict[str, object], band: tuple[int, int]) -> None:
    request = _band_of(argparse.Namespace(product="PRND-OX", **args), PRODUCT)
    assert (request.action, request.product, request.band) == (
        Action.SET_BAND,
        "PRND-OX",
        PriceBand(*band),
    )
