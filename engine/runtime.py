"""Process settings for a matching process: the engine service and the benchmark share them,
so the benchmark measures the book as the engine runs it."""

from __future__ import annotations

import gc

# The book allocates no reference cycles (orders, levels and event records are trees), so
# CPython's cycle collector only adds pauses that grow with the book. It still runs, rarely.
GC_THRESHOLDS = (100_000, 50, 100)


def settle_memory() -> None:
    """Collect once, freeze what exists now (configuration, loaded state) out of the
    collector's sight, and make collections rare."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)
