"""The ``rex`` command line: the one top layer, which assembles every command.

Each service contributes its own commands (its ``commands.py``: a tuple of
:class:`rex.commands.Command`), the member and operator commands are here (cli/members.py,
cli/limits.py, cli/my_bills.py, cli/operators.py), and one root parser lists them by group
of the people who use them (``rex --help``). A command runs in this process or as a module's
own command line (``rex reconcile --help`` is the module's help).

Exit status: one per cause, the table of :class:`rex.cli_errors.ExitStatus`
(docs/members/cli.md, "Exit status"). ``provision`` exits 1 when it left a member's user
alone because it belongs to another deployment (the others are provisioned).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence

import demo.commands
import engine.commands
import gateway.commands
import loadtest.commands
import settlement_worker.commands
from cli import limits, market_status, members, my_bills, operators
from rex.cli_errors import ExitStatus
from rex.commands import Command, Group
from rex.config import ConfigError
from rex.fields import did_you_mean
from rex.operators import Action

Handler = Callable[[argparse.Namespace], int]

_M, _O = Group.MEMBER, Group.OPERATOR

COMMANDS: tuple[Command, ...] = (
    Command("order", _M, "place an order and print its first answer", members.configure_order),
    Command("cancel", _M, "cancel an order by its client order id", members.configure_cancel),
    Command("replace", _M, "change an order's price and/or total quantity",
            members.configure_replace),
    Command("mass-cancel", _M, "cancel all your open orders in a product",
            members.configure_mass_cancel),
    Command("executions", _M, "print your execution reports not read before (or again: "
            "--since)", members.configure_executions),
    Command("events", _M, "print your settlement events and answers not read before (or "
            "again: --since)", members.configure_events),
    Command("book", _M, "print a product's order book (top 10 levels)", members.configure_book),
    Command("trades", _M, "print a product's public trade tape", members.configure_trades),
    Command("limits", _M, "your receipt limits and payment method: show, set, set-method",
            limits.configure),
    Command("my-bills", _M, "your bills over AMQP: list, endorse, discount", my_bills.configure),
    Command("config", _O, "check the exchange's configuration files", operators.configure_config),
    Command("provision", _O, "create the members' RabbitMQ users and permissions, declare "
            "the topology", operators.configure_provision),
    Command("halt", _O, "halt trading in a product (cancels still work)",
            market_status.configure_status(Action.HALT)),
    Command("resume", _O, "open a product for trading again",
            market_status.configure_status(Action.RESUME)),
    Command("close", _O, "close a product", market_status.configure_status(Action.CLOSE)),
    Command("band", _O, "set a product's price band (orders outside it are rejected)",
            market_status.configure_band),
    *gateway.commands.COMMANDS,
    *engine.commands.COMMANDS,
    *demo.commands.COMMANDS,
    *loadtest.commands.COMMANDS,
    *settlement_worker.commands.COMMANDS,
)  # fmt: skip
BY_NAME: dict[str, Command] = {command.name: command for command in COMMANDS}


def _help(parser: argparse.ArgumentParser) -> Handler:
    """Handler for a command group given without a subcommand: print its help."""

    def show(_args: argparse.Namespace) -> int:
        parser.print_help(sys.stderr)
        return ExitStatus.USAGE

    return show


def command_list() -> str:
    """Every command, by group, as ``rex --help`` ends."""
    width = max(len(command.name) for command in COMMANDS)
    lines: list[str] = []
    for group in Group:
        lines += ["", f"{group}:"]
        lines += [
            f"  {command.name:<{width}}  {command.summary}"
            for command in COMMANDS
            if command.group is group
        ]
    lines += ["", "`rex COMMAND --help` describes a command; exit status: docs/members/cli.md."]
    return "\n".join(lines[1:])


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="rex",
        usage="rex COMMAND [ARGUMENTS]",
        description="REX rare-earth exchange.",
        epilog=command_list(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.set_defaults(func=_help(parser))
    # The listing is the epilog, by group; argparse's own would be one flat list.
    commands = parser.add_subparsers(prog="rex", metavar="COMMAND", help=argparse.SUPPRESS)
    for command in COMMANDS:
        if command.configure is not None:
            sub = commands.add_parser(command.name, description=command.summary)
            command.configure(sub)
    return parser


def _unknown_command(name: str) -> int:
    close = did_you_mean(name, BY_NAME)
    hint = f" ({close})" if close else ""
    print(f"rex: unknown command {name!r}{hint}\n\n{command_list()}", file=sys.stderr)
    return ExitStatus.USAGE


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``rex`` command line; returns the process exit status."""
    arguments = list(sys.argv[1:] if argv is None else argv)
    if arguments and not arguments[0].startswith("-"):
        command = BY_NAME.get(arguments[0])
        if command is None:
            return _unknown_command(arguments[0])
        if command.main is not None:
            return command.main(arguments[1:])
    try:
        args = build_parser().parse_args(arguments)
    except SystemExit as stop:  # argparse's --help (0) and usage errors (2)
        return ExitStatus.USAGE if stop.code else ExitStatus.OK
    handler: Handler = args.func
    try:
        return handler(args)
    except ConfigError as exc:  # e.g. a bad REX_DEPLOYMENT, found by ProcessConfig.from_env()
        print(f"rex: {exc}", file=sys.stderr)
        return ExitStatus.USAGE


if __name__ == "__main__":
    raise SystemExit(main())
