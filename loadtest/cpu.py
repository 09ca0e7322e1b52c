"""Where the CPU goes during a load test: each process's own CPU time (from /proc), so the
figures hold however busy the machine is -- unlike latency, which other work distorts.

Reports, per process (broker, gateway, engine, the load generator itself) and for the whole
machine, the cores used on average and the CPU microseconds spent per order. Linux only;
elsewhere it reports nothing.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

_PROC = Path("/proc")
_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def broker_pid() -> int | None:
    """The local RabbitMQ (Erlang VM) process, if there is one."""
    for entry in _PROC.glob("[0-9]*/comm"):
        try:
            if entry.read_text().strip() == "beam.smp":
                return int(entry.parent.name)
        except OSError:
            continue
    return None


def _process_seconds(pid: int) -> float | None:
    try:
        fields = (_PROC / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return (int(fields[11]) + int(fields[12])) / _TICKS  # utime + stime


def _machine_seconds() -> float | None:
    try:
        first = (_PROC / "stat").read_text().splitlines()[0].split()
    except (OSError, IndexError):
        return None
    busy = sum(int(v) for i, v in enumerate(first[1:9]) if i not in (3, 4))  # not idle/iowait
    return busy / _TICKS


class CpuMeter:
    def __init__(self, pids: dict[str, int]) -> None:
        self.pids = pids
        self._start: dict[str, float] = {}
        self._wall = 0.0

    def start(self) -> None:
        self._wall = time.monotonic()
        self._start = self._read()

    def stop(self, orders: int) -> dict[str, dict[str, float]]:
        """{name: {"cores": average cores used, "us_per_order": CPU µs per order}}."""
        end = self._read()
        wall = max(time.monotonic() - self._wall, 1e-9)
        result = {}
        for name, seconds in end.items():
            if name in self._start:
                used = seconds - self._start[name]
                result[name] = {
                    "cores": round(used / wall, 2),
                    "us_per_order": round(used * 1e6 / orders, 1) if orders else 0.0,
                }
        return result

    def _read(self) -> dict[str, float]:
        seen = {name: _process_seconds(pid) for name, pid in self.pids.items()}
        seen["machine"] = _machine_seconds()
        return {name: s for name, s in seen.items() if s is not None}
