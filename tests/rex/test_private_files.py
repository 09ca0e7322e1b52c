"""rex.private_files: what REX creates is its owner's alone, whatever the umask."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

from rex.member_log import Cursor, FileCursorStore
from rex.private_files import keep_created_files_private, private_database, private_directory
from tests.file_modes import modes, private, typical_umask


def test_a_private_directory_and_its_missing_parents_are_0700(tmp_path: Path) -> None:
    with typical_umask():
        private_directory(tmp_path / "a" / "b" / "c")
    assert modes(tmp_path) == {"a": 0o700, "a/b": 0o700, "a/b/c": 0o700}


def test_an_existing_directory_keeps_the_mode_it_has(tmp_path: Path) -> None:
    shared = tmp_path / "shared"
    shared.mkdir(mode=0o755)
    os.chmod(shared, 0o755)
    private_directory(shared)
    assert modes(tmp_path) == {"shared": 0o755}


def test_a_database_and_its_wal_and_shm_files_are_0600(tmp_path: Path) -> None:
    with typical_umask():
        path = private_database(tmp_path / "data" / "x.sqlite3")
        db = sqlite3.connect(path)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("CREATE TABLE t (x)")
        db.execute("INSERT INTO t VALUES (1)")
        db.commit()
        found, expected = modes(tmp_path), private(tmp_path)
        db.close()
    assert {"data/x.sqlite3-wal", "data/x.sqlite3-shm"} <= set(found), found
    assert found == expected


def test_a_database_left_readable_by_an_older_rex_is_made_0600(tmp_path: Path) -> None:
    with typical_umask():
        old = tmp_path / "x.sqlite3"
        sqlite3.connect(old).close()
        old.with_name("x.sqlite3-wal").touch()
    assert modes(tmp_path) == {"x.sqlite3": 0o644, "x.sqlite3-wal": 0o644}
    private_database(old)
    assert modes(tmp_path) == {"x.sqlite3": 0o600, "x.sqlite3-wal": 0o600}


def test_a_service_umask_makes_whatever_it_creates_owner_only(tmp_path: Path) -> None:
    before = os.umask(0o022)
    try:
        keep_created_files_private()
        (tmp_path / "report.csv").write_text("x")
        (tmp_path / "folder").mkdir()
    finally:
        os.umask(before)
    assert modes(tmp_path) == {"folder": 0o700, "report.csv": 0o600}


def test_a_members_cursor_files_and_directories_are_private(tmp_path: Path) -> None:
    with typical_umask():
        store = FileCursorStore.for_login("127.0.0.1", 5672, "/", "m1", tmp_path / "cursors")
        store.save(Cursor())
    found = modes(tmp_path)
    assert found == private(tmp_path), found
    assert "cursors/127.0.0.1-5672/%2F/m1.cursor" in found
