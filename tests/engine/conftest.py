"""The book tests run on both books of engine/book_protocol.py: the exchange's
(`engine.book.OrderBook`, ids `[book]`) and the reference model
(`engine.reference_book.ReferenceBook`, ids `[reference]`)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from engine.book import OrderBook
from engine.book_protocol import Book
from engine.reference_book import ReferenceBook
from rex.config import Product
from tests.engine.helpers import PRODUCT, NewBook, make_product

BOOKS: dict[str, Callable[[Product], Book]] = {"book": OrderBook, "reference": ReferenceBook}


@pytest.fixture
def product() -> Product:
    return PRODUCT


@pytest.fixture(params=list(BOOKS))
def new_book(request: pytest.FixtureRequest) -> NewBook:
    """Makes empty books of the implementation under test."""
    implementation = BOOKS[request.param]

    def make(**overrides: Any) -> Book:
        return implementation(make_product(**overrides) if overrides else PRODUCT)

    return make


@pytest.fixture
def book(new_book: NewBook) -> Book:
    """An empty, open PRND-OX book."""
    return new_book()
