"""python -m gateway — run the request gateway (also `rex gateway`).

Exit status 2: configuration; 5: the metrics port asked for is taken (docs/operators/operations.md).
"""

from __future__ import annotations

import argparse
import logging
import signal

from rex import logs, metrics
from rex.bus.amqp import AmqpBus
from rex.config import ConfigError, ProcessConfig
from rex.environment import (
    REX_BUS_CONFIRM_TIMEOUT,
    REX_GATEWAY_SEEN_HORIZON,
    REX_GATEWAY_SEEN_MAX_ROWS,
    REX_REPLICATION,
)
from rex.private_files import keep_created_files_private
from rex.service_users import Service, broker_url_of

from .service import GatewayService
from .store import NS_PER_S, SqliteSeen


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m gateway", description=__doc__)
    metrics.add_options(parser, metrics.GATEWAY_EXPORTER)
    parser.add_argument("--tick-interval", type=float, default=1.0, help="clock tick, seconds")
    args = parser.parse_args(argv)
    try:
        keep_created_files_private()
        logs.setup("gateway")
        process_config = ProcessConfig.from_env()
        broker_url = broker_url_of(Service.GATEWAY, process_config.broker_url)
        products = process_config.products()
        members = process_config.members()
        operators = process_config.operators()
        horizon_ns = int(REX_GATEWAY_SEEN_HORIZON.get() * NS_PER_S)
        max_rows_per_member = REX_GATEWAY_SEEN_MAX_ROWS.get()
        confirm_timeout_s = REX_BUS_CONFIRM_TIMEOUT.get()
        replication = REX_REPLICATION.get()
    except ConfigError as error:
        logging.getLogger("rex.gateway").error("config: %s", error)
        return 2
    try:
        metrics.serve(metrics.GATEWAY_EXPORTER, args.metrics_port, address=args.metrics_address)
    except metrics.ExporterError as error:
        logging.getLogger("rex.gateway").error("%s", error)
        return error.exit_status
    bus = AmqpBus(
        broker_url, name="rex-gateway", confirm_timeout=confirm_timeout_s, replication=replication
    )
    metrics.export_bus(metrics.GATEWAY_EXPORTER, bus)
    seen = SqliteSeen(
        process_config.data_dir / "gateway.sqlite3",
        horizon_ns=horizon_ns,
        max_rows_per_member=max_rows_per_member,
    )
    service = GatewayService(
        bus,
        products.values(),
        members,
        seen,
        tick_interval=args.tick_interval,
        deployment=process_config.deployment,
        operators=operators,
    )
    signal.signal(signal.SIGTERM, lambda *_: bus.call_soon(service.stop))
    signal.signal(signal.SIGINT, lambda *_: bus.call_soon(service.stop))
    service.start()
    bus.run()
    seen.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
