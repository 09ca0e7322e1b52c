"""Throw-away exchanges (loadtest/stack.py, used by `rex loadtest` and `rex demo --broker`)
on the real RabbitMQ: each has its own vhost and deployment name, removes exactly what it
made -- also when its start fails half-way or it is interrupted -- and a later one sweeps
the left-overs of a killed run on this host, never those of live runs or other hosts.

Every vhost and user here is a throw-away one with a fresh random token, or one this test
made under a unique name; all are removed afterwards.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from loadtest.stack import LocalStack
from loadtest.throwaway import Creator, Names, sweep
from rex.client import Client
from rex.environment import REX_BROKER_ADMIN_URL, REX_TEST_AMQP_URL
from rex.identity import login_of
from rex.protocol import ExecutionReport
from rex.provision import BrokerAdmin, BrokerAdminError
from rex.service_users import SERVICE_USERS

pytestmark = pytest.mark.broker

ADMIN_URL = REX_BROKER_ADMIN_URL.get()
AMQP_URL = REX_TEST_AMQP_URL.get()
REPO = Path(__file__).resolve().parents[2]
PASSWORD = "stack-secret"
MEMBERS = ("ta", "tb")  # the same ids in every stack


@pytest.fixture(scope="module")
def admin() -> BrokerAdmin:
    return BrokerAdmin(ADMIN_URL, timeout=5)


@pytest.fixture(scope="module")
def config(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("stack-config")
    shipped = (REPO / "config" / "products.toml").read_text()
    start = shipped.index('[[products]]\nsymbol = "PRND-OX"')
    end = shipped.index("[[products]]", start + 1)
    (directory / "products.toml").write_text(shipped[start:end])
    (directory / "members.toml").write_text(
        "".join(
            f'[[members]]\nid = "{m}"\nname = "Firm {m}"\npassword = "{PASSWORD}"\n\n'
            for m in MEMBERS
        )
    )
    return directory


def users_of(admin: BrokerAdmin, deployment: str) -> list[str]:
    return sorted(u for u in admin.list_users() if u.startswith(f"{deployment}."))


def processes_of(deployment: str) -> list[int]:
    """Processes on this host running with REX_DEPLOYMENT=<deployment> (a stack's services)."""
    wanted = f"REX_DEPLOYMENT={deployment}".encode()
    found = []
    for environ in Path("/proc").glob("[0-9]*/environ"):
        try:
            if wanted in environ.read_bytes().split(b"\0"):
                found.append(int(environ.parent.name))
        except OSError:
            continue
    return found


def assert_gone(admin: BrokerAdmin, names: Names) -> None:
    assert admin.get_vhost(names.vhost) is None
    assert users_of(admin, names.deployment) == []
    assert processes_of(names.deployment) == []


def trade_once(stack: LocalStack, member: str, timeout_s: float = 30.0) -> ExecutionReport:
    """An IOC order by ``member`` of ``stack``, placed until the services answer it."""
    login = login_of(member, stack.deployment)
    with Client(member, PASSWORD, stack.url, login=login) as client:
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                result = client.place("PRND-OX", "buy", 100, 400_000, time_in_force="IOC", wait=3)
                assert isinstance(result, ExecutionReport)
                return result
            except TimeoutError:
                if time.monotonic() > deadline:
                    raise


def test_two_stacks_with_the_same_member_ids_run_side_by_side(
    admin: BrokerAdmin, config: Path
) -> None:
    first = LocalStack(AMQP_URL, ADMIN_URL, config)
    try:
        second = LocalStack(AMQP_URL, ADMIN_URL, config)
        try:
            assert first.vhost != second.vhost and first.deployment != second.deployment
            assert users_of(admin, first.deployment) == [f"{first.deployment}.{m}" for m in MEMBERS]
            assert users_of(admin, second.deployment) == [
                f"{second.deployment}.{m}" for m in MEMBERS
            ]
            for stack in (first, second):
                report = trade_once(stack, "ta")
                assert (report.member, report.status) == ("ta", "cancelled")  # IOC, no seller
            first.close()
            assert_gone(admin, first.names)
            # The other one is untouched: its users are there and its members still trade.
            assert users_of(admin, second.deployment) == [
                f"{second.deployment}.{m}" for m in MEMBERS
            ]
            assert trade_once(second, "tb").member == "tb"
        finally:
            second.close()
        assert_gone(admin, second.names)
    finally:
        first.close()


def test_a_stack_ignores_the_service_users_of_its_environment(
    admin: BrokerAdmin, config: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # An operator's shell may name a real deployment's service users: a throw-away stack's
    # services must not log in there, nor its provisioning make users from them.
    for user in SERVICE_USERS:
        monkeypatch.setenv(user.url.name, "amqp://nobody:not-the-password@127.0.0.1:5672/%2F")
        monkeypatch.setenv(user.password.name, "not-for-a-throw-away-stack")
    stack = LocalStack(AMQP_URL, ADMIN_URL, config)
    try:
        assert trade_once(stack, "ta").member == "ta"
        assert users_of(admin, stack.deployment) == [f"{stack.deployment}.{m}" for m in MEMBERS]
    finally:
        stack.close()
    assert_gone(admin, stack.names)


@pytest.fixture
def names(monkeypatch: pytest.MonkeyPatch) -> Names:
    """The name the next stack takes, known before it is made."""
    chosen = Names.new()
    monkeypatch.setattr(Names, "new", classmethod(lambda cls: chosen))
    return chosen


def test_a_stack_whose_engine_cannot_start_removes_all_it_made(
    admin: BrokerAdmin, config: Path, names: Names, monkeypatch: pytest.MonkeyPatch
) -> None:
    started: list[subprocess.Popen[bytes]] = []
    real = subprocess.Popen

    def popen(args: list[str], **kwargs: Any) -> subprocess.Popen[bytes]:
        if "engine" in args:
            assert users_of(admin, names.deployment)  # half-way: users made, gateway running
            raise OSError("no engine here")
        started.append(real(args, **kwargs))
        return started[-1]

    monkeypatch.setattr(subprocess, "Popen", popen)
    with pytest.raises(OSError, match="no engine here"):
        LocalStack(AMQP_URL, ADMIN_URL, config)
    assert len(started) == 1 and started[0].poll() is not None  # the gateway was stopped
    assert_gone(admin, names)


def test_a_stack_whose_provisioning_fails_half_way_removes_all_it_made(
    admin: BrokerAdmin, config: Path, names: Names, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = BrokerAdmin.put_topic_permissions
    calls: list[str] = []

    def failing(self: BrokerAdmin, vhost: str, user: str, *args: Any) -> None:
        calls.append(user)
        if user.endswith(".tb"):  # the second member: its user exists, "ta" is complete
            raise BrokerAdminError("PUT", "topic-permissions", 500, "", "broker trouble")
        real(self, vhost, user, *args)

    monkeypatch.setattr(BrokerAdmin, "put_topic_permissions", failing)
    with pytest.raises(BrokerAdminError, match="broker trouble"):
        LocalStack(AMQP_URL, ADMIN_URL, config)
    assert f"{names.deployment}.tb" in calls
    assert_gone(admin, names)


# ------------------------------------------------------------------ sweeping


def dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def throw_away(admin: BrokerAdmin, creator: Creator, with_user: bool = True) -> Names:
    """A marked throw-away vhost (and a member user marked for it), as a run leaves them."""
    names = Names.new()
    admin.put_vhost(names.vhost, creator.description, creator.tags)
    if with_user:
        admin.put_user(login_of("ta", names.deployment), "x", names.owner.tag)
    return names


def test_a_sweep_removes_a_dead_local_runs_exchange_only(admin: BrokerAdmin) -> None:
    here, now = socket.gethostname(), int(time.time())
    dead = Creator(here, dead_pid(), now)
    made = {
        "dead": throw_away(admin, dead),
        "live": throw_away(admin, Creator(here, os.getpid(), now)),
        "elsewhere": throw_away(admin, Creator(f"not-{here}", dead.pid, now)),
        "unmarked": throw_away(admin, Creator(here, dead.pid, now), with_user=False),
        "orphan": Names.new(),  # a user whose vhost is gone
    }
    admin.delete_vhost(made["unmarked"].vhost)
    admin.put_vhost(made["unmarked"].vhost)  # an old-style vhost: no marks, left alone
    admin.put_user(login_of("ta", made["orphan"].deployment), "x", made["orphan"].owner.tag)
    try:
        removed = sweep(admin)
        assert (
            f"stale throw-away vhost {made['dead'].vhost} and its 1 users "
            f"(pid {dead.pid} on this host has ended)"
        ) in removed
        orphan = login_of("ta", made["orphan"].deployment)
        assert f"throw-away user {orphan} (its vhost {made['orphan'].vhost} is gone)" in removed
        assert admin.get_vhost(made["dead"].vhost) is None
        assert users_of(admin, made["dead"].deployment) == []
        assert users_of(admin, made["orphan"].deployment) == []
        for kept in ("live", "elsewhere", "unmarked"):
            assert admin.get_vhost(made[kept].vhost) is not None, kept
        for kept in ("live", "elsewhere"):
            assert users_of(admin, made[kept].deployment) == [f"{made[kept].deployment}.ta"]
    finally:
        for names in made.values():
            admin.delete_user(login_of("ta", names.deployment))
            admin.delete_vhost(names.vhost)


def test_rex_loadtest_cleanup_sweeps_a_killed_runs_exchange(admin: BrokerAdmin) -> None:
    names = throw_away(admin, Creator(socket.gethostname(), dead_pid(), int(time.time())))
    try:
        result = subprocess.run(
            [sys.executable, "-m", "cli", "loadtest", "--cleanup"],
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert result.returncode == 0, result.stderr
        assert f"removed stale throw-away vhost {names.vhost} and its 1 users" in result.stdout
        assert_gone(admin, names)
    finally:
        admin.delete_user(login_of("ta", names.deployment))
        admin.delete_vhost(names.vhost)


# ------------------------------------------------------------------ interrupted


class Run:
    """A `rex loadtest` subprocess whose stderr is read as it comes."""

    def __init__(self, *args: str) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "cli", "loadtest", *args],
            cwd=REPO,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.err = ""
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stderr is not None
        while chunk := self.process.stderr.read(1):
            self.err += chunk

    def wait_for(self, condition: Callable[[str], bool], timeout_s: float = 60.0) -> None:
        deadline = time.monotonic() + timeout_s
        while not condition(self.err):
            assert self.process.poll() is None, self.err
            assert time.monotonic() < deadline, self.err
            time.sleep(0.05)

    def names(self) -> Names:
        found = re.search(r"throw-away vhost (rex-tmp-\w+) ", self.err)
        assert found, self.err
        names = Names.of_vhost(found.group(1))
        assert names is not None
        return names

    def finish(self, timeout_s: float = 90.0) -> int:
        self.process.wait(timeout=timeout_s)
        self._reader.join(timeout=5)
        return self.process.returncode

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()


@pytest.fixture
def runs() -> Iterator[list[Run]]:
    made: list[Run] = []
    try:
        yield made
    finally:
        for run in made:
            run.kill()


@pytest.mark.parametrize(
    ("signum", "when", "status", "says"),
    [
        (signal.SIGINT, "starting", 130, "loadtest: interrupted; what it set up has been removed"),
        (signal.SIGTERM, "sending", 143, "loadtest: terminated; what it set up has been removed"),
        (signal.SIGINT, "sending", 130, "loadtest: interrupted; what it set up has been removed"),
    ],
)
def test_an_interrupted_loadtest_removes_its_exchange(
    admin: BrokerAdmin, runs: list[Run], signum: int, when: str, status: int, says: str
) -> None:
    run = Run("--members", "2", "--rate", "50", "--duration", "30")
    runs.append(run)
    if when == "starting":  # its vhost exists; users, gateway and engine on their way
        run.wait_for(lambda err: "throw-away vhost" in err)
    else:
        run.wait_for(lambda err: re.search(r"sent +[1-9]", err) is not None)
    names = run.names()
    run.process.send_signal(signum)
    assert run.finish() == status, run.err
    assert run.err.rstrip().endswith(says), run.err
    # Interrupted just after its vhost, a run may not have recorded its users yet.
    users = "[02]" if when == "starting" else "2"
    assert re.search(rf"removed throw-away vhost {names.vhost} and its {users} users", run.err), (
        run.err
    )
    assert_gone(admin, names)
