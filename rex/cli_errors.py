"""Why a ``rex`` command failed: one exit status per cause, and a message that names what
could not be reached and what to check. docs/members/cli.md ("Exit status") has the table.

Every command runs its work through :func:`guard`, which turns the failures below into
their status and one line on stderr, never a traceback; an exception it does not know (a
bug) still raises. The causes are recognised from the outside, by the exceptions pika, the
SDK, the configuration and the database drivers raise.
"""

from __future__ import annotations

import socket
import sqlite3
import sys
from collections.abc import Callable
from dataclasses import dataclass
from enum import IntEnum
from typing import Final

import pika
import pika.exceptions
from pika.adapters.utils import connection_workflow as workflow

from rex.broker_addresses import parse_addresses
from rex.client import ClientError
from rex.config import ConfigError
from rex.provision import BrokerAdminError, BrokerAdminUnreachable, ProvisionError

__all__ = [
    "MEMBER_LOGIN",
    "OPERATOR_LOGIN",
    "ExitStatus",
    "Failure",
    "Login",
    "Reaching",
    "classify",
    "guard",
]


class ExitStatus(IntEnum):
    """The exit status of every ``rex`` command, one per cause."""

    OK = 0
    REFUSED = 1  # the exchange or one of its rules refused the request (reconcile: differences)
    USAGE = 2  # the command line or the configuration is wrong
    NO_ANSWER = 3  # the request went out, no answer came in time
    BROKER_UNREACHABLE = 4  # no connection to RabbitMQ, or it was lost
    LOGIN_REFUSED = 5  # the broker refused the user name or password
    NOT_PERMITTED = 6  # logged in, but the broker refused the vhost or an operation
    NOT_PROVISIONED = 7  # the broker lacks the vhost, an exchange, a queue or a route
    DATABASE_UNREACHABLE = 8  # the settlement store could not be opened or was lost


@dataclass(frozen=True, slots=True)
class Failure:
    status: ExitStatus
    message: str


@dataclass(frozen=True, slots=True)
class Login:
    """Which broker login a command needs, and where its password comes from."""

    needed: str  # "the operator's login"
    check: str  # what to check when it is refused


MEMBER_LOGIN: Final = Login(
    "a member's login",
    "check the member id and its password (--password, $REX_PASSWORD or members.toml), "
    "and that `rex provision` ran since the member was added",
)
OPERATOR_LOGIN: Final = Login(
    "an operator account's login (operators.toml)",
    "check the user and password in $REX_BROKER_URL",
)


@dataclass(frozen=True, slots=True)
class Reaching:
    """What a command reaches, so that a failure can name it."""

    broker_url: str | None = None
    url_from: str = "$REX_BROKER_URL"  # where the command took the URL from
    user: str | None = None  # the broker login, when it is not the URL's own user
    login: Login = OPERATOR_LOGIN
    no_answer: str = "check that the exchange's services run"  # who answers, to check
    database: str | None = None  # the settlement store, as "postgresql host:port/db"


def guard(prog: str, reaching: Reaching, run: Callable[[], int]) -> int:
    """``run()``'s exit status; a failure of a known cause prints ``<prog>: <message>`` to
    stderr and returns that cause's status."""
    try:
        return run()
    except Exception as error:
        failure = classify(error, reaching)
        if failure is None:
            raise
        print(f"{prog}: {failure.message}", file=sys.stderr)
        return int(failure.status)


def classify(error: BaseException, reaching: Reaching) -> Failure | None:
    """The cause of ``error`` as a status and a message; None if it is no known cause."""
    if isinstance(error, ConfigError):
        return Failure(ExitStatus.USAGE, str(error))
    if isinstance(error, ClientError):
        return _client_error(error, reaching)
    if isinstance(error, ProvisionError):
        return _provision_error(error, reaching)
    if isinstance(error, TimeoutError):
        text = str(error) or "no answer in time"
        return Failure(ExitStatus.NO_ANSWER, f"{text}: {reaching.no_answer}")
    if isinstance(error, _BROKER_ERRORS):
        return _broker_error(error, _Broker.of(reaching))
    database = _database_error(error, reaching)
    if database is not None:
        return database
    if isinstance(error, OSError) and error.filename is not None:
        return Failure(ExitStatus.USAGE, f"{error.filename}: {error.strerror or error}")
    return None


# ------------------------------------------------------------------------------ broker

#: What connecting to the broker raises: pika's errors, its connection workflow's (a
#: handshake that times out comes out as one, not as an AMQPError), and the socket's.
_BROKER_ERRORS: Final = (
    pika.exceptions.AMQPError,
    workflow.AMQPConnectorException,
    socket.gaierror,
    ConnectionError,
)


@dataclass(frozen=True, slots=True)
class _Broker:
    """The broker a command tried, as its messages name it."""

    where: str  # "127.0.0.1:5672"
    vhost: str
    user: str
    url_from: str
    login: Login

    @classmethod
    def of(cls, reaching: Reaching) -> _Broker:
        try:
            params = parse_addresses(reaching.broker_url or "amqp://").parameters()[0]
        except Exception:  # pika's own parse errors are ValueErrors and worse
            where = "(an unreadable URL)"
            return cls(where, "?", reaching.user or "?", reaching.url_from, reaching.login)
        user = reaching.user or str(getattr(params.credentials, "username", "?"))
        where = f"{params.host}:{params.port}"
        return cls(where, params.virtual_host, user, reaching.url_from, reaching.login)

    @property
    def named(self) -> str:
        return f"the broker at {self.where} (vhost {self.vhost!r})"


def _broker_error(error: BaseException, broker: _Broker) -> Failure:
    exc = pika.exceptions
    if isinstance(error, exc.ProbableAuthenticationError | exc.AuthenticationError):
        return Failure(
            ExitStatus.LOGIN_REFUSED,
            f"{broker.named} refused the login of user {broker.user!r}: {broker.login.check}",
        )
    if isinstance(error, exc.ProbableAccessDeniedError):
        return _vhost_refused(error, broker)
    if isinstance(error, exc.ChannelClosedByBroker):
        return _channel_closed(error, broker)
    if isinstance(error, exc.UnroutableError):
        return Failure(
            ExitStatus.NOT_PROVISIONED,
            f"{broker.named} had no queue to route the message to: run `rex provision` "
            "on that vhost (it declares the exchanges, queues and bindings)",
        )
    if isinstance(error, exc.NackError):
        return Failure(
            ExitStatus.BROKER_UNREACHABLE,
            f"{broker.named} did not take the message (nack): check RabbitMQ's memory and "
            "disk alarms (rabbitmq-diagnostics alarms)",
        )
    if isinstance(error, exc.ConnectionClosedByBroker):
        return Failure(
            ExitStatus.BROKER_UNREACHABLE,
            f"{broker.named} closed the connection ({error.reply_code} {error.reply_text}): "
            "check that RabbitMQ runs and is not restarting",
        )
    return Failure(
        ExitStatus.BROKER_UNREACHABLE,
        f"cannot reach {broker.named}: {_why_unreachable(error)}; check "
        f"{broker.url_from} and that RabbitMQ runs there",
    )


def _vhost_refused(error: BaseException, broker: _Broker) -> Failure:
    said = _broker_text(error)
    if "not found" in said:
        return Failure(
            ExitStatus.NOT_PROVISIONED,
            f"{broker.named} has no such vhost: check the vhost in {broker.url_from} "
            "(create it with `rabbitmqctl add_vhost`, then run `rex provision`)",
        )
    return Failure(
        ExitStatus.NOT_PERMITTED,
        f"{broker.named} refused user {broker.user!r} access to the vhost"
        f"{f' ({said})' if said else ''}: the user needs permissions on it (`rex provision` "
        f"sets the members'), or check the vhost in {broker.url_from}",
    )


def _channel_closed(error: pika.exceptions.ChannelClosedByBroker, broker: _Broker) -> Failure:
    said = f"{error.reply_code} {error.reply_text}"
    if error.reply_code == 403:
        return Failure(
            ExitStatus.NOT_PERMITTED,
            f"{broker.named} refused user {broker.user!r} ({said}): this command needs "
            f"{broker.login.needed}; {broker.login.check}",
        )
    if error.reply_code in (404, 406):
        return Failure(
            ExitStatus.NOT_PROVISIONED,
            f"{broker.named} is not set up for this command ({said}): run `rex provision` "
            "on that vhost (a queue declared with other arguments must be deleted first)",
        )
    return Failure(
        ExitStatus.BROKER_UNREACHABLE,
        f"{broker.named} closed the channel ({said}): check the broker's log",
    )


def _broker_text(error: BaseException) -> str:
    """What the broker said when it closed a connection being opened: pika keeps it only
    as the text of the first argument, ``ConnectionClosedByBroker: (530) 'NOT_ALLOWED...'``."""
    text = str(error.args[0]) if error.args else ""
    return text.split(") ", 1)[-1].strip("'\"") if ") " in text else text


def _why_unreachable(error: BaseException) -> str:
    root = _root_cause(error)
    if isinstance(root, socket.gaierror):
        return f"host name not found ({root.strerror})"
    if isinstance(root, ConnectionRefusedError):
        return "connection refused (nothing listens on that port)"
    if isinstance(root, TimeoutError | workflow.AMQPConnectorStackTimeout):
        return "no answer within the connection timeout"
    if isinstance(root, pika.exceptions.IncompatibleProtocolError):
        return "the other side is not an AMQP 0-9-1 broker (is that RabbitMQ's AMQP port?)"
    if isinstance(root, pika.exceptions.StreamLostError):
        return "the connection was lost"
    if isinstance(root, OSError):
        return root.strerror or type(root).__name__
    return repr(root) if str(root) == "" else str(root)


def _root_cause(error: BaseException) -> BaseException:
    """The innermost error pika wrapped: it nests them in ``args``, in ``exception`` (one
    phase of the connection workflow) and in ``exceptions`` (every attempt)."""
    seen: set[int] = set()
    current = error
    while id(current) not in seen:
        seen.add(id(current))
        inner: object = None
        if isinstance(current, workflow.AMQPConnectionWorkflowFailed) and current.exceptions:
            inner = current.exceptions[-1]
        elif isinstance(current, workflow.AMQPConnectorPhaseErrorBase):
            inner = current.exception
        elif isinstance(current, pika.exceptions.AMQPConnectionError) and current.args:
            inner = current.args[0]
        if not isinstance(inner, BaseException):
            return current
        current = inner
    return current


def _client_error(error: ClientError, reaching: Reaching) -> Failure:
    """The SDK's own error: by the broker error under it if there is one, else the
    request could not be made as given."""
    cause = error.__cause__ or error.__context__
    if isinstance(cause, _BROKER_ERRORS):
        underneath = _broker_error(cause, _Broker.of(reaching))
        text = str(error)
        message = f"{text}; {underneath.message}" if text else underneath.message
        return Failure(underneath.status, message)
    return Failure(ExitStatus.USAGE, str(error) or type(error).__name__)


def _provision_error(error: ProvisionError, reaching: Reaching) -> Failure:
    if isinstance(error, BrokerAdminUnreachable):
        return Failure(ExitStatus.BROKER_UNREACHABLE, f"{error}; and check that RabbitMQ runs")
    if isinstance(error, BrokerAdminError):
        statuses = {401: ExitStatus.LOGIN_REFUSED, 403: ExitStatus.NOT_PERMITTED}
        status = statuses.get(error.status or 0, ExitStatus.BROKER_UNREACHABLE)
        return Failure(status, str(error))
    # Provisioning re-raises the broker's errors as its own (from None): the original
    # is still its context.
    context = error.__context__
    if isinstance(context, _BROKER_ERRORS):
        return _broker_error(context, _Broker.of(reaching))
    return Failure(ExitStatus.USAGE, str(error))


# ---------------------------------------------------------------------------- database


def _database_error(error: BaseException, reaching: Reaching) -> Failure | None:
    import psycopg  # here: most commands never touch a database

    if not isinstance(error, psycopg.OperationalError | sqlite3.OperationalError):
        return None
    store = reaching.database or "the settlement store"
    first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    if isinstance(error, sqlite3.OperationalError):
        check = "check $REX_DATA_DIR (or --data-dir) and the file's permissions"
    else:
        check = "check $REX_DATABASE_URL (or --database-url) and that PostgreSQL runs there"
    return Failure(ExitStatus.DATABASE_UNREACHABLE, f"cannot use {store}: {first}; {check}")
