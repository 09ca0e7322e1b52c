"""python -m demo [--broker URL] — play a scripted trading session (also `rex demo`).

Without --broker: gateway and engine run in this process on the in-memory bus, with the
gateway's SQLite store under REX_DATA_DIR (default data/). With --broker: `rex provision`
and the real services as separate processes through that RabbitMQ, in a throw-away vhost
of their own (``rex-tmp-<token>``, members logging in as ``tmp-<token>.<member>``; the vhost
the URL names is not used), removed afterwards -- also on an error, Ctrl-C or SIGTERM -- so
the demo never touches a deployment on the same broker.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import pika.exceptions

from loadtest.stack import EXIT_TERMINATED, interrupts_raise
from rex.config import ConfigError, Member, Product, Settings
from rex.provision import ProvisionError, redact_url, vhost_of

from .play import play
from .venues import AmqpVenue, EmbeddedVenue, Venue

#: Exit status after Ctrl-C (128 + SIGINT, as a shell reports it).
EXIT_INTERRUPTED = 130


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="rex demo", description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--broker",
        metavar="URL",
        help="play through RabbitMQ at this URL, in a throw-away vhost (the URL's vhost is "
        "not used) that is removed afterwards",
    )
    args = parser.parse_args(argv)
    try:
        settings = Settings.from_env()
        products = settings.products()
        members = settings.members()
    except ConfigError as error:
        print(f"demo: {error}", file=sys.stderr)
        return 2
    try:
        with interrupts_raise():
            venue = _venue(args.broker, settings, products, members)
            try:
                surprises = play(venue, products)
            finally:
                venue.close()
    except (ConfigError, ProvisionError) as error:
        print(f"demo: {error}", file=sys.stderr)
        return 2
    except RuntimeError as error:  # the services did not come up
        print(f"demo: {error}", file=sys.stderr)
        return 1
    except pika.exceptions.AMQPError as error:
        print(f"demo: lost the broker ({error!r}); run it again", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("demo: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except SystemExit as exit_:
        if exit_.code == EXIT_TERMINATED:
            print("demo: terminated", file=sys.stderr)
        raise
    if surprises:
        print(f"\n{surprises} step(s) did not answer as scripted", file=sys.stderr)
        return 1
    return 0


def _venue(
    broker: str | None,
    settings: Settings,
    products: dict[str, Product],
    members: dict[str, Member],
) -> Venue:
    if not broker:
        print("REX demo: gateway and engine embedded, in-memory bus, SQLite store")
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        data = Path(tempfile.mkdtemp(prefix="demo-", dir=settings.data_dir))
        return EmbeddedVenue(products, members, data)
    print(
        f"REX demo through RabbitMQ ({redact_url(broker)}), services as separate processes, "
        f"in a throw-away vhost removed afterwards (the URL's vhost {vhost_of(broker)!r} is "
        "not used)"
    )
    return AmqpVenue(broker, settings, members)


if __name__ == "__main__":
    raise SystemExit(main())
