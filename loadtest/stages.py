"""Where the time goes: the services' own latency histograms, scraped after a run.

gateway: request received by the gateway -> its forward (or reject) confirmed by the broker.
engine input: request received by the gateway -> the engine reads it from the input log.
engine:  request received by the gateway -> all of its outputs confirmed by the broker.
The rest of the member's latency is the broker's two hops around them: the member's publish
into the gateway's queue, and the execution report from the engine to the member.
"""

from __future__ import annotations

import re
import urllib.request

HISTOGRAMS = {
    "gateway": ("gateway", "rex_gateway_processing_seconds"),
    "engine input": ("engine", "rex_engine_input_lag_seconds"),
    "engine": ("engine", "rex_engine_processing_seconds"),
}


def scrape(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        text: str = response.read().decode()
        return text


def quantiles(text: str, name: str) -> dict[str, float]:
    """p50/p99 (upper bucket bounds, ms) and mean from a Prometheus histogram."""
    buckets = [
        (float(le), float(count))
        for le, count in re.findall(rf'^{name}_bucket{{le="([^"]+)"}} (\S+)$', text, re.M)
        if le != "+Inf"
    ]
    total = float(re.search(rf"^{name}_count (\S+)$", text, re.M).group(1))  # type: ignore[union-attr]
    summed = float(re.search(rf"^{name}_sum (\S+)$", text, re.M).group(1))  # type: ignore[union-attr]
    out = {"count": total, "mean_ms": round(summed / total * 1e3, 2) if total else 0.0}
    for label, q in (("p50_ms", 0.5), ("p99_ms", 0.99)):
        bound = next((le for le, count in buckets if total and count >= q * total), float("inf"))
        out[label] = round(bound * 1e3, 2)
    return out


def stage_latencies(ports: dict[str, int]) -> dict[str, dict[str, float]]:
    result = {}
    for stage, (service, name) in HISTOGRAMS.items():
        try:
            result[stage] = quantiles(scrape(ports[service]), name)
        except (OSError, AttributeError, ValueError):
            continue
    return result
