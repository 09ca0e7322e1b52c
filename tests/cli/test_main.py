"""The `rex` command line as a person meets it: every command in the help under its
group, a mistyped command or member named with the closest ids, GTD expiry as an ISO
time, times printed in exchange time, and one readable line -- the cause, what to check,
its own exit status -- when the broker or the settlement store cannot be reached. Nothing
here needs a running service: "down" is a port nothing listens on."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from cli import main as cli
from cli import members as cli_trading
from rex import logs
from rex.commands import Group
from rex.exchange_time import format_ns, parse_time_ns
from rex.protocol import PublicTrade

ROOT = Path(__file__).resolve().parents[2]
SHIPPED = ROOT / "config"


def closed_port() -> int:
    """A local port nothing listens on (bound once, then let go)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


@pytest.fixture
def down(monkeypatch: pytest.MonkeyPatch) -> Iterator[int]:
    """The broker, its management API and PostgreSQL all "down": URLs at a closed port."""
    port = closed_port()
    monkeypatch.setenv("REX_CONFIG_DIR", str(SHIPPED))
    monkeypatch.setenv("REX_BROKER_URL", f"amqp://guest:guest@127.0.0.1:{port}/")
    monkeypatch.setenv("REX_BROKER_ADMIN_URL", f"http://guest:guest@127.0.0.1:{port}")
    monkeypatch.setenv("REX_DATABASE_URL", f"postgresql://rex@127.0.0.1:{port}/test")
    monkeypatch.delenv("REX_MEMBER", raising=False)
    monkeypatch.delenv("REX_PASSWORD", raising=False)
    yield port


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    status = cli.main(list(argv))
    out, err = capsys.readouterr()
    return status, out, err


# ------------------------------------------------------------------------------ help


def sections(text: str) -> dict[str, list[str]]:
    """The command listing: group heading -> the command names under it."""
    groups: dict[str, list[str]] = {}
    current: list[str] | None = None
    for line in text.splitlines():
        if line.endswith(":") and not line.startswith(" ") and line[:-1] in set(Group):
            current = groups.setdefault(line[:-1], [])
        elif current is not None and line.startswith("  ") and line.strip():
            current.append(line.split()[0])
        else:
            current = None
    return groups


EVERY_COMMAND = {
    Group.MEMBER: [
        "order", "cancel", "replace", "mass-cancel", "executions", "events", "book", "trades",
        "limits", "my-bills",
    ],
    Group.OPERATOR: [
        "config", "provision", "halt", "resume", "close", "band", "gateway", "engine", "demo",
        "loadtest",
    ],
    Group.SETTLEMENT: [
        "settlement", "statement", "payments", "bills", "dispute", "offline", "audit",
        "reconcile",
    ],
}  # fmt: skip


def test_help_lists_every_command_under_its_group(capsys: pytest.CaptureFixture[str]) -> None:
    status, out, _ = run(capsys, "--help")
    assert status == 0
    assert sections(out) == {str(group): names for group, names in EVERY_COMMAND.items()}
    assert "  reconcile    check the settlement store's books add up" in out


def test_an_unknown_command_is_named_with_the_closest_and_every_command(
    capsys: pytest.CaptureFixture[str],
) -> None:
    status, out, err = run(capsys, "statment", "--member", "x")
    assert status == 2 and out == ""
    assert err.splitlines()[0] == (
        "rex: unknown command 'statment' (did you mean 'statement', 'settlement' or 'payments'?)"
    )
    assert sections(err) == {str(group): names for group, names in EVERY_COMMAND.items()}


def test_every_registered_command_is_in_the_table_once() -> None:
    names = [command.name for command in cli.COMMANDS]
    assert sorted(names) == sorted(n for group in EVERY_COMMAND.values() for n in group)
    assert all((c.configure is None) != (c.main is None) for c in cli.COMMANDS)


@pytest.mark.parametrize(
    ("command", "usage"),
    [
        ("reconcile", "usage: rex reconcile"),  # the module's own parser
        ("bills", "usage: rex bills"),
        ("order", "usage: rex order"),
        ("limits", "usage: rex limits"),
    ],
)
def test_each_command_has_its_own_help(
    command: str, usage: str, capsys: pytest.CaptureFixture[str]
) -> None:
    try:
        status = cli.main([command, "--help"])
    except SystemExit as stop:  # some modules' own parsers exit, as argparse does
        status = int(stop.code or 0)
    assert status == 0
    assert capsys.readouterr().out.startswith(usage)


# ----------------------------------------------------------------------- member ids


def test_a_mistyped_member_is_refused_with_the_closest_ids(
    down: int, capsys: pytest.CaptureFixture[str]
) -> None:
    status, _, err = run(
        capsys, "order", "PRND-OX", "buy", "100", "450000", "--member", "ganzhuo-magnet"
    )
    assert status == 2
    assert err == (
        f"rex order: {SHIPPED / 'members.toml'}: no member 'ganzhuo-magnet' (did you mean "
        "'ganzhou-magnet'? members are the [[members]] ids of this file)\n"
    )


@pytest.mark.parametrize(
    ("argv", "typo", "meant"),
    [
        (["statement", "--member", "ganzhuo-magnet", "--from", "2026-11-01", "--to",
          "2026-11-30"], "ganzhuo-magnet", "ganzhou-magnet"),
        (["bills", "list", "--member", "xinyu-pcv"], "xinyu-pcv", "xinyu-pvc"),
        (["bills", "endorse", "B-1", "--member", "xinyu-pvc", "--to", "ningbo"], "ningbo",
         "ningbo-alloy"),
        (["dispute", "list", "--member", "baotou"], "baotou", "baotou-metals"),
        (["dispute", "open", "--member", "baotou-metal", "--trade", "T-1", "--reason", "x"],
         "baotou-metal", "baotou-metals"),
        (["offline", "report", "--member", "ningbo-alloy", "--counterparty", "xinyu",
          "--product", "PRND-OX", "--side", "buy", "--price", "450000", "--quantity", "100",
          "--ref", "r1"], "xinyu", "xinyu-pvc"),
        (["offline", "list", "--member", "ningbo-aloy"], "ningbo-aloy", "ningbo-alloy"),
        (["limits", "show", "--member", "ganzou-magnet", "--operator"], "ganzou-magnet",
         "ganzhou-magnet"),
    ],
)  # fmt: skip
def test_settlement_commands_refuse_an_unknown_member(
    argv: list[str],
    typo: str,
    meant: str,
    down: int,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Before: an empty statement, "0 bills", exit 0. Nothing is opened for a typo."""
    status, out, err = run(capsys, *argv)
    assert status == 2 and out == ""
    assert f"no member {typo!r} (did you mean {meant!r}" in err
    assert str(SHIPPED / "members.toml") in err
    assert err.startswith(f"rex {argv[0]}: ")


# ------------------------------------------------------------------------------ times


def test_exchange_time_is_beijing_time_both_ways() -> None:
    assert format_ns(1_800_000_000_123_456_789) == "2027-01-15T16:00:00.123+08:00"
    assert parse_time_ns("2026-12-03T15:00") == 1_796_281_200_000 * 1_000_000
    assert parse_time_ns("2026-12-03 15:00:00+08:00") == 1_796_281_200_000 * 1_000_000
    assert parse_time_ns("2026-12-03T07:00Z") == 1_796_281_200_000 * 1_000_000
    with pytest.raises(ValueError, match="no time of day"):
        parse_time_ns("2026-12-03")
    with pytest.raises(ValueError, match="not an ISO 8601 date and time"):
        parse_time_ns("3 Dec 2026 15:00")


class FakeClient:
    """Stands in for the SDK: records what the command asked for."""

    placed: dict[str, Any] = {}
    tape: list[PublicTrade] = []

    def __init__(self, member: str, password: str, url: str, *, login: str) -> None:
        self.member = member

    def __enter__(self) -> FakeClient:
        return self

    def __exit__(self, *exc: object) -> None:
        pass

    def place(self, product: str, side: str, quantity: int, price: int, **kw: Any) -> str:
        FakeClient.placed = {"product": product, **kw}
        return "cid-1"

    def trades(self, product: str) -> list[PublicTrade]:
        return FakeClient.tape


@pytest.mark.parametrize(
    "expire", ["2026-12-03T15:00", "2026-12-03T15:00:00+08:00", "2026-12-03T07:00Z"]
)
def test_order_takes_a_gtd_expiry_as_an_iso_time(
    expire: str, down: int, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(cli_trading, "Client", FakeClient)
    argv = ["order", "PRND-OX", "buy", "100", "450000", "--member", "ganzhou-magnet"]
    status, out, _ = run(capsys, *argv, "--expire", expire, "--no-wait")
    assert (status, out) == (0, "sent cid-1\n")
    assert FakeClient.placed["time_in_force"] == "GTD"  # an expiry makes the order GTD
    assert FakeClient.placed["expire_time"] == 1_796_281_200_000  # epoch ms on the wire


def test_order_refuses_a_date_without_a_time(down: int, capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["order", "PRND-OX", "buy", "100", "450000", "--member", "ganzhou-magnet"]
    status, _, err = run(capsys, *argv, "--expire", "2026-12-03")
    assert status == 2
    assert "argument --expire: '2026-12-03' has no time of day: give a date and time" in err


def test_trades_print_exchange_time(
    down: int, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    trade = PublicTrade("PRND-OX-7", "PRND-OX", 451_000, 300, "buy", 7, 1_800_000_000 * 10**9)
    monkeypatch.setattr(cli_trading, "Client", FakeClient)
    monkeypatch.setattr(FakeClient, "tape", [trade])
    status, out, _ = run(capsys, "trades", "PRND-OX", "--member", "ganzhou-magnet")
    assert status == 0
    assert out.startswith("2027-01-15T16:00:00.000+08:00       PRND-OX-7       300 @ 451000")


# ---------------------------------------------------------------------- broker down

MEMBER = ["--member", "ganzhou-magnet", "--timeout", "1"]


@pytest.mark.parametrize(
    "argv",
    [
        ["order", "PRND-OX", "buy", "100", "450000", *MEMBER],
        ["cancel", "PRND-OX", "c-1", *MEMBER],
        ["replace", "PRND-OX", "c-1", "--price", "451000", *MEMBER],
        ["mass-cancel", "PRND-OX", *MEMBER],
        ["executions", *MEMBER],
        ["book", "PRND-OX", *MEMBER],
        ["trades", "PRND-OX", *MEMBER],
        ["halt", "PRND-OX"],
        ["resume", "PRND-OX"],
        ["close", "PRND-OX"],
        ["limits", "show", *MEMBER],
        ["limits", "show", *MEMBER, "--operator"],
        ["my-bills", "list", *MEMBER],
    ],
)
def test_a_broker_that_is_down_is_named_with_what_to_check(
    argv: list[str], down: int, capsys: pytest.CaptureFixture[str]
) -> None:
    """Before: `rex: ` and nothing else (exit 3), or a pika traceback (`rex halt`)."""
    status, _, err = run(capsys, *argv)
    command = " ".join(argv[:1])
    assert status == 4
    assert err == (
        f"rex {command}: cannot reach the broker at 127.0.0.1:{down} (vhost '/'): connection "
        "refused (nothing listens on that port); check $REX_BROKER_URL and that RabbitMQ runs "
        "there\n"
    )


def test_a_host_name_that_does_not_resolve_is_said(
    down: int, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("REX_BROKER_URL", "amqp://guest:guest@no-such-host.invalid:5672/rex")
    status, _, err = run(capsys, "halt", "PRND-OX")
    assert status == 4
    assert err.startswith(
        "rex halt: cannot reach the broker at no-such-host.invalid:5672 (vhost 'rex'): host "
        "name not found"
    )


def test_a_port_that_never_answers_is_a_timeout(
    down: int, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    with socket.socket() as silent:  # accepts connections (the backlog), says nothing
        silent.bind(("127.0.0.1", 0))
        silent.listen(4)
        port = silent.getsockname()[1]
        url = f"amqp://guest:guest@127.0.0.1:{port}/?stack_timeout=1&connection_attempts=1"
        monkeypatch.setenv("REX_BROKER_URL", url)
        status, _, err = run(capsys, "close", "PRND-OX")
    assert status == 4
    assert err == (
        f"rex close: cannot reach the broker at 127.0.0.1:{port} (vhost '/'): no answer within "
        "the connection timeout; check $REX_BROKER_URL and that RabbitMQ runs there\n"
    )


def test_no_traceback_on_the_command_line(down: int) -> None:
    """The installed command, as a person runs it: one line on stderr, status 4."""
    done = subprocess.run(
        [sys.executable, "-m", "cli", "order", "PRND-OX", "buy", "100", "450000", *MEMBER],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 4
    assert done.stdout == ""
    assert done.stderr.count("\n") == 1 and "Traceback" not in done.stderr
    assert f"cannot reach the broker at 127.0.0.1:{down}" in done.stderr


@pytest.mark.parametrize(
    "argv",
    [
        ["provision", "--config-dir", "{config}"],
        ["demo", "--broker", "amqp://guest:guest@127.0.0.1:{port}/"],
        ["loadtest", "--duration", "1"],
    ],
)
def test_commands_that_set_up_the_broker_name_the_management_api(
    argv: list[str], down: int, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Before: a traceback for `rex demo --broker` and `rex loadtest`."""
    shutil.copy(SHIPPED / "products.toml", tmp_path / "products.toml")
    (tmp_path / "members.toml").write_text('[[members]]\nid = "m1"\nname = "M"\npassword = "p"\n')
    status, _, err = run(capsys, *(a.format(port=down, config=tmp_path) for a in argv))
    assert status == 4
    assert err.splitlines()[-1] == (
        f"rex {argv[0]}: management API not reachable at http://127.0.0.1:{down} ([Errno 111] "
        "Connection refused): enable the rabbitmq_management plugin (rabbitmq-plugins enable "
        "rabbitmq_management) or set REX_BROKER_ADMIN_URL; and check that RabbitMQ runs"
    )


# ----------------------------------------------------------------- database down


@pytest.mark.parametrize(
    "argv",
    [
        ["statement", "--member", "ganzhou-magnet", "--from", "2026-11-01", "--to", "2026-11-30"],
        ["payments", "--review"],
        ["bills", "list", "--member", "xinyu-pvc"],
        ["dispute", "list"],
        ["offline", "list"],
        ["reconcile"],
    ],
)
def test_a_postgresql_that_is_down_is_named_with_what_to_check(
    argv: list[str], down: int, capsys: pytest.CaptureFixture[str]
) -> None:
    status, out, err = run(capsys, *argv)
    assert status == 8 and out == ""
    assert err.startswith(
        f"rex {argv[0]}: cannot use postgresql 127.0.0.1:{down}/test: connection failed: "
    )
    assert err.endswith(
        "; check $REX_DATABASE_URL (or --database-url) and that PostgreSQL runs there\n"
    )


def test_the_settlement_worker_logs_a_database_that_is_down_and_exits_8(down: int) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "cli", "settlement", "--metrics-port", "0"],
        cwd=ROOT,
        env={**os.environ, "REX_PW_BAOTOU_METALS": "x"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 8, done.stderr
    assert "Traceback" not in done.stderr
    messages = [entry["message"] for entry in map(logs.parse, done.stderr.splitlines()) if entry]
    assert any(
        message.startswith(
            f"store: cannot use the settlement store: connection failed: connection to server at "
            f'"127.0.0.1", port {down} failed: Connection refused'
        )
        for message in messages
    ), done.stderr
