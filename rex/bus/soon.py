"""Callbacks for pika's loop that a signal handler may schedule: no lock on the way in.

pika's ``IOLoop.add_callback_threadsafe`` wakes the loop under a ``threading.Lock``. The
loop's own thread calls it too (the gateway and the settlement worker schedule their
flushes with ``call_soon``), and Python runs a signal handler on that same thread between
two bytecodes: a SIGTERM that lands while the loop holds the lock makes the handler wait
for a lock its own thread holds, and the process never stops. `SoonQueue` appends to a
deque and writes one byte to a socket pair, both without a lock; the loop reads the byte
and runs what was queued.
"""

from __future__ import annotations

import contextlib
import socket
from collections import deque
from collections.abc import Callable

from pika.adapters.select_connection import IOLoop


class SoonQueue:
    """Callbacks to run on `ioloop`'s next turn, queued from any thread or signal handler."""

    def __init__(self, ioloop: IOLoop) -> None:
        self._ioloop = ioloop
        self._callbacks: deque[Callable[[], None]] = deque()  # append/popleft are atomic
        self._read, self._write = socket.socketpair()
        self._read.setblocking(False)
        self._write.setblocking(False)
        ioloop.add_handler(self._read.fileno(), self._on_readable, IOLoop.READ)

    def call_soon(self, callback: Callable[[], None]) -> None:
        self._callbacks.append(callback)
        # Full: a wake-up byte is pending already. Closed: the loop has stopped for good,
        # so nothing would run the callback anyway.
        with contextlib.suppress(OSError):
            self._write.send(b"\0")

    def close(self) -> None:
        """Stop watching the socket pair and close it (on the loop, once it is done)."""
        if self._read.fileno() >= 0:
            self._ioloop.remove_handler(self._read.fileno())
        self._read.close()
        self._write.close()
        self._callbacks.clear()

    def _on_readable(self, _fd: int, _events: int) -> None:
        with contextlib.suppress(BlockingIOError):
            while self._read.recv(4096):
                pass
        # Only what was queued before this turn: a callback that schedules another must
        # not keep the loop from its sockets. What comes later has its own byte.
        for _ in range(len(self._callbacks)):
            self._callbacks.popleft()()
