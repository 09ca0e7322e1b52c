"""Settlement's `rex` commands: the worker, and the operators' commands (on the store, or sent
to the worker as the operator's settlement requests)."""

from rex.commands import Command, Group, module_main

_S = Group.SETTLEMENT

COMMANDS = (
    Command("settlement", _S, "run the settlement worker service",
            main=module_main("settlement_worker.__main__")),
    Command("statement", _S, "a member's balances and postings over a period",
            main=module_main("settlement_worker.reports.statement")),
    Command("payments", _S, "payments needing an operator: review, release, resolve",
            main=module_main("settlement_worker.payments.commands")),
    Command("bills", _S, "bills on the store: list, show, endorse, discount, mature, dishonour",
            main=module_main("settlement_worker.bills.commands")),
    Command("dispute", _S, "disputes on trades and bills: open, resolve, list, show",
            main=module_main("settlement_worker.disputes.commands")),
    Command("offline", _S, "offline (negotiated) trades: report, confirm, decline, list",
            main=module_main("settlement_worker.offline.commands")),
    Command("audit", _S, "search the settlement audit log, as an auditor (role audit)",
            main=module_main("settlement_worker.audit.commands")),
    Command("reconcile", _S, "check the settlement store's books add up",
            main=module_main("settlement_worker.reports.reconcile")),
)  # fmt: skip
