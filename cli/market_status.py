"""`rex halt|resume|close PRODUCT`: an operator's request to the gateway's operator desk.

The command logs in as the operator (``REX_OPERATOR_URL``, else ``REX_BROKER_URL``), starts
reading its own answer stream, publishes the request with confirms to
``rex.operator.requests`` and waits for the answer (rex/operator_requests.py). The desk,
not this command, decides: a login without the role is refused there, whatever this command
was given. What is checked here first (the product, the login's being an account) only
makes the common mistakes say so at once.
"""

from __future__ import annotations

import argparse
import sys
import uuid
from collections.abc import Callable
from typing import Any

from rex import topology
from rex.cli_errors import ExitStatus, guard
from rex.config import ConfigError, ProcessConfig, TradingStatus
from rex.fields import did_you_mean
from rex.operator_login import DEFAULT_TIMEOUT_S, OPERATOR_ACCOUNT_LOGIN, OperatorLogin, ask
from rex.operator_requests import (
    ANSWER_TYPE,
    REQUEST_TYPE,
    OperatorAnswer,
    OperatorRequest,
    Verdict,
    decode_answer,
    encode_request,
)
from rex.operators import Action

__all__ = ["DEFAULT_TIMEOUT_S", "OPERATOR_ACCOUNT_LOGIN", "configure_status", "send"]

#: The trading status each action leaves the product in, as the command prints it.
STATUS_AFTER = {
    Action.HALT: TradingStatus.HALTED,
    Action.RESUME: TradingStatus.OPEN,
    Action.CLOSE: TradingStatus.CLOSED,
}


def send(
    url: str,
    login: str,
    operator: str | None,
    request: OperatorRequest,
    *,
    timeout_s: float = DEFAULT_TIMEOUT_S,
    not_an_account: Exception | None = None,
) -> OperatorAnswer:
    """Publish ``request`` as ``login`` (operator account ``operator``) and wait for its
    answer (rex.operator_login.ask); TimeoutError if none comes in ``timeout_s``."""
    request_id = f"{request.action}-{uuid.uuid4().hex}"

    def answer_of(props: Any, raw: bytes) -> OperatorAnswer | None:
        if props.type != ANSWER_TYPE or props.message_id != f"op-{request_id}":
            return None
        return decode_answer(raw)

    return ask(
        url,
        login,
        operator,
        exchange=topology.OPERATOR_REQUESTS,
        routing_key=topology.operator_request_key(operator or "", request.action),
        body=encode_request(request),
        kind=REQUEST_TYPE,
        request_id=request_id,
        answer_of=answer_of,
        timeout_s=timeout_s,
        what=f"{request.action} {request.product}",
        not_an_account=not_an_account,
    )


def _status(prog: str, action: Action) -> Callable[[argparse.Namespace], int]:
    def handler(args: argparse.Namespace) -> int:
        process_config = ProcessConfig.from_env()
        login = OperatorLogin.from_env(process_config)

        def run() -> int:
            products = process_config.products()
            if args.product not in products:
                close = did_you_mean(args.product, products)
                hint = f" ({close})" if close else ""
                raise ConfigError(
                    process_config.products_file, f"no product {args.product!r}{hint}"
                )
            answer = send(
                login.url,
                login.login,
                login.operator,
                OperatorRequest(action, args.product),
                timeout_s=args.timeout,
                not_an_account=login.not_an_account(prog),
            )
            if answer.verdict is Verdict.DONE:
                print(f"{args.product}: {STATUS_AFTER[action]}")
                return ExitStatus.OK
            print(f"{prog}: refused ({answer.reason}): {answer.text}", file=sys.stderr)
            return ExitStatus.REFUSED

        reaching = login.reaching("check that the gateway runs: it serves operator requests")
        return guard(prog, reaching, run)

    return handler


def configure_status(action: Action) -> Callable[[argparse.ArgumentParser], None]:
    """`rex halt|resume|close PRODUCT`."""

    def configure(parser: argparse.ArgumentParser) -> None:
        parser.description = (
            f"{(parser.description or '').rstrip('.')}. Logs in as an operator account with "
            "the role market_ops ($REX_OPERATOR_URL, else $REX_BROKER_URL) and asks the gateway's "
            "operator desk, which checks the role, appends the status to the product's input "
            "log and audits it (docs/operators/accounts.md). Exit status 0 done, 1 refused, "
            "2 not an operator account or no such product, 3 no answer."
        ).strip()
        parser.add_argument("product")
        parser.add_argument(
            "--timeout",
            type=float,
            default=DEFAULT_TIMEOUT_S,
            metavar="SECONDS",
            help=f"how long to wait for the answer (default {DEFAULT_TIMEOUT_S:g})",
        )
        parser.set_defaults(func=_status(parser.prog, action))

    return configure
