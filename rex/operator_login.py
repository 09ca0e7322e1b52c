"""An operator command's login and its one request: what `rex halt` and the settlement
operator commands (`rex dispute`, `rex payments`, `rex bills`, `rex offline`) share.

The command logs in as the operator account of ``REX_OPERATOR_URL`` (else
``REX_BROKER_URL``), starts reading that account's own answer stream from "next", publishes
one request with confirms and waits for the answer to it. The service that answers decides
whether the login may act (its role, operators.toml) and records the login as the actor:
nothing the command is given names who acts. What is checked here first (the login's being
an operator account) only makes the common mistake say so at once.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

import pika
from pika.adapters.blocking_connection import BlockingChannel

from rex import topology
from rex.broker_addresses import parse_addresses
from rex.cli_errors import Login, Reaching
from rex.config import ConfigError, ProcessConfig
from rex.environment import REX_OPERATOR_URL
from rex.identity import member_of
from rex.protocol import CONTENT_TYPE, pack
from rex.settlement_protocol import SettlementAnswer

__all__ = [
    "DEFAULT_TIMEOUT_S",
    "OPERATOR_ACCOUNT_LOGIN",
    "OperatorLogin",
    "ask",
    "settlement_request",
]

DEFAULT_TIMEOUT_S = 10.0

#: What an operator command says when the broker refuses its login.
OPERATOR_ACCOUNT_LOGIN = Login(
    "an operator account's login (operators.toml, provisioned by `rex provision`); set "
    "REX_OPERATOR_URL to amqp://<operator>:<password>@<host>:<port>/<vhost>",
    "check the operator and password in $REX_OPERATOR_URL (or $REX_BROKER_URL when it is "
    "unset), and that `rex provision` ran since the account was added",
)

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class OperatorLogin:
    """The broker login an operator command acts with, and the account it is."""

    url: str
    url_from: str  # "$REX_OPERATOR_URL" or "$REX_BROKER_URL", for the messages
    login: str  # the broker user
    operator: str | None  # the operator account's name; None: the login is none
    operators_file: str

    @classmethod
    def from_env(cls, process_config: ProcessConfig) -> OperatorLogin:
        own_url = REX_OPERATOR_URL.get()
        url = own_url or process_config.broker_url
        login = parse_addresses(url).username  # a cluster's list: one login
        operator = member_of(login, process_config.deployment) if login else None
        if operator not in process_config.operators():
            operator = None
        return cls(
            url,
            "$REX_OPERATOR_URL" if own_url else "$REX_BROKER_URL",
            login,
            operator,
            str(process_config.operators_file),
        )

    def not_an_account(self, prog: str) -> ConfigError:
        return ConfigError(
            self.url_from,
            f"user {self.login!r} is no operator account of {self.operators_file}: "
            f"{prog} needs {OPERATOR_ACCOUNT_LOGIN.needed}",
        )

    def reaching(self, no_answer: str) -> Reaching:
        return Reaching(
            self.url, url_from=self.url_from, login=OPERATOR_ACCOUNT_LOGIN, no_answer=no_answer
        )


def ask(
    url: str,
    login: str,
    operator: str | None,
    *,
    exchange: str,
    routing_key: str,
    body: bytes,
    kind: str,
    request_id: str,
    answer_of: Callable[[Any, bytes], T | None],
    timeout_s: float,
    what: str,
    not_an_account: Exception | None = None,
) -> T:
    """Publish one request as ``login`` (operator account ``operator``) and wait on the
    account's answer stream for the first message ``answer_of(properties, body)`` takes
    (not None); TimeoutError naming ``what`` if none comes in ``timeout_s``. ``operator``
    None: ``not_an_account`` is raised once the broker took the login, so that a broker
    that is down, or a wrong password, is said first."""
    found: list[T] = []
    connection = pika.BlockingConnection(parse_addresses(url).parameters())
    try:
        if operator is None:
            raise not_an_account or ValueError(f"{login!r} is no operator account")
        reader: BlockingChannel = connection.channel()
        reader.basic_qos(prefetch_count=50)

        def on_answer(channel: BlockingChannel, method: Any, props: Any, raw: bytes) -> None:
            channel.basic_ack(method.delivery_tag)
            answer = answer_of(props, raw)
            if answer is not None:
                found.append(answer)

        # Reading from "next" before publishing: the answer comes after the consumer is on.
        reader.basic_consume(
            topology.operator_answers(operator), on_answer, arguments={"x-stream-offset": "next"}
        )
        channel = connection.channel()
        channel.confirm_delivery()
        channel.basic_publish(
            exchange,
            routing_key,
            body,
            pika.BasicProperties(
                content_type=CONTENT_TYPE,
                delivery_mode=2,
                type=kind,
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
                    f"no answer to {what} in {timeout_s:g} s (the request was taken by the broker)"
                )
            connection.process_data_events(time_limit=min(left, 0.2))
        return found[0]
    finally:
        if connection.is_open:
            connection.close()


def settlement_request(
    login: OperatorLogin,
    prog: str,
    kind: str,
    body: Mapping[str, Any],
    *,
    timeout_s: float = DEFAULT_TIMEOUT_S,
) -> SettlementAnswer:
    """Send the settlement request ``kind`` with ``body`` as ``login``'s account and return
    the worker's answer: an operator action (rex.operators.Action's value) for no member,
    or a member's request for the member ``body["member"]`` names."""
    request_id = f"{kind}-{uuid.uuid4().hex}"

    def answer_of(props: Any, raw: bytes) -> SettlementAnswer | None:
        if props.type != SettlementAnswer.kind:
            return None
        answer = SettlementAnswer.decode(raw)
        return answer if answer.request_id == request_id else None

    return ask(
        login.url,
        login.login,
        login.operator,
        exchange=topology.SETTLEMENT_REQUESTS,
        routing_key=topology.settlement_request_key(login.operator or "", kind),
        body=pack(dict(body)),
        kind=kind,
        request_id=request_id,
        answer_of=answer_of,
        timeout_s=timeout_s,
        what=kind,
        not_an_account=login.not_an_account(prog),
    )
