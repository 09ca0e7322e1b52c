"""The demo's `rex` command."""

from rex.commands import Command, Group, module_main

COMMANDS = (
    Command("demo", Group.OPERATOR, "play a scripted trading session ([--broker URL])",
            main=module_main("demo.__main__")),
)  # fmt: skip
