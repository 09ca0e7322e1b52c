"""What the settlement commands (`rex reconcile`, `rex statement`, `rex dispute`, `rex
bills`, `rex offline`, `rex payments`) share: where the store is, opening it (to read),
their exit statuses, those of every `rex` command (rex.cli_errors), and the one way an
operator's action reaches the store: as a settlement request of the operator's own login
(:func:`as_operator`), for no member or for the member the request names."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from urllib.parse import urlsplit

from rex.cli_errors import ExitStatus, Reaching, classify, guard
from rex.config import ConfigError, ProcessConfig
from rex.environment import POSTGRES_URL, REX_DATA_DIR, REX_DATABASE_URL
from rex.operator_login import DEFAULT_TIMEOUT_S, OperatorLogin, settlement_request
from rex.settlement_protocol import SettlementAnswer
from settlement_worker.store import Store
from settlement_worker.store.opening import open_store

__all__ = [
    "EXIT_OK",
    "EXIT_REFUSED",
    "EXIT_USAGE",
    "actor_arguments",
    "as_operator",
    "check_members",
    "named_actor",
    "on_store",
    "open_for_update",
    "open_from_args",
    "parse",
    "store_arguments",
    "timeout_argument",
]

EXIT_OK = ExitStatus.OK
EXIT_REFUSED = ExitStatus.REFUSED  # differences found, or a rule refused the request
EXIT_USAGE = ExitStatus.USAGE


#: Who answers an operator's settlement request: what to check when no answer comes.
ANSWERED_BY_THE_WORKER = "check that the settlement worker runs: it serves operator requests"


def as_operator(
    prog: str,
    kind: str,
    body: Mapping[str, object],
    timeout_s: float,
    accepted: Callable[[SettlementAnswer], None],
) -> int:
    """Send the settlement request ``kind`` as the operator account of
    ``$REX_OPERATOR_URL`` (else ``$REX_BROKER_URL``) and wait for the worker's answer:
    ``accepted(answer)`` prints an accepted one. An operator action names no member; a
    member's request sent for a member names it in ``body["member"]`` (the account needs
    settlement_ops either way). The worker checks the account's role and
    records its login as the actor, so no command line names who acts. Exit status 0
    accepted, 1 refused, 2 not an operator account, 3 no answer, 4-7 the broker."""
    try:
        login = OperatorLogin.from_env(ProcessConfig.from_env())
    except ConfigError as error:  # a bad REX_DEPLOYMENT or operators.toml
        print(f"{prog}: {error}", file=sys.stderr)
        return EXIT_USAGE

    def run() -> int:
        answer = settlement_request(login, prog, kind, body, timeout_s=timeout_s)
        if answer.accepted:
            accepted(answer)
            return EXIT_OK
        rule = answer.detail.get("rule")  # bill_rule, offline_rule_violation: which rule
        code = f"{answer.reason}: {rule}" if rule else answer.reason
        print(f"{prog}: refused ({code}): {answer.text}", file=sys.stderr)
        return EXIT_REFUSED

    return guard(prog, login.reaching(ANSWERED_BY_THE_WORKER), run)


def actor_arguments(parser: argparse.ArgumentParser) -> None:
    """``--operator`` and ``--actor``, which earlier versions took as who acts: refused now
    (:func:`named_actor`), so that a name typed by hand is never what is recorded."""
    for flag in ("--operator", "--actor"):
        parser.add_argument(
            flag,
            nargs="?",
            const="",
            default=None,
            help="refused: the command acts as the operator account of $REX_OPERATOR_URL",
        )


def named_actor(prog: str, args: argparse.Namespace) -> int | None:
    """EXIT_USAGE, saying why, if the command line names who acts (:func:`actor_arguments`);
    None if it does not."""
    for flag in ("operator", "actor"):
        if getattr(args, flag, None) is not None:
            print(
                f"{prog}: --{flag} is refused: {prog} {args.command} acts as the operator "
                "account of $REX_OPERATOR_URL (else $REX_BROKER_URL), which the settlement "
                "worker checks and records; set REX_OPERATOR_URL to your own account's login",
                file=sys.stderr,
            )
            return EXIT_USAGE
    return None


def check_members(prog: str, *member_ids: str | None) -> int | None:
    """EXIT_USAGE, naming the closest ids, if one of ``member_ids`` is no member of
    members.toml; None if all are (a typo is said before anything is sent)."""
    try:
        ProcessConfig.from_env().check_members(*member_ids)
    except ConfigError as error:
        print(f"{prog}: {error}", file=sys.stderr)
        return EXIT_USAGE
    return None


def timeout_argument(parser: argparse.ArgumentParser) -> None:
    """``--timeout``: how long an operator request waits for its answer."""
    parser.add_argument(
        "--timeout",
        type=float,
        default=DEFAULT_TIMEOUT_S,
        metavar="SECONDS",
        help=f"how long to wait for the worker's answer (default {DEFAULT_TIMEOUT_S:g})",
    )


def store_arguments(parser: argparse.ArgumentParser) -> None:
    """``--database-url`` and ``--data-dir``, defaulting to the worker's environment."""
    parser.add_argument(
        "--database-url",
        type=POSTGRES_URL.argument,
        default=None,
        help="postgresql://... (default: $REX_DATABASE_URL; unset: SQLite in the data dir)",
    )
    parser.add_argument(
        "--data-dir",
        type=Path,
        default=None,
        help="directory holding settlement.sqlite3 (default: $REX_DATA_DIR)",
    )


def open_from_args(
    args: argparse.Namespace, prog: str, *, create: bool = False
) -> tuple[Store, str] | int:
    """The store the arguments name, and a description of it for reports; an exit status
    (after printing why) if it cannot be opened, or if it does not exist and ``create`` is
    false."""
    try:
        url: str | None = args.database_url or REX_DATABASE_URL.get()
        data_dir: Path = args.data_dir or REX_DATA_DIR.get()
    except ConfigError as error:
        print(f"{prog}: {error}", file=sys.stderr)
        return EXIT_USAGE
    if url:
        parts = urlsplit(url)  # no user or password in what is printed
        port = "" if parts.port is None else f":{parts.port}"
        where = f"postgresql {parts.hostname or 'localhost'}{port}{parts.path}"
    else:
        where = f"sqlite {data_dir / 'settlement.sqlite3'}"
        if not create and not (data_dir / "settlement.sqlite3").exists():
            return _no_store(prog, f"no settlement store at {where}")
    try:
        store = open_store(url, data_dir)
    except Exception as error:  # the driver's own error types; a connection refused, ...
        failure = classify(error, Reaching(database=where))
        if failure is None:
            return _no_store(prog, f"cannot open {where}: {error}")
        print(f"{prog}: {failure.message}", file=sys.stderr)
        return failure.status
    if not create and not store.has_table("journal_entries"):
        store.close()
        return _no_store(prog, f"no settlement tables in {where}")
    return store, where


def _no_store(prog: str, what: str) -> int:
    print(
        f"{prog}: {what}: check $REX_DATABASE_URL (or --database-url) and $REX_DATA_DIR (or "
        "--data-dir); the settlement worker creates the store when it first starts",
        file=sys.stderr,
    )
    return ExitStatus.DATABASE_UNREACHABLE


def on_store(prog: str, where: str, run: Callable[[], int]) -> int:
    """``run()``'s status; the store failing under it (PostgreSQL gone, say), or a cause of
    rex.cli_errors, is reported as such."""
    return guard(prog, Reaching(database=where), run)


def parse(parser: argparse.ArgumentParser, argv: list[str] | None) -> argparse.Namespace | int:
    """Parse, turning argparse's exits into a status (2 usage, 0 for --help)."""
    try:
        return parser.parse_args(argv)
    except SystemExit as stop:
        return EXIT_USAGE if stop.code else EXIT_OK


def open_for_update(
    parser: argparse.ArgumentParser,
    argv: list[str] | None,
    prog: str,
    member_ids: Callable[[argparse.Namespace], Sequence[str | None]] = lambda _: (),
) -> tuple[argparse.Namespace, Store, str] | int:
    """The start of a command on the store: parse, check that the ``member_ids`` the
    arguments name are members, open the store and bring its schema up to date; the
    arguments, the store and its description. An exit status instead if any of that
    fails; the caller closes the store."""
    args = parse(parser, argv)
    if isinstance(args, int):
        return args
    refused = check_members(prog, *member_ids(args))
    if refused is not None:
        return refused
    opened = open_from_args(args, prog)
    if isinstance(opened, int):
        return opened
    store, where = opened

    def migrate() -> int:
        store.migrate()  # tables of a later version, if this store predates them
        return EXIT_OK

    try:
        status = on_store(prog, where, migrate)
    except BaseException:
        store.close()
        raise
    if status != EXIT_OK:
        store.close()
        return status
    return args, store, where
