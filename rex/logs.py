"""Structured log lines for every service: `time level logger message`, with the message
itself written as key=value pairs by the callers, one event per line."""

from __future__ import annotations

import logging
import sys
import time

from rex.environment import REX_LOG_LEVEL


def setup(service: str) -> None:
    """Log to stderr at ``REX_LOG_LEVEL``. The handler is in place before the level is
    read, so the ConfigError of a bad level can itself be logged (at INFO)."""
    handler = logging.StreamHandler(sys.stderr)
    formatter = logging.Formatter(
        f"%(asctime)s.%(msecs)03dZ %(levelname)s service={service} %(name)s %(message)s",
        datefmt="%Y-%m-%dT%H:%M:%S",
    )
    formatter.converter = time.gmtime  # UTC, as the Z says
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.INFO)
    logging.getLogger("pika").setLevel(logging.CRITICAL)  # the bus logs what matters
    root.setLevel(REX_LOG_LEVEL.get())
