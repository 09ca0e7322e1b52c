"""The load test's figures: progress line, final table, JSON (the PNG: loadtest/plot.py)."""

from __future__ import annotations

import argparse
from typing import Any

from .generator import Figures, LoadGenerator

BAR = 30


def percentile(sorted_values: list[int], fraction: float) -> float:
    if not sorted_values:
        return 0.0
    index = min(int(fraction * len(sorted_values)), len(sorted_values) - 1)
    return float(sorted_values[index])


def progress_line(generator: LoadGenerator, elapsed: float) -> str:
    figures = generator.figures
    done = min(elapsed / generator.duration, 1.0)
    bar = "#" * int(done * BAR) + "." * (BAR - int(done * BAR))
    rate = figures.answered / elapsed if elapsed else 0.0
    recent = sorted(figures.latencies_ns[-2000:])
    p99 = percentile(recent, 0.99) / 1e6
    return (
        f"\r[{bar}] {done:4.0%}  sent {figures.sent:>9,}  answered {figures.answered:>9,}"
        f"  {rate:>7,.0f}/s  p99 {p99:6.1f} ms "
    )


def per_second(figures: Figures) -> list[dict[str, Any]]:
    """Each second since the first send: requests sent in it, answered in it, and the p50 and
    p99 latency (ms) of those answered in it (0 when none were)."""
    by_second: dict[int, list[int]] = {}
    for at_s, latency_ns in zip(figures.answered_at_s, figures.latencies_ns, strict=True):
        by_second.setdefault(int(at_s), []).append(latency_ns)
    seconds = max(len(figures.sent_per_s), max(by_second, default=-1) + 1)
    rows = []
    for second in range(seconds):
        latencies = sorted(by_second.get(second, []))
        rows.append(
            {
                "second": second,
                "sent": figures.sent_per_s[second] if second < len(figures.sent_per_s) else 0,
                "answered": len(latencies),
                "p50_ms": round(percentile(latencies, 0.50) / 1e6, 2),
                "p99_ms": round(percentile(latencies, 0.99) / 1e6, 2),
            }
        )
    return rows


def summarise(figures: Figures, args: argparse.Namespace) -> dict[str, Any]:
    latencies = sorted(figures.latencies_ns)
    sending = max(figures.last_send - figures.first_send, 1e-9)
    answering = max(figures.last_answer - figures.first_send, 1e-9)
    return {
        "members": args.members,
        "target_rate": args.rate,
        "duration_s": round(sending, 3),
        "sent": figures.sent,
        "answered": figures.answered,
        "unanswered": figures.sent - figures.answered,
        "nacked": figures.nacked,
        "orders_per_s": round(figures.sent / sending, 1),
        "answered_per_s": round(figures.answered / answering, 1),
        "latency_ms": {
            "p50": round(percentile(latencies, 0.50) / 1e6, 2),
            "p90": round(percentile(latencies, 0.90) / 1e6, 2),
            "p99": round(percentile(latencies, 0.99) / 1e6, 2),
            "p999": round(percentile(latencies, 0.999) / 1e6, 2),
            "max": round((latencies[-1] if latencies else 0) / 1e6, 2),
        },
        "first_answers": dict(sorted(figures.statuses.items())),
        "reject_reasons": dict(sorted(figures.reasons.items())),
    }


def table(result: dict[str, Any]) -> list[str]:
    latency = result["latency_ms"]
    rows = [
        ("members", f"{result['members']}"),
        (
            "target rate",
            "flat out" if not result["target_rate"] else f"{result['target_rate']:,.0f}/s",
        ),
        ("sending time", f"{result['duration_s']:.1f} s"),
        ("sent", f"{result['sent']:,}"),
        ("answered", f"{result['answered']:,}"),
        ("unanswered", f"{result['unanswered']:,}"),
        ("orders/s sent", f"{result['orders_per_s']:,.0f}"),
        ("answers/s", f"{result['answered_per_s']:,.0f}"),
        ("latency p50", f"{latency['p50']:.2f} ms"),
        ("latency p90", f"{latency['p90']:.2f} ms"),
        ("latency p99", f"{latency['p99']:.2f} ms"),
        ("latency p99.9", f"{latency['p999']:.2f} ms"),
        ("latency max", f"{latency['max']:.2f} ms"),
        ("first answers", ", ".join(f"{k} {v:,}" for k, v in result["first_answers"].items())),
    ]
    for service, stage in result.get("stages_ms", {}).items():
        rows.append(
            (
                f"{service} stage",
                f"mean {stage['mean_ms']:.1f} ms, p50 <= {stage['p50_ms']} ms, "
                f"p99 <= {stage['p99_ms']} ms",
            )
        )
    for name, use in result.get("cpu", {}).items():
        rows.append(
            (f"cpu {name}", f"{use['cores']:.2f} cores, {use['us_per_order']:,.0f} µs per order")
        )
    if result["reject_reasons"]:
        rows.append(("rejects", ", ".join(f"{k} {v}" for k, v in result["reject_reasons"].items())))
    width = max(len(k) for k, _ in rows)
    return [f"{k:<{width}}  {v}" for k, v in rows]
