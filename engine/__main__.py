"""python -m engine — run a matching engine for a group of products (also `rex engine`).

Several processes with the same --group form one engine: the first holds the group's lock
and trades, the others wait as standbys. Different groups own different products.
Exit status 2: configuration; 3: the broker refused a publish; 4: an input log lost entries
its market image does not cover; 5: the metrics port asked for is taken
(docs/operators/operations.md).
A standby on the same host as its group's active engine finds the default metrics port taken
and serves on a free one (logged); give it its own with --metrics-port for Prometheus.
"""

from __future__ import annotations

import argparse
import logging
import signal

from rex import logs, metrics
from rex.bus.amqp import AmqpBus
from rex.config import ConfigError, ProcessConfig
from rex.environment import (
    GROUP_NAME,
    POSITIVE_INT,
    POSITIVE_SECONDS,
    REX_BUS_CONFIRM_TIMEOUT,
    REX_ENGINE_GROUP,
    REX_ENGINE_IMAGE_EVERY,
    REX_ENGINE_IMAGE_INTERVAL,
    REX_ENGINE_PRODUCTS,
    REX_REPLICATION,
    SYMBOL_LIST,
)
from rex.private_files import keep_created_files_private
from rex.service_users import Service, broker_url_of

from .runtime import settle_memory
from .service import EngineService


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m engine", description=__doc__)
    parser.add_argument(
        "--group",
        type=GROUP_NAME.argument,
        help="engine group (default $REX_ENGINE_GROUP, else main)",
    )
    parser.add_argument(
        "--products",
        type=SYMBOL_LIST.argument,
        help="comma-separated symbols this group owns (default $REX_ENGINE_PRODUCTS, else all)",
    )
    metrics.add_options(parser, metrics.ENGINE_EXPORTER)
    parser.add_argument(
        "--image-every",
        type=POSITIVE_INT.argument,
        help="input-log entries between market images (default $REX_ENGINE_IMAGE_EVERY, "
        "else 10000)",
    )
    parser.add_argument(
        "--image-interval",
        type=POSITIVE_SECONDS.argument,
        help="or seconds of log time between market images (default "
        "$REX_ENGINE_IMAGE_INTERVAL, else 600)",
    )
    args = parser.parse_args(argv)
    log = logging.getLogger("rex.engine")
    try:
        keep_created_files_private()
        logs.setup("engine")
        group: str = args.group or REX_ENGINE_GROUP.get()
        chosen: tuple[str, ...] | None = args.products or REX_ENGINE_PRODUCTS.get()
        image_every: int = args.image_every or REX_ENGINE_IMAGE_EVERY.get()
        image_interval: float = args.image_interval or REX_ENGINE_IMAGE_INTERVAL.get()
        process_config = ProcessConfig.from_env()
        broker_url = broker_url_of(Service.ENGINE, process_config.broker_url)
        products = process_config.products()
        confirm_timeout_s = REX_BUS_CONFIRM_TIMEOUT.get()
        replication = REX_REPLICATION.get()
    except ConfigError as error:
        log.error("config: %s", error)
        return 2
    wanted = list(chosen or products)
    unknown = [s for s in wanted if s not in products]
    if unknown:
        log.error(
            "unknown products: %s; give symbols of %s (--products, REX_ENGINE_PRODUCTS)",
            ",".join(unknown),
            process_config.products_file,
        )
        return 2
    try:
        metrics.serve(metrics.ENGINE_EXPORTER, args.metrics_port, address=args.metrics_address)
    except metrics.ExporterError as error:
        log.error("%s", error)
        return error.exit_status
    bus = AmqpBus(
        broker_url,
        name=f"rex-engine-{group}",
        confirm_timeout=confirm_timeout_s,
        replication=replication,
    )
    metrics.export_bus(metrics.ENGINE_EXPORTER, bus)
    service = EngineService(
        bus,
        [products[s] for s in wanted],
        group,
        image_every=image_every,
        image_interval=image_interval,
    )
    signal.signal(signal.SIGTERM, lambda *_: bus.call_soon(service.stop))
    signal.signal(signal.SIGINT, lambda *_: bus.call_soon(service.stop))
    settle_memory()
    service.start()
    bus.run()
    return service.exit_status


if __name__ == "__main__":
    raise SystemExit(main())
