"""The gateway's tests run it with an engine in one process, on the memory bus."""

from __future__ import annotations

import pytest

from tests.embedded import Exchange


@pytest.fixture
def exchange() -> Exchange:
    return Exchange()
