"""A throw-away exchange on a real RabbitMQ: its own vhost and deployment name
(loadtest/throwaway.py), provisioned members, and the gateway and engine as separate
processes. Used by `rex demo --broker` and `rex loadtest`.

Making it is exception-safe: if a step fails (or Ctrl-C / SIGTERM arrives, see
:func:`interrupts_raise`), everything made so far is removed before the error propagates.
:meth:`LocalStack.close` removes exactly what was made -- the processes, the users it
recorded, the vhost and the data directory -- and nothing else.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from types import FrameType
from typing import IO
from urllib.parse import quote, urlsplit, urlunsplit

from rex import logs, service_users
from rex.config import ProcessConfig
from rex.identity import login_of
from rex.private_files import private_file
from rex.provision import BrokerAdmin, ProvisionError, provision

from .throwaway import Creator, Names, sweep

ROOT = Path(__file__).resolve().parents[1]
SERVICES = ("gateway", "engine")  # the processes, in order
#: Exit statuses of a run ended by Ctrl-C or SIGTERM (128 + the signal's number, as a shell
#: reports it).
EXIT_INTERRUPTED = 128 + signal.SIGINT
EXIT_TERMINATED = 128 + signal.SIGTERM


def lines_of(service: str, written: list[str]) -> list[str]:
    """The lines of a shared log that `service` wrote: its rex.logs lines (JSON naming it),
    and the lines not of rex.logs that follow them (what a process printed before its log was
    set up, or Python's last words)."""
    own, writer = [], None
    for line in written:
        entry = logs.parse(line)
        writer = entry["service"] if entry is not None else writer
        if writer == service:
            own.append(line)
    return own


def _terminated(_signum: int, _frame: FrameType | None) -> None:
    raise SystemExit(EXIT_TERMINATED)


@contextlib.contextmanager
def interrupts_raise() -> Iterator[None]:
    """While inside, SIGTERM raises SystemExit (as Ctrl-C raises KeyboardInterrupt), so the
    `finally` blocks that remove a throw-away exchange run. Main thread only."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, _terminated)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def removing_on_exit(prog: str, run: Callable[[], int]) -> int:
    """``run()``, with SIGTERM raised as Ctrl-C is, so that the ``finally`` blocks removing
    what it set up run either way; then says so: 130 after Ctrl-C, SystemExit(143) after
    SIGTERM."""
    try:
        with interrupts_raise():
            return run()
    except KeyboardInterrupt:
        print(f"\n{prog}: interrupted; what it set up has been removed", file=sys.stderr)
        return EXIT_INTERRUPTED
    except SystemExit as exit_:
        if exit_.code == EXIT_TERMINATED:
            print(f"\n{prog}: terminated; what it set up has been removed", file=sys.stderr)
        raise


@contextlib.contextmanager
def _signals_deferred() -> Iterator[None]:
    """Hold Ctrl-C and SIGTERM while cleaning up, so a second one cannot cut the removal
    short; one that came meanwhile is raised afterwards."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    came: list[int] = []
    wanted = (signal.SIGINT, signal.SIGTERM)
    previous = {s: signal.signal(s, lambda n, _f: came.append(n)) for s in wanted}
    try:
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
    if came:
        signal.raise_signal(came[0])  # now handled as it would have been


class LocalStack:
    def __init__(
        self,
        broker_url: str,
        admin_url: str,
        config_dir: Path,
        *,
        extra_env: dict[str, str] | None = None,
        engine_args: tuple[str, ...] = (),
        gateway_args: tuple[str, ...] = (),
        settlement_args: tuple[str, ...] | None = None,
        out: IO[str] = sys.stderr,
    ) -> None:
        """``settlement_args``: also run the settlement worker with them (None: not)."""
        self.admin = BrokerAdmin(admin_url)
        self.out = out
        self.names = Names.new()
        self.vhost, self.deployment = self.names.vhost, self.names.deployment
        self.url = ""
        self.users: list[str] = []  # every login provisioning may have made, recorded first
        self.processes: list[subprocess.Popen[bytes]] = []
        self.services: list[str] = []  # the processes' modules, in order
        self.members: list[str] = []
        self.data: Path | None = None
        self._made_vhost = False
        self.left_behind: list[str] = []  # what close() could not remove
        try:
            self._start(broker_url, admin_url, config_dir, extra_env or {})
            self._spawn("gateway", gateway_args)
            self._spawn("engine", engine_args)
            if settlement_args is not None:
                self._spawn("settlement_worker", settlement_args)
        except BaseException:
            self.close()
            raise

    def _start(
        self, broker_url: str, admin_url: str, config_dir: Path, extra_env: dict[str, str]
    ) -> None:
        for removed in sweep(self.admin):
            print(f"removed {removed}", file=self.out)
        while self.admin.get_vhost(self.vhost) is not None:  # taken: draw another name
            self.names = Names.new()
            self.vhost, self.deployment = self.names.vhost, self.names.deployment
        parts = urlsplit(broker_url)
        self.url = urlunsplit(
            (parts.scheme, parts.netloc, "/" + quote(self.vhost, safe=""), "", "")
        )
        creator = Creator.this_process()
        self._made_vhost = True  # before the request: an interrupted PUT may still land
        self.admin.put_vhost(self.vhost, creator.description, creator.tags)
        print(
            f"throw-away vhost {self.vhost} (members log in as {self.deployment}.<member>); "
            "removed when this run ends",
            file=self.out,
            flush=True,
        )
        self.admin.put_permissions(self.vhost, parts.username or "guest", ".*", ".*", ".*")
        self.data = Path(tempfile.mkdtemp(prefix="rex-stack-"))
        # Not the services' own URLs and passwords of the environment: those name a real
        # deployment; a throw-away one's services log in as its REX_BROKER_URL.
        inherited = {k: v for k, v in os.environ.items() if k not in service_users.VARIABLE_NAMES}
        self.env = {
            **inherited,
            **extra_env,
            "REX_BROKER_URL": self.url,
            "REX_BROKER_ADMIN_URL": admin_url,
            "REX_DATA_DIR": str(self.data),
            "REX_CONFIG_DIR": str(config_dir.resolve()),
            "REX_DEPLOYMENT": self.deployment,
            "REX_METRICS_PORT": "0",
        }
        process_config = ProcessConfig(config_dir, self.data, self.url, admin_url, self.deployment)
        self.members = list(process_config.members())
        operators = process_config.operators()
        self.users = [login_of(m, self.deployment) for m in (*self.members, *operators)]
        for account in operators.values():  # a throw-away stack: any password will do
            if not self.env.get(account.password_env):
                self.env[account.password_env] = secrets.token_hex(12)
        report = provision(process_config, self.env)
        if report.refused:  # a fresh deployment name: only another run's bug could do this
            taken = ", ".join(m.login for m in report.refused)
            raise ProvisionError(f"throw-away users {taken} belong to another deployment")
        self.log_path = self.data / "services.log"

    def _spawn(self, module: str, args: tuple[str, ...]) -> None:
        # Owner-only, as everything REX writes; the child keeps its own descriptor.
        with os.fdopen(private_file(self.log_path), "ab") as log:
            process = subprocess.Popen(
                [sys.executable, "-m", module, *args],
                cwd=ROOT,
                env=self.env,
                stdout=log,
                stderr=log,
            )
        self.processes.append(process)
        self.services.append(module)

    def pids(self) -> list[int]:
        return [p.pid for p in self.processes]

    def exited(self) -> dict[str, int]:
        """The services that have stopped, with their exit status."""
        return {
            name: process.returncode
            for name, process in zip(self.services, self.processes, strict=False)
            if process.poll() is not None
        }

    def log_tail(self, service: str, lines: int = 40) -> list[str]:
        """The last lines `service` wrote to the services' shared log (the log's last lines
        if none are its), each as a person reads it (rex.logs.readable)."""
        written = self.log_path.read_text(errors="replace").splitlines()
        return [logs.readable(line) for line in (lines_of(service, written) or written)[-lines:]]

    def close(self) -> None:
        """Stop the processes, then remove the recorded users, the vhost and the data.
        Idempotent; what cannot be removed is reported on ``out`` and in ``left_behind``."""
        with _signals_deferred():
            self._stop_processes()
            self.left_behind = []
            for user in self.users:
                self._remove(f"user {user}", self.admin.delete_user, user)
            if self._made_vhost:
                self._remove(f"vhost {self.vhost}", self.admin.delete_vhost, self.vhost)
            if self.data is not None:
                shutil.rmtree(self.data, ignore_errors=True)
            if self.left_behind:
                print(
                    f"could not remove {', '.join(self.left_behind)}: remove "
                    "them by hand, or run rex loadtest --cleanup once this process has ended",
                    file=self.out,
                )
            elif self._made_vhost:
                print(
                    f"removed throw-away vhost {self.vhost} and its {len(self.users)} users",
                    file=self.out,
                )
            if not self.left_behind:
                self.users, self._made_vhost = [], False

    def _stop_processes(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in self.processes:
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        self.processes = []
        self.services = []

    def _remove(self, what: str, delete: Callable[[str], bool], name: str) -> None:
        try:
            delete(name)
        except ProvisionError as error:
            self.left_behind.append(what)
            print(f"removing {what}: {error}", file=self.out)
