"""`rex loadtest` against the real broker: its services' metrics never clash with services
already running, and a service of its own that dies stops the run with the reason shown."""

from __future__ import annotations

import json
import re
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import pytest

from loadtest.ports import free_ports

ROOT = Path(__file__).resolve().parents[2]

pytestmark = [pytest.mark.broker, pytest.mark.slow]


@contextmanager
def listening(*ports: int) -> Iterator[list[int]]:
    """Listen on those of `ports` that are free, as another service would; yields them."""
    with ExitStack() as held:
        taken = []
        for port in ports:
            holder = held.enter_context(socket.socket())
            try:
                holder.bind(("0.0.0.0", port))
            except OSError:
                continue  # someone else holds it already: as good
            holder.listen()
            taken.append(port)
        yield taken


def loadtest(*args: str, timeout_s: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "loadtest", "--members", "2", "--rate", "100", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout_s,
    )


def test_its_services_take_free_metrics_ports_and_the_run_is_drawn(tmp_path: Path) -> None:
    png, figures = tmp_path / "load.png", tmp_path / "load.json"
    with listening(19101, 19102, 9101, 9102):  # the old fixed ports and the defaults
        run = loadtest("--duration", "3", "--png", str(png), "--json", str(figures))
    assert run.returncode == 0, run.stderr[-3000:]
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 30_000
    per_second = json.loads(figures.read_text())["per_second"]
    assert len(per_second) >= 3 and sum(row["answered"] for row in per_second) > 0
    sent = re.search(r"^sent +([\d,]+)$", run.stdout, re.M)
    answered = re.search(r"^answered +([\d,]+)$", run.stdout, re.M)
    assert sent and answered and sent.group(1) == answered.group(1) != "0", run.stdout
    assert "engine stage" in run.stdout  # its stage latencies were scraped from its ports


def test_a_service_that_dies_stops_the_run_and_its_log_is_shown_and_kept() -> None:
    (port,) = free_ports(1)
    started = time.monotonic()
    with listening(port):
        run = loadtest("--duration", "60", "--metrics-port", str(port))
    took_s = time.monotonic() - started
    assert run.returncode == 3, run.stderr[-3000:]
    assert took_s < 45, "it should stop when the gateway dies, not run its 60 s"
    err = run.stderr
    assert "loadtest: the run stopped: the gateway exited with status 5" in err
    assert "--- the gateway's last 40 log lines:" in err
    assert f"metrics port {port} (asked for by --metrics-port) cannot be used" in err
    kept = re.search(r"the services' whole log is kept in (\S+)", err)
    assert kept, err
    path = Path(kept.group(1))
    try:
        assert f"metrics port {port} (asked for by --metrics-port)" in path.read_text()
    finally:
        path.unlink()
    assert "sent " not in run.stdout  # no table of figures from a run that stopped
