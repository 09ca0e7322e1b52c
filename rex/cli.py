"""The ``rex`` command line.

Every command is one :class:`Command` in :data:`COMMANDS`, in the group of the people who
use it (members, operators, settlement staff), which ``rex --help`` lists. A command runs
either in this process (``configure`` gives its parser the arguments and a ``func``
handler returning the exit status) or as a module's own command line (``main``, handed the
arguments as they are, so ``rex reconcile --help`` is the module's help).

Exit status: one per cause, the table of :class:`rex.cli_errors.ExitStatus`
(docs/operations.md, "Exit status"). ``provision`` exits 1 when it left a member's user
alone because it belongs to another deployment (the others are provisioned).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING

from rex import cli_limits, cli_my_bills, cli_trading
from rex.cli_errors import ExitStatus, Login, Reaching, guard
from rex.config import ConfigError, Settings, TradingStatus, did_you_mean

if TYPE_CHECKING:
    from rex.member_migration import MemberMigration

Handler = Callable[[argparse.Namespace], int]

EXIT_OK = ExitStatus.OK
EXIT_REFUSED = ExitStatus.REFUSED
EXIT_CONFIG_ERROR = ExitStatus.USAGE

#: `rex provision` declares the topology and manages users: the broker's administrator.
ADMIN_LOGIN = Login(
    "the broker administrator's login (configure on the vhost, and the management API)",
    "check the users and passwords in $REX_BROKER_URL and $REX_BROKER_ADMIN_URL",
)


def _settings(args: argparse.Namespace) -> Settings:
    """Settings from the environment, with ``--config-dir`` applied."""
    return Settings.from_env(config_dir=args.config_dir)


def _cmd_config_check(args: argparse.Namespace) -> int:
    """Load and validate everything any service reads; report every problem found."""
    # settlement_worker is above rex/, so imported here, as the pass-through commands are.
    from rex.config_check import check_configuration
    from rex.environment import VARIABLES
    from settlement_worker.config_check import CHECKS as SETTLEMENT_CHECKS

    report = check_configuration(os.environ, args.config_dir, SETTLEMENT_CHECKS)
    if report.config_dir is not None:
        print(f"configuration: {report.config_dir} ({report.found_by})")
    products, members = report.products, report.members
    width = max((len(symbol) for symbol in products), default=0)
    for p in products.values():
        status = "" if p.status is TradingStatus.OPEN else f"  [{p.status}]"
        print(
            f"{p.symbol:<{width}}  {p.currency}  tick {p.tick}  lot {p.lot} {p.quantity_unit}"
            f"  band {p.band_low}..{p.band_high} {p.price_unit}{status}"
        )
    enabled = sum(1 for m in members.values() if m.enabled)
    if report.problems:
        for problem in report.problems:
            print(f"rex config check: {problem}", file=sys.stderr)
        for name in report.not_checked:
            print(f"rex config check: not checked: {name}", file=sys.stderr)
        count = len(report.problems)
        these = "1 problem (above); fix it" if count == 1 else f"{count} problems (above); fix them"
        print(f"rex config check: {these} and run it again", file=sys.stderr)
        return EXIT_CONFIG_ERROR
    print(
        f"ok: {len(products)} products, {len(members)} members ({enabled} enabled), "
        f"{', '.join(report.checked)} and {len(VARIABLES)} environment variables"
    )
    return EXIT_OK


def _cmd_provision(args: argparse.Namespace) -> int:
    """Create the members' users and permissions, declare the topology, and report."""
    try:
        settings = _settings(args)
    except ConfigError as exc:
        print(f"rex provision: {exc}", file=sys.stderr)
        return EXIT_CONFIG_ERROR
    return guard("rex provision", Reaching(settings.broker_url, login=ADMIN_LOGIN),
                 lambda: _provision(settings, args.dry_run))  # fmt: skip


def _provision(settings: Settings, dry_run: bool) -> int:
    # Imported here so that `rex config check` does not load the management client.
    from rex.provision import (
        MemberAction,
        member_permissions,
        member_topic_permission_set,
        provision,
    )

    report = provision(settings, os.environ, dry_run=dry_run)
    dry = report.dry_run
    width = max((len(m.member) for m in report.members), default=0)
    for m in report.members:
        if m.action is MemberAction.FOREIGN:
            line = f"refused: user {m.login!r} belongs to {m.owner}; left alone"
        elif m.enabled:
            verb = (
                m.action.value
                if not dry or m.action is MemberAction.UNCHANGED
                else ("to create" if m.action is MemberAction.CREATED else "to update")
            )
            perms = ("to set" if dry else "set") if m.permissions_set else "unchanged"
            topic = ("to set" if dry else "set") if m.topic_permissions_set else "unchanged"
            line = f"user {verb}, permissions {perms}, topic permissions {topic}"
        elif m.action is MemberAction.DELETED:
            closed = m.connections_closed
            conns = f", {closed} connection{'s' if closed != 1 else ''} closed" if closed else ""
            line = f"disabled: user {'to delete' if dry else 'deleted'}{conns}"
        else:
            line = "disabled: no user"
        print(f"{m.member:<{width}}  {line}")

    t = report.topology
    print(
        f"topology: {t.exchanges} exchanges ({len(t.new_exchanges)} new), "
        f"{t.queues} queues ({len(t.new_queues)} new), "
        f"{t.bindings} bindings ({len(t.new_bindings)} new)"
        + (" - dry run, not declared" if dry else " declared")
    )
    for line in migration_lines(report.migrations, dry):
        print(line)
    counts = {a: sum(1 for m in report.members if m.action is a) for a in MemberAction}
    p, topics = member_permissions("<id>"), member_topic_permission_set("<id>")
    on = ", ".join(t.exchange for t in topics)
    if report.deployment:
        print(f"deployment {report.deployment!r}: members log in as {report.deployment}.<id>")
    print(
        f"permissions on vhost {report.vhost!r}: configure {p.configure}  write {p.write}  "
        f"read {p.read}; topic on {on}: write {topics[0].write}  read {topics[0].read}"
    )
    summary = ", ".join(
        f"{counts[a]} {a.value}"
        for a in (MemberAction.CREATED, MemberAction.UPDATED, MemberAction.UNCHANGED)
    )
    disabled = counts[MemberAction.DELETED] + counts[MemberAction.ABSENT]
    state = (
        "nothing to change"
        if not report.changed
        else ("dry run: the changes above were not made" if dry else "done")
    )
    refused = f"; {len(report.refused)} refused" if report.refused else ""
    print(
        f"{len(report.members)} members: {summary}; {disabled} disabled "
        f"({counts[MemberAction.DELETED]} deleted){refused}; {state}"
    )
    if report.refused:
        print(_refused_advice(report.deployment, len(report.refused)), file=sys.stderr)
        return EXIT_REFUSED
    return EXIT_OK


def migration_lines(migrations: Sequence[MemberMigration], dry: bool) -> list[str]:
    """What `rex provision` says of members' protocol-1 queues (rex/member_migration.py)."""
    lines = []
    for m in migrations:
        queue = f"old queue rex.member.{m.member}"
        if dry:
            lines.append(f"{m.member}  {queue}: {m.waiting} messages to move into its log")
            continue
        parts = [f"{m.moved} messages moved into its log"] if m.waiting or m.moved else []
        if m.recovered:
            parts.append(f"{m.recovered} dead letters given back from rex.dead")
        if m.deleted:
            parts.append("queue deleted")
        elif m.held_by:
            parts.append(
                f"kept: {m.held_by} old clients still consume it (run rex provision again "
                f"once they have closed)"
            )
        lines.append(f"{m.member}  {queue}: {', '.join(parts) or 'nothing to do'}")
    return lines


def _refused_advice(deployment: str, count: int) -> str:
    """What to do when users named like this deployment's members belong to another one."""
    users = "1 member user belongs" if count == 1 else f"{count} member users belong"
    name = f"REX_DEPLOYMENT is {deployment!r}" if deployment else "REX_DEPLOYMENT is not set"
    return (
        f"rex: {users} to another deployment on this broker and {'was' if count == 1 else 'were'}"
        f" left alone ({name}). Give this deployment a name of its own, e.g. "
        "REX_DEPLOYMENT=prod (its members then log in as prod.<member>), set it for every "
        "REX process and member, and run rex provision again; see docs/operations.md, "
        "'Several deployments on one broker'."
    )


def _config_dir_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--config-dir",
        type=Path,
        default=None,
        metavar="DIR",
        help="configuration directory (default: $REX_CONFIG_DIR, else the one shipped with REX)",
    )


def _configure_config(config: argparse.ArgumentParser) -> None:
    """`rex config check`."""
    config.set_defaults(func=_help(config))
    actions = config.add_subparsers(title="config commands", metavar="ACTION")
    check = actions.add_parser(
        "check",
        help="validate everything the services read: every configuration file, every "
        "enabled member's password, every REX_* variable",
        description="Load and validate products.toml, members.toml (every enabled member's "
        "password must resolve), settlement.toml, holidays.toml and every REX_* environment "
        "variable (docs/configuration.md); report every problem found. Exit status 0, or 2 "
        "if there is any.",
    )
    _config_dir_option(check)
    check.set_defaults(func=_cmd_config_check)


def _configure_provision(prov: argparse.ArgumentParser) -> None:
    prov.description = (
        "Create or update each enabled member's RabbitMQ user, password, permissions and "
        "topic permissions from members.toml (deleting the users of disabled members), "
        "then declare every exchange, queue and binding, on the vhost of "
        "$REX_BROKER_URL. Users go through the management HTTP API at "
        "$REX_BROKER_ADMIN_URL (default http://guest:guest@127.0.0.1:15672). "
        "Members log in as <id>, or <$REX_DEPLOYMENT>.<id> when it is set; each user is "
        "tagged rex-deployment:<deployment>@<vhost>, and a user that belongs to another "
        "deployment is left alone (exit status 1). "
        "Idempotent: a second run changes nothing."
    )
    _config_dir_option(prov)
    prov.add_argument(
        "--dry-run",
        action="store_true",
        help="read the broker's state and report what would change, without changing it",
    )
    prov.set_defaults(func=_cmd_provision)


def _help(parser: argparse.ArgumentParser) -> Handler:
    """Handler for a command group given without a subcommand: print its help."""

    def show(_args: argparse.Namespace) -> int:
        parser.print_help(sys.stderr)
        return ExitStatus.USAGE

    return show


# ------------------------------------------------------------------ pass-through commands
# Their modules have their own parsers; they are imported only when run.


def _gateway(argv: list[str]) -> int:
    from gateway.__main__ import main as gateway_main

    return gateway_main(argv)


def _engine(argv: list[str]) -> int:
    from engine.__main__ import main as engine_main

    return engine_main(argv)


def _settlement(argv: list[str]) -> int:
    from settlement_worker.__main__ import main as settlement_main

    return settlement_main(argv)


def _demo(argv: list[str]) -> int:
    from demo.__main__ import main as demo_main

    return demo_main(argv)


def _loadtest(argv: list[str]) -> int:
    from loadtest.__main__ import main as loadtest_main

    return loadtest_main(argv)


def _statement(argv: list[str]) -> int:
    from settlement_worker.reports.statement import main as statement_main

    return statement_main(argv)


def _payments(argv: list[str]) -> int:
    from settlement_worker.payments.commands import main as payments_main

    return payments_main(argv)


def _bills(argv: list[str]) -> int:
    from settlement_worker.bills.commands import main as bills_main

    return bills_main(argv)


def _dispute(argv: list[str]) -> int:
    from settlement_worker.disputes.commands import main as dispute_main

    return dispute_main(argv)


def _offline(argv: list[str]) -> int:
    from settlement_worker.offline.commands import main as offline_main

    return offline_main(argv)


def _reconcile(argv: list[str]) -> int:
    from settlement_worker.reports.reconcile import main as reconcile_main

    return reconcile_main(argv)


# ------------------------------------------------------------------------ the commands


class Group(StrEnum):
    """Who uses a command; ``rex --help`` lists the commands by group."""

    MEMBER = "members: trading, and their own settlement settings and bills"
    OPERATOR = "operators: configuration, the broker, trading status, the services"
    SETTLEMENT = "settlement: the settlement store (statements, payments, bills, disputes)"


@dataclass(frozen=True, slots=True)
class Command:
    """One ``rex`` command: in-process (``configure``) or a module's own (``main``)."""

    name: str
    group: Group
    summary: str
    configure: Callable[[argparse.ArgumentParser], None] | None = None
    main: Callable[[list[str]], int] | None = None


_M, _O, _S = Group.MEMBER, Group.OPERATOR, Group.SETTLEMENT

COMMANDS: tuple[Command, ...] = (
    Command("order", _M, "place an order and print its first answer", cli_trading.configure_order),
    Command("cancel", _M, "cancel an order by its client order id", cli_trading.configure_cancel),
    Command("replace", _M, "change an order's price and/or total quantity",
            cli_trading.configure_replace),
    Command("mass-cancel", _M, "cancel all your open orders in a product",
            cli_trading.configure_mass_cancel),
    Command("executions", _M, "print your execution reports not read before (or again: "
            "--since)", cli_trading.configure_executions),
    Command("events", _M, "print your settlement events and answers not read before (or "
            "again: --since)", cli_trading.configure_events),
    Command("book", _M, "print a product's order book (top 10 levels)", cli_trading.configure_book),
    Command("trades", _M, "print a product's public trade tape", cli_trading.configure_trades),
    Command("limits", _M, "your receipt limits and payment method: show, set, set-method",
            cli_limits.configure),
    Command("my-bills", _M, "your bills over AMQP: list, endorse, discount",
            cli_my_bills.configure),
    Command("config", _O, "check the exchange's configuration files", _configure_config),
    Command("provision", _O, "create the members' RabbitMQ users and permissions, declare "
            "the topology", _configure_provision),
    Command("halt", _O, "halt trading in a product (cancels still work)",
            cli_trading.configure_status(TradingStatus.HALTED)),
    Command("resume", _O, "open a product for trading again",
            cli_trading.configure_status(TradingStatus.OPEN)),
    Command("close", _O, "close a product", cli_trading.configure_status(TradingStatus.CLOSED)),
    Command("gateway", _O, "run the request gateway service", main=_gateway),
    Command("engine", _O, "run a matching engine service (a group of products)", main=_engine),
    Command("demo", _O, "play a scripted trading session ([--broker URL])", main=_demo),
    Command("loadtest", _O, "size the exchange: simulated members against real services",
            main=_loadtest),
    Command("settlement", _S, "run the settlement worker service", main=_settlement),
    Command("statement", _S, "a member's balances and postings over a period",
            main=_statement),
    Command("payments", _S, "payments needing an operator: review, release, resolve",
            main=_payments),
    Command("bills", _S, "bills on the store: list, show, endorse, discount, mature, dishonour",
            main=_bills),
    Command("dispute", _S, "disputes on trades and bills: open, resolve, list, show",
            main=_dispute),
    Command("offline", _S, "offline (negotiated) trades: report, confirm, decline, list",
            main=_offline),
    Command("reconcile", _S, "check the settlement store's books add up", main=_reconcile),
)  # fmt: skip
BY_NAME: dict[str, Command] = {command.name: command for command in COMMANDS}


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
    lines += ["", "`rex COMMAND --help` describes a command; exit status: docs/operations.md."]
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
    except ConfigError as exc:  # e.g. a bad REX_DEPLOYMENT, found by Settings.from_env()
        print(f"rex: {exc}", file=sys.stderr)
        return EXIT_CONFIG_ERROR


if __name__ == "__main__":
    raise SystemExit(main())
