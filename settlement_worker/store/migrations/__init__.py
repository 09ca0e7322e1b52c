"""Versioned schema migrations, one list for both backends.

Each migration is a module `vNNNN_name.py` here with a `STATEMENTS` list, written once in
portable SQL; `{serial}`, `{json}` and `{blob}` are filled per backend (SQLite: INTEGER
PRIMARY KEY AUTOINCREMENT, TEXT, BLOB; PostgreSQL: BIGSERIAL PRIMARY KEY, JSONB, BYTEA).
Applied in order inside one transaction each, recorded in `schema_migrations`; never edited
once released -- a change is a new migration.
"""

from __future__ import annotations

import importlib
import pkgutil


def _load() -> list[tuple[int, list[str]]]:
    """Every `vNNNN_*.py` module beside this one, in version order. One file per version, so
    work on different tables never edits the same file."""
    found = []
    for info in pkgutil.iter_modules(__path__):
        if info.name.startswith("v") and info.name[1:5].isdigit():
            module = importlib.import_module(f"{__name__}.{info.name}")
            found.append((int(info.name[1:5]), list(module.STATEMENTS)))
    found.sort()
    versions = [v for v, _ in found]
    if versions != list(range(1, len(versions) + 1)):
        raise RuntimeError(f"migration versions must run 1..n without gaps: {versions}")
    return found


MIGRATIONS: list[tuple[int, list[str]]] = _load()


def render(statement: str, backend: str) -> str:
    if backend == "sqlite":
        return statement.format(
            serial="INTEGER PRIMARY KEY AUTOINCREMENT", json="TEXT", blob="BLOB"
        )
    return statement.format(serial="BIGSERIAL PRIMARY KEY", json="JSONB", blob="BYTEA")
