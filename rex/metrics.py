"""Prometheus metrics shared by the services, and the exporter.

Metric names start with `rex_`; each service exposes its own on its own port
(`REX_METRICS_PORT`, or the service default). docs/metrics.md lists them all.
"""

from __future__ import annotations

import logging

from prometheus_client import Counter, Gauge, Histogram, start_http_server

log = logging.getLogger("rex.metrics")

# Latency buckets in seconds: 0.5 ms .. 5 s
LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)

# --- gateway
GATEWAY_REQUESTS = Counter("rex_gateway_requests_total", "Member requests received", ["kind"])
GATEWAY_REJECTS = Counter(
    "rex_gateway_rejects_total", "Requests rejected by the gateway", ["reason"]
)
GATEWAY_FORWARDED = Counter(
    "rex_gateway_forwarded_total", "Requests forwarded to an engine input log", ["product"]
)
GATEWAY_DEAD_LETTERED = Counter(
    "rex_gateway_dead_lettered_total",
    "Requests dead-lettered (sender unknown: no user_id, or not a member login here)",
)
GATEWAY_DUPLICATES = Counter(
    "rex_gateway_redelivered_duplicates_total", "Redelivered requests recognised and not reapplied"
)
GATEWAY_LATENCY = Histogram(
    "rex_gateway_processing_seconds",
    "Request received to forward confirmed (or reject published)",
    buckets=LATENCY_BUCKETS,
)

# --- engine
ENGINE_INPUTS = Counter("rex_engine_inputs_total", "Input-log entries applied", ["product", "kind"])
ENGINE_TRADES = Counter("rex_engine_trades_total", "Trades executed", ["product"])
ENGINE_REPORTS = Counter(
    "rex_engine_execution_reports_total", "Execution reports published", ["product"]
)
ENGINE_ACTIVE = Gauge("rex_engine_active", "1 while this engine holds its group's lock", ["group"])
ENGINE_REPLAY_SECONDS = Gauge(
    "rex_engine_replay_seconds", "How long the last take-over replay took", ["group"]
)
ENGINE_REPLAYED = Gauge(
    "rex_engine_replayed_entries",
    "Input-log entries the last take-over replayed after the market image it restored",
    ["product"],
)
ENGINE_IMAGE_OFFSET = Gauge(
    "rex_engine_image_offset",
    "Input-log offset covered by the product's latest market image (restored or published)",
    ["product"],
)
ENGINE_IMAGE_BYTES = Gauge(
    "rex_engine_image_bytes", "Size of the product's latest market image", ["product"]
)
ENGINE_IMAGE_SECONDS = Gauge(
    "rex_engine_image_seconds",
    "How long encoding the product's latest market image held up the engine",
    ["product"],
)
ENGINE_IMAGES = Counter("rex_engine_images_total", "Market images published", ["product"])
ENGINE_INPUT_LAG = Histogram(
    "rex_engine_input_lag_seconds",
    "Request received by the gateway to the engine reading it from the input log",
    buckets=LATENCY_BUCKETS,
)
ENGINE_LATENCY = Histogram(
    "rex_engine_processing_seconds",
    "Input received by the gateway to its outputs confirmed by the broker",
    buckets=LATENCY_BUCKETS,
)

# --- settlement
SETTLEMENT_TRADES = Counter(
    "rex_settlement_trades_total", "Trades booked (each trade id once)", ["product"]
)
SETTLEMENT_DUPLICATES = Counter(
    "rex_settlement_duplicate_trades_total", "Trades delivered again and skipped"
)
SETTLEMENT_BATCH = Histogram(
    "rex_settlement_batch_seconds",
    "Booking one batch: the database transaction and its commit",
    buckets=LATENCY_BUCKETS,
)
SETTLEMENT_REQUESTS = Counter(
    "rex_settlement_requests_total",
    "Settlement requests by kind and how they ended (accepted, rejected, duplicate,"
    " dead_lettered, failed)",
    ["kind", "status"],
)
SETTLEMENT_REQUEST_REJECTS = Counter(
    "rex_settlement_request_rejects_total", "Settlement requests rejected, by reason", ["reason"]
)
PAYMENT_ALERTS = Counter(
    "rex_settlement_payment_alerts_total",
    "Payment alerts raised by the payer (fallback, manual_review, unresolved, unknown_review,"
    " late_paid, double_payment)",
    ["kind"],
)
PAYMENTS = Gauge(
    "rex_settlement_payments",
    "Payments by state, as last counted by the paying process (every state, 0 included)",
    ["state"],
)


def serve(port: int) -> None:
    """Expose /metrics on `port` (0 = do not serve)."""
    if port:
        start_http_server(port)
        log.info("metrics port=%d", port)
