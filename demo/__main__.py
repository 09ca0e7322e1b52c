"""python -m demo [--broker URL] — play a scripted trading session (also `rex demo`).

Without --broker: gateway and engine run in this process on the in-memory bus, with the
gateway's SQLite store in a directory of its own under REX_DATA_DIR (default data/), removed
when the demo ends, however it ends. With --broker: `rex provision` and the real services as
separate processes through that RabbitMQ, in a throw-away vhost of their own
(``rex-tmp-<token>``, members logging in as ``tmp-<token>.<member>``; the vhost the URL
names is not used), removed afterwards -- also on an error, Ctrl-C or SIGTERM -- so the demo
never touches a deployment on the same broker.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from loadtest.stack import removing_on_exit
from rex.cli_errors import Reaching, guard
from rex.config import ConfigError, Member, ProcessConfig, Product
from rex.environment import AMQP_URL
from rex.private_files import private_directory
from rex.provision import redact_url, vhost_of

from .play import play
from .venues import AmqpVenue, EmbeddedVenue, ServicesNotUp, Venue


@contextmanager
def _venue(
    broker: str | None,
    process_config: ProcessConfig,
    products: dict[str, Product],
    members: dict[str, Member],
) -> Iterator[Venue]:
    """The venue, closed afterwards; the embedded one's data directory removed with it."""
    if broker:
        print(
            f"REX demo through RabbitMQ ({redact_url(broker)}), services as separate "
            f"processes, in a throw-away vhost removed afterwards (the URL's vhost "
            f"{vhost_of(broker)!r} is not used)"
        )
        venue: Venue = AmqpVenue(broker, process_config, members)
        try:
            yield venue
        finally:
            venue.close()
        return
    print("REX demo: gateway and engine embedded, in-memory bus, SQLite store")
    private_directory(process_config.data_dir)
    with tempfile.TemporaryDirectory(prefix="demo-", dir=process_config.data_dir) as data:
        venue = EmbeddedVenue(products, members, Path(data))
        try:
            yield venue
        finally:
            venue.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="rex demo", description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--broker",
        type=AMQP_URL.argument,
        metavar="URL",
        help="play through RabbitMQ at this URL, in a throw-away vhost (the URL's vhost is "
        "not used) that is removed afterwards",
    )
    args = parser.parse_args(argv)
    # Broker trouble (down, login refused, ...) is told as every `rex` command tells it.
    return guard("rex demo", Reaching(args.broker, url_from="--broker"), lambda: _run(args))


def _run(args: argparse.Namespace) -> int:
    try:
        process_config = ProcessConfig.from_env()
        products = process_config.products()
        members = process_config.members()
    except ConfigError as error:
        print(f"demo: {error}", file=sys.stderr)
        return 2

    def session() -> int:
        try:
            with _venue(args.broker, process_config, products, members) as venue:
                surprises = play(venue, products)
        except ServicesNotUp as error:
            print(f"demo: {error}", file=sys.stderr)
            return 1
        if surprises:
            print(f"\n{surprises} step(s) did not answer as scripted", file=sys.stderr)
            return 1
        return 0

    return removing_on_exit("demo", session)


if __name__ == "__main__":
    raise SystemExit(main())
