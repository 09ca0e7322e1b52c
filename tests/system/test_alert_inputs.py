"""The queue-bound alerts (config/prometheus/alerts.yml: RexDeadLettersFilling,
RexQueueBacklog) read `rabbitmq_detailed_queue_messages{vhost,queue}` from the broker's
Prometheus plugin, at the path and family Prometheus scrapes (config/prometheus/prometheus.yml).
Here, on the real broker: the series exists for every queue the alerts name, in the
exchange's own vhost, and it counts what is in the queue.

`make services` enables the plugin (scripts/ensure-services.sh)."""

from __future__ import annotations

import re
import time
import urllib.parse
import urllib.request
from pathlib import Path

import pika
import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from rex import topology
from tests.system.conftest import Exchange

pytestmark = pytest.mark.broker

ROOT = Path(__file__).resolve().parents[2]
PLUGIN = "http://127.0.0.1:15692"
SELECTOR = r'rabbitmq_detailed_queue_messages\{queue=~?"([^"]+)"\}'


def scrape_config() -> tuple[str, dict[str, list[str]]]:
    """The path and parameters of Prometheus's per-queue job."""
    config = yaml.safe_load((ROOT / "config" / "prometheus" / "prometheus.yml").read_text())
    (job,) = (j for j in config["scrape_configs"] if j["job_name"] == "rabbitmq-queues")
    return job["metrics_path"], job["params"]


def alert_queues() -> dict[str, str]:
    """alert name -> the queue selector its expression puts on the metric."""
    rules = yaml.safe_load((ROOT / "config" / "prometheus" / "alerts.yml").read_text())
    found = {}
    for group in rules["groups"]:
        for rule in group["rules"]:
            match = re.search(
                r'rabbitmq_detailed_queue_messages\{queue=~?"([^"]+)"\}', rule["expr"]
            )
            if match:
                found[rule["alert"]] = match.group(1)
    return found


def depths(vhost: str) -> dict[str, float]:
    path, params = scrape_config()
    query = urllib.parse.urlencode({**{k: v[0] for k, v in params.items()}, "vhost": vhost})
    with urllib.request.urlopen(f"{PLUGIN}{path}?{query}", timeout=10) as response:
        text = response.read().decode()
    return {
        s.labels["queue"]: s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if s.name == "rabbitmq_detailed_queue_messages" and s.labels.get("vhost") == vhost
    }


def test_every_queue_an_alert_names_has_its_depth_series(exchange: Exchange) -> None:
    selectors = alert_queues()
    assert set(selectors) == {"RexDeadLettersFilling", "RexQueueBacklog"}
    named = {q for selector in selectors.values() for q in selector.split("|")}
    # The plugin reads the broker's statistics, collected every 5 s by default: a queue
    # declared a moment ago may not show yet.
    deadline = time.monotonic() + 30
    while missing := named - set(depths(exchange.vhost)):
        assert time.monotonic() < deadline, f"no series for {sorted(missing)}"
        time.sleep(1)


def test_the_depth_series_counts_what_is_in_the_queue(exchange: Exchange) -> None:
    connection = pika.BlockingConnection(pika.URLParameters(exchange.url))
    try:
        channel = connection.channel()
        channel.queue_purge(topology.DEAD_LETTERS)
        for n in range(3):
            channel.basic_publish(topology.DEAD, "", f"dead-{n}".encode())
        deadline = time.monotonic() + 30
        while depths(exchange.vhost).get(topology.DEAD_LETTERS) != 3:
            assert time.monotonic() < deadline, depths(exchange.vhost)
            time.sleep(1)
        channel.queue_purge(topology.DEAD_LETTERS)
    finally:
        connection.close()
