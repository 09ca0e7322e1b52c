"""The Prometheus alert rules and the Grafana dashboard name only metrics REX exports, with
labels those metrics have: a renamed metric must not leave an alert that can never fire."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import yaml
from prometheus_client import REGISTRY
from prometheus_client.metrics import MetricWrapperBase

import rex.metrics

ROOT = Path(__file__).resolve().parents[2]
PROMETHEUS = ROOT / "config" / "prometheus"
DASHBOARDS = ROOT / "config" / "grafana" / "dashboards"
SUFFIXES = ("", "_total", "_bucket", "_count", "_sum", "_created")
# A PromQL selector: metric name, optionally {label matchers}.
SELECTOR = re.compile(r"\b(rex_[a-z0-9_]+)(\{[^}]*\})?")
MATCHER = re.compile(r"([a-z_]+)\s*(?:=~|!~|!=|=)")


def exported() -> dict[str, set[str]]:
    """Every series name REX exports, with the label names it carries."""
    names: dict[str, set[str]] = {}
    for value in vars(rex.metrics).values():
        if isinstance(value, MetricWrapperBase):
            base = value._name  # prometheus_client keeps the name and labels here
            labels = set(value._labelnames)
            if value._type == "histogram":
                labels.add("le")
            for suffix in SUFFIXES:
                names[base + suffix] = labels
    for service in rex.metrics.BUS_SERVICES:  # read from each service's bus at scrape time
        names.update({name: set() for name in rex.metrics.bus_series(service)})
    assert names, "rex.metrics exports nothing?"
    assert REGISTRY is not None
    return names


def check_expression(expr: str, where: str, metrics: dict[str, set[str]]) -> list[str]:
    problems = []
    for name, matchers in SELECTOR.findall(expr):
        if name not in metrics:
            problems.append(f"{where}: {name} is not exported by rex.metrics")
            continue
        for label in MATCHER.findall(matchers):
            if label not in metrics[name]:
                problems.append(f"{where}: {name} has no label {label!r}")
    return problems


def alert_rules() -> list[dict[str, Any]]:
    config = yaml.safe_load((PROMETHEUS / "prometheus.yml").read_text())
    rules: list[dict[str, Any]] = []
    for name in config["rule_files"]:
        document = yaml.safe_load((PROMETHEUS / name).read_text())
        for group in document["groups"]:
            rules.extend(group["rules"])
    return rules


def test_every_alert_is_complete_and_names_real_metrics() -> None:
    metrics = exported()
    rules = alert_rules()
    assert len(rules) >= 5
    problems = []
    for rule in rules:
        name = rule.get("alert", "?")
        if not {"alert", "expr", "labels", "annotations"} <= rule.keys():
            problems.append(f"{name}: needs alert, expr, labels and annotations")
            continue
        if rule["labels"].get("severity") not in {"page", "ticket"}:
            problems.append(f"{name}: severity is page or ticket")
        if not rule["annotations"].get("summary"):
            problems.append(f"{name}: no summary")
        problems.extend(check_expression(rule["expr"], name, metrics))
    assert not problems, "\n".join(problems)


def test_every_dashboard_panel_names_real_metrics() -> None:
    metrics = exported()
    problems = []
    panels = 0
    for path in sorted(DASHBOARDS.glob("*.json")):
        for panel in json.loads(path.read_text())["panels"]:
            for target in panel.get("targets", []):
                panels += 1
                where = f"{path.name}: {panel['title']}"
                problems.extend(check_expression(target["expr"], where, metrics))
    assert panels >= 10
    assert not problems, "\n".join(problems)


def test_the_check_catches_a_metric_that_does_not_exist() -> None:
    metrics = exported()
    assert check_expression("rate(rex_engine_trades_total[1m])", "ok", metrics) == []
    assert check_expression("rex_engine_trade_total", "x", metrics)
    assert check_expression('rex_engine_trades_total{side="buy"}', "x", metrics)
