"""The yardstick for the load test: a bare two-hop pika pipeline, no REX code in it.

    python -m loadtest.bare_pipeline --rate 0 --duration 10 [--queue-type quorum]

producer --(confirms)--> queue A --> relay --(pipelined confirms)--> queue B --> consumer

One ~110-byte msgpack message per hop; SelectConnection everywhere, up to `--window`
confirms in flight, prefetch `--window`, acks with multiple=True. The relay acks a message
from A only when its copy to B is confirmed, as a REX service does. Latency is producer
publish -> consumer receipt. Prints a table and, last, one JSON object.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import uuid
from typing import Any

import msgpack
import pika
from pika.adapters.select_connection import IOLoop, SelectConnection

from rex.config import ConfigError
from rex.environment import AMQP_URL, REX_BROKER_URL


class Pipeline:
    def __init__(self, url: str, rate: float, duration: float, window: int, queue_type: str):
        self.url = url
        self.rate = rate
        self.duration = duration
        self.window = window
        self.tag = uuid.uuid4().hex[:8]
        self.queue_a = f"bare.a.{self.tag}"
        self.queue_b = f"bare.b.{self.tag}"
        self.arguments = {"x-queue-type": queue_type}
        self.ioloop = IOLoop()
        self.sent = 0
        self.confirmed_a = 0
        self.received = 0
        self.latencies: list[int] = []
        self.started = 0.0
        self.relay_pending: dict[int, int] = {}  # B publish tag -> A delivery tag
        self.relay_tag = 0
        self.channels: dict[str, Any] = {}
        self._ready = 0
        for role in ("producer", "relay", "consumer"):
            SelectConnection(
                pika.URLParameters(url),
                on_open_callback=lambda c, r=role: c.channel(
                    on_open_callback=lambda ch, r=r: self._opened(r, ch)
                ),
                custom_ioloop=self.ioloop,
            )

    def _opened(self, role: str, channel: Any) -> None:
        self.channels[role] = channel
        if len(self.channels) < 3:
            return
        setup = self.channels["producer"]
        setup.queue_declare(
            self.queue_a,
            durable=True,
            arguments=self.arguments,
            callback=lambda _f: setup.queue_declare(
                self.queue_b,
                durable=True,
                arguments=self.arguments,
                callback=lambda _f: self._start(),
            ),
        )

    def _start(self) -> None:
        producer, relay, consumer = (self.channels[r] for r in ("producer", "relay", "consumer"))
        producer.confirm_delivery(self._producer_confirm)
        relay.confirm_delivery(self._relay_confirm)
        relay.basic_qos(prefetch_count=self.window)
        relay.basic_consume(self.queue_a, self._relay)
        consumer.basic_qos(prefetch_count=self.window)
        consumer.basic_consume(self.queue_b, self._consume)
        self.started = time.monotonic()
        self.ioloop.call_later(0, self._tick)

    def _tick(self) -> None:
        elapsed = time.monotonic() - self.started
        if elapsed >= self.duration:
            self.ioloop.call_later(2.0, self._stop)
            return
        if self.rate > 0:
            owed = int(self.rate * elapsed) - self.sent
        else:
            owed = self.window - (self.sent - self.confirmed_a)
        producer = self.channels["producer"]
        for _ in range(max(owed, 0)):
            body = msgpack.packb(
                {
                    "t": time.perf_counter_ns(),
                    "client_order_id": f"c-{self.sent}",
                    "product": "PRND-OX",
                    "side": "buy",
                    "price": 415_000,
                    "quantity": 1_000,
                    "time_in_force": "GTC",
                    "pad": "x" * 8,
                }
            )
            producer.basic_publish(
                "", self.queue_a, body, pika.BasicProperties(delivery_mode=2, type="new_order")
            )
            self.sent += 1
        self.ioloop.call_later(0.002, self._tick)

    def _producer_confirm(self, frame: Any) -> None:
        tag = frame.method.delivery_tag
        self.confirmed_a = tag if frame.method.multiple else max(self.confirmed_a, tag)

    def _relay(self, channel: Any, method: Any, properties: Any, body: bytes) -> None:
        channel.basic_publish(
            "", self.queue_b, body, pika.BasicProperties(delivery_mode=2, type="new_order")
        )
        self.relay_tag += 1
        self.relay_pending[self.relay_tag] = method.delivery_tag

    def _relay_confirm(self, frame: Any) -> None:
        tag = frame.method.delivery_tag
        done = [t for t in self.relay_pending if t <= tag] if frame.method.multiple else [tag]
        last = max(
            (self.relay_pending.pop(t) for t in done if t in self.relay_pending), default=None
        )
        if last is not None:
            self.channels["relay"].basic_ack(last, multiple=True)

    def _consume(self, channel: Any, method: Any, properties: Any, body: bytes) -> None:
        self.latencies.append(time.perf_counter_ns() - msgpack.unpackb(body)["t"])
        self.received += 1
        if self.received % 100 == 0:
            channel.basic_ack(method.delivery_tag, multiple=True)

    def _stop(self) -> None:
        cleanup = self.channels["producer"]
        cleanup.queue_delete(
            self.queue_a,
            callback=lambda _f: cleanup.queue_delete(
                self.queue_b, callback=lambda _f: self.ioloop.stop()
            ),
        )

    def run(self) -> dict[str, Any]:
        self.ioloop.start()
        latencies = sorted(self.latencies)

        def pct(q: float) -> float:
            return round(latencies[min(int(q * len(latencies)), len(latencies) - 1)] / 1e6, 2)

        return {
            "queue_type": self.arguments["x-queue-type"],
            "target_rate": self.rate,
            "sent": self.sent,
            "received": self.received,
            "messages_per_s": round(self.received / self.duration, 1),
            "latency_ms": {"p50": pct(0.5), "p99": pct(0.99), "p999": pct(0.999)},
        }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m loadtest.bare_pipeline")
    parser.add_argument("--rate", type=float, default=0, help="messages/s; 0 = flat out")
    parser.add_argument("--duration", type=float, default=10)
    parser.add_argument("--window", type=int, default=1000)
    parser.add_argument("--queue-type", default="classic", choices=["classic", "quorum"])
    parser.add_argument(
        "--broker", type=AMQP_URL.argument, help="RabbitMQ URL (default $REX_BROKER_URL)"
    )
    args = parser.parse_args(argv)
    try:
        broker_url: str = args.broker or REX_BROKER_URL.get()
    except ConfigError as error:
        print(f"bare pipeline: {error}", file=sys.stderr)
        return 2
    result = Pipeline(broker_url, args.rate, args.duration, args.window, args.queue_type).run()
    print(
        f"bare pipeline ({result['queue_type']} queues): {result['messages_per_s']:,.0f} msg/s "
        f"through two hops, p50 {result['latency_ms']['p50']} ms, "
        f"p99 {result['latency_ms']['p99']} ms"
    )
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
