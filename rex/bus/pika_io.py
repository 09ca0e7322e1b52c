"""One ``send()`` per turn of pika's loop, not one per AMQP frame.

pika buffers every frame it writes (a publish is three: method, header, body; an ack is
one) and, when the socket is writable, sends the buffered frames one ``send()`` call each.
With TCP_NODELAY each call is a TCP segment of its own, which the broker then reads one by
one: at a few thousand messages per second the system calls and segments cost more CPU, in
our processes and in RabbitMQ's, than the messages themselves. :func:`coalesce_writes`
makes pika join what is buffered into one chunk before sending it. Same bytes, same order,
same partial-send handling (pika's own loop does the sending).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pika.adapters.utils import io_services_utils

_Transport = io_services_utils._AsyncTransportBase
_installed: list[Callable[[Any], None]] = []


def _joined_then_produce(transport: Any) -> None:
    buffers = transport._tx_buffers
    if len(buffers) > 1:
        joined = b"".join(buffers)
        buffers.clear()
        buffers.append(joined)
    _installed[0](transport)


def coalesce_writes() -> None:
    """Install the joining step in front of pika's ``_produce`` (once per process)."""
    if _installed:
        return
    _installed.append(_Transport._produce)
    _Transport._produce = _joined_then_produce
