"""Structured log lines for every service: `time level logger message`, with the message
itself written as key=value pairs by the callers, one event per line."""

from __future__ import annotations

import logging
import os
import sys
import time


def setup(service: str) -> None:
    level = os.environ.get("REX_LOG_LEVEL", "INFO").upper()
    handler = logging.StreamHandler(sys.stderr)
    formatter = logging.Formatter(
        f"%(asctime)s.%(msecs)03dZ %(levelname)s service={service} %(name)s %(message)s",
        datefmt="%Y-%m-%dT%H:%M:%S",
    )
    formatter.converter = time.gmtime  # UTC, as the Z says
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    logging.getLogger("pika").setLevel(logging.CRITICAL)  # the bus logs what matters
