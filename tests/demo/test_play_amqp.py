"""`rex demo --broker URL` plays the same session through RabbitMQ with separate processes,
and ends with the same trades, books and positions as the embedded demo."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.demo.test_play import run_embedded, summary_of

pytestmark = [pytest.mark.broker, pytest.mark.slow]
ROOT = Path(__file__).resolve().parents[2]


def test_demo_through_rabbitmq_matches_the_embedded_demo() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "cli", "demo", "--broker", "amqp://guest:guest@127.0.0.1:5672/"],
        cwd=ROOT,
        env={**os.environ, "REX_CONFIG_DIR": str(ROOT / "config")},
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    _, embedded = run_embedded()
    assert summary_of(result.stdout) == summary_of(embedded)
