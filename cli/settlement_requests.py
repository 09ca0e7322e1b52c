"""What the settlement-request commands (`rex limits`, `rex my-bills`) share: the
connection (a member's, or the operator's acting for one), the common options, running a
request with the documented exit statuses, and the answer as ``--json`` prints it.

Exit status: 0 accepted, 1 rejected, else the table of rex.cli_errors (2 usage or
configuration, 3 no answer in time, 4-7 the broker).
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

from cli.members import member_client, member_reaching
from rex.cli_errors import Reaching, guard
from rex.client import Client, OperatorClient
from rex.config import ConfigError, ProcessConfig
from rex.environment import REX_MEMBER
from rex.operator_login import OperatorLogin
from rex.settlement_protocol import SettlementAnswer

Handler = Callable[[argparse.Namespace], int]
Request = Callable[[Client, argparse.Namespace], SettlementAnswer]
Printer = Callable[[SettlementAnswer, bool], int]


def connect(args: argparse.Namespace) -> Client:
    """The member's connection, or with ``--operator`` the operator account's of
    $REX_OPERATOR_URL (acting for ``--member``)."""
    if args.operator:
        if not args.member:
            raise ConfigError("(command line)", "--operator needs --member: for whom")
        process_config = ProcessConfig.from_env()
        if process_config.members_file.exists():
            process_config.check_members(args.member)
        login = OperatorLogin.from_env(process_config)
        return OperatorClient(
            login.url, login.operator, not_an_account=login.not_an_account("--operator")
        )
    return member_client(args)


#: What answers settlement requests: NO_ANSWER says to check it.
ANSWERED_BY_SETTLEMENT = "check that the settlement worker runs (ask the operator)"


def reaching(args: argparse.Namespace) -> Reaching:
    """What a request command reaches: the broker, as the member or as the operator."""
    if args.operator:
        try:
            login = OperatorLogin.from_env(ProcessConfig.from_env())
        except ConfigError:  # connect() says what is wrong, inside the guard
            return Reaching(no_answer=ANSWERED_BY_SETTLEMENT)
        return login.reaching(ANSWERED_BY_SETTLEMENT)
    return member_reaching(args, ANSWERED_BY_SETTLEMENT)


def acting_for(args: argparse.Namespace) -> str | None:
    """The member an operator acts for (None: members act for themselves)."""
    return args.member if args.operator else None


def answer_dict(answer: SettlementAnswer) -> dict[str, Any]:
    """The answer as ``--json`` prints it."""
    return {
        "answer_id": answer.answer_id,
        "request_id": answer.request_id,
        "request": answer.request,
        "member": answer.member,
        "status": answer.status,
        "reason": answer.reason,
        "text": answer.text,
        "field": answer.field,
        "detail": answer.detail,
    }


def run(prog: str, request: Request, printer: Printer) -> Handler:
    """A handler that sends ``request`` and prints its answer, with the exit statuses above."""

    def handler(args: argparse.Namespace) -> int:
        def send() -> int:
            args.member = args.member or REX_MEMBER.get()  # what every later use reads
            with connect(args) as client:
                return printer(request(client, args), args.json)

        return guard(prog, reaching(args), send)

    return handler


def action_adder(
    actions: argparse._SubParsersAction,  # type: ignore[type-arg]
) -> Callable[[str, str], argparse.ArgumentParser]:
    """A function adding one sub-command with the options every request command takes."""

    def action(name: str, help: str) -> argparse.ArgumentParser:
        sub: argparse.ArgumentParser = actions.add_parser(name, help=help)
        sub.add_argument("--member", help="member id (default $REX_MEMBER)")
        sub.add_argument("--password", help="password (default $REX_PASSWORD or members.toml)")
        sub.add_argument(
            "--operator",
            action="store_true",
            help="act for --member as the operator account of $REX_OPERATOR_URL (role "
            "settlement_ops)",
        )
        sub.add_argument("--timeout", type=float, default=10.0, help="seconds to wait")
        sub.add_argument("--json", action="store_true", help="print the answer as JSON")
        return sub

    return action
