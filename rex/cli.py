"""The ``rex`` command line.

Commands are registered in :func:`build_parser`. Each leaf parser sets ``func`` (with
``set_defaults``) to a handler taking the parsed arguments and returning the exit status,
so a new command is one ``add_parser`` call plus one handler.

Exit status: 0 success, 2 usage or configuration error.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from rex.config import ConfigError, Settings, TradingStatus

Handler = Callable[[argparse.Namespace], int]

EXIT_OK = 0
EXIT_USAGE = 2
EXIT_CONFIG_ERROR = 2


def _cmd_config_check(args: argparse.Namespace) -> int:
    """Load products.toml and members.toml and summarise them."""
    settings = Settings.from_env()
    if args.config_dir is not None:
        settings = dataclasses.replace(settings, config_dir=args.config_dir)
    try:
        products = settings.products()
        members = settings.members()
    except ConfigError as exc:
        print(f"rex: {exc}", file=sys.stderr)
        return EXIT_CONFIG_ERROR

    width = max((len(symbol) for symbol in products), default=0)
    for p in products.values():
        status = "" if p.status is TradingStatus.OPEN else f"  [{p.status}]"
        print(
            f"{p.symbol:<{width}}  {p.currency}  tick {p.tick}  lot {p.lot} {p.quantity_unit}"
            f"  band {p.band_low}..{p.band_high} {p.price_unit}{status}"
        )
    enabled = sum(1 for m in members.values() if m.enabled)
    print(f"{len(products)} products, {len(members)} members ({enabled} enabled)")
    return EXIT_OK


def _help(parser: argparse.ArgumentParser) -> Handler:
    """Handler for a command group given without a subcommand: print its help."""

    def show(_args: argparse.Namespace) -> int:
        parser.print_help(sys.stderr)
        return EXIT_USAGE

    return show


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="rex", description="REX rare-earth exchange: operator commands."
    )
    parser.set_defaults(func=_help(parser))
    commands = parser.add_subparsers(title="commands", metavar="COMMAND")

    # rex config ...
    config = commands.add_parser("config", help="inspect exchange configuration")
    config.set_defaults(func=_help(config))
    config_commands = config.add_subparsers(title="config commands", metavar="ACTION")
    check = config_commands.add_parser(
        "check", help="load and validate products.toml and members.toml"
    )
    check.add_argument(
        "--config-dir",
        type=Path,
        default=None,
        metavar="DIR",
        help="configuration directory (default: $REX_CONFIG_DIR or 'config')",
    )
    check.set_defaults(func=_cmd_config_check)

    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``rex`` command line; returns the process exit status."""
    args = build_parser().parse_args(argv)
    handler: Handler = args.func
    return handler(args)


if __name__ == "__main__":
    raise SystemExit(main())
