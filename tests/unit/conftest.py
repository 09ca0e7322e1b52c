from __future__ import annotations

import pytest

from engine.book import OrderBook
from rex.config import Product
from tests.unit.helpers import PRODUCT


@pytest.fixture
def product() -> Product:
    return PRODUCT


@pytest.fixture
def book(product: Product) -> OrderBook:
    """An empty, open PRND-OX book."""
    return OrderBook(product)
