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
from tests.system.conftest import ADMIN_URL, PASSWORD, ROOT, Exchange

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
    done = rex(exchange, "halt", "DY-OX", REX_BROKER_URL=url("guest", "wrong", exchange.vhost))
    assert done.returncode == 5
    assert done.stderr == (
        f"rex halt: the broker at {BROKER} (vhost {exchange.vhost!r}) refused the login of "
        "user 'guest': check the user and password in $REX_BROKER_URL\n"
    )


def test_halt_with_a_members_login_says_it_needs_the_operators(exchange: Exchange) -> None:
    """Before: a pika traceback (ACCESS_REFUSED)."""
    alpha = exchange.members["alpha"]
    done = rex(exchange, "halt", "DY-OX", REX_BROKER_URL=url(alpha, PASSWORD, exchange.vhost))
    assert done.returncode == 6, done.stderr
    assert done.stderr.startswith(
        f"rex halt: the broker at {BROKER} (vhost {exchange.vhost!r}) refused user {alpha!r} "
        "(403 ACCESS_REFUSED - "
    )
    assert done.stderr.endswith(
        "this command needs the operator's login: the services' RabbitMQ user, which may "
        "write to rex.engine (a member's may not); set REX_BROKER_URL to "
        "amqp://<user>:<password>@<host>:<port>/<vhost>; check the user and password in "
        "$REX_BROKER_URL\n"
    )
    # The operator's login does it.
    done = rex(exchange, "halt", "DY-OX")
    assert (done.returncode, done.stdout, done.stderr) == (0, "DY-OX: halted\n", "")
    assert rex(exchange, "resume", "DY-OX").stdout == "DY-OX: open\n"


def test_a_vhost_that_does_not_exist_is_named(exchange: Exchange) -> None:
    vhost = f"rex-e2e-none-{uuid.uuid4().hex[:8]}"
    done = rex(exchange, "halt", "DY-OX", REX_BROKER_URL=url("guest", "guest", vhost))
    assert done.returncode == 7
    assert done.stderr == (
        f"rex halt: the broker at {BROKER} (vhost {vhost!r}) has no such vhost: check the vhost "
        "in $REX_BROKER_URL (create it with `rabbitmqctl add_vhost`, then run `rex provision`)\n"
    )


def test_a_vhost_not_provisioned_says_run_provision(exchange: Exchange, bare_vhost: str) -> None:
    done = rex(exchange, "halt", "DY-OX", REX_BROKER_URL=url("guest", "guest", bare_vhost))
    assert done.returncode == 7
    assert done.stderr == (
        f"rex halt: the broker at {BROKER} (vhost {bare_vhost!r}) is not set up for this "
        f"command (404 NOT_FOUND - no exchange 'rex.engine' in vhost '{bare_vhost}'): run "
        "`rex provision` on that vhost (a queue declared with other arguments must be deleted "
        "first)\n"
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
