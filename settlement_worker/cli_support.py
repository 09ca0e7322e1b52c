"""What the settlement commands (`rex reconcile`, `rex statement`, `rex dispute`, `rex
bills`, `rex offline`, `rex payments`) share: where the store is, opening it, and their
exit statuses, those of every `rex` command (rex.cli_errors)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from urllib.parse import urlsplit

from rex.cli_errors import ExitStatus, Reaching, classify, guard
from rex.config import ConfigError, ProcessConfig
from rex.environment import POSTGRES_URL, REX_DATA_DIR, REX_DATABASE_URL
from settlement_worker.store import Store
from settlement_worker.store.opening import open_store

__all__ = [
    "EXIT_OK",
    "EXIT_REFUSED",
    "EXIT_USAGE",
    "on_store",
    "open_for_update",
    "open_from_args",
    "store_arguments",
]

EXIT_OK = ExitStatus.OK
EXIT_REFUSED = ExitStatus.REFUSED  # differences found, or a rule refused the request
EXIT_USAGE = ExitStatus.USAGE


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
    """The start of a command that writes: parse, check that the ``member_ids`` the
    arguments name are members, open the store and bring its schema up to date; the
    arguments, the store and its description. An exit status instead if any of that
    fails; the caller closes the store."""
    args = parse(parser, argv)
    if isinstance(args, int):
        return args
    try:
        ProcessConfig.from_env().check_members(*member_ids(args))
    except ConfigError as error:
        print(f"{prog}: {error}", file=sys.stderr)
        return EXIT_USAGE
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
