"""python -m gateway — run the request gateway (also `rex gateway`)."""

from __future__ import annotations

import argparse
import logging
import signal

from rex import logs, metrics
from rex.bus.amqp import AmqpBus
from rex.config import ConfigError, Settings
from rex.environment import PORT

from .service import GatewayService
from .store import SqliteSeen

DEFAULT_METRICS_PORT = 9101


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m gateway", description=__doc__)
    parser.add_argument(
        "--metrics-port",
        type=PORT.argument,
        default=None,
        help=f"Prometheus port, 0: none (default $REX_METRICS_PORT, else {DEFAULT_METRICS_PORT})",
    )
    parser.add_argument("--tick-interval", type=float, default=1.0, help="clock tick, seconds")
    args = parser.parse_args(argv)
    try:
        logs.setup("gateway")
        settings = Settings.from_env()
        products = settings.products()
        members = settings.members()
        metrics_port = metrics.exporter_port(args.metrics_port, DEFAULT_METRICS_PORT)
    except ConfigError as error:
        logging.getLogger("rex.gateway").error("config: %s", error)
        return 2
    metrics.serve(metrics_port)
    bus = AmqpBus(settings.broker_url, name="rex-gateway")
    seen = SqliteSeen(settings.data_dir / "gateway.sqlite3")
    service = GatewayService(
        bus, products.values(), members, seen, tick_interval=args.tick_interval
    )
    signal.signal(signal.SIGTERM, lambda *_: bus.call_soon(service.stop))
    signal.signal(signal.SIGINT, lambda *_: bus.call_soon(service.stop))
    service.start()
    bus.run()
    seen.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
