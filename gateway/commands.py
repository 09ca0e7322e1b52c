"""The gateway's `rex` command."""

from rex.commands import Command, Group, module_main

COMMANDS = (
    Command("gateway", Group.OPERATOR, "run the request gateway service",
            main=module_main("gateway.__main__")),
)  # fmt: skip
