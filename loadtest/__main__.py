"""rex loadtest — size the exchange: N simulated members over AMQP against a real gateway and
engine, at a fixed rate or flat out.

    rex loadtest --members 10 --rate 2500 --duration 30 --json load.json [--png load.png]

By default it brings up its own exchange on the broker (a fresh vhost, the members, the
gateway and one engine as processes) and removes it afterwards. Latency is measured from a
request's publish to its first execution report, at the member.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

from rex.cli_errors import Reaching, guard
from rex.config import DEFAULT_BROKER_URL, Settings

from .cpu import CpuMeter, broker_pid
from .generator import LoadGenerator
from .report import histogram_png, progress_line, summarise, table
from .stack import LocalStack
from .stages import stage_latencies

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
    parser.add_argument("--png", type=Path, help="write a latency histogram here (matplotlib)")
    parser.add_argument("--broker", default=os.environ.get("REX_BROKER_URL", DEFAULT_BROKER_URL))
    parser.add_argument(
        "--metrics-port",
        type=int,
        default=19101,
        help="the gateway's metrics port (the engine's is the next one)",
    )
    args = parser.parse_args(argv)
    # Broker trouble (down, login refused, ...) is told as every `rex` command tells it.
    return guard(
        "rex loadtest",
        Reaching(args.broker, url_from="--broker or $REX_BROKER_URL"),
        lambda: _run(args),
    )


def _run(args: argparse.Namespace) -> int:
    settings = Settings.from_env()
    products = settings.products()
    chosen = [products[s] for s in args.products.split(",") if s in products]
    if not chosen:
        print("loadtest: no known product given", file=sys.stderr)
        return 2
    config = Path(tempfile.mkdtemp(prefix="rex-load-config-"))
    write_config(config, settings.config_dir, args.members, [p.symbol for p in chosen])
    print(f"bringing up an exchange ({args.members} members) ...", file=sys.stderr)
    ports = {"gateway": args.metrics_port, "engine": args.metrics_port + 1}
    stack = LocalStack(
        args.broker,
        settings.broker_admin_url,
        config,
        gateway_args=("--metrics-port", str(ports["gateway"])),
        engine_args=("--metrics-port", str(ports["engine"])),
    )
    try:
        members = {m: PASSWORD for m in stack.members}
        warm = LoadGenerator(stack.url, members, chosen, rate=200, duration=2, window=200)
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
        stages = stage_latencies(ports)
    finally:
        stack.close()
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
    return 0 if result["answered"] == result["sent"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
