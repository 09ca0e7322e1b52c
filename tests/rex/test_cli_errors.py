"""rex.cli_errors: each broker failure the real broker gives only with some effort (a
channel closed with 403, 404 or 406, a message routed nowhere, a connection the broker
closed) as the status and line a person reads. The connection failures themselves (refused,
host not found, management API down, PostgreSQL down) are run for real in tests/cli/test_main.py
and against the broker in tests/system/test_cli_errors.py."""

from __future__ import annotations

from pathlib import Path

import pika.exceptions as px
import pytest

from rex.cli_errors import MEMBER_LOGIN, ExitStatus, Failure, Login, Reaching, classify, guard
from rex.client import ClientError
from rex.config import ConfigError
from rex.provision import ProvisionError

URL = "amqp://guest:guest@broker.example:5672/rex-prod"
# What `rex halt` said of its login before operator accounts (any Login reads the same way).
ENGINE_LOGIN = Login(
    "the operator's login: the services' RabbitMQ user, which may write to rex.engine (a"
    " member's may not); set REX_BROKER_URL to amqp://<user>:<password>@<host>:<port>/<vhost>",
    "check the user and password in $REX_BROKER_URL",
)
OPERATOR = Reaching(URL, login=ENGINE_LOGIN)
MEMBER = Reaching(URL, user="ganzhou-magnet", login=MEMBER_LOGIN)
AT = "the broker at broker.example:5672 (vhost 'rex-prod')"


def test_a_write_the_broker_refuses_names_the_login_needed() -> None:
    refused = px.ChannelClosedByBroker(
        403, "ACCESS_REFUSED - access to exchange 'rex.engine' in vhost 'rex-prod' refused"
    )
    assert classify(refused, Reaching(URL, user="ganzhou-magnet", login=ENGINE_LOGIN)) == Failure(
        ExitStatus.NOT_PERMITTED,
        f"{AT} refused user 'ganzhou-magnet' (403 ACCESS_REFUSED - access to exchange "
        "'rex.engine' in vhost 'rex-prod' refused): this command needs the operator's login: "
        "the services' RabbitMQ user, which may write to rex.engine (a member's may not); set "
        "REX_BROKER_URL to amqp://<user>:<password>@<host>:<port>/<vhost>; check the user and "
        "password in $REX_BROKER_URL",
    )


@pytest.mark.parametrize(
    ("code", "text"),
    [
        (404, "NOT_FOUND - no exchange 'rex.engine' in vhost 'rex-prod'"),
        (406, "PRECONDITION_FAILED - inequivalent arg 'x-queue-type' for queue 'q'"),
    ],
)
def test_a_broker_not_set_up_says_run_provision(code: int, text: str) -> None:
    failure = classify(px.ChannelClosedByBroker(code, text), OPERATOR)
    assert failure == Failure(
        ExitStatus.NOT_PROVISIONED,
        f"{AT} is not set up for this command ({code} {text}): run `rex provision` on that "
        "vhost (a queue declared with other arguments must be deleted first)",
    )


def test_a_message_routed_nowhere_says_run_provision() -> None:
    failure = classify(px.UnroutableError([]), OPERATOR)
    assert failure is not None and failure.status is ExitStatus.NOT_PROVISIONED
    assert failure.message.startswith(f"{AT} had no queue to route the message to")


def test_the_sdk_error_keeps_its_text_and_takes_the_broker_cause() -> None:
    try:
        try:
            raise px.UnroutableError([])
        except px.UnroutableError as cause:
            raise ClientError("the exchange is not accepting requests (no route)") from cause
    except ClientError as error:
        failure = classify(error, MEMBER)
    assert failure is not None and failure.status is ExitStatus.NOT_PROVISIONED
    assert failure.message.startswith(
        f"the exchange is not accepting requests (no route); {AT} had no queue"
    )
    own = classify(ClientError("1000 unread reports are buffered: read executions()"), MEMBER)
    assert own == Failure(ExitStatus.USAGE, "1000 unread reports are buffered: read executions()")


def test_a_connection_the_broker_closes_is_broker_trouble() -> None:
    closed = px.ConnectionClosedByBroker(320, "CONNECTION_FORCED - broker forced connection")
    assert classify(closed, MEMBER) == Failure(
        ExitStatus.BROKER_UNREACHABLE,
        f"{AT} closed the connection (320 CONNECTION_FORCED - broker forced connection): check "
        "that RabbitMQ runs and is not restarting",
    )


def test_a_vhost_without_permission_is_not_permitted() -> None:
    denied = px.ProbableAccessDeniedError(
        "ConnectionClosedByBroker: (530) \"NOT_ALLOWED - access to vhost 'rex-prod' refused for "
        "user 'ganzhou-magnet'\""
    )
    failure = classify(denied, MEMBER)
    assert failure is not None and failure.status is ExitStatus.NOT_PERMITTED
    assert failure.message.startswith(
        f"{AT} refused user 'ganzhou-magnet' access to the vhost (NOT_ALLOWED - access to vhost"
    )


def test_provisioning_errors_keep_the_broker_cause() -> None:
    try:
        try:
            raise px.ProbableAuthenticationError("ACCESS_REFUSED")
        except px.AMQPError:
            raise ProvisionError("cannot connect to the broker") from None
    except ProvisionError as error:
        failure = classify(error, OPERATOR)
    assert failure == Failure(
        ExitStatus.LOGIN_REFUSED,
        f"{AT} refused the login of user 'guest': check the user and password in $REX_BROKER_URL",
    )
    config = classify(ProvisionError("member 'guest' has the same name as the admin"), OPERATOR)
    assert config is not None and config.status is ExitStatus.USAGE


def test_guard_prints_one_line_and_returns_the_status(capsys: pytest.CaptureFixture[str]) -> None:
    def fails() -> int:
        raise TimeoutError("no answer for c-1 within 1.0 s")

    reaching = Reaching(URL, no_answer="check that the gateway runs")
    assert guard("rex order", reaching, fails) == ExitStatus.NO_ANSWER
    assert capsys.readouterr().err == (
        "rex order: no answer for c-1 within 1.0 s: check that the gateway runs\n"
    )

    def config() -> int:
        raise ConfigError("config/products.toml", "no product 'X'")

    assert guard("rex halt", reaching, config) == ExitStatus.USAGE


def test_guard_lets_a_bug_through() -> None:
    def bug() -> int:
        raise KeyError("not a cause of the table")

    with pytest.raises(KeyError):
        guard("rex order", MEMBER, bug)


def test_the_cli_guide_documents_every_status_once() -> None:
    text = (Path(__file__).resolve().parents[2] / "docs" / "members" / "cli.md").read_text()
    table = text.split("### Exit status", 1)[1].split("\n\n## ", 1)[0]
    rows = [line.split("|")[1].strip() for line in table.splitlines() if line.startswith("| ")]
    assert rows[2:] == [str(int(status)) for status in ExitStatus]  # after heading, rule
