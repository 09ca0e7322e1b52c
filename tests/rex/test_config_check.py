"""`rex config check`: everything any service reads, every problem reported, each saying
what is wrong and where; exit 2 if there is any."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from cli.main import main
from rex.environment import VARIABLES

REPO = Path(__file__).resolve().parents[2]
SHIPPED = REPO / "config"
PASSWORD_ENV = "REX_PW_BAOTOU_METALS"  # the shipped members.toml's one password_env
OPERATOR_PASSWORD_ENV = "REX_PW_OPERATOR_LI_WEI"  # operators.toml's enabled account's
PREFIX = "rex config check: "


@pytest.fixture(autouse=True)
def no_rex_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test starts from an environment without REX_* variables but the password."""
    for name in os.environ:
        if name.startswith("REX_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv(PASSWORD_ENV, "s3cret")
    monkeypatch.setenv(OPERATOR_PASSWORD_ENV, "s3cret")


@pytest.fixture
def config(tmp_path: Path) -> Path:
    """A copy of the shipped configuration to break."""
    copy = tmp_path / "config"
    copy.mkdir()
    for name in ("products.toml", "members.toml", "settlement.toml", "holidays.toml"):
        shutil.copy(SHIPPED / name, copy / name)
    return copy


def check(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, list[str]]:
    """Exit status, stdout, and the problem lines on stderr (without the prefix)."""
    status = main(["config", "check", *args])
    out, err = capsys.readouterr()
    assert all(line.startswith(PREFIX) for line in err.splitlines()), err
    return status, out, [line.removeprefix(PREFIX) for line in err.splitlines()]


def test_the_shipped_configuration_passes(capsys: pytest.CaptureFixture[str]) -> None:
    status, out, err = check(capsys)
    assert (status, err) == (0, [])
    assert out.startswith(f"configuration: {SHIPPED} (shipped with REX)\n")
    assert "band 378000..462000 CNY/t" in out
    assert out.splitlines()[-1] == (
        "ok: 9 products, 5 members (5 enabled), 3 operator accounts (1 enabled), "
        "settlement.toml, holidays.toml and "
        f"{len(VARIABLES)} environment variables"
    )


def test_rex_config_dir_is_used(
    config: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("REX_CONFIG_DIR", str(config))
    status, out, _ = check(capsys)
    assert status == 0
    assert out.startswith(f"configuration: {config} (from REX_CONFIG_DIR)\n")


def test_an_unset_password_env_is_reported(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv(PASSWORD_ENV)
    status, _, err = check(capsys)
    assert status == 2
    assert err == [
        f"{SHIPPED / 'members.toml'}: member 'baotou-metals': field 'password_env': "
        f"environment variable '{PASSWORD_ENV}' is not set; set it to the member's RabbitMQ "
        "password",
        "1 problem (above); fix it and run it again",
    ]


def test_an_empty_password_env_is_reported(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv(PASSWORD_ENV, "")
    status, _, err = check(capsys)
    assert status == 2
    assert f"environment variable '{PASSWORD_ENV}' is empty; set it to" in err[0]


def test_a_disabled_member_needs_no_password(
    config: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    members = config / "members.toml"
    text = members.read_text()
    assert f'password_env = "{PASSWORD_ENV}"\n' in text
    members.write_text(
        text.replace(
            f'password_env = "{PASSWORD_ENV}"\n',
            f'password_env = "{PASSWORD_ENV}"\nenabled = false\n',
        )
    )
    monkeypatch.delenv(PASSWORD_ENV)
    status, out, err = check(capsys, "--config-dir", str(config))
    assert (status, err) == (0, [])
    assert "5 members (4 enabled)" in out


def test_a_broken_settlement_toml_is_reported(
    config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = config / "settlement.toml"
    path.write_text(path.read_text() + "\n[surprise]\n")
    status, _, err = check(capsys, "--config-dir", str(config))
    assert status == 2
    assert err[0].startswith(f"{path}: unknown top-level key 'surprise' (allowed: ")


def test_a_missing_holidays_toml_is_reported(
    config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (config / "holidays.toml").unlink()
    status, _, err = check(capsys, "--config-dir", str(config))
    assert status == 2
    assert err[0] == (
        f"{config / 'holidays.toml'}: file not found; create it (docs/operators/configuration.md "
        "describes it) or set REX_CONFIG_DIR to the directory that has it"
    )


@pytest.mark.parametrize(
    ("name", "value", "expected"),
    [
        (
            "REX_METRICS_PORT",
            "abc",
            "REX_METRICS_PORT: must be a port number from 0 to 65535 (0: any free port), got "
            "'abc'; fix it, or unset it for the default (the service's own: gateway 9101, "
            "engine 9102, settlement worker 9103)",
        ),
        (
            "REX_ENGINE_IMAGE_EVERY",
            "0",
            "REX_ENGINE_IMAGE_EVERY: must be a whole number, 1 or more, got '0'; fix it, or "
            "unset it for the default (10000)",
        ),
        (
            "REX_DATABASE_URL",
            "sqlite:///x",
            "REX_DATABASE_URL: must be a PostgreSQL URL, postgresql://user@host:port/database, "
            "got 'sqlite:///x'; fix it, or unset it for the default (SQLite: settlement.sqlite3 "
            "in REX_DATA_DIR)",
        ),
        (
            "REX_MEMBER",
            "nobody",
            f"REX_MEMBER: no member 'nobody' in {SHIPPED / 'members.toml'}; set it to one of "
            "baotou-metals, ganzhou-magnet, ningbo-alloy, inner-mongolia-trading, xinyu-pvc, or "
            "unset it",
        ),
        (
            "REX_ENGINE_PRODUCTS",
            "ND-OX,XX-OX",
            f"REX_ENGINE_PRODUCTS: no product 'XX-OX' in {SHIPPED / 'products.toml'}; list "
            "symbols of PRND-OX, ND-OX, DY-OX, TB-OX, LA-OX, CE-OX, RE-STAB, RE-FR, "
            "PRND-OX-USD, or unset it for all",
        ),
    ],
)
def test_an_environment_variable_that_does_not_parse_is_reported(
    name: str,
    value: str,
    expected: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv(name, value)
    status, _, err = check(capsys)
    assert status == 2
    assert err == [expected, "1 problem (above); fix it and run it again"]


def test_every_problem_is_reported_not_just_the_first(
    config: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    (config / "holidays.toml").unlink()
    products = config / "products.toml"
    products.write_text(products.read_text().replace("tick = 50", "tick = -50", 1))
    monkeypatch.setenv("REX_CONFIG_DIR", str(config))
    monkeypatch.setenv("REX_LOG_LEVEL", "chatty")
    monkeypatch.delenv(PASSWORD_ENV)
    status, out, err = check(capsys)
    assert status == 2
    assert out == f"configuration: {config} (from REX_CONFIG_DIR)\n"  # no product loaded
    assert [line.split(":")[0] for line in err[:4]] == [
        "REX_LOG_LEVEL",
        str(products),
        str(config / "members.toml"),
        str(config / "holidays.toml"),
    ]
    assert "field 'tick': must be a positive integer, got -50" in err[1]
    assert err[4:] == [
        "not checked: settlement.toml (it needs a valid products.toml)",
        "4 problems (above); fix them and run it again",
    ]


def test_a_missing_config_dir_stops_the_file_checks_and_says_where_it_looked(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    status, out, err = check(capsys, "--config-dir", str(tmp_path / "absent"))
    assert (status, out) == (2, "")
    assert err[0].startswith(f"--config-dir: '{tmp_path / 'absent'}' is not a directory")
