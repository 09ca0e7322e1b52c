"""The load test's `rex` command."""

from rex.commands import Command, Group, module_main

COMMANDS = (
    Command("loadtest", Group.OPERATOR, "size the exchange: simulated members against real "
            "services", main=module_main("loadtest.__main__")),
)  # fmt: skip
