"""Files and directories REX creates are its owner's alone: files 0600, directories 0700.

What REX keeps on disk holds members' requests, trades, payments and read positions, so no
other user of the host may read it. Two layers make sure:

- a service sets its process umask to 0o077 when it starts (:func:`keep_created_files_private`,
  beside ``rex.logs.setup``), so whatever it creates afterwards is owner-only, SQLite's
  ``-wal``, ``-shm`` and journal files and anything a library writes included;
- the code that creates REX's files does so privately whatever the umask
  (:func:`private_directory`, :func:`private_database`), because the ``rex`` command, the
  SDK in a member's program and the tests create them too, and those do not own the process
  umask.

A directory that already exists keeps its mode: it may be the operator's (``REX_DATA_DIR``
pointed at a shared folder), and REX does not change what it did not make. A database file
REX names, and SQLite's files beside it, are REX's own: one left group- or world-readable by
an older REX is made owner-only when it is opened.
"""

from __future__ import annotations

import contextlib
import os
import stat
from pathlib import Path
from typing import Final

PRIVATE_UMASK: Final = 0o077
DIRECTORY_MODE: Final = 0o700
FILE_MODE: Final = 0o600
#: The files SQLite keeps beside a database. It creates them with the database file's own
#: mode (not the umask), so a private database file makes them private too.
SQLITE_COMPANIONS: Final = ("-wal", "-shm", "-journal")


def keep_created_files_private() -> None:
    """From now on, every file and directory this process creates is owner-only (umask 0o077).
    Called once at a service's start; the previous umask is not needed again."""
    os.umask(PRIVATE_UMASK)


def private_directory(path: Path) -> Path:
    """`path` as a directory, creating it and any missing parents 0700 (``mkdir -p`` would
    make the parents with the umask's mode); one that exists is left as it is."""
    missing: list[Path] = []
    for directory in (path, *path.parents):
        if directory.exists():
            break
        missing.append(directory)
    for directory in reversed(missing):
        # One made meanwhile by another process is as good as ours.
        with contextlib.suppress(FileExistsError):
            directory.mkdir(mode=DIRECTORY_MODE)
    return path


def private_database(path: Path) -> Path:
    """Make ready the SQLite file at `path` for ``sqlite3.connect``: its directory made as by
    :func:`private_directory`, the file created empty with mode 0600 (SQLite takes an empty
    file for a new database), and an existing one and its companions tightened to 0600 if
    others could read them (those this user owns)."""
    private_directory(path.parent)
    # Read-only: an existing file another REX made read-only still opens, as SQLite would.
    descriptor = os.open(path, os.O_RDONLY | os.O_CREAT, FILE_MODE)
    os.close(descriptor)
    for file in (path, *(path.with_name(path.name + suffix) for suffix in SQLITE_COMPANIONS)):
        _owner_only(file)
    return path


def private_file(path: Path) -> int:
    """Open `path` for appending, creating it 0600 if missing; returns the descriptor (for a
    child process's log, say). An existing file keeps its mode."""
    return os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, FILE_MODE)


def _owner_only(file: Path) -> None:
    try:
        mode = file.stat().st_mode
    except FileNotFoundError:
        return
    if stat.S_IMODE(mode) & ~FILE_MODE:
        # Another user's file (an operator's copy, say) is theirs to tighten, not ours.
        with contextlib.suppress(PermissionError):
            os.chmod(file, FILE_MODE)
