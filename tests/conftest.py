"""Settings every test shares."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from rex.environment import REX_CURSOR_DIR


@pytest.fixture(scope="session", autouse=True)
def cursor_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Members' read positions (rex/member_log.py) go to a folder of the test run, not the
    user's own state folder; set in the environment so `rex` subprocesses use it too."""
    name = REX_CURSOR_DIR.name
    before = os.environ.get(name)
    os.environ[name] = str(tmp_path_factory.mktemp("cursors"))
    yield
    if before is None:
        del os.environ[name]
    else:
        os.environ[name] = before
