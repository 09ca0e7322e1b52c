"""python -m engine — run a matching engine for a group of products (also `rex engine`).

Several processes with the same --group form one engine: the first holds the group's lock
and trades, the others wait as standbys. Different groups own different products.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal

from rex import logs, metrics
from rex.bus.amqp import AmqpBus
from rex.config import ConfigError, Settings

from .runtime import settle_memory
from .service import EngineService

DEFAULT_METRICS_PORT = 9102


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m engine", description=__doc__)
    parser.add_argument("--group", default=os.environ.get("REX_ENGINE_GROUP", "main"))
    parser.add_argument(
        "--products",
        default=os.environ.get("REX_ENGINE_PRODUCTS", ""),
        help="comma-separated symbols this group owns (default: all products)",
    )
    parser.add_argument(
        "--metrics-port",
        type=int,
        default=int(os.environ.get("REX_METRICS_PORT", DEFAULT_METRICS_PORT)),
    )
    args = parser.parse_args(argv)
    logs.setup("engine")
    log = logging.getLogger("rex.engine")
    settings = Settings.from_env()
    try:
        products = settings.products()
    except ConfigError as error:
        log.error("config: %s", error)
        return 2
    wanted = [s for s in args.products.split(",") if s] or list(products)
    unknown = [s for s in wanted if s not in products]
    if unknown:
        log.error("unknown products: %s", ",".join(unknown))
        return 2
    metrics.serve(args.metrics_port)
    bus = AmqpBus(settings.broker_url, name=f"rex-engine-{args.group}")
    service = EngineService(bus, [products[s] for s in wanted], args.group)
    signal.signal(signal.SIGTERM, lambda *_: bus.call_soon(service.stop))
    signal.signal(signal.SIGINT, lambda *_: bus.call_soon(service.stop))
    settle_memory()
    service.start()
    bus.run()
    return service.exit_status


if __name__ == "__main__":
    raise SystemExit(main())
