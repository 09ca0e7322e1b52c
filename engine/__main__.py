"""python -m engine — run a matching engine for a group of products (also `rex engine`).

Several processes with the same --group form one engine: the first holds the group's lock
and trades, the others wait as standbys. Different groups own different products.
Exit status 3: the broker refused a publish; 4: an input log lost entries its market image
does not cover (docs/operations.md).
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
    parser.add_argument(
        "--image-every",
        type=int,
        default=int(os.environ.get("REX_ENGINE_IMAGE_EVERY", 10_000)),
        help="input-log entries between market images (default 10000)",
    )
    parser.add_argument(
        "--image-interval",
        type=float,
        default=float(os.environ.get("REX_ENGINE_IMAGE_INTERVAL", 600)),
        help="or seconds of log time between market images (default 600)",
    )
    args = parser.parse_args(argv)
    if args.image_every < 1 or args.image_interval <= 0:
        parser.error("--image-every and --image-interval must be positive")
    logs.setup("engine")
    log = logging.getLogger("rex.engine")
    try:
        settings = Settings.from_env()
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
    service = EngineService(
        bus,
        [products[s] for s in wanted],
        args.group,
        image_every=args.image_every,
        image_interval=args.image_interval,
    )
    signal.signal(signal.SIGTERM, lambda *_: bus.call_soon(service.stop))
    signal.signal(signal.SIGINT, lambda *_: bus.call_soon(service.stop))
    settle_memory()
    service.start()
    bus.run()
    return service.exit_status


if __name__ == "__main__":
    raise SystemExit(main())
