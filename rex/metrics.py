"""Prometheus metrics of the services, and their exporters.

Metric names start with `rex_`. Each service has its own registry and exposes only its own
metrics (and its process's) on its own port: `--metrics-port`, else `REX_METRICS_PORT`, else
the service's default. It listens on `--metrics-address`, else `REX_METRICS_ADDRESS`, else
127.0.0.1: /metrics has no authentication, so only this host reaches it unless the operator
opens it. A port asked for that is taken stops the service with exit status
`EXIT_METRICS_PORT_TAKEN`; a default that is taken (a hot standby on the same host) gives way
to a free port, logged. docs/operators/metrics.md lists the metrics and docs/operators/operations.md
the ports.
"""

from __future__ import annotations

import argparse
import errno
import itertools
import logging
import os
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from wsgiref.simple_server import WSGIServer

from prometheus_client import (
    GC_COLLECTOR,
    PLATFORM_COLLECTOR,
    PROCESS_COLLECTOR,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    start_http_server,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from rex.bus import Bus
from rex.environment import IP_ADDRESS, PORT, REX_METRICS_ADDRESS, REX_METRICS_PORT
from rex.errors import ConfigError

log = logging.getLogger("rex.metrics")

PORT_ENV = REX_METRICS_PORT.name
ADDRESS_ENV = REX_METRICS_ADDRESS.name
EXIT_METRICS_PORT_TAKEN = 5  # the metrics port asked for is taken (docs/operators/operations.md)
EXIT_CONFIG = 2  # as for any configuration error


def _service_registry() -> CollectorRegistry:
    """A registry with the process's own series (CPU, memory, GC), as every service had."""
    registry = CollectorRegistry(auto_describe=True)
    for collector in (PROCESS_COLLECTOR, PLATFORM_COLLECTOR, GC_COLLECTOR):
        registry.register(collector)
    return registry


@dataclass(frozen=True)
class Exporter:
    """One service's metrics: its registry and the port it serves them on by default."""

    service: str
    default_port: int
    registry: CollectorRegistry = field(default_factory=_service_registry, compare=False)


GATEWAY_EXPORTER = Exporter("gateway", 9101)
ENGINE_EXPORTER = Exporter("engine", 9102)
SETTLEMENT_EXPORTER = Exporter("settlement", 9103)

# Latency buckets in seconds: 0.5 ms .. 5 s
LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)

# --- gateway
GATEWAY_REGISTRY = GATEWAY_EXPORTER.registry
GATEWAY_REQUESTS = Counter(
    "rex_gateway_requests_total", "Member requests received", ["kind"], registry=GATEWAY_REGISTRY
)
GATEWAY_REJECTS = Counter(
    "rex_gateway_rejects_total",
    "Requests rejected by the gateway",
    ["reason"],
    registry=GATEWAY_REGISTRY,
)
GATEWAY_FORWARDED = Counter(
    "rex_gateway_forwarded_total",
    "Requests forwarded to an engine input log",
    ["product"],
    registry=GATEWAY_REGISTRY,
)
GATEWAY_FORWARDS_RESENT = Counter(
    "rex_gateway_forwards_resent_total",
    "Forward batches sent again because they were not read back from their input log"
    " (gateway/read_back.py): a later batch was there and they were not, or not within 5 s",
    ["product"],
    registry=GATEWAY_REGISTRY,
)
GATEWAY_DEAD_LETTERED = Counter(
    "rex_gateway_dead_lettered_total",
    "Requests dead-lettered (sender unknown: no user_id, or not a member login here)",
    registry=GATEWAY_REGISTRY,
)
GATEWAY_REQUEST_FAILURES = Counter(
    "rex_gateway_request_failures_total",
    "Requests the gateway failed to handle (a bug; each dead-lettered, logged at ERROR)",
    registry=GATEWAY_REGISTRY,
)
GATEWAY_PACED = Counter(
    "rex_gateway_paced_total",
    "Requests that waited in the gateway for their member's rate before being taken from"
    " its request queue (gateway/lanes.py); one label per configured member",
    ["member"],
    registry=GATEWAY_REGISTRY,
)
GATEWAY_UNATTRIBUTED_DROPPED = Counter(
    "rex_gateway_unattributed_dropped_total",
    "Requests naming no member (no user_id, or not a member login here) dropped over their"
    " shared rate limit, not dead-lettered",
    registry=GATEWAY_REGISTRY,
)
GATEWAY_SEEN_ROWS = Gauge(
    "rex_gateway_seen_rows",
    "Ids in the gateway's dedupe window (message ids and client order ids)",
    registry=GATEWAY_REGISTRY,
)
GATEWAY_SEEN_FILE_BYTES = Gauge(
    "rex_gateway_seen_file_bytes",
    "Size of the dedupe window's SQLite file and its WAL",
    registry=GATEWAY_REGISTRY,
)
GATEWAY_SEEN_PRUNED = Counter(
    "rex_gateway_seen_pruned_total",
    "Ids forgotten by the dedupe window: expired (older than its horizon) or cap (inside"
    " it, over a member's row cap)",
    ["why"],
    registry=GATEWAY_REGISTRY,
)
GATEWAY_DUPLICATES = Counter(
    "rex_gateway_redelivered_duplicates_total",
    "Redelivered requests recognised and not reapplied",
    registry=GATEWAY_REGISTRY,
)
GATEWAY_OPERATOR_ACTIONS = Counter(
    "rex_gateway_operator_actions_total",
    "Operator requests judged by the operator desk, by action and verdict (done, or the"
    " refusal's reason)",
    ["action", "verdict"],
    registry=GATEWAY_REGISTRY,
)
GATEWAY_LATENCY = Histogram(
    "rex_gateway_processing_seconds",
    "Request received to forward confirmed (or reject published)",
    buckets=LATENCY_BUCKETS,
    registry=GATEWAY_REGISTRY,
)

# --- engine
ENGINE_REGISTRY = ENGINE_EXPORTER.registry
ENGINE_INPUTS = Counter(
    "rex_engine_inputs_total",
    "Input-log entries applied",
    ["product", "kind"],
    registry=ENGINE_REGISTRY,
)
ENGINE_INPUT_GAPS = Counter(
    "rex_engine_input_gaps_total",
    "Batches missing from an input log although a later batch of the same gateway writer is"
    " there (engine/input_sequences.py): lost by the broker, or failed and sent again",
    ["product"],
    registry=ENGINE_REGISTRY,
)
ENGINE_INPUT_GAPS_FILLED = Counter(
    "rex_engine_input_gaps_filled_total",
    "Batches that arrived after a later one of their writer, filling a gap",
    ["product"],
    registry=ENGINE_REGISTRY,
)
ENGINE_INPUT_OPEN_GAPS = Gauge(
    "rex_engine_input_open_gaps",
    "Batches found missing and not (yet) arrived, over the product's writers",
    ["product"],
    registry=ENGINE_REGISTRY,
)
ENGINE_TRADES = Counter(
    "rex_engine_trades_total", "Trades executed", ["product"], registry=ENGINE_REGISTRY
)
ENGINE_REPORTS = Counter(
    "rex_engine_execution_reports_total",
    "Execution reports published",
    ["product"],
    registry=ENGINE_REGISTRY,
)
ENGINE_REJECTS = Counter(
    "rex_engine_rejects_total",
    "Requests the engine rejected, by reason (while live: a take-over's replay does not count"
    " them again)",
    ["product", "reason"],
    registry=ENGINE_REGISTRY,
)
ENGINE_CANCELS = Counter(
    "rex_engine_cancels_total",
    "Orders the engine cancelled or expired, by reason (requested, mass_cancel, self_trade,"
    " immediate_or_cancel, fill_or_kill, expired; while live)",
    ["product", "reason"],
    registry=ENGINE_REGISTRY,
)
ENGINE_ACTIVE = Gauge(
    "rex_engine_active",
    "1 while this engine holds its group's lock",
    ["group"],
    registry=ENGINE_REGISTRY,
)
ENGINE_REPLAY_SECONDS = Gauge(
    "rex_engine_replay_seconds",
    "How long the last take-over replay took",
    ["group"],
    registry=ENGINE_REGISTRY,
)
ENGINE_REPLAYED = Gauge(
    "rex_engine_replayed_entries",
    "Input-log entries the last take-over replayed after the market image it restored",
    ["product"],
    registry=ENGINE_REGISTRY,
)
ENGINE_IMAGE_OFFSET = Gauge(
    "rex_engine_image_offset",
    "Input-log offset covered by the product's latest market image (restored or published)",
    ["product"],
    registry=ENGINE_REGISTRY,
)
ENGINE_IMAGE_BYTES = Gauge(
    "rex_engine_image_bytes",
    "Size of the product's latest market image",
    ["product"],
    registry=ENGINE_REGISTRY,
)
ENGINE_IMAGE_SECONDS = Gauge(
    "rex_engine_image_seconds",
    "How long encoding the product's latest market image held up the engine",
    ["product"],
    registry=ENGINE_REGISTRY,
)
ENGINE_DEDUPE_IDS = Gauge(
    "rex_engine_dedupe_ids",
    "Request ids the product's market remembers, to drop a request forwarded twice (at most"
    " 100,000: engine/market.py)",
    ["product"],
    registry=ENGINE_REGISTRY,
)
ENGINE_CLIENT_ORDER_IDS = Gauge(
    "rex_engine_client_order_ids",
    "Client order ids the product's market holds as used this trading day (at most 1,000,000:"
    " engine/market.py); resting orders' ids are held besides",
    ["product"],
    registry=ENGINE_REGISTRY,
)
ENGINE_IMAGES = Counter(
    "rex_engine_images_total", "Market images published", ["product"], registry=ENGINE_REGISTRY
)
ENGINE_INPUT_LAG = Histogram(
    "rex_engine_input_lag_seconds",
    "Request received by the gateway to the engine reading it from the input log",
    buckets=LATENCY_BUCKETS,
    registry=ENGINE_REGISTRY,
)
ENGINE_LATENCY = Histogram(
    "rex_engine_processing_seconds",
    "Input received by the gateway to its outputs confirmed by the broker",
    buckets=LATENCY_BUCKETS,
    registry=ENGINE_REGISTRY,
)

# --- settlement
SETTLEMENT_REGISTRY = SETTLEMENT_EXPORTER.registry
SETTLEMENT_TRADES = Counter(
    "rex_settlement_trades_total",
    "Trades booked (each trade id once)",
    ["product"],
    registry=SETTLEMENT_REGISTRY,
)
SETTLEMENT_DUPLICATES = Counter(
    "rex_settlement_duplicate_trades_total",
    "Trades delivered again and skipped",
    registry=SETTLEMENT_REGISTRY,
)
SETTLEMENT_BATCH = Histogram(
    "rex_settlement_batch_seconds",
    "Booking one batch: the database transaction and its commit",
    buckets=LATENCY_BUCKETS,
    registry=SETTLEMENT_REGISTRY,
)
SETTLEMENT_REQUESTS = Counter(
    "rex_settlement_requests_total",
    "Settlement requests by kind and how they ended (accepted, rejected, duplicate,"
    " dead_lettered, failed)",
    ["kind", "status"],
    registry=SETTLEMENT_REGISTRY,
)
SETTLEMENT_REQUESTS_PACED = Counter(
    "rex_settlement_requests_paced_total",
    "Settlement requests that waited in the worker for their member's settlement rate"
    " (settlement_worker/requests/pacing.py); one label per configured member",
    ["member"],
    registry=SETTLEMENT_REGISTRY,
)
SETTLEMENT_REQUEST_REJECTS = Counter(
    "rex_settlement_request_rejects_total",
    "Settlement requests rejected, by reason",
    ["reason"],
    registry=SETTLEMENT_REGISTRY,
)
SETTLEMENT_OUTBOX_QUARANTINED = Counter(
    "rex_settlement_outbox_quarantined_total",
    "Outbox rows set aside because they can never be published (e.g. an AMQP field over"
    " 255 bytes); the rows behind them are published",
    registry=SETTLEMENT_REGISTRY,
)
PAYMENT_ALERTS = Counter(
    "rex_settlement_payment_alerts_total",
    "Payment alerts raised by the payer (fallback, manual_review, unresolved, unknown_review,"
    " late_paid, double_payment)",
    ["kind"],
    registry=SETTLEMENT_REGISTRY,
)
PAYMENTS = Gauge(
    "rex_settlement_payments",
    "Payments by state, as last counted by the paying process (every state, 0 included)",
    ["state"],
    registry=SETTLEMENT_REGISTRY,
)


def add_options(parser: argparse.ArgumentParser, exporter: Exporter) -> None:
    """The service's --metrics-port and --metrics-address."""
    parser.add_argument(
        "--metrics-port",
        type=PORT.argument,
        default=None,
        help=f"Prometheus port (default: ${PORT_ENV}, else {exporter.default_port}, or a free"
        " port if that one is taken; 0: any free port)",
    )
    parser.add_argument(
        "--metrics-address",
        type=IP_ADDRESS.argument,
        default=None,
        help=f"address /metrics listens on (default: ${ADDRESS_ENV}, else"
        f" {REX_METRICS_ADDRESS.default}: this host only; 0.0.0.0: every interface, and"
        " /metrics has no authentication)",
    )


class ExporterError(Exception):
    """The exporter cannot start as asked: the message says why and what to do."""

    def __init__(self, message: str, exit_status: int) -> None:
        super().__init__(message)
        self.exit_status = exit_status


def asked_port(flag: int | None, environ: Mapping[str, str]) -> tuple[int, str] | None:
    """The port the operator asked for and where (the flag, else the environment)."""
    if flag is not None:
        return flag, "--metrics-port"
    try:
        port = REX_METRICS_PORT.get(environ)
    except ConfigError as error:
        raise ExporterError(f"config: {error}", EXIT_CONFIG) from None
    return None if port is None else (port, PORT_ENV)


def bind_address(flag: str | None, environ: Mapping[str, str]) -> str:
    """The address to listen on: the flag, else the environment, else loopback."""
    if flag is not None:
        return flag
    try:
        return REX_METRICS_ADDRESS.get(environ)
    except ConfigError as error:
        raise ExporterError(f"config: {error}", EXIT_CONFIG) from None


def serve(
    exporter: Exporter,
    flag: int | None,
    environ: Mapping[str, str] = os.environ,
    *,
    address: str | None = None,
) -> WSGIServer:
    """Expose the service's /metrics; log and return the server (`.server_port`: the port).

    A port asked for (`flag`, else REX_METRICS_PORT; 0: any free port) must be free, or
    ExporterError says so. The service's default port, if taken, gives way to a free one.
    It listens on `address` (--metrics-address), else REX_METRICS_ADDRESS, else 127.0.0.1.
    """
    asked = asked_port(flag, environ)
    host = bind_address(address, environ)
    port = exporter.default_port if asked is None else asked[0]
    try:
        server = _listen(exporter, host, port)
    except OSError as error:
        if error.errno in _NOT_HERE:
            raise ExporterError(_not_here(exporter, host, address, error), EXIT_CONFIG) from None
        if asked is not None:
            message = _refused(exporter, port, asked[1], error)
            raise ExporterError(message, EXIT_METRICS_PORT_TAKEN) from None
        server = _listen_anywhere(exporter, host)
        log.warning(
            "metrics service=%s default port %d is taken (another %s on this host?): serving on"
            " free port %d instead; give each process its own with --metrics-port or %s so"
            " Prometheus finds it",
            exporter.service,
            port,
            exporter.service,
            server.server_port,
            PORT_ENV,
        )
    log.info("metrics service=%s port=%d address=%s", exporter.service, server.server_port, host)
    return server


def _listen(exporter: Exporter, host: str, port: int) -> WSGIServer:
    server, _thread = start_http_server(port, addr=host, registry=exporter.registry)
    return server


def _listen_anywhere(exporter: Exporter, host: str) -> WSGIServer:
    try:
        return _listen(exporter, host, 0)
    except OSError as error:
        raise ExporterError(
            f"{exporter.service}: cannot serve metrics on any port ({error.strerror})",
            EXIT_METRICS_PORT_TAKEN,
        ) from None


# The address is none of this host's (or of a family it lacks): no port would do.
_NOT_HERE = frozenset({errno.EADDRNOTAVAIL, errno.EAFNOSUPPORT})


def _not_here(exporter: Exporter, host: str, flag: str | None, error: OSError) -> str:
    source = "--metrics-address" if flag is not None else ADDRESS_ENV
    return (
        f"{exporter.service}: metrics address {host} (asked for by {source}) cannot be used:"
        f" {error.strerror or error}; give an address of this host with --metrics-address or"
        f" {ADDRESS_ENV} ({REX_METRICS_ADDRESS.default}: this host only, 0.0.0.0: every"
        " interface)"
    )


def _refused(exporter: Exporter, port: int, source: str, error: OSError) -> str:
    cause = error.strerror or str(error)
    if error.errno == errno.EADDRINUSE:
        cause = f"another process listens there, perhaps another {exporter.service}"
    return (
        f"{exporter.service}: metrics port {port} (asked for by {source}) cannot be used:"
        f" {cause}; choose a free port with --metrics-port or {PORT_ENV} (0: any free port)"
    )


def start_at_zero(metric: Counter, *label_values: Iterable[str]) -> None:
    """Create every series of `metric` over all combinations of `label_values`, at 0, so each
    exists before its first event: a dashboard shows 0, not "No data", and `increase()`
    counts the first event too."""
    for values in itertools.product(*label_values):
        metric.labels(*values)


class BusCollector(Collector):
    """A service's bus, read at scrape time: ``rex_<service>_bus_*``. Confirms that time out
    and connections lost say the broker (or a node of its cluster) is failing the service;
    the oldest unconfirmed publish says it is failing now."""

    def __init__(self, service: str, bus: Bus) -> None:
        self._prefix = f"rex_{service}_bus"
        self._bus = bus

    def collect(self) -> Iterator[Metric]:
        stats, prefix = self._bus.stats, self._prefix
        counts = (
            ("published", "Messages published", stats.published),
            ("nacked", "Publishes the broker refused (Basic.Nack)", stats.nacked),
            (
                "confirm_timeouts",
                "Publishes failed because their confirm did not come within the bound"
                " (republished by their publisher)",
                stats.confirm_timeouts,
            ),
            (
                "connections_lost",
                "Broker connections lost (not closed on purpose); each reconnects, to the"
                " next node of a cluster",
                stats.connections_lost,
            ),
        )
        for name, meaning, value in counts:
            yield CounterMetricFamily(f"{prefix}_{name}", meaning, value=value)
        yield GaugeMetricFamily(
            f"{prefix}_unconfirmed", "Publishes waiting for their confirm", self._bus.unconfirmed
        )
        yield GaugeMetricFamily(
            f"{prefix}_oldest_unconfirmed_seconds",
            "How long the oldest publish waiting for its confirm has waited",
            self._bus.oldest_unconfirmed_s,
        )


#: The series a service's bus adds (BusCollector): counters, then gauges.
BUS_COUNTERS = ("published", "nacked", "confirm_timeouts", "connections_lost")
BUS_GAUGES = ("unconfirmed", "oldest_unconfirmed_seconds")
BUS_SERVICES = tuple(e.service for e in (GATEWAY_EXPORTER, ENGINE_EXPORTER, SETTLEMENT_EXPORTER))


def bus_series(service: str) -> tuple[str, ...]:
    """The names Prometheus sees for ``service``'s bus (counters with ``_total``)."""
    return (
        *(f"rex_{service}_bus_{name}_total" for name in BUS_COUNTERS),
        *(f"rex_{service}_bus_{name}" for name in BUS_GAUGES),
    )


def export_bus(exporter: Exporter, bus: Bus) -> None:
    """Add ``bus``'s series to ``exporter``'s registry (once per process)."""
    exporter.registry.register(BusCollector(exporter.service, bus))
