"""What the file-mode tests share: a typical umask while REX creates its files, and the
mode of everything under a directory."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

TYPICAL_UMASK = 0o022  # most hosts': files 0644, directories 0755 unless REX says otherwise


@contextmanager
def typical_umask() -> Iterator[None]:
    """The umask a user's shell has, not whatever the test process had; restored after."""
    before = os.umask(TYPICAL_UMASK)
    try:
        yield
    finally:
        os.umask(before)


def modes(root: Path) -> dict[str, int]:
    """Every file and directory under `root` (relative name -> permission bits)."""
    return {
        str(path.relative_to(root)): stat.S_IMODE(path.stat().st_mode)
        for path in sorted(root.rglob("*"))
    }


def private(root: Path) -> dict[str, int]:
    """What `modes(root)` is when all of it is owner-only: directories 0700, files 0600."""
    return {name: 0o700 if (root / name).is_dir() else 0o600 for name in modes(root)}
