"""Imports point down the layers (docs/internals/style.md), checked on every import statement
of the tree, those inside functions included, with no list of exceptions.

* The shared package ``rex`` imports nothing of REX but itself.
* The services -- ``engine``, ``gateway``, ``settlement_worker`` -- import the shared
  package and themselves only; ``loadtest`` the shared package; ``demo`` (which runs a
  gateway and an engine in one process) those, and loadtest's throw-away stacks.
* ``cli``, the ``rex`` command, is the one top layer: it may import anything, and nothing
  imports it.
* Inside settlement, the domain folders stand in :data:`SETTLEMENT_LAYERS`' order: a folder
  imports only those below it (and itself).
* The pure cores (:data:`PURE_CORES`) import no I/O: no clock, logs, broker, database, and
  no module that writes.
"""

from __future__ import annotations

import ast
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
TOP = ("rex", "engine", "gateway", "settlement_worker", "loadtest", "demo", "cli")
MAY_IMPORT: dict[str, frozenset[str]] = {
    "rex": frozenset({"rex"}),
    "engine": frozenset({"rex", "engine"}),
    "gateway": frozenset({"rex", "gateway"}),
    "settlement_worker": frozenset({"rex", "settlement_worker"}),
    "loadtest": frozenset({"rex", "loadtest"}),
    "demo": frozenset({"rex", "demo", "engine", "gateway", "loadtest"}),
    "cli": frozenset(TOP),
}
#: Settlement's folders and modules, lowest first: infrastructure, then the domains in the
#: order a trade's money moves through them, then the reports and the worker itself.
SETTLEMENT_LAYERS: tuple[tuple[str, ...], ...] = (
    ("codes",),
    ("store",),
    ("outbox", "cli_support"),
    ("requests",),
    ("ledger",),
    ("obligations",),
    ("plans",),
    ("configuration",),
    ("member_settings",),
    ("payments",),
    ("bills",),
    ("booking",),
    ("disputes", "offline"),
    ("reports", "audit"),
    ("config_check", "commands"),
    ("service", "bench", "__main__"),
)
SETTLEMENT_RANK = {name: rank for rank, names in enumerate(SETTLEMENT_LAYERS) for name in names}


def imports(path: Path) -> Iterator[tuple[int, str]]:
    """(line, dotted module) of every import in ``path``, relative ones made whole;
    ``from a import b`` also yields ``a.b``, which may be a module."""
    package = list(path.relative_to(ROOT).with_suffix("").parts)[:-1]
    tree = ast.parse(path.read_text(), filename=str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            base = package[: len(package) - node.level + 1] if node.level else []
            module = ".".join([*base, *([node.module] if node.module else [])])
            yield node.lineno, module
            for alias in node.names:
                yield node.lineno, f"{module}.{alias.name}"


def sources() -> Iterator[tuple[str, Path]]:
    for top in TOP:
        for path in sorted((ROOT / top).rglob("*.py")):
            yield top, path


def violations() -> list[str]:
    found = []
    for top, path in sources():
        rel = path.relative_to(ROOT)
        own = rel.parts[1].removesuffix(".py") if top == "settlement_worker" else None
        for line, module in imports(path):
            first = module.split(".")[0]
            if first in TOP and first not in MAY_IMPORT[top]:
                found.append(f"{rel}:{line}: {top} imports {module}")
            if own is not None and first == "settlement_worker" and "." in module:
                target = module.split(".")[1]
                if target in SETTLEMENT_RANK and own in SETTLEMENT_RANK:
                    if SETTLEMENT_RANK[target] > SETTLEMENT_RANK[own]:
                        found.append(f"{rel}:{line}: settlement {own} imports {target} above it")
                elif target != own and not target.startswith("__"):
                    found.append(f"{rel}:{line}: {own} or {target} has no layer in this test")
    return found


def test_every_import_points_down_the_layers() -> None:
    assert violations() == []


def test_every_settlement_folder_and_module_has_a_layer() -> None:
    here = {p.name.removesuffix(".py") for p in (ROOT / "settlement_worker").iterdir()}
    here -= {"__init__", "__pycache__"}
    assert here == set(SETTLEMENT_RANK)


@pytest.mark.parametrize(
    ("where", "line", "expected"),
    [
        ("rex/x.py", "from settlement_worker.bills import rules", "rex imports settlement_worker"),
        ("engine/x.py", "import gateway.service", "engine imports gateway"),
        ("settlement_worker/ledger/x.py", "from settlement_worker.bills.rules import Bill",
         "settlement ledger imports bills above it"),
        ("gateway/x.py", "    from cli.main import main", "gateway imports cli"),
    ],
)  # fmt: skip
def test_the_check_catches_an_import_up_a_layer(
    where: str, line: str, expected: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The check itself can fail: each planted import up a layer is named."""
    for top in TOP:
        (tmp_path / top).mkdir()
    planted = tmp_path / where
    planted.parent.mkdir(parents=True, exist_ok=True)
    body = f"def f() -> None:\n{line}\n" if line.startswith(" ") else f"{line}\n"
    planted.write_text(body)
    monkeypatch.setattr(sys.modules[__name__], "ROOT", tmp_path)
    assert any(expected in v for v in violations()), violations()


#: The pure cores (docs/internals/style.md): they compute; the adapters do the I/O.
PURE_CORES = (
    "settlement_worker/*/rules.py",
    "settlement_worker/*/postings.py",
    "settlement_worker/bills/discount.py",
    "settlement_worker/plans/receipt_limits.py",
    "engine/book.py",
    "engine/reference_book.py",
    "engine/market.py",
    "gateway/validation.py",
    "rex/rules.py",
    "rex/money.py",
)
#: What a pure core may not import: the clock, the logs, the processes, the broker, the
#: database, and the modules that write (a domain's SQL and operations, the outbox).
IO_MODULES = frozenset(
    {"time", "logging", "os", "socket", "subprocess", "threading", "sqlite3", "psycopg",
     "pika", "rex.bus", "settlement_worker.outbox"}
)  # fmt: skip


def io_imports() -> list[str]:
    found = []
    for pattern in PURE_CORES:
        for path in sorted(ROOT.glob(pattern)):
            rel = path.relative_to(ROOT)
            for line, module in imports(path):
                writes = module.rsplit(".", 1)[-1] in {"sql", "operations"} or ".sql." in module
                banned = any(module == m or module.startswith(m + ".") for m in IO_MODULES)
                if writes or banned:
                    found.append(f"{rel}:{line}: a pure core imports {module}")
    return found


def test_the_pure_cores_import_no_io() -> None:
    assert io_imports() == []


@pytest.mark.parametrize(
    ("where", "line"),
    [
        ("settlement_worker/bills/rules.py", "import time"),
        ("settlement_worker/payments/postings.py", "from settlement_worker.payments.sql import x"),
        ("engine/book.py", "from rex.bus.amqp import AmqpBus"),
    ],
)
def test_the_check_catches_io_in_a_pure_core(
    where: str, line: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    planted = tmp_path / where
    planted.parent.mkdir(parents=True, exist_ok=True)
    planted.write_text(f"{line}\n")
    monkeypatch.setattr(sys.modules[__name__], "ROOT", tmp_path)
    assert any(where in problem for problem in io_imports()), io_imports()
