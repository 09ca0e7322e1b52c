"""The auditor's search through real RabbitMQ, against `python -m settlement_worker` on
SQLite: `rex audit` as the login of $REX_OPERATOR_URL. An account with the role `audit`
reads who changed what (a member's own change of its receipt limits, here); settlement_ops,
market_ops, a member's login and the services' guest are refused, and every search is itself
recorded with the login that asked."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import pytest

from rex.settlement_protocol import SettlementAnswer
from tests.system.conftest import PASSWORD, ROOT, Exchange, write_settlement_config

pytestmark = pytest.mark.broker


@pytest.fixture(scope="module")
def running(exchange: Exchange) -> Iterator[Exchange]:
    config = Path(exchange.env["REX_CONFIG_DIR"])
    write_settlement_config(config)
    exchange.env.pop("REX_DATABASE_URL", None)  # SQLite
    exchange.start("settlement", "settlement_worker", "--no-payer")
    with exchange.client("alpha") as alpha:
        try:
            alpha.settlement_settings(wait=30)
        except TimeoutError:
            pytest.fail("the settlement worker did not come up:\n" + exchange.log_tail())
        changed = alpha.set_receipt_limits({"max_tenor_days": 90}, reason="audit-e2e")
    assert isinstance(changed, SettlementAnswer) and changed.accepted, changed
    yield exchange


def rex_audit(exchange: Exchange, url: str | None, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in exchange.env.items() if k != "REX_OPERATOR_URL"}
    if url is not None:
        env["REX_OPERATOR_URL"] = url
    return subprocess.run(
        [sys.executable, "-m", "cli", "audit", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def searches(exchange: Exchange) -> list[tuple[str, str, str | None]]:
    path = Path(exchange.env["REX_DATA_DIR"]) / "settlement.sqlite3"
    with sqlite3.connect(path) as db:
        rows = db.execute(
            "SELECT sender, status, reason FROM settlement_requests WHERE kind = 'audit_search'"
        ).fetchall()
    return [tuple(r) for r in rows]


def test_the_auditor_reads_who_changed_what(running: Exchange) -> None:
    alpha = running.members["alpha"]
    done = rex_audit(running, running.operator_url("audit"), "--actor", f"member:{alpha}")
    assert done.returncode == 0, done.stderr + running.log_tail()
    lines = done.stdout.splitlines()
    assert lines[-1] == "1 entry", done.stdout
    assert f"member:{alpha}  member_settings {alpha}" in lines[0]
    assert "audit-e2e" in lines[0]
    as_json = rex_audit(
        running, running.operator_url("audit"), "--json", "--subject-type", "member_settings"
    )
    assert as_json.returncode == 0, as_json.stderr
    page = json.loads(as_json.stdout)
    assert [e["actor"] for e in page["entries"]] == [f"member:{alpha}"]
    assert page["next_after_seq"] is None
    auditor = running.operators["audit"]
    assert (auditor, "accepted", None) in searches(running)


@pytest.mark.parametrize(
    ("short", "role"), [("settle", "settlement_ops"), ("market", "market_ops")]
)
def test_another_role_may_not_search(running: Exchange, short: str, role: str) -> None:
    done = rex_audit(running, running.operator_url(short))
    name = running.operators[short]
    assert (done.returncode, done.stdout, done.stderr) == (
        1,
        "",
        f"rex audit: refused (not_permitted): audit_search needs the role audit; operator "
        f"{name!r} has {role}\n",
    )
    deadline = time.monotonic() + 5
    while (name, "rejected", "not_permitted") not in searches(running):
        assert time.monotonic() < deadline, searches(running)
        time.sleep(0.2)


@pytest.mark.parametrize("who", ["member", "guest"])
def test_no_operator_account_may_search(running: Exchange, who: str) -> None:
    member = running.members["alpha"]
    url = {
        "member": f"amqp://{member}:{PASSWORD}@127.0.0.1:5672/{quote(running.vhost, safe='')}",
        "guest": None,  # $REX_BROKER_URL: the services' login
    }[who]
    done = rex_audit(running, url)
    assert done.returncode == 2, done.stderr
    assert "is no operator account of" in done.stderr
    assert done.stdout == ""


def test_a_bad_search_is_refused_with_what_to_do(running: Exchange) -> None:
    done = rex_audit(
        running, running.operator_url("audit"), "--since", "2026-12-04T00:00", "--until",
        "2026-12-03T00:00",
    )  # fmt: skip
    assert (done.returncode, done.stderr) == (2, "rex audit: --until must be after --since\n")
    done = rex_audit(running, running.operator_url("audit"), "--actor", "x" * 81)
    assert done.returncode == 1
    assert done.stderr == (
        "rex audit: refused (malformed): actor must be 1-80 printable characters\n"
    )
