"""What the settlement commands (`rex reconcile`, `rex statement`, `rex dispute`) share:
where the store is, and opening it."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from rex.config import ConfigError
from rex.environment import POSTGRES_URL, REX_DATA_DIR, REX_DATABASE_URL

from .store import Store, open_store

__all__ = [
    "EXIT_OK",
    "EXIT_REFUSED",
    "EXIT_USAGE",
    "open_for_update",
    "open_from_args",
    "store_arguments",
]

EXIT_OK = 0
EXIT_REFUSED = 1  # differences found, or a rule refused the request
EXIT_USAGE = 2


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
) -> tuple[Store, str] | None:
    """The store the arguments name, and a description of it for reports; None (after
    printing why) if it cannot be opened, or if it does not exist and ``create`` is false."""
    try:
        url: str | None = args.database_url or REX_DATABASE_URL.get()
        data_dir: Path = args.data_dir or REX_DATA_DIR.get()
    except ConfigError as error:
        print(f"{prog}: {error}", file=sys.stderr)
        return None
    if url:
        where = "postgresql " + url.split("@")[-1].split("?")[0]
    else:
        where = f"sqlite {data_dir / 'settlement.sqlite3'}"
        if not create and not (data_dir / "settlement.sqlite3").exists():
            print(f"{prog}: no settlement store at {where}", file=sys.stderr)
            return None
    try:
        store = open_store(url, data_dir)
    except Exception as error:  # the driver's own error types; a connection refused, ...
        print(f"{prog}: cannot open {where}: {error}", file=sys.stderr)
        return None
    if not create and not store.has_table("journal_entries"):
        print(f"{prog}: no settlement tables in {where}", file=sys.stderr)
        store.close()
        return None
    return store, where


def parse(parser: argparse.ArgumentParser, argv: list[str] | None) -> argparse.Namespace | int:
    """Parse, turning argparse's exits into a status (2 usage, 0 for --help)."""
    try:
        return parser.parse_args(argv)
    except SystemExit as stop:
        return EXIT_USAGE if stop.code else EXIT_OK


def open_for_update(
    parser: argparse.ArgumentParser, argv: list[str] | None, prog: str
) -> tuple[argparse.Namespace, Store] | int:
    """The start of a command that writes: parse, open the store and bring its schema up
    to date. An exit status instead if any of that fails; the caller closes the store."""
    args = parse(parser, argv)
    if isinstance(args, int):
        return args
    opened = open_from_args(args, prog)
    if opened is None:
        return EXIT_USAGE
    store = opened[0]
    try:
        store.migrate()  # tables of a later version, if this store predates them
    except BaseException:
        store.close()
        raise
    return args, store
