"""`rex provision` for operator accounts against a real RabbitMQ (rex/operator_provision.py):
one user per enabled account, its password from the environment, marked for the
deployment, allowed to publish only its own operator requests and to read only its own
answers; deleted when disabled. Its own vhost and users, removed afterwards."""

from __future__ import annotations

import contextlib
import secrets
import urllib.parse
from collections.abc import Iterator
from pathlib import Path

import pika
import pika.exceptions
import pytest

from cli import main as cli
from rex import topology
from rex.config import ProcessConfig
from rex.environment import REX_BROKER_ADMIN_URL, REX_TEST_AMQP_URL
from rex.errors import ConfigError
from rex.operator_provision import operator_permissions
from rex.ownership import Owner
from rex.provision import BrokerAdmin, MemberAction, Permissions, TopicPermissions, provision
from tests.rex.test_provision import write_config

pytestmark = pytest.mark.broker

ADMIN_URL = REX_BROKER_ADMIN_URL.get()
AMQP_BASE = REX_TEST_AMQP_URL.get()
TIMEOUT = 5


def write_operators(directory: Path, accounts: list[tuple[str, str, bool]]) -> None:
    (directory / "operators.toml").write_text(
        "".join(
            f'[[operators]]\nname = "{name}"\ndisplay_name = "{name}"\nroles = ["{role}"]\n'
            f'password_env = "REX_PW_T_{name.upper().replace("-", "_")}"\n'
            f"enabled = {str(enabled).lower()}\n\n"
            for name, role, enabled in accounts
        )
    )


def env_of(names: list[str], password: str) -> dict[str, str]:
    return {f"REX_PW_T_{n.upper().replace('-', '_')}": password for n in names}


@pytest.fixture
def world(tmp_path: Path) -> Iterator[tuple[BrokerAdmin, ProcessConfig, str, str, str]]:
    admin = BrokerAdmin(ADMIN_URL, timeout=TIMEOUT)
    token = secrets.token_hex(4)
    vhost = f"rex-t-ops-{token}"
    prefix = f"t{token}-"
    admin.put_vhost(vhost)
    try:
        admin.put_permissions(vhost, "guest", ".*", ".*", ".*")
        member = prefix + "member"
        config = write_config(tmp_path / "config", [(member, "pw", True)])
        url = f"{AMQP_BASE}/{urllib.parse.quote(vhost, safe='')}"
        yield admin, ProcessConfig(config, tmp_path, url, ADMIN_URL), vhost, prefix, member
    finally:
        for user in admin.list_users():
            if user.startswith(prefix):
                admin.delete_user(user)
        admin.delete_vhost(vhost)


@contextlib.contextmanager
def login(vhost: str, user: str, password: str) -> Iterator[pika.BlockingConnection]:
    parts = urllib.parse.urlsplit(AMQP_BASE)
    connection = pika.BlockingConnection(
        pika.ConnectionParameters(
            host=parts.hostname or "127.0.0.1",
            port=parts.port or 5672,
            virtual_host=vhost,
            credentials=pika.PlainCredentials(user, password),
            connection_attempts=1,
        )
    )
    try:
        yield connection
    finally:
        if connection.is_open:
            connection.close()


def test_an_operator_gets_its_own_user_with_only_its_own_rights(
    world: tuple[BrokerAdmin, ProcessConfig, str, str, str],
) -> None:
    admin, process_config, vhost, prefix, _member = world
    market, audit = prefix + "market", prefix + "audit"
    write_operators(process_config.config_dir, [(market, "market_ops", True),
                                                (audit, "audit", True)])  # fmt: skip
    env = env_of([market, audit], "op-secret")
    report = provision(process_config, env, timeout=TIMEOUT)
    assert [(o.member, o.action) for o in report.operators] == [
        (market, MemberAction.CREATED),
        (audit, MemberAction.CREATED),
    ]
    user = admin.get_user(market)
    assert user is not None and user["tags"] == [Owner("", vhost).tag]
    escaped = market.replace("-", r"\-")
    assert (
        admin.get_permissions(vhost, market)
        == Permissions(
            "^$",
            r"^(rex\.operator\.requests|rex\.settlement\.requests)$",
            rf"^rex\.operator\.{escaped}\.answers$",
        )
        == operator_permissions(market)
    )
    assert sorted(admin.get_topic_permissions(vhost, market), key=str) == [
        TopicPermissions("rex.operator.requests", rf"^{escaped}\.[^.]+$", "^$"),
        TopicPermissions("rex.settlement.requests", rf"^{escaped}\.[^.]+$", "^$"),
    ]
    # Its answer stream exists; a second run changes nothing.
    again = provision(process_config, env, timeout=TIMEOUT)
    assert [o.action for o in again.operators] == [MemberAction.UNCHANGED] * 2
    assert not any(o.changed for o in again.operators)
    with login(vhost, market, "op-secret") as connection:
        channel = connection.channel()
        channel.queue_declare(topology.operator_answers(market), passive=True)
        # Not the other operator's answers, not the engine's input, not the member requests.
        for queue in (topology.operator_answers(audit),):
            with pytest.raises(pika.exceptions.ChannelClosedByBroker) as refused:
                connection.channel().basic_consume(
                    queue, lambda *a: None, arguments={"x-stream-offset": "first"}
                )
            assert refused.value.reply_code == 403
        for exchange, key in (
            (topology.ENGINE, "PRND-OX"),
            (topology.REQUESTS, f"{market}.PRND-OX"),
            (topology.OPERATOR_REQUESTS, f"{audit}.halt"),
            (topology.SETTLEMENT_REQUESTS, f"{audit}.dispute_resolve"),
        ):
            publisher = connection.channel()
            publisher.confirm_delivery()
            with pytest.raises(pika.exceptions.ChannelClosedByBroker) as refused:
                publisher.basic_publish(exchange, key, b"x")
            assert refused.value.reply_code == 403, (exchange, key)


def test_a_missing_password_variable_is_named_and_nothing_is_made(
    world: tuple[BrokerAdmin, ProcessConfig, str, str, str],
) -> None:
    admin, process_config, _vhost, prefix, member = world
    market = prefix + "market"
    write_operators(process_config.config_dir, [(market, "market_ops", True)])
    with pytest.raises(ConfigError) as error:
        provision(process_config, {}, timeout=TIMEOUT)
    variable = f"REX_PW_T_{market.upper().replace('-', '_')}"
    assert f"environment variable {variable!r} is not set" in str(error.value)
    assert admin.get_user(market) is None and admin.get_user(member) is None


def test_a_disabled_account_loses_its_user(
    world: tuple[BrokerAdmin, ProcessConfig, str, str, str],
) -> None:
    admin, process_config, vhost, prefix, _member = world
    market = prefix + "market"
    write_operators(process_config.config_dir, [(market, "market_ops", True)])
    provision(process_config, env_of([market], "op-secret"), timeout=TIMEOUT)
    assert admin.get_user(market) is not None
    write_operators(process_config.config_dir, [(market, "market_ops", False)])
    report = provision(process_config, {}, timeout=TIMEOUT)  # no password needed now
    assert [o.action for o in report.operators] == [MemberAction.DELETED]
    assert admin.get_user(market) is None
    password = "op-secret"  # the one it had: the user is gone, not the password changed
    with pytest.raises(pika.exceptions.ProbableAuthenticationError), login(vhost, market, password):
        pass


def test_an_operator_named_like_a_member_is_refused_before_anything_changes(
    world: tuple[BrokerAdmin, ProcessConfig, str, str, str],
) -> None:
    admin, process_config, _vhost, _prefix, member = world
    write_operators(process_config.config_dir, [(member, "market_ops", True)])
    with pytest.raises(ConfigError, match="is also a member id"):
        provision(process_config, env_of([member], "x"), timeout=TIMEOUT)
    assert admin.get_user(member) is None


def test_rex_provision_says_what_it_did_with_each_account(
    world: tuple[BrokerAdmin, ProcessConfig, str, str, str],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    _admin, process_config, _vhost, prefix, _member = world
    market, gone = prefix + "market", prefix + "gone"
    write_operators(process_config.config_dir, [(market, "market_ops", True),
                                                (gone, "audit", False)])  # fmt: skip
    for name, value in {
        **env_of([market], "op-secret"),
        "REX_BROKER_URL": process_config.broker_url,
        "REX_BROKER_ADMIN_URL": ADMIN_URL,
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("REX_DEPLOYMENT", raising=False)
    assert cli.main(["provision", "--config-dir", str(process_config.config_dir)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert f"operator {market}  user created, permissions set, topic permissions set" in out
    assert f"operator {gone}    disabled: no user" in out
    assert out[-1].endswith("; 2 operator accounts (1 enabled); done")


def test_an_account_taken_out_of_its_file_loses_its_user_and_its_connection(
    world: tuple[BrokerAdmin, ProcessConfig, str, str, str],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Before rex/stray_users.py, an operator (or member) removed from its file kept a
    working broker login for good."""
    admin, process_config, vhost, prefix, member = world
    market, gone = prefix + "market", prefix + "gone"
    write_operators(process_config.config_dir, [(market, "market_ops", True),
                                                (gone, "audit", True)])  # fmt: skip
    left_member = prefix + "left"
    write_config(process_config.config_dir, [(member, "pw", True), (left_member, "pw", True)])
    provision(process_config, env_of([market, gone], "op-secret"), timeout=TIMEOUT)
    # Users this deployment did not make: another vhost's mark, a second tag, no mark.
    other_mark, tagged, unmarked = prefix + "other", prefix + "tagged", prefix + "unmarked"
    admin.put_user(other_mark, "x", Owner("", vhost + "-elsewhere").tag)
    admin.put_user(tagged, "x", f"{Owner('', vhost).tag},monitoring")
    admin.put_user(unmarked, "x")

    write_operators(process_config.config_dir, [(market, "market_ops", True)])
    write_config(process_config.config_dir, [(member, "pw", True)])
    with login(vhost, gone, "op-secret") as connection:
        dry = provision(process_config, env_of([market], "op-secret"), dry_run=True,
                        timeout=TIMEOUT)  # fmt: skip
        assert sorted(s.login for s in dry.strays) == [gone, left_member]
        assert dry.changed and admin.get_user(gone) is not None  # a dry run deletes nothing

        for name, value in {
            **env_of([market], "op-secret"),
            "REX_BROKER_URL": process_config.broker_url,
            "REX_BROKER_ADMIN_URL": ADMIN_URL,
        }.items():
            monkeypatch.setenv(name, value)
        monkeypatch.delenv("REX_DEPLOYMENT", raising=False)
        assert cli.main(["provision", "--config-dir", str(process_config.config_dir)]) == 0
        out = capsys.readouterr().out.splitlines()
        assert any(
            line.startswith(f"user {gone}  in no file any more") and "deleted" in line
            for line in out
        ), out
        # Its open connection was closed with the user.
        with pytest.raises(pika.exceptions.AMQPError):
            for _ in range(50):
                connection.process_data_events(time_limit=0.1)
    assert admin.get_user(gone) is None and admin.get_user(left_member) is None
    for kept in (market, member, other_mark, tagged, unmarked):
        assert admin.get_user(kept) is not None, kept
    with (
        pytest.raises(pika.exceptions.ProbableAuthenticationError),
        login(vhost, gone, "op-secret"),
    ):
        pass
    assert provision(process_config, env_of([market], "op-secret"), timeout=TIMEOUT).strays == ()
