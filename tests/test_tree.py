"""The tests mirror the source (docs/internals/style.md): every folder of tests/ is a source
folder's, but for tests/system, which runs the whole exchange, and tests/cluster, which runs
it on RabbitMQ nodes of its own; only the checks of the tree itself sit at the top."""

from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
NOT_A_MODULE = frozenset({"system", "cluster"})
AT_THE_TOP = frozenset({"test_layers.py", "test_tree.py"})


def misplaced(root: Path) -> list[str]:
    """Test folders with no source folder of the same path, and test files at the top."""
    tests = root / "tests"
    found = []
    for folder in sorted(p for p in tests.rglob("*") if p.is_dir() and p.name != "__pycache__"):
        rel = folder.relative_to(tests)
        if rel.parts[0] in NOT_A_MODULE:
            continue
        if not (root / rel).is_dir():
            found.append(f"tests/{rel}: no source folder {rel}/")
    found += [
        f"tests/{p.name}: a module's tests go in its folder"
        for p in sorted(tests.glob("test_*.py"))
        if p.name not in AT_THE_TOP
    ]
    return found


def test_every_test_folder_mirrors_a_source_folder() -> None:
    assert misplaced(ROOT) == []


@pytest.mark.parametrize(
    ("planted", "expected"),
    [
        ("tests/unit/test_x.py", "tests/unit: no source folder unit/"),
        ("tests/settlement_worker/banks/test_x.py", "no source folder settlement_worker/banks/"),
        ("tests/test_book.py", "tests/test_book.py: a module's tests go in its folder"),
    ],
)
def test_the_check_catches_a_test_out_of_place(planted: str, expected: str, tmp_path: Path) -> None:
    (tmp_path / "settlement_worker" / "bills").mkdir(parents=True)
    (tmp_path / "tests" / "system").mkdir(parents=True)
    path = tmp_path / planted
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("")
    assert any(expected in problem for problem in misplaced(tmp_path)), misplaced(tmp_path)
