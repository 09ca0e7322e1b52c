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
import time
import urllib.parse
import uuid
from collections.abc import Callable
from typing import Any

import pika
from pika.adapters.blocking_connection import BlockingChannel

from rex import topology
from rex.cli_errors import ExitStatus, Login, Reaching, guard
from rex.config import ConfigError, ProcessConfig, TradingStatus
from rex.environment import REX_OPERATOR_URL
from rex.fields import did_you_mean
from rex.identity import member_of
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
from rex.protocol import CONTENT_TYPE

__all__ = ["DEFAULT_TIMEOUT_S", "OPERATOR_ACCOUNT_LOGIN", "configure_status", "send"]

DEFAULT_TIMEOUT_S = 10.0

#: What `rex halt` says when the broker refuses its login.
OPERATOR_ACCOUNT_LOGIN = Login(
    "an operator account's login (operators.toml, provisioned by `rex provision`); set "
    "REX_OPERATOR_URL to amqp://<operator>:<password>@<host>:<port>/<vhost>",
    "check the operator and password in $REX_OPERATOR_URL (or $REX_BROKER_URL when it is "
    "unset), and that `rex provision` ran since the account was added",
)

#: The trading status each action leaves the product in, as the command prints it.
STATUS_AFTER = {
    Action.HALT: TradingStatus.HALTED,
    Action.RESUME: TradingStatus.OPEN,
    Action.CLOSE: TradingStatus.CLOSED,
}


def _login_of(url: str) -> str:
    name = urllib.parse.urlsplit(url).username
    return "" if name is None else urllib.parse.unquote(name)


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
    answer; TimeoutError if none comes in ``timeout_s``. ``operator`` None: the login is no
    account, and ``not_an_account`` is raised once the broker took the login (so that a
    broker that is down, or a wrong password, is said first)."""
    request_id = f"{request.action}-{uuid.uuid4().hex}"
    found: list[OperatorAnswer] = []
    connection = pika.BlockingConnection(pika.URLParameters(url))
    try:
        if operator is None:
            raise not_an_account or ValueError(f"{login!r} is no operator account")
        reader: BlockingChannel = connection.channel()
        reader.basic_qos(prefetch_count=50)

        def on_answer(channel: BlockingChannel, method: Any, props: Any, body: bytes) -> None:
            channel.basic_ack(method.delivery_tag)
            if props.type != ANSWER_TYPE or props.message_id != f"op-{request_id}":
                return
            found.append(decode_answer(body))

        # Reading from "next" before publishing: the answer comes after the consumer is on.
        reader.basic_consume(
            topology.operator_answers(operator), on_answer, arguments={"x-stream-offset": "next"}
        )
        channel = connection.channel()
        channel.confirm_delivery()
        channel.basic_publish(
            topology.OPERATOR_REQUESTS,
            topology.operator_request_key(operator, request.action),
            encode_request(request),
            pika.BasicProperties(
                content_type=CONTENT_TYPE,
                delivery_mode=2,
                type=REQUEST_TYPE,
                message_id=request_id,
                user_id=login,
                timestamp=int(time.time()),
            ),
            mandatory=True,
        )
        deadline = time.monotonic() + timeout_s
        while not found:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(
                    f"no answer to {request.action} {request.product} in {timeout_s:g} s "
                    "(the request was taken by the broker)"
                )
            connection.process_data_events(time_limit=min(left, 0.2))
        return found[0]
    finally:
        if connection.is_open:
            connection.close()


def _status(prog: str, action: Action) -> Callable[[argparse.Namespace], int]:
    def handler(args: argparse.Namespace) -> int:
        process_config = ProcessConfig.from_env()
        own_url = REX_OPERATOR_URL.get()
        url = own_url or process_config.broker_url
        url_from = "$REX_OPERATOR_URL" if own_url else "$REX_BROKER_URL"

        def run() -> int:
            products = process_config.products()
            if args.product not in products:
                close = did_you_mean(args.product, products)
                hint = f" ({close})" if close else ""
                raise ConfigError(
                    process_config.products_file, f"no product {args.product!r}{hint}"
                )
            login = _login_of(url)
            operator = member_of(login, process_config.deployment) if login else None
            if operator not in process_config.operators():
                operator = None
            not_an_account = ConfigError(
                url_from,
                f"user {login!r} is no operator account of {process_config.operators_file}: "
                f"{prog} needs {OPERATOR_ACCOUNT_LOGIN.needed}",
            )
            answer = send(
                url,
                login,
                operator,
                OperatorRequest(action, args.product),
                timeout_s=args.timeout,
                not_an_account=not_an_account,
            )
            if answer.verdict is Verdict.DONE:
                print(f"{args.product}: {STATUS_AFTER[action]}")
                return ExitStatus.OK
            print(f"{prog}: refused ({answer.reason}): {answer.text}", file=sys.stderr)
            return ExitStatus.REFUSED

        reaching = Reaching(
            url,
            url_from=url_from,
            login=OPERATOR_ACCOUNT_LOGIN,
            no_answer="check that the gateway runs: it serves operator requests",
        )
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
