"""The engine's flow tests on the embedded exchange (tests/embedded.py). They import
PRODUCTS and Exchange from here; once they import tests.embedded, this keeps the fixture
only."""

from __future__ import annotations

import pytest

from tests.embedded import PRODUCTS, Exchange

__all__ = ["PRODUCTS", "Exchange"]


@pytest.fixture
def exchange() -> Exchange:
    return Exchange()
