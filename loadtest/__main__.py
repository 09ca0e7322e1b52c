"""rex loadtest — size the exchange: N simulated members over AMQP against a real gateway and
engine, at a fixed rate or flat out.

    rex loadtest --members 10 --rate 2500 --duration 30 --json load.json [--png load.png]

It brings up its own throw-away exchange on the broker at --broker (a fresh vhost and
deployment name of its own, whatever vhost the URL names; the members, the gateway and one
engine as processes) and removes exactly that afterwards, also on an error, Ctrl-C or
SIGTERM, so any number of load tests and demos can share a broker with real deployments
(loadtest/throwaway.py). `--cleanup` only removes the throw-away exchanges of runs on this
host that were killed outright. Latency is measured from a request's publish to its first
execution report, at the member.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import sys
import tempfile
from pathlib import Path
from typing import Any

from rex.config import DEFAULT_BROKER_URL, ConfigError, Product, Settings
from rex.provision import BrokerAdmin, ProvisionError

from .cpu import CpuMeter, broker_pid
from .generator import Figures, LoadGenerator
from .report import histogram_png, progress_line, summarise, table
from .stack import EXIT_TERMINATED, LocalStack, interrupts_raise
from .stages import stage_latencies
from .throwaway import sweep

#: Exit status after Ctrl-C (128 + SIGINT, as a shell reports it).
EXIT_INTERRUPTED = 130

PASSWORD = "load-test"


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


def metrics_ports(first: int) -> dict[str, int]:
    """The gateway's and the engine's metrics ports: ``first`` and the next, or (0) two
    that are free now, so load tests running at once never share one."""
    if first:
        return {"gateway": first, "engine": first + 1}
    with socket.socket() as gateway, socket.socket() as engine:
        gateway.bind(("", 0))
        engine.bind(("", 0))
        return {"gateway": gateway.getsockname()[1], "engine": engine.getsockname()[1]}


def parse(argv: list[str] | None) -> argparse.Namespace:
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
    parser.add_argument("--png", type=Path, help="write a latency histogram here (matplotlib)")
    parser.add_argument(
        "--broker",
        default=os.environ.get("REX_BROKER_URL", DEFAULT_BROKER_URL),
        help="the broker's AMQP URL; its vhost is not used (the run makes a throw-away one)",
    )
    parser.add_argument(
        "--metrics-port",
        type=int,
        default=0,
        help="the gateway's metrics port (the engine's is the next one); 0: two free ports",
    )
    parser.add_argument(
        "--cleanup",
        action="store_true",
        help="only remove the throw-away exchanges left by killed runs on this host",
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    try:
        settings = Settings.from_env()
        if args.cleanup:
            removed = sweep(BrokerAdmin(settings.broker_admin_url))
            for line in removed:
                print(f"removed {line}")
            print(f"{len(removed)} left-overs of ended runs removed")
            return 0
        products = settings.products()
        chosen = [products[s] for s in args.products.split(",") if s in products]
        if not chosen:
            print("loadtest: no known product given", file=sys.stderr)
            return 2
        with interrupts_raise():
            return run(args, settings, chosen)
    except (ConfigError, ProvisionError) as error:
        print(f"loadtest: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("loadtest: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except SystemExit as exit_:
        if exit_.code == EXIT_TERMINATED:
            print("loadtest: terminated", file=sys.stderr)
        raise


def run(args: argparse.Namespace, settings: Settings, chosen: list[Product]) -> int:
    config = Path(tempfile.mkdtemp(prefix="rex-load-config-"))
    try:
        write_config(config, settings.config_dir, args.members, [p.symbol for p in chosen])
        print(f"bringing up an exchange ({args.members} members) ...", file=sys.stderr)
        ports = metrics_ports(args.metrics_port)
        stack = LocalStack(
            args.broker,
            settings.broker_admin_url,
            config,
            gateway_args=("--metrics-port", str(ports["gateway"])),
            engine_args=("--metrics-port", str(ports["engine"])),
        )
        try:
            figures, cpu, stages = measure(args, stack, chosen, ports)
        except RuntimeError as error:  # the generator lost a connection or could not open one
            print(f"\nloadtest: {error}; services' log: {stack.log_path}", file=sys.stderr)
            return 1
        finally:
            stack.close()
    finally:
        shutil.rmtree(config, ignore_errors=True)
    result: dict[str, Any] = summarise(figures, args)
    result["stages_ms"] = stages
    result["cpu"] = cpu
    for line in table(result):
        print(line)
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")
    if args.png:
        print(histogram_png(figures, args.png), file=sys.stderr)
    if stack.left_behind:
        return 1
    return 0 if result["answered"] == result["sent"] else 1


def measure(
    args: argparse.Namespace, stack: LocalStack, chosen: list[Product], ports: dict[str, int]
) -> tuple[Figures, dict[str, Any], dict[str, dict[str, float]]]:
    """Warm up, then the measured run: (figures, CPU use, stage latencies)."""
    members = {m: PASSWORD for m in stack.members}
    warm = LoadGenerator(
        stack.url, members, chosen, rate=200, duration=2, window=200, deployment=stack.deployment
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
    return figures, cpu, stage_latencies(ports)


if __name__ == "__main__":
    raise SystemExit(main())
