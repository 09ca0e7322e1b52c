"""What a `rex` command is, so that each service can contribute its own (its
``commands.py``) and one root parser (the top layer, cli/) assemble them: a name, the group
of the people who use it, a summary for ``rex --help``, and how it runs -- in the root
parser's process (``configure`` gives its sub-parser the arguments and a ``func`` returning
the exit status), or as a module's own command line (``main``, given the arguments as they
are, imported only when the command runs)."""

from __future__ import annotations

import argparse
import importlib
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum

__all__ = ["Command", "Group", "module_main"]


class Group(StrEnum):
    """Who uses a command; ``rex --help`` lists the commands by group."""

    MEMBER = "members: trading, and their own settlement settings and bills"
    OPERATOR = "operators: configuration, the broker, trading status and bands, the services"
    SETTLEMENT = "settlement: the settlement store (statements, payments, bills, disputes)"


@dataclass(frozen=True, slots=True)
class Command:
    """One ``rex`` command: in-process (``configure``) or a module's own (``main``)."""

    name: str
    group: Group
    summary: str
    configure: Callable[[argparse.ArgumentParser], None] | None = None
    main: Callable[[list[str]], int] | None = None


def module_main(module: str, function: str = "main") -> Callable[[list[str]], int]:
    """``module.function(argv)``, the module imported only when it runs, so that
    ``rex --help`` loads no service."""

    def run(argv: list[str]) -> int:
        entry: Callable[[list[str]], int] = getattr(importlib.import_module(module), function)
        return entry(argv)

    return run
