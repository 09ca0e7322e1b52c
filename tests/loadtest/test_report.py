"""The load test's figures over time (per second), its PNG, and picking a service's lines
out of the services' log: synthetic figures and logs, no broker needed."""

from __future__ import annotations

import argparse
import random
import struct
from pathlib import Path
from typing import Any

from loadtest.generator import Figures
from loadtest.plot import DPI, HEIGHT_IN, WIDTH_IN, write_png
from loadtest.report import per_second, summarise
from loadtest.stack import lines_of
from rex import logs

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def synthetic_run(seconds: int = 5, rate: int = 1000) -> Figures:
    """`rate` answers a second, latency ~2 ms with a tail, a slow second in the middle."""
    rng = random.Random(7)
    figures = Figures(first_send=100.0)
    for second in range(seconds):
        figures.sent_per_s.append(rate)
        for i in range(rate):
            slow = 10 if second == seconds // 2 else 1
            figures.latencies_ns.append(int(rng.lognormvariate(0.7, 0.5) * slow * 1e6))
            figures.answered_at_s.append(second + i / rate)
    figures.sent = figures.answered = seconds * rate
    figures.last_send = figures.first_send + seconds
    figures.last_answer = figures.last_send + 0.01
    return figures


def run_result(figures: Figures) -> dict[str, Any]:
    args = argparse.Namespace(members=10, rate=1000.0)
    result = summarise(figures, args)
    result["products"] = ["PRND-OX", "ND-OX"]
    result["started"] = "2026-11-23 14:05 UTC"
    result["per_second"] = per_second(figures)
    return result


def test_per_second_counts_sends_and_answers_and_their_latency() -> None:
    figures = Figures(sent_per_s=[3, 1])
    for at_s, latency_ms in ((0.1, 1), (0.5, 2), (0.9, 3), (1.2, 40), (2.5, 5)):
        figures.answered_at_s.append(at_s)
        figures.latencies_ns.append(latency_ms * 1_000_000)
    assert per_second(figures) == [
        {"second": 0, "sent": 3, "answered": 3, "p50_ms": 2.0, "p99_ms": 3.0},
        {"second": 1, "sent": 1, "answered": 1, "p50_ms": 40.0, "p99_ms": 40.0},
        {"second": 2, "sent": 0, "answered": 1, "p50_ms": 5.0, "p99_ms": 5.0},
    ]


def test_the_slow_second_shows_in_the_latency_over_time() -> None:
    rows = per_second(synthetic_run())
    assert [row["answered"] for row in rows] == [1000] * 5
    slow = rows[2]["p50_ms"]
    assert all(slow > 5 * row["p50_ms"] for i, row in enumerate(rows) if i != 2)


def png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == PNG_SIGNATURE
    assert data[12:16] == b"IHDR"
    width, height = struct.unpack(">II", data[16:24])
    return width, height


def test_a_run_is_drawn_as_one_png(tmp_path: Path) -> None:
    figures = synthetic_run()
    path = tmp_path / "load.png"
    write_png(figures, run_result(figures), path)
    data = path.read_bytes()
    assert png_size(data) == (WIDTH_IN * DPI, HEIGHT_IN * DPI)
    assert 30_000 < len(data) < 2_000_000  # three plots with text, not an empty canvas
    assert data.endswith(b"IEND\xaeB`\x82")


def test_a_run_with_no_answers_is_drawn_too(tmp_path: Path) -> None:
    figures = Figures(sent=500, sent_per_s=[250, 250], first_send=1.0, last_send=3.0)
    path = tmp_path / "dead.png"
    write_png(figures, run_result(figures), path)
    assert png_size(path.read_bytes()) == (WIDTH_IN * DPI, HEIGHT_IN * DPI)


def test_a_services_lines_are_picked_out_of_the_shared_log() -> None:
    def line(service: str, level: str, message: str) -> str:
        return logs.line_of(
            {
                "time": "2026-11-23T14:05:00.001Z",
                "level": level,
                "service": service,
                "logger": f"rex.{service}",
                "message": message,
            }
        )

    written = [
        line("engine", "INFO", "engine=main standby"),
        line("gateway", "ERROR", "gateway: metrics port 9101"),
        line("engine", "INFO", "lock acquired lock=engine.main"),
        line("gateway", "CRITICAL", "crashed"),
        "usage: python -m gateway [-h]",  # printed before its log was set up
        "python -m gateway: error: unrecognized arguments: --x",
        line("engine", "INFO", "service=gateway engine=main active"),
    ]
    assert lines_of("gateway", written) == [written[1], *written[3:6]]
    assert lines_of("engine", written) == [written[0], written[2], written[6]]
    assert lines_of("settlement", written) == []
