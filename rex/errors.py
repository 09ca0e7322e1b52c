"""The configuration error every layer raises: a file, an environment variable or a
command-line option that is wrong, named with what is wrong about it.

It lives apart from :mod:`rex.config` so that :mod:`rex.environment`, which
:mod:`rex.config` reads its settings through, can raise it too.
"""

from __future__ import annotations

import functools
import os
from typing import Any

__all__ = ["ConfigError"]


class ConfigError(Exception):
    """Invalid or unreadable configuration.

    The message names the file (or the variable, or the option) and, where relevant, the
    entry and the field, e.g. ``config/products.toml: product 'ND-OX': field 'tick': must
    be a positive integer, got -5``. The parts are also available as attributes.
    """

    file: str | None
    entry: str | None
    field: str | None
    reason: str

    def __init__(
        self,
        file: str | os.PathLike[str] | None,
        reason: str,
        *,
        entry: str | None = None,
        field: str | None = None,
    ) -> None:
        self.file = None if file is None else os.fspath(file)
        self.entry = entry
        self.field = field
        self.reason = reason
        parts = [self.file, entry, None if field is None else f"field {field!r}", reason]
        super().__init__(": ".join(p for p in parts if p is not None))

    def __reduce__(self) -> tuple[Any, tuple[Any, ...]]:
        rebuild = functools.partial(ConfigError, entry=self.entry, field=self.field)
        return rebuild, (self.file, self.reason)
