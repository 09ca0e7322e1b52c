"""`AmqpBus.call_soon` from a signal handler while the loop itself is calling it.

The gateway schedules a flush with `call_soon` on every batch of requests, and its SIGTERM
handler calls `call_soon(stop)`. Through pika's `add_callback_threadsafe` (a lock) a SIGTERM
landing inside the loop's own `call_soon` waited for ever on a lock its own thread held: the
gateway did not stop (CI, test_gateway_exits_0_on_sigterm_and_loses_no_request). The child
process below makes that collision near certain: the loop calls `call_soon` in a tight loop
while another thread signals the process every fraction of a millisecond; every handler
calls `call_soon` too. No broker is needed: the bus never connects.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]

CHILD = textwrap.dedent(
    """
    import os, signal, threading, time
    from rex.bus.amqp import AmqpBus

    bus = AmqpBus("amqp://guest:guest@127.0.0.1:1/%2F", name="signal-test")
    ran = []
    signal.signal(signal.SIGUSR1, lambda *_: bus.call_soon(lambda: ran.append(1)))
    signal.signal(signal.SIGTERM, lambda *_: bus.call_soon(bus.ioloop.stop))

    def busy():
        end = time.monotonic() + 1.0
        while time.monotonic() < end:
            for _ in range(200):
                bus.call_soon(lambda: None)
        os.kill(os.getpid(), signal.SIGTERM)

    def pester():
        while True:
            os.kill(os.getpid(), signal.SIGUSR1)
            time.sleep(0.0002)

    threading.Thread(target=pester, daemon=True).start()
    bus.call_soon(busy)
    bus.ioloop.start()
    print("ran", len(ran))
    """
)


def test_call_soon_from_signal_handlers_never_blocks_the_loop() -> None:
    done = subprocess.run(
        [sys.executable, "-c", CHILD], cwd=ROOT, capture_output=True, text=True, timeout=30
    )
    assert done.returncode == 0, done.stderr[-2000:]
    ran = int(done.stdout.split()[-1])
    assert ran > 10, done.stdout  # the signals' callbacks ran on the loop, not only queued
