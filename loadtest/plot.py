"""`rex loadtest --png`: one picture of a run -- its parameters, throughput and latency over
time, and the latency histogram. Drawn with matplotlib's Agg renderer straight to a file:
no display, no pyplot state."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

from .generator import Figures

WIDTH_IN, HEIGHT_IN, DPI = 10, 11, 100


def write_png(figures: Figures, result: dict[str, Any], path: Path) -> None:
    """`result`: the run's summary (report.summarise, with products, started, per_second)."""
    figure = Figure(figsize=(WIDTH_IN, HEIGHT_IN), dpi=DPI, layout="constrained")
    figure.suptitle(_title(result), fontsize=12)
    throughput, latency, histogram = figure.subplots(3, 1)
    rows = result["per_second"]
    _throughput(throughput, rows, result["target_rate"])
    _latency(latency, rows)
    _histogram(histogram, figures, result["latency_ms"])
    figure.savefig(path, format="png")


def _title(result: dict[str, Any]) -> str:
    rate = result["target_rate"]
    pace = f"target {rate:,.0f} orders/s" if rate else "flat out"
    latency = result["latency_ms"]
    return (
        f"REX load test, {result['started']}\n"
        f"{result['members']} members, {pace}, {result['duration_s']:.0f} s of sending,"
        f" products {', '.join(result['products'])}\n"
        f"sent {result['sent']:,}, answered {result['answered']:,};"
        f" latency p50 {latency['p50']:.1f} ms, p99 {latency['p99']:.1f} ms,"
        f" max {latency['max']:.1f} ms"
    )


def _throughput(axes: Axes, rows: list[dict[str, Any]], target_rate: float) -> None:
    # Each second's count drawn across that second: one more edge closes the last step.
    edges = [row["second"] for row in rows] + [len(rows)]
    for name, width, alpha in (("sent", 4.0, 0.4), ("answered", 1.5, 1.0)):
        counts = [row[name] for row in rows]
        axes.plot(
            edges,
            [*counts, *counts[-1:]],
            label=name,
            drawstyle="steps-post",
            linewidth=width,
            alpha=alpha,
        )
    if target_rate:
        axes.axhline(target_rate, color="grey", linestyle="--", linewidth=1, label="target")
    axes.set_title("Throughput, per second", fontsize=10, loc="left")
    axes.set_xlabel("seconds since the first order")
    axes.set_ylabel("requests/s")
    axes.set_ylim(bottom=0)
    axes.grid(alpha=0.3)
    axes.legend(loc="lower right")


def _latency(axes: Axes, rows: list[dict[str, Any]]) -> None:
    answered = [row for row in rows if row["answered"]]
    seconds = [row["second"] for row in answered]
    axes.plot(seconds, [row["p50_ms"] for row in answered], marker=".", label="p50")
    axes.plot(seconds, [row["p99_ms"] for row in answered], marker=".", label="p99")
    axes.set_title("Latency of the requests answered in each second", fontsize=10, loc="left")
    axes.set_xlabel("seconds since the first order")
    axes.set_ylabel("ms")
    if answered:
        _log_scale(axes)
    axes.grid(alpha=0.3, which="both")
    axes.legend(loc="upper right")


def _histogram(axes: Axes, figures: Figures, latency_ms: dict[str, float]) -> None:
    axes.hist([ns / 1e6 for ns in figures.latencies_ns], bins=100)
    for label, style in (("p50", ":"), ("p99", "--")):
        axes.axvline(
            latency_ms[label],
            color="black",
            linestyle=style,
            linewidth=1,
            label=f"{label} {latency_ms[label]:.1f} ms",
        )
    axes.set_title("Latency, all requests", fontsize=10, loc="left")
    axes.set_xlabel("ms, from a request's publish to its first execution report")
    axes.set_ylabel("requests")
    if figures.latencies_ns:
        _log_scale(axes, subs=(1.0,))
    axes.legend(loc="upper right")


def _log_scale(axes: Axes, subs: tuple[float, ...] = (1.0, 2.0, 5.0)) -> None:
    """A log y axis labelled 1, 2, 5, 10, 20 ... (`subs` of each power of ten) rather than
    as powers of ten."""
    axes.set_yscale("log")
    axes.yaxis.set_major_locator(LogLocator(base=10, subs=subs))
    axes.yaxis.set_major_formatter(FuncFormatter(lambda value, _position: f"{value:g}"))
    axes.yaxis.set_minor_formatter(NullFormatter())
