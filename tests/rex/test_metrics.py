"""Each service's exporter: its own series only, on the port asked for (or a clear error), a
free port when only its default is taken, and labelled counters at 0 from the start."""

from __future__ import annotations

import argparse
import logging
import os
import socket
import sys
import threading
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import yaml
from prometheus_client import CollectorRegistry
from prometheus_client.metrics import MetricWrapperBase

import engine.__main__ as engine_main
import gateway.__main__ as gateway_main
import settlement_worker.__main__ as settlement_main
from engine.service import EngineService
from gateway.service import GatewayService
from gateway.store import MemorySeen
from rex import metrics
from rex.bus.memory import MemoryBroker, MemoryBus
from rex.vocabulary import END_REASONS, REJECT_REASONS
from settlement_worker.codes import SettlementCode
from settlement_worker.payments import rules as pm
from settlement_worker.payments.payer import Payer
from settlement_worker.requests.desk import RequestDesk
from settlement_worker.store.sqlite import SqliteStore
from tests.embedded import MEMBERS, PRODUCTS

EXPORTERS = {
    "gateway": metrics.GATEWAY_EXPORTER,
    "engine": metrics.ENGINE_EXPORTER,
    "settlement": metrics.SETTLEMENT_EXPORTER,
}


@contextmanager
def taken_port() -> Iterator[int]:
    """A port something else listens on, as the exporter would bind it."""
    with socket.socket() as holder:
        holder.bind(("0.0.0.0", 0))
        holder.listen()
        yield holder.getsockname()[1]


@contextmanager
def serving(exporter: metrics.Exporter, flag: int | None, environ: dict[str, str]) -> Iterator[int]:
    server = metrics.serve(exporter, flag, environ)
    try:
        yield server.server_port
    finally:
        server.shutdown()
        server.server_close()


def scrape(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        text: str = response.read().decode()
    return text


def an_exporter(default_port: int) -> metrics.Exporter:
    return metrics.Exporter("engine", default_port, CollectorRegistry())


# ----------------------------------------------------------------- own series only


@pytest.mark.parametrize("service", sorted(EXPORTERS))
def test_each_service_exports_only_its_own_series(service: str) -> None:
    EngineService(MemoryBus(MemoryBroker()), PRODUCTS)  # every service's series exist
    GatewayService(MemoryBus(MemoryBroker()), PRODUCTS, MEMBERS, MemorySeen())
    with serving(EXPORTERS[service], 0, {}) as port:
        text = scrape(port)
    names = {line.split()[2] for line in text.splitlines() if line.startswith("# TYPE")}
    ours = {name for name in names if name.startswith(f"rex_{service}_")}
    others = {name for name in names if name.startswith("rex_") and name not in ours}
    assert ours, text
    assert others == set()
    assert "process_cpu_seconds_total" in text  # the process's own series stay


# ----------------------------------------------------------------- ports


def test_a_taken_default_port_gives_way_to_a_free_one_and_says_which(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with (
        taken_port() as taken,
        caplog.at_level(logging.INFO, "rex.metrics"),
        serving(an_exporter(taken), None, {}) as port,
    ):
        assert port != taken
        scrape(port)  # it answers there
    assert f"default port {taken} is taken" in caplog.text
    assert f"serving on free port {port} instead" in caplog.text
    assert "--metrics-port" in caplog.text
    assert f"metrics service=engine port={port}" in caplog.text


def test_the_default_port_is_used_when_free() -> None:
    with taken_port() as port:
        pass  # now free again
    with serving(an_exporter(port), None, {}) as bound:
        assert bound == port


def test_port_0_asks_for_any_free_port() -> None:
    with serving(an_exporter(9), 0, {}) as port:
        assert port not in (0, 9)
        scrape(port)


@pytest.mark.parametrize("how", ["flag", "environment"])
def test_a_taken_port_asked_for_stops_with_a_clear_error(how: str) -> None:
    with taken_port() as taken:
        flag, environ = (taken, {}) if how == "flag" else (None, {"REX_METRICS_PORT": str(taken)})
        with pytest.raises(metrics.ExporterError) as raised:
            metrics.serve(an_exporter(9102), flag, environ)
    error = raised.value
    assert error.exit_status == metrics.EXIT_METRICS_PORT_TAKEN == 5
    source = "--metrics-port" if how == "flag" else "REX_METRICS_PORT"
    assert str(error) == (
        f"engine: metrics port {taken} (asked for by {source}) cannot be used: another process"
        " listens there, perhaps another engine; choose a free port with --metrics-port or"
        " REX_METRICS_PORT (0: any free port)"
    )


def test_the_flag_wins_over_the_environment() -> None:
    with taken_port() as taken, serving(an_exporter(9), 0, {"REX_METRICS_PORT": str(taken)}):
        pass  # no error: the flag (0) was used, not the taken port of the environment


@contextmanager
def bound_address(environ: dict[str, str], address: str | None = None) -> Iterator[tuple[str, int]]:
    if address is None:  # as a service is started without --metrics-address
        server = metrics.serve(an_exporter(9), 0, environ)
    else:
        server = metrics.serve(an_exporter(9), 0, environ, address=address)
    try:
        yield server.server_address[0], server.server_port
    finally:
        server.shutdown()
        server.server_close()


def test_metrics_listen_on_loopback_only_by_default(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, "rex.metrics"), bound_address({}) as (host, port):
        assert host == "127.0.0.1"
        scrape(port)
    assert f"metrics service=engine port={port} address=127.0.0.1" in caplog.text


def test_the_environment_opens_the_metrics_address() -> None:
    with bound_address({"REX_METRICS_ADDRESS": "0.0.0.0"}) as (host, port):
        assert host == "0.0.0.0"
        scrape(port)  # loopback is one of every interface


def test_the_metrics_address_flag_wins_over_the_environment() -> None:
    with bound_address({"REX_METRICS_ADDRESS": "0.0.0.0"}, "127.0.0.1") as (host, _port):
        assert host == "127.0.0.1"


def test_a_bad_metrics_address_in_the_environment_is_a_config_error() -> None:
    with pytest.raises(metrics.ExporterError) as raised:
        metrics.serve(an_exporter(9), 0, {"REX_METRICS_ADDRESS": "everywhere"})
    assert raised.value.exit_status == 2
    assert str(raised.value) == (
        "config: REX_METRICS_ADDRESS: must be an IP address of this host to listen on, e.g."
        " 127.0.0.1 (this host only), 0.0.0.0 (every IPv4 interface) or ::1, got"
        " 'everywhere'; fix it, or unset it for the default (127.0.0.1: this host only)"
    )


def test_an_address_not_of_this_host_is_a_config_error_naming_it() -> None:
    with pytest.raises(metrics.ExporterError) as raised:
        metrics.serve(an_exporter(9), 0, {}, address="192.0.2.1")  # TEST-NET-1: nobody's
    assert raised.value.exit_status == 2
    assert str(raised.value) == (
        "engine: metrics address 192.0.2.1 (asked for by --metrics-address) cannot be used:"
        " Cannot assign requested address; give an address of this host with"
        " --metrics-address or REX_METRICS_ADDRESS (127.0.0.1: this host only, 0.0.0.0: every"
        " interface)"
    )


def test_each_service_takes_a_metrics_address_option(capsys: pytest.CaptureFixture[str]) -> None:
    parser = argparse.ArgumentParser()
    metrics.add_options(parser, metrics.GATEWAY_EXPORTER)
    assert parser.parse_args(["--metrics-address", "0.0.0.0"]).metrics_address == "0.0.0.0"
    assert parser.parse_args([]).metrics_address is None
    with pytest.raises(SystemExit):
        parser.parse_args(["--metrics-address", "localhost:9"])
    assert "must be an IP address of this host to listen on" in capsys.readouterr().err


def test_docker_compose_opens_the_metrics_its_prometheus_scrapes_inside_its_network() -> None:
    root = Path(__file__).resolve().parents[2]
    compose = yaml.safe_load((root / "docker-compose.yml").read_text())
    prometheus = yaml.safe_load((root / "config" / "prometheus" / "prometheus.yml").read_text())
    scraped = {
        target.split(":")[0]
        for job in prometheus["scrape_configs"]
        if job["job_name"].startswith("rex-")
        for static in job["static_configs"]
        for target in static["targets"]
    }
    assert scraped == {"gateway", "engine", "engine-standby", "settlement"}
    for name in scraped:
        service = compose["services"][name]
        assert service["environment"]["REX_METRICS_ADDRESS"] == "0.0.0.0", name
        assert "ports" not in service, f"{name}: its /metrics would be published to the host"


@pytest.mark.parametrize("value", ["metrics", "70000", "-1"])
def test_a_bad_metrics_port_in_the_environment_is_a_config_error(value: str) -> None:
    with pytest.raises(metrics.ExporterError) as raised:
        metrics.serve(an_exporter(9), None, {"REX_METRICS_PORT": value})
    assert raised.value.exit_status == 2
    assert str(raised.value) == (
        f"config: REX_METRICS_PORT: must be a port number from 0 to 65535 (0: any free port), "
        f"got {value!r}; fix it, or unset it for the default (the service's own: gateway "
        f"9101, engine 9102, settlement worker 9103)"
    )


@pytest.fixture
def service_logging() -> Iterator[None]:
    """A service's main sets the root logger, the exception hooks and the umask up; put
    them back as pytest had them."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    hooks = sys.excepthook, threading.excepthook, sys.unraisablehook
    umask = os.umask(0o022)
    os.umask(umask)
    try:
        yield
    finally:
        root.handlers[:] = handlers
        root.setLevel(level)
        sys.excepthook, threading.excepthook, sys.unraisablehook = hooks
        logging.captureWarnings(False)
        os.umask(umask)


@pytest.mark.usefixtures("service_logging")
@pytest.mark.parametrize("main", [engine_main.main, gateway_main.main, settlement_main.main])
def test_a_service_given_a_taken_port_exits_5_with_one_line_saying_what_to_do(
    main: Callable[[list[str] | None], int],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.delenv("REX_METRICS_PORT", raising=False)
    monkeypatch.setenv("REX_DATA_DIR", str(tmp_path))
    with taken_port() as taken:
        status = main(["--metrics-port", str(taken)])
    assert status == 5
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1, lines
    assert f"metrics port {taken} (asked for by --metrics-port) cannot be used" in lines[0]
    assert "choose a free port with --metrics-port or REX_METRICS_PORT" in lines[0]


def test_a_port_out_of_range_on_the_command_line_is_a_usage_error(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit) as raised:
        engine_main.main(["--metrics-port", "99999"])
    assert raised.value.code == 2
    assert "must be a port number from 0 to 65535 (0: any free port), got '99999'" in (
        capsys.readouterr().err
    )


# ----------------------------------------------------------------- series at 0 from the start


def samples(metric: MetricWrapperBase) -> dict[tuple[str, ...], float]:
    return {
        tuple(s.labels.values()): s.value
        for family in metric.collect()
        for s in family.samples
        if s.name.endswith("_total")
    }


def test_engine_reject_and_cancel_series_exist_at_0_before_any_order() -> None:
    for metric in (metrics.ENGINE_REJECTS, metrics.ENGINE_CANCELS, metrics.ENGINE_INPUTS):
        metric.clear()
    EngineService(MemoryBus(MemoryBroker()), PRODUCTS)
    symbols = [p.symbol for p in PRODUCTS]
    rejects = samples(metrics.ENGINE_REJECTS)
    assert rejects == {(s, str(r)): 0.0 for s in symbols for r in REJECT_REASONS}
    assert rejects[("PRND-OX", "product_halted")] == 0.0
    cancels = samples(metrics.ENGINE_CANCELS)
    assert cancels == {(s, str(r)): 0.0 for s in symbols for r in END_REASONS}
    assert ("DY-OX", "new_order") in samples(metrics.ENGINE_INPUTS)


def test_gateway_series_exist_at_0_before_any_request() -> None:
    for metric in (metrics.GATEWAY_REQUESTS, metrics.GATEWAY_REJECTS, metrics.GATEWAY_FORWARDED):
        metric.clear()
    GatewayService(MemoryBus(MemoryBroker()), PRODUCTS, MEMBERS, MemorySeen())
    assert set(samples(metrics.GATEWAY_REQUESTS)) == {
        ("new_order",),
        ("cancel",),
        ("replace",),
        ("mass_cancel",),
        ("unknown",),
    }
    assert samples(metrics.GATEWAY_REJECTS)[("rate_limited",)] == 0.0
    assert set(samples(metrics.GATEWAY_FORWARDED)) == {("PRND-OX",), ("DY-OX",)}


def test_payment_alert_series_exist_at_0_before_the_first_alert(tmp_path: Path) -> None:
    metrics.PAYMENT_ALERTS.clear()
    store = SqliteStore(tmp_path / "settlement.sqlite3")
    try:
        Payer(store, MemoryBus(MemoryBroker()), {})
    finally:
        store.close()
    assert samples(metrics.PAYMENT_ALERTS) == {(str(kind),): 0.0 for kind in pm.AlertKind}
    with serving(metrics.SETTLEMENT_EXPORTER, 0, {}) as port:
        text = scrape(port)
    assert 'rex_settlement_payment_alerts_total{kind="double_payment"} 0.0' in text.splitlines()


def test_settlement_request_series_exist_at_0_before_any_request(tmp_path: Path) -> None:
    metrics.SETTLEMENT_REQUESTS.clear()
    metrics.SETTLEMENT_REQUEST_REJECTS.clear()
    store = SqliteStore(tmp_path / "settlement.sqlite3")
    try:
        RequestDesk(store, {}, {}, [])
    finally:
        store.close()
    assert samples(metrics.SETTLEMENT_REQUESTS) == {
        ("unknown", "rejected"): 0.0,
        ("unknown", "duplicate"): 0.0,
        ("unknown", "failed"): 0.0,
        ("none", "dead_lettered"): 0.0,
    }
    assert samples(metrics.SETTLEMENT_REQUEST_REJECTS) == {
        (str(reason),): 0.0 for reason in SettlementCode
    }


# ----------------------------------------------------------------- the bus's series


def test_a_services_bus_series_carry_its_name_and_read_the_bus_at_scrape_time() -> None:
    from prometheus_client import generate_latest

    from rex.bus import Envelope

    exporter = metrics.Exporter("gateway", 0, CollectorRegistry())
    broker = MemoryBroker()
    bus = MemoryBus(broker)
    metrics.export_bus(exporter, bus)
    before = generate_latest(exporter.registry).decode()
    for name in ("published", "nacked", "confirm_timeouts", "connections_lost"):
        assert f"rex_gateway_bus_{name}_total 0.0" in before
    assert "rex_gateway_bus_unconfirmed 0.0" in before
    assert "rex_gateway_bus_oldest_unconfirmed_seconds 0.0" in before
    bus.start(metrics_topology(), lambda: None)
    broker.run_until_idle()
    bus.publish(Envelope("", "q", b"x", "t", "m-1", 0))
    bus.stats.confirm_timeouts += 2  # as the AMQP bus counts them (tests/cluster)
    after = generate_latest(exporter.registry).decode()
    assert "rex_gateway_bus_published_total 1.0" in after
    assert "rex_gateway_bus_confirm_timeouts_total 2.0" in after


def metrics_topology() -> object:
    from rex.topology import Queue, Topology

    return Topology(queues=(Queue("q"),))
