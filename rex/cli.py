"""The ``rex`` command line.

Commands are registered in :func:`build_parser`. Each leaf parser sets ``func`` (with
``set_defaults``) to a handler taking the parsed arguments and returning the exit status,
so a new command is one ``add_parser`` call plus one handler.

Exit status: 0 success, 2 usage or configuration error (for ``provision``: or the broker
refused, or could not be reached). ``provision`` exits 1 when it left a member's user alone
because it belongs to another deployment (the others are provisioned).
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from rex.config import ConfigError, Settings, TradingStatus

Handler = Callable[[argparse.Namespace], int]

EXIT_OK = 0
EXIT_REFUSED = 1
EXIT_USAGE = 2
EXIT_CONFIG_ERROR = 2
EXIT_BROKER_ERROR = 2


def _settings(args: argparse.Namespace) -> Settings:
    """Settings from the environment, with ``--config-dir`` applied."""
    settings = Settings.from_env()
    if args.config_dir is not None:
        settings = dataclasses.replace(settings, config_dir=args.config_dir)
    return settings


def _cmd_config_check(args: argparse.Namespace) -> int:
    """Load products.toml and members.toml and summarise them."""
    settings = _settings(args)
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


def _cmd_provision(args: argparse.Namespace) -> int:
    """Create the members' users and permissions, declare the topology, and report."""
    # Imported here so that `rex config check` does not load pika.
    from rex.provision import (
        MemberAction,
        ProvisionError,
        member_permissions,
        member_topic_permission_set,
        provision,
    )

    settings = _settings(args)
    try:
        report = provision(settings, os.environ, dry_run=args.dry_run)
    except ConfigError as exc:
        print(f"rex: {exc}", file=sys.stderr)
        return EXIT_CONFIG_ERROR
    except ProvisionError as exc:
        print(f"rex: {exc}", file=sys.stderr)
        return EXIT_BROKER_ERROR

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

    # rex provision
    prov = commands.add_parser(
        "provision",
        help="create the members' RabbitMQ users and permissions and declare the topology",
        description=(
            "Create or update each enabled member's RabbitMQ user, password, permissions and "
            "topic permissions from members.toml (deleting the users of disabled members), "
            "then declare every exchange, queue and binding, on the vhost of "
            "$REX_BROKER_URL. Users go through the management HTTP API at "
            "$REX_BROKER_ADMIN_URL (default http://guest:guest@127.0.0.1:15672). "
            "Members log in as <id>, or <$REX_DEPLOYMENT>.<id> when it is set; each user is "
            "tagged rex-deployment:<deployment>@<vhost>, and a user that belongs to another "
            "deployment is left alone (exit status 1). "
            "Idempotent: a second run changes nothing."
        ),
    )
    prov.add_argument(
        "--config-dir",
        type=Path,
        default=None,
        metavar="DIR",
        help="configuration directory (default: $REX_CONFIG_DIR or 'config')",
    )
    prov.add_argument(
        "--dry-run",
        action="store_true",
        help="read the broker's state and report what would change, without changing it",
    )
    prov.set_defaults(func=_cmd_provision)

    from rex.cli_limits import register as register_limits  # settlement requests
    from rex.cli_my_bills import register as register_my_bills
    from rex.cli_trading import register  # member, operator and service commands

    register(commands)
    register_limits(commands)
    register_my_bills(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``rex`` command line; returns the process exit status."""
    arguments = list(sys.argv[1:] if argv is None else argv)
    try:
        if arguments and arguments[0] in PASS_THROUGH:
            # `rex gateway|engine|demo ...` hand their arguments to the module's own parser
            # (argparse's REMAINDER cannot pass options such as --broker through).
            return PASS_THROUGH[arguments[0]](arguments[1:])
        args = build_parser().parse_args(arguments)
        handler: Handler = args.func
        return handler(args)
    except ConfigError as exc:  # e.g. a bad REX_DEPLOYMENT, found by Settings.from_env()
        print(f"rex: {exc}", file=sys.stderr)
        return EXIT_CONFIG_ERROR


def _gateway(argv: list[str]) -> int:
    from gateway.__main__ import main as gateway_main

    return gateway_main(argv)


def _engine(argv: list[str]) -> int:
    from engine.__main__ import main as engine_main

    return engine_main(argv)


def _demo(argv: list[str]) -> int:
    from demo.__main__ import main as demo_main

    return demo_main(argv)


def _settlement(argv: list[str]) -> int:
    from settlement_worker.__main__ import main as settlement_main

    return settlement_main(argv)


def _payments(argv: list[str]) -> int:
    from settlement_worker.cli_payments import main as payments_main

    return payments_main(argv)


def _loadtest(argv: list[str]) -> int:
    from loadtest.__main__ import main as loadtest_main

    return loadtest_main(argv)


def _reconcile(argv: list[str]) -> int:
    from settlement_worker.reconcile import main as reconcile_main

    return reconcile_main(argv)


def _statement(argv: list[str]) -> int:
    from settlement_worker.statement import main as statement_main

    return statement_main(argv)


def _dispute(argv: list[str]) -> int:
    from settlement_worker.cli_disputes import main as dispute_main

    return dispute_main(argv)


def _bills(argv: list[str]) -> int:
    from settlement_worker.cli_bills import main as bills_main

    return bills_main(argv)


def _offline(argv: list[str]) -> int:
    from settlement_worker.cli_offline import main as offline_main

    return offline_main(argv)


PASS_THROUGH: dict[str, Callable[[list[str]], int]] = {
    "loadtest": _loadtest,
    "settlement": _settlement,
    "payments": _payments,
    "gateway": _gateway,
    "engine": _engine,
    "demo": _demo,
    "reconcile": _reconcile,
    "statement": _statement,
    "dispute": _dispute,
    "offline": _offline,
    "bills": _bills,
}


if __name__ == "__main__":
    raise SystemExit(main())
