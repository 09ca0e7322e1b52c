"""The `rex` command's failures against the real broker, as a person reads them: a wrong
password, a member's login where the operator's is needed, a vhost that is missing or not
set up, a request nobody answers. This module's exchange (its own vhost and members, from
the `exchange` fixture) runs no services: nothing answers."""

from __future__ import annotations

import re
import subprocess
import sys
import uuid
from collections.abc import Iterator
from urllib.parse import quote

import pytest

from rex.provision import BrokerAdmin
from tests.system.conftest import ADMIN_URL, OPERATOR_PASSWORD, PASSWORD, ROOT, Exchange

pytestmark = pytest.mark.broker

BROKER = "127.0.0.1:5672"


def rex(exchange: Exchange, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """`rex ...` with the exchange's environment, some of it changed."""
    return subprocess.run(
        [sys.executable, "-m", "cli", *args],
        cwd=ROOT,
        env={**exchange.env, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


def url(user: str, password: str, vhost: str) -> str:
    return f"amqp://{user}:{password}@{BROKER}/{quote(vhost, safe='')}"


@pytest.fixture
def bare_vhost() -> Iterator[str]:
    """A vhost with nothing declared in it (guest may use it), removed afterwards."""
    admin = BrokerAdmin(ADMIN_URL)
    vhost = f"rex-e2e-bare-{uuid.uuid4().hex[:8]}"
    admin.put_vhost(vhost)
    try:
        admin.put_permissions(vhost, "guest", ".*", ".*", ".*")
        yield vhost
    finally:
        admin.delete_vhost(vhost)


def test_a_members_wrong_password_names_the_user(exchange: Exchange) -> None:
    alpha = exchange.members["alpha"]
    done = rex(exchange, "order", "PRND-OX", "buy", "100", "450000", "--member", alpha,
               "--password", "wrong")  # fmt: skip
    assert done.returncode == 5
    assert done.stderr == (
        f"rex order: the broker at {BROKER} (vhost {exchange.vhost!r}) refused the login of "
        f"user {alpha!r}: check the member id and its password (--password, $REX_PASSWORD or "
        "members.toml), and that `rex provision` ran since the member was added\n"
    )


def test_the_operators_wrong_password_says_where_it_is_set(exchange: Exchange) -> None:
    operator = exchange.operators["market"]
    done = rex(exchange, "halt", "DY-OX", REX_OPERATOR_URL=url(operator, "wrong", exchange.vhost))
    assert done.returncode == 5
    assert done.stderr == (
        f"rex halt: the broker at {BROKER} (vhost {exchange.vhost!r}) refused the login of "
        f"user {operator!r}: check the operator and password in $REX_OPERATOR_URL (or "
        "$REX_BROKER_URL when it is unset), and that `rex provision` ran since the account "
        "was added\n"
    )


def test_halt_with_a_members_login_says_it_needs_the_operators(exchange: Exchange) -> None:
    """Before: a pika traceback (ACCESS_REFUSED)."""
    alpha = exchange.members["alpha"]
    done = rex(exchange, "halt", "DY-OX", REX_BROKER_URL=url(alpha, PASSWORD, exchange.vhost))
    assert done.returncode == 2, done.stderr
    assert done.stderr.startswith(
        f"rex halt: $REX_BROKER_URL: user {alpha!r} is no operator account of "
    )
    assert done.stderr.endswith(
        "operators.toml: rex halt needs an operator account's login (operators.toml, "
        "provisioned by `rex provision`); set REX_OPERATOR_URL to "
        "amqp://<operator>:<password>@<host>:<port>/<vhost>\n"
    )
    # An operator's login gets through to the desk, which here nobody serves.
    operator = url(exchange.operators["market"], OPERATOR_PASSWORD, exchange.vhost)
    done = rex(exchange, "halt", "DY-OX", "--timeout", "1", REX_OPERATOR_URL=operator)
    assert (done.returncode, done.stdout) == (3, ""), done.stderr
    assert done.stderr == (
        "rex halt: no answer to halt DY-OX in 1 s (the request was taken by the broker): "
        "check that the gateway runs: it serves operator requests\n"
    )


def test_a_vhost_that_does_not_exist_is_named(exchange: Exchange) -> None:
    vhost = f"rex-e2e-none-{uuid.uuid4().hex[:8]}"
    done = rex(exchange, "halt", "DY-OX", REX_BROKER_URL=url("guest", "guest", vhost))
    assert done.returncode == 7
    assert done.stderr == (
        f"rex halt: the broker at {BROKER} (vhost {vhost!r}) has no such vhost: check the vhost "
        "in $REX_BROKER_URL (create it with `rabbitmqctl add_vhost`, then run `rex provision`)\n"
    )


def test_a_vhost_not_provisioned_says_run_provision(exchange: Exchange, bare_vhost: str) -> None:
    operator = exchange.operators["market"]
    # The operator may use the bare vhost (its permissions go with the vhost).
    BrokerAdmin(ADMIN_URL).put_permissions(bare_vhost, operator, "^$", ".*", ".*")
    done = rex(
        exchange, "halt", "DY-OX", REX_OPERATOR_URL=url(operator, OPERATOR_PASSWORD, bare_vhost)
    )
    assert done.returncode == 7
    assert done.stderr == (
        f"rex halt: the broker at {BROKER} (vhost {bare_vhost!r}) is not set up for this "
        f"command (404 NOT_FOUND - no queue 'rex.operator.{operator}.answers' in vhost "
        f"'{bare_vhost}'): run `rex provision` on that vhost (a queue declared with other "
        "arguments must be deleted first)\n"
    )


def test_an_order_nobody_answers_says_which_services_to_check(exchange: Exchange) -> None:
    alpha = exchange.members["alpha"]
    done = rex(exchange, "order", "PRND-OX", "buy", "100", "450000", "--member", alpha,
               "--timeout", "1")  # fmt: skip
    assert done.returncode == 3
    assert re.fullmatch(
        r"rex order: no answer for \w+ within 1\.0 s: check that the exchange's gateway and "
        r"engine run \(ask the operator\)\n",
        done.stderr,
    ), done.stderr


def test_a_settlement_request_nobody_answers_names_the_worker(exchange: Exchange) -> None:
    alpha = exchange.members["alpha"]
    done = rex(exchange, "limits", "show", "--member", alpha, "--timeout", "1")
    assert done.returncode == 3
    assert done.stderr.endswith(
        " in 1.0 s: check that the settlement worker runs (ask the operator)\n"
    ), done.stderr


def test_provision_with_a_wrong_admin_password_is_a_refused_login(exchange: Exchange) -> None:
    done = rex(exchange, "provision", REX_BROKER_ADMIN_URL="http://guest:wrong@127.0.0.1:15672")
    assert done.returncode == 5
    assert "HTTP 401 (check the credentials of user 'guest' in the admin URL)" in done.stderr
    assert "wrong" not in done.stderr
