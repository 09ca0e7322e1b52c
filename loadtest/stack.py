"""A throw-away exchange on a real RabbitMQ: its own vhost, provisioned members, and the
gateway and engine as separate processes. Used by `rex demo --broker` and `rex loadtest`;
everything is removed by `close()`."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path
from urllib.parse import quote, urlsplit, urlunsplit

from rex.config import Settings
from rex.provision import BrokerAdmin, provision

ROOT = Path(__file__).resolve().parents[1]
SERVICES = ("gateway", "engine")  # the processes, in order
_WRITER = re.compile(r"^\S+ [A-Z]+ service=(\S+) ")  # a log line of rex.logs, and whose


def lines_of(service: str, written: list[str]) -> list[str]:
    """The lines of a shared log that `service` wrote: those marked as its by rex.logs, and
    the unmarked ones that follow them (a traceback)."""
    own, writer = [], None
    for line in written:
        marked = _WRITER.match(line)
        writer = marked.group(1) if marked else writer
        if writer == service:
            own.append(line)
    return own


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
    ) -> None:
        self.admin = BrokerAdmin(admin_url)
        self.vhost = f"rex-tmp-{uuid.uuid4().hex[:8]}"
        self.admin.put_vhost(self.vhost)
        self.admin.put_permissions(
            self.vhost, urlsplit(broker_url).username or "guest", ".*", ".*", ".*"
        )
        parts = urlsplit(broker_url)
        self.url = urlunsplit(
            (parts.scheme, parts.netloc, "/" + quote(self.vhost, safe=""), "", "")
        )
        self.data = Path(tempfile.mkdtemp(prefix="rex-stack-"))
        self.env = {
            **os.environ,
            **(extra_env or {}),
            "REX_BROKER_URL": self.url,
            "REX_BROKER_ADMIN_URL": admin_url,
            "REX_DATA_DIR": str(self.data),
            "REX_CONFIG_DIR": str(config_dir.resolve()),
            "REX_METRICS_PORT": "0",
        }
        settings = Settings(config_dir, self.data, self.url, admin_url)
        self.members = list(settings.members())
        provision(settings, self.env)
        self.log_path = self.data / "services.log"
        log = open(self.log_path, "ab")  # noqa: SIM115 - lives with the processes
        self.processes = [
            subprocess.Popen(
                [sys.executable, "-m", "gateway", *gateway_args],
                cwd=ROOT,
                env=self.env,
                stdout=log,
                stderr=log,
            ),
            subprocess.Popen(
                [sys.executable, "-m", "engine", *engine_args],
                cwd=ROOT,
                env=self.env,
                stdout=log,
                stderr=log,
            ),
        ]

    def pids(self) -> list[int]:
        return [p.pid for p in self.processes]

    def exited(self) -> dict[str, int]:
        """The services that have stopped, with their exit status."""
        return {
            name: process.returncode
            for name, process in zip(SERVICES, self.processes, strict=True)
            if process.poll() is not None
        }

    def log_tail(self, service: str, lines: int = 40) -> list[str]:
        """The last lines `service` wrote to the services' shared log (the log's last lines
        if none are its)."""
        written = self.log_path.read_text(errors="replace").splitlines()
        return (lines_of(service, written) or written)[-lines:]

    def close(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in self.processes:
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
        for member in self.members:
            self.admin.delete_user(member)
        self.admin.delete_vhost(self.vhost)
        shutil.rmtree(self.data, ignore_errors=True)
