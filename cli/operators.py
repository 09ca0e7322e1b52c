"""`rex` commands for operators: config check and provision (a product's trading status,
`rex halt|resume|close`, is cli/market_status.py)."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from rex.cli_errors import ExitStatus, Login, Reaching, guard
from rex.config import ConfigError, ProcessConfig, TradingStatus
from rex.service_users import service_user

if TYPE_CHECKING:
    from rex.member_migration import MemberMigration
    from rex.provision import MemberResult, ProvisionReport, ServiceUserResult

Handler = Callable[[argparse.Namespace], int]

EXIT_OK = ExitStatus.OK
EXIT_REFUSED = ExitStatus.REFUSED
EXIT_CONFIG_ERROR = ExitStatus.USAGE

#: `rex provision` declares the topology and manages users: the broker's administrator.
ADMIN_LOGIN = Login(
    "the broker administrator's login (configure on the vhost, and the management API)",
    "check the users and passwords in $REX_BROKER_URL and $REX_BROKER_ADMIN_URL",
)


def _process_config(args: argparse.Namespace) -> ProcessConfig:
    """ProcessConfig from the environment, with ``--config-dir`` applied."""
    return ProcessConfig.from_env(config_dir=args.config_dir)


def _cmd_config_check(args: argparse.Namespace) -> int:
    """Load and validate everything any service reads; report every problem found."""
    # Imported here so that `rex --help` loads no service.
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
    accounts = report.operators
    operators = (
        f"{len(accounts)} operator accounts ({sum(a.enabled for a in accounts.values())} enabled), "
        if accounts
        else ""
    )
    print(
        f"ok: {len(products)} products, {len(members)} members ({enabled} enabled), "
        f"{operators}{', '.join(report.checked)} and {len(VARIABLES)} environment variables"
    )
    return EXIT_OK


def _cmd_provision(args: argparse.Namespace) -> int:
    """Create the members' users and permissions, declare the topology, and report."""
    try:
        process_config = _process_config(args)
    except ConfigError as exc:
        print(f"rex provision: {exc}", file=sys.stderr)
        return EXIT_CONFIG_ERROR
    return guard("rex provision", Reaching(process_config.broker_url, login=ADMIN_LOGIN),
                 lambda: _provision(process_config, args.dry_run, args.service_users))  # fmt: skip


def _provision(process_config: ProcessConfig, dry_run: bool, service_users: bool = False) -> int:
    # Imported here so that `rex config check` does not load the management client.
    from rex.provision import (
        MemberAction,
        member_permissions,
        member_topic_permission_set,
        provision,
    )

    report = provision(
        process_config, os.environ, dry_run=dry_run, require_service_users=service_users
    )
    dry = report.dry_run
    width = max((len(m.member) for m in report.members), default=0)
    for m in report.members:
        print(f"{m.member:<{width}}  {_user_line(m, dry)}")
    op_width = max((len(o.member) for o in report.operators), default=0)
    for o in report.operators:
        print(f"operator {o.member:<{op_width}}  {_user_line(o, dry)}")
    for stray in report.strays:
        closed = stray.connections_closed
        conns = f", {closed} connection{'s' if closed != 1 else ''} closed" if closed else ""
        print(
            f"user {stray.login}  in no file any more (members.toml, operators.toml): "
            f"{'to delete' if dry else 'deleted'}{conns}"
        )

    t = report.topology
    print(
        f"topology: {t.exchanges} exchanges ({len(t.new_exchanges)} new), "
        f"{t.queues} queues ({len(t.new_queues)} new), "
        f"{t.bindings} bindings ({len(t.new_bindings)} new), "
        f"{len(t.bounds_set)} queue bounds {'to set' if dry else 'set'}"
        + (" - dry run, not declared" if dry else " declared")
    )
    for line in replication_lines(report):
        print(line)
    for exchange, queue, key in t.old_bindings:
        print(
            f"topology: old binding {exchange} -> {queue} ({key!r})"
            f" {'to remove' if dry else 'removed'}: each member has its own request queue now"
        )
    for line in migration_lines(report.migrations, dry):
        print(line)
    for line in service_user_lines(report.services, dry):
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
    if report.operators:
        from rex.operator_provision import operator_permissions, operator_topic_permission_set

        op, op_topics = operator_permissions("<name>"), operator_topic_permission_set("<name>")
        print(
            f"operators' permissions: configure {op.configure}  write {op.write}  read "
            f"{op.read}; topic on {', '.join(t.exchange for t in op_topics)}: write "
            f"{op_topics[0].write}  read {op_topics[0].read}"
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
    enabled_ops = sum(1 for o in report.operators if o.enabled)
    ops = (
        f"{len(report.operators)} operator accounts ({enabled_ops} enabled); "
        if report.operators
        else ""
    )
    print(
        f"{len(report.members)} members: {summary}; {disabled} disabled "
        f"({counts[MemberAction.DELETED]} deleted){refused}; {ops}{state}"
    )
    if report.refused:
        print(_refused_advice(report.deployment, len(report.refused)), file=sys.stderr)
        return EXIT_REFUSED
    if report.refused_services:
        print(
            f"rex: {len(report.refused_services)} service user(s) belong to another deployment "
            "and were left alone; give this deployment a REX_DEPLOYMENT name of its own "
            "(its services then log in as <deployment>.rex-<service>)",
            file=sys.stderr,
        )
        return EXIT_REFUSED
    return EXIT_OK


def service_user_lines(services: Sequence[ServiceUserResult], dry: bool) -> list[str]:
    """What `rex provision` says of the services' own users (rex/service_users.py)."""
    from rex.provision import ServiceAction

    lines = []
    for s in services:
        if s.action is ServiceAction.SKIPPED:
            variable = service_user(s.service).password.name
            line = f"not provisioned: {variable} is not set (the service logs in as it is told)"
        elif s.action is ServiceAction.FOREIGN:
            line = f"refused: user belongs to {s.owner}; left alone"
        else:
            verb = s.action.value if not dry or s.action is ServiceAction.UNCHANGED else "to change"
            perms = ("to set" if dry else "set") if s.permissions_set else "unchanged"
            line = f"user {verb}, permissions {perms}"
        lines.append(f"service {s.service} ({s.login})  {line}")
    return lines


def _user_line(m: MemberResult, dry: bool) -> str:
    """What `rex provision` did (or would do) with one member's or operator's user."""
    from rex.provision import MemberAction

    if m.action is MemberAction.FOREIGN:
        return f"refused: user {m.login!r} belongs to {m.owner}; left alone"
    if m.enabled:
        verb = (
            m.action.value
            if not dry or m.action is MemberAction.UNCHANGED
            else ("to create" if m.action is MemberAction.CREATED else "to update")
        )
        perms = ("to set" if dry else "set") if m.permissions_set else "unchanged"
        topic = ("to set" if dry else "set") if m.topic_permissions_set else "unchanged"
        return f"user {verb}, permissions {perms}, topic permissions {topic}"
    if m.action is MemberAction.DELETED:
        closed = m.connections_closed
        conns = f", {closed} connection{'s' if closed != 1 else ''} closed" if closed else ""
        return f"disabled: user {'to delete' if dry else 'deleted'}{conns}"
    return "disabled: no user"


def replication_lines(report: ProvisionReport) -> list[str]:
    """How many copies each queue gets, on which nodes, and the queues that have fewer."""
    nodes = report.running_nodes
    copies = f"{report.replication} cop{'y' if report.replication == 1 else 'ies'}"
    lines = [
        f"replication: {copies} of each new quorum queue and stream; "
        f"{len(nodes)} running node{'s' if len(nodes) != 1 else ''} ({', '.join(nodes)})"
    ]
    for q in report.under_replicated:
        lines.append(
            f"replication: {q.kind} {q.queue} has {len(q.members)} of {report.replication} "
            f"members ({', '.join(q.members) or 'none'}); add one: {q.fix(report.vhost, nodes)}"
        )
    return lines


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
        "REX process and member, and run rex provision again; see docs/operators/runbook.md, "
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


def configure_config(config: argparse.ArgumentParser) -> None:
    """`rex config check`."""
    config.set_defaults(func=_help(config))
    actions = config.add_subparsers(title="config commands", metavar="ACTION")
    check = actions.add_parser(
        "check",
        help="validate everything the services read: every configuration file, every "
        "enabled member's password, every REX_* variable",
        description="Load and validate products.toml, members.toml (every enabled member's "
        "password must resolve), operators.toml (every enabled account's password must "
        "resolve), settlement.toml, holidays.toml and every REX_* environment "
        "variable (docs/operators/configuration.md); report every problem found. Exit status "
        "0, or 2 if there is any.",
    )
    _config_dir_option(check)
    check.set_defaults(func=_cmd_config_check)


def configure_provision(prov: argparse.ArgumentParser) -> None:
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
    prov.add_argument(
        "--service-users",
        action="store_true",
        help="require every service's broker user: a REX_<SERVICE>_BROKER_PASSWORD unset "
        "is an error (exit 2) before anything changes. Without it, a service user whose "
        "password variable is unset is left alone and reported",
    )
    prov.set_defaults(func=_cmd_provision)


def _help(parser: argparse.ArgumentParser) -> Handler:
    """Handler for a command group given without a subcommand: print its help."""

    def show(_args: argparse.Namespace) -> int:
        parser.print_help(sys.stderr)
        return ExitStatus.USAGE

    return show
