"""rex loadtest — size the exchange: N simulated members over AMQP against a real gateway and
engine, at a fixed rate or flat out.

    rex loadtest --members 10 --rate 2500 --duration 30 --json load.json [--png load.png]

It brings up its own throw-away exchange on the broker at --broker (a fresh vhost and
deployment name of its own, whatever vhost the URL names; the members, the gateway and one
engine as processes, their metrics on free ports) and removes exactly that afterwards, also
on an error, Ctrl-C or SIGTERM, so any number of load tests and demos can share a broker with
real deployments (loadtest/throwaway.py). `--cleanup` only removes the throw-away exchanges
of runs on this host that were killed outright. Latency is measured from a request's publish
to its first execution report, at the member. `--png` draws the run: its parameters,
throughput and latency over time, the histogram.

Exit status 0: every request answered; 1: some were not, or what the run made could not all
be removed; 2: usage; 3: the run stopped -- a service died (which one, its exit status and
the services' last log lines are printed, and their log is kept) or the load generator
failed; 130 after Ctrl-C, 143 after SIGTERM (what the run made is removed first).
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import shutil
import signal
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from rex.cli_errors import Reaching, guard
from rex.config import ConfigError, ProcessConfig, Product
from rex.environment import AMQP_URL, PORT
from rex.provision import BrokerAdmin

from .cpu import CpuMeter, broker_pid
from .generator import Figures, LoadGenerator
from .plot import write_png
from .ports import free_ports
from .report import per_second, progress_line, summarise, table
from .stack import SERVICES, LocalStack, removing_on_exit
from .stages import stage_latencies
from .throwaway import sweep

PASSWORD = "load-test"
EXIT_UNANSWERED = 1
EXIT_STOPPED = 3
LOG_LINES = 40


def write_config(directory: Path, source: Path, members: int, products: list[str]) -> None:
    text = (source / "products.toml").read_text()
    (directory / "products.toml").write_text(text)
    lines = []
    for i in range(members):
        lines.append(
            f'[[members]]\nid = "load-{i:03d}"\nname = "Load member {i}"\n'
            f'password = "{PASSWORD}"\nrate_limit = 1000000\nmax_open_orders = 1000000\n'
        )
    (directory / "members.toml").write_text("\n".join(lines))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="rex loadtest", description=__doc__.split("\n\n")[0])
    parser.add_argument("--members", type=int, default=10)
    parser.add_argument("--rate", type=float, default=0, help="orders/s in total; 0 = flat out")
    parser.add_argument("--duration", type=float, default=30, help="seconds of sending")
    parser.add_argument(
        "--window", type=int, default=2000, help="flat out: most requests unanswered at once"
    )
    parser.add_argument(
        "--products", default="PRND-OX,ND-OX", help="comma-separated products to trade"
    )
    parser.add_argument("--json", type=Path, help="write the figures here")
    parser.add_argument(
        "--png", type=Path, help="draw the run here: throughput, latency over time, histogram"
    )
    parser.add_argument(
        "--broker",
        type=AMQP_URL.argument,
        help="the broker's AMQP URL (default $REX_BROKER_URL); its vhost is not used: the run "
        "makes a throw-away one",
    )
    parser.add_argument(
        "--metrics-port",
        type=PORT.argument,
        help="the gateway's metrics port, the engine's the next one (default: free ports)",
    )
    parser.add_argument(
        "--cleanup",
        action="store_true",
        help="only remove the throw-away exchanges left by killed runs on this host",
    )
    args = parser.parse_args(argv)
    if args.metrics_port is not None and not 0 < args.metrics_port < 65535:
        parser.error("--metrics-port: 1 to 65534 (the engine takes the next port)")
    # Broker trouble (down, login refused, ...) is told as every `rex` command tells it.
    return guard(
        "rex loadtest",
        Reaching(args.broker, url_from="--broker or $REX_BROKER_URL"),
        lambda: _run(args),
    )


def _run(args: argparse.Namespace) -> int:
    try:
        process_config = ProcessConfig.from_env()
        if args.cleanup:
            removed = sweep(BrokerAdmin(process_config.broker_admin_url))
            for line in removed:
                print(f"removed {line}")
            print(f"{len(removed)} left-overs of ended runs removed")
            return 0
        products = process_config.products()
    except ConfigError as error:
        print(f"loadtest: {error}", file=sys.stderr)
        return 2
    chosen = [products[s] for s in args.products.split(",") if s in products]
    if not chosen:
        print("loadtest: no known product given", file=sys.stderr)
        return 2
    return removing_on_exit("loadtest", lambda: _load(args, process_config, chosen))


def _load(args: argparse.Namespace, process_config: ProcessConfig, chosen: list[Product]) -> int:
    broker_url: str = args.broker or process_config.broker_url
    gateway_port, engine_port = (
        free_ports(2) if args.metrics_port is None else (args.metrics_port, args.metrics_port + 1)
    )
    config = Path(tempfile.mkdtemp(prefix="rex-load-config-"))
    try:
        write_config(config, process_config.config_dir, args.members, [p.symbol for p in chosen])
        print(f"bringing up an exchange ({args.members} members) ...", file=sys.stderr)
        stack = LocalStack(
            broker_url,
            process_config.broker_admin_url,
            config,
            gateway_args=("--metrics-port", str(gateway_port)),
            engine_args=("--metrics-port", str(engine_port)),
        )
        try:
            started = datetime.now(UTC)
            try:
                figures, cpu = measure(args, stack, chosen)
            except RuntimeError as error:
                return stopped(stack, str(error))
            stages = stage_latencies({"gateway": gateway_port, "engine": engine_port})
        finally:
            stack.close()
    finally:
        shutil.rmtree(config, ignore_errors=True)
    result: dict[str, Any] = summarise(figures, args)
    result["products"] = [p.symbol for p in chosen]
    result["started"] = started.strftime("%Y-%m-%d %H:%M UTC")
    result["stages_ms"] = stages
    result["cpu"] = cpu
    result["per_second"] = per_second(figures)
    for line in table(result):
        print(line)
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")
    if args.png:
        write_png(figures, result, args.png)
        print(f"the run is drawn in {args.png}", file=sys.stderr)
    if stack.left_behind:
        return EXIT_UNANSWERED
    return 0 if result["answered"] == result["sent"] else EXIT_UNANSWERED


def measure(
    args: argparse.Namespace, stack: LocalStack, chosen: list[Product]
) -> tuple[Figures, dict[str, Any]]:
    """Warm up, then run the load; the figures and the CPU each process used. Raises
    RuntimeError if the run stopped (a service died, a member's connection failed)."""
    members = {m: PASSWORD for m in stack.members}
    watch = functools.partial(dead_services, stack)
    warm = LoadGenerator(
        stack.url,
        members,
        chosen,
        rate=200,
        duration=2,
        window=200,
        watch=watch,
        deployment=stack.deployment,
    )
    warm.run(drain=20)  # the services are up once these are answered
    generator = LoadGenerator(
        stack.url,
        members,
        chosen,
        rate=args.rate,
        duration=args.duration,
        window=args.window,
        settlement_url=stack.url,
        on_progress=lambda g, elapsed: print(
            progress_line(g, elapsed), end="", file=sys.stderr, flush=True
        ),
        watch=watch,
        deployment=stack.deployment,
    )
    watched = {"gateway": stack.pids()[0], "engine": stack.pids()[1], "loadtest": os.getpid()}
    broker = broker_pid()
    if broker is not None:
        watched["broker"] = broker
    meter = CpuMeter(watched)
    meter.start()
    figures = generator.run()
    cpu = meter.stop(figures.answered)
    print(file=sys.stderr)
    return figures, cpu


def dead_services(stack: LocalStack) -> str | None:
    exited = stack.exited()
    if not exited:
        return None
    return ", ".join(
        f"the {name} was killed by {signal.Signals(-status).name}"
        if status < 0
        else f"the {name} exited with status {status}"
        for name, status in exited.items()
    )


def stopped(stack: LocalStack, why: str) -> int:
    """Say why the run stopped, show the last log lines of the services that died (of both
    if none did) and keep their log."""
    handle, name = tempfile.mkstemp(prefix="rex-loadtest-services-", suffix=".log")
    os.close(handle)
    kept = Path(name)
    shutil.copyfile(stack.log_path, kept)
    print(file=sys.stderr)
    print(f"loadtest: the run stopped: {why}", file=sys.stderr)
    for service in stack.exited() or SERVICES:
        print(f"--- the {service}'s last {LOG_LINES} log lines:", file=sys.stderr)
        for line in stack.log_tail(service, LOG_LINES):
            print(f"    {line}", file=sys.stderr)
    print(f"--- the services' whole log is kept in {kept}", file=sys.stderr)
    return EXIT_STOPPED


if __name__ == "__main__":
    raise SystemExit(main())
