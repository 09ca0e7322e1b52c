"""`rex provision` makes the services' own broker users (rex/service_users.py), against a
real RabbitMQ: marked, no management tag, the table's permissions, idempotent; skipped
without a password, an error with ``--service-users``; another deployment's left alone.

A vhost and a deployment name of its own (users ``t<token>.rex-gateway``, ...), removed
afterwards, also when a test fails."""

from __future__ import annotations

import secrets
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from cli import main as cli
from rex.config import ConfigError, ProcessConfig
from rex.environment import REX_BROKER_ADMIN_URL, REX_TEST_AMQP_URL
from rex.ownership import Owner
from rex.provision import (
    BrokerAdmin,
    ServiceAction,
    provision,
    service_permissions,
)
from rex.service_users import SERVICE_USERS, Service, service_user
from tests.rex.test_provision import write_config

pytestmark = pytest.mark.broker

ADMIN_URL = REX_BROKER_ADMIN_URL.get()
AMQP_BASE = REX_TEST_AMQP_URL.get()
TIMEOUT = 5


@dataclass
class Site:
    admin: BrokerAdmin
    vhost: str
    deployment: str
    process_config: ProcessConfig
    passwords: dict[str, str]  # variable -> password

    def login(self, service: Service) -> str:
        return service_user(service).login(self.deployment)


@pytest.fixture
def site(tmp_path: Path) -> Iterator[Site]:
    token = secrets.token_hex(4)
    vhost, deployment = f"rex-su-{token}", f"t{token}"
    admin = BrokerAdmin(ADMIN_URL, timeout=TIMEOUT)
    member = f"su{token}"
    config = write_config(tmp_path / "config", [(member, "pw-member", True)])
    broker_url = f"{AMQP_BASE}/{urllib.parse.quote(vhost, safe='')}"
    process_config = ProcessConfig(config, tmp_path, broker_url, ADMIN_URL, deployment)
    passwords = {u.password.name: secrets.token_urlsafe(12) for u in SERVICE_USERS}
    admin.put_vhost(vhost)
    try:
        amqp_user = urllib.parse.unquote(urllib.parse.urlsplit(AMQP_BASE).username or "guest")
        admin.put_permissions(vhost, amqp_user, ".*", ".*", ".*")
        yield Site(admin, vhost, deployment, process_config, passwords)
    finally:
        admin.delete_user(f"{deployment}.{member}")
        for user in SERVICE_USERS:
            admin.delete_user(user.login(deployment))
        admin.delete_vhost(vhost)


def test_provision_makes_each_service_user_with_its_mark_and_permissions_once(
    site: Site,
) -> None:
    report = provision(site.process_config, site.passwords, timeout=TIMEOUT)
    assert {(s.service, s.action, s.permissions_set) for s in report.services} == {
        (u.service, ServiceAction.CREATED, True) for u in SERVICE_USERS
    }
    mark = Owner(site.deployment, site.vhost).tag
    for user in SERVICE_USERS:
        stored = site.admin.get_user(user.login(site.deployment))
        assert stored is not None and stored["tags"] == [mark]  # no management tag
        assert site.admin.get_permissions(site.vhost, stored["name"]) == service_permissions(user)
        assert site.admin.get_topic_permissions(site.vhost, stored["name"]) == []

    again = provision(site.process_config, site.passwords, timeout=TIMEOUT)
    assert {s.action for s in again.services} == {ServiceAction.UNCHANGED}
    assert not any(s.changed for s in again.services)


def test_provision_restores_a_service_users_permissions_and_drops_a_management_tag(
    site: Site,
) -> None:
    provision(site.process_config, site.passwords, timeout=TIMEOUT)
    login = site.login(Service.ENGINE)
    variable = service_user(Service.ENGINE).password.name
    mark = Owner(site.deployment, site.vhost).tag
    site.admin.put_user(login, site.passwords[variable], f"{mark},management")
    site.admin.put_permissions(site.vhost, login, ".*", ".*", ".*")
    report = provision(site.process_config, site.passwords, timeout=TIMEOUT)
    engine = next(s for s in report.services if s.service is Service.ENGINE)
    assert (engine.action, engine.permissions_set) == (ServiceAction.UPDATED, True)
    stored = site.admin.get_user(login)
    assert stored is not None and stored["tags"] == [mark]
    assert site.admin.get_permissions(site.vhost, login) == service_permissions(
        service_user(Service.ENGINE)
    )

    site.admin.put_user(login, "another-password", mark)
    report = provision(site.process_config, site.passwords, timeout=TIMEOUT)
    engine = next(s for s in report.services if s.service is Service.ENGINE)
    assert (engine.action, engine.permissions_set) == (ServiceAction.UPDATED, False)


def test_a_service_without_a_password_is_skipped_unless_required(site: Site) -> None:
    given = {k: v for k, v in site.passwords.items() if not k.startswith("REX_BANK_SIM")}
    report = provision(site.process_config, given, timeout=TIMEOUT)
    skipped = [s.service for s in report.services if s.action is ServiceAction.SKIPPED]
    assert skipped == [Service.BANK_SIM]
    assert site.admin.get_user(site.login(Service.BANK_SIM)) is None

    site.admin.delete_user(site.login(Service.GATEWAY))
    with pytest.raises(ConfigError, match="REX_BANK_SIM_BROKER_PASSWORD: is not set"):
        provision(site.process_config, given, timeout=TIMEOUT, require_service_users=True)
    # Refused before anything changed: the gateway's user was not made again.
    assert site.admin.get_user(site.login(Service.GATEWAY)) is None


def test_another_deployments_service_user_is_left_alone(site: Site) -> None:
    login = site.login(Service.GATEWAY)
    other = Owner("someone-else", site.vhost).tag
    site.admin.put_user(login, "theirs", other)
    report = provision(site.process_config, site.passwords, timeout=TIMEOUT)
    gateway = next(s for s in report.services if s.service is Service.GATEWAY)
    assert gateway.action is ServiceAction.FOREIGN and report.refused_services == (gateway,)
    stored = site.admin.get_user(login)
    assert stored is not None and stored["tags"] == [other]
    assert site.admin.get_permissions(site.vhost, login) is None


def test_cli_provision_reports_service_users_and_requires_them_when_asked(
    site: Site, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("REX_BROKER_URL", site.process_config.broker_url)
    monkeypatch.setenv("REX_BROKER_ADMIN_URL", ADMIN_URL)
    monkeypatch.setenv("REX_DEPLOYMENT", site.deployment)
    for user in SERVICE_USERS:
        monkeypatch.delenv(user.password.name, raising=False)
    config_dir = str(site.process_config.config_dir)
    assert cli.main(["provision", "--config-dir", config_dir, "--service-users"]) == 2
    assert "REX_GATEWAY_BROKER_PASSWORD: is not set" in capsys.readouterr().err
    assert site.admin.get_user(site.login(Service.GATEWAY)) is None

    for variable, password in site.passwords.items():
        monkeypatch.setenv(variable, password)
    assert cli.main(["provision", "--config-dir", config_dir, "--service-users"]) == 0
    out = capsys.readouterr().out
    assert f"service gateway ({site.login(Service.GATEWAY)})  user created, permissions set" in (
        out
    )
    assert all(password not in out for password in site.passwords.values())
