"""The engine's `rex` command."""

from rex.commands import Command, Group, module_main

COMMANDS = (
    Command("engine", Group.OPERATOR, "run a matching engine service (a group of products)",
            main=module_main("engine.__main__")),
)  # fmt: skip
