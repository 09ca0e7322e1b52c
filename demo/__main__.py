"""python -m demo [--broker URL] — play a scripted trading session (also `rex demo`).

Without --broker: gateway and engine run in this process on the in-memory bus, with the
gateway's SQLite store under REX_DATA_DIR (default data/). With --broker: `rex provision`
and the real services as separate processes through that RabbitMQ, in a vhost of their own
that is removed afterwards.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

from rex.cli_errors import Reaching, guard
from rex.config import ConfigError, Settings

from .play import play
from .venues import AmqpVenue, EmbeddedVenue, Venue


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="rex demo", description=__doc__.split("\n\n")[0])
    parser.add_argument("--broker", metavar="URL", help="play through RabbitMQ at this URL")
    args = parser.parse_args(argv)
    # Broker trouble (down, login refused, ...) is told as every `rex` command tells it.
    return guard("rex demo", Reaching(args.broker, url_from="--broker"), lambda: _run(args))


def _run(args: argparse.Namespace) -> int:
    settings = Settings.from_env()
    try:
        products = settings.products()
        members = settings.members()
    except ConfigError as error:
        print(f"demo: {error}", file=sys.stderr)
        return 2
    venue: Venue
    if args.broker:
        print(f"REX demo through RabbitMQ ({args.broker}), services as separate processes")
        venue = AmqpVenue(args.broker, settings, members)
    else:
        print("REX demo: gateway and engine embedded, in-memory bus, SQLite store")
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        data = Path(tempfile.mkdtemp(prefix="demo-", dir=settings.data_dir))
        venue = EmbeddedVenue(products, members, data)
    try:
        surprises = play(venue, products)
    finally:
        venue.close()
    if surprises:
        print(f"\n{surprises} step(s) did not answer as scripted", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
