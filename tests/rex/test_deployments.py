"""Several deployments on one broker, the pure parts: member logins (rex.identity), the
ownership mark on member users (rex.ownership), and REX_DEPLOYMENT (the marks of
throw-away exchanges are in tests/loadtest/test_throwaway.py)."""

from __future__ import annotations

import argparse

import pytest

from cli import main as cli
from cli import members as cli_trading
from rex.config import ConfigError, ProcessConfig
from rex.identity import check_deployment, login_of, member_of
from rex.ownership import Owner, foreign_owner, owners_marked

# ---------------------------------------------------------------------- logins


def test_a_members_login_is_its_id_without_a_deployment_and_scoped_with_one() -> None:
    assert login_of("ganzhou-magnet", "") == "ganzhou-magnet"
    assert login_of("ganzhou-magnet", "prod") == "prod.ganzhou-magnet"


@pytest.mark.parametrize("member", ["ganzhou-magnet", "a", "load-000", "x_y-z"])
@pytest.mark.parametrize("deployment", ["", "prod", "tmp-0a1b2c3d"])
def test_a_login_maps_back_to_its_member(member: str, deployment: str) -> None:
    assert member_of(login_of(member, deployment), deployment) == member


@pytest.mark.parametrize(
    ("login", "deployment"),
    [
        ("prod.alice", ""),  # another deployment's member, seen by an unnamed one
        ("alice", "prod"),  # an unnamed deployment's member (or an operator)
        ("test.alice", "prod"),  # another named deployment's
        ("prodx.alice", "prod"),  # a longer name with ours as its prefix
        ("prod.", "prod"),  # no member
        ("prod.a.b", "prod"),  # member ids have no '.'
        ("", ""),
    ],
)
def test_a_login_of_no_member_of_this_deployment_maps_to_none(login: str, deployment: str) -> None:
    assert member_of(login, deployment) is None


@pytest.mark.parametrize("name", ["", "prod", "a", "tmp-0a1b2c3d", "x" * 32, "0-9"])
def test_valid_deployment_names(name: str) -> None:
    assert check_deployment(name) is None


@pytest.mark.parametrize("name", ["Prod", "-prod", "prod.x", "pro d", "x" * 33, "prod_1"])
def test_invalid_deployment_names_are_refused_naming_the_rule(name: str) -> None:
    assert check_deployment(name) == (
        "must be empty or 1-32 lower-case letters, digits or '-', not starting with '-', "
        f"got {name!r}"
    )


def test_settings_read_rex_deployment() -> None:
    assert ProcessConfig.from_env({}).deployment == ""
    assert ProcessConfig.from_env({"REX_DEPLOYMENT": "prod"}).deployment == "prod"


def test_a_bad_rex_deployment_is_a_config_error_naming_the_variable() -> None:
    with pytest.raises(ConfigError) as error:
        ProcessConfig.from_env({"REX_DEPLOYMENT": "Prod.1"})
    assert str(error.value) == (
        "REX_DEPLOYMENT: must be 1-32 lower-case letters, digits or '-', not starting with "
        "'-', got 'Prod.1'; fix it, or unset it for the default (no name: members log in as "
        "their member id)"
    )


def test_the_rex_command_reports_a_bad_rex_deployment_without_a_traceback(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("REX_DEPLOYMENT", "-bad")
    assert cli.main(["config", "check"]) == 2
    err = capsys.readouterr().err
    assert "rex config check: REX_DEPLOYMENT: must be 1-32 lower-case letters" in err
    assert "Traceback" not in err


# ----------------------------------------------------------------------- marks


@pytest.mark.parametrize("vhost", ["/", "rex-prod", "a,b", "x@y", "rex/t 1"])
def test_the_mark_names_deployment_and_vhost_and_reads_back(vhost: str) -> None:
    owner = Owner("prod", vhost)
    assert "," not in owner.tag  # RabbitMQ splits tags at commas
    assert Owner.from_tag(owner.tag) == owner


def test_the_mark_format() -> None:
    assert Owner("prod", "rex-prod").tag == "rex-deployment:prod@rex-prod"
    assert Owner("", "/").tag == "rex-deployment:@%2F"
    assert str(Owner("", "/")) == "deployment (unnamed) on vhost '/'"
    assert str(Owner("prod", "p")) == "deployment 'prod' on vhost 'p'"


def test_other_tags_are_not_marks() -> None:
    assert owners_marked(["administrator", "rex-deploymentx", "monitoring"]) == frozenset()
    assert Owner.from_tag("rex-deployment:prod") == Owner("prod", "?")  # never ours


OURS = Owner("prod", "rex-prod")


def no_vhosts() -> set[str]:
    raise AssertionError("a marked user's vhosts need not be asked")


def test_a_user_marked_ours_is_ours() -> None:
    assert foreign_owner([OURS.tag], OURS, no_vhosts) is None


def test_a_user_marked_for_another_deployment_or_vhost_is_foreign() -> None:
    assert foreign_owner([Owner("test", "rex-prod").tag], OURS, no_vhosts) == (
        "deployment 'test' on vhost 'rex-prod'"
    )
    assert foreign_owner([Owner("prod", "other").tag], OURS, no_vhosts) == (
        "deployment 'prod' on vhost 'other'"
    )
    both = [OURS.tag, Owner("", "/").tag]
    assert foreign_owner(both, OURS, no_vhosts) == "deployment (unnamed) on vhost '/'"


def test_an_unmarked_user_with_permissions_only_on_our_vhost_or_none_is_a_legacy_one() -> None:
    assert foreign_owner([], OURS, lambda: {"rex-prod"}) is None
    assert foreign_owner([], OURS, set) is None


def test_an_unmarked_user_with_permissions_elsewhere_or_other_tags_is_foreign() -> None:
    assert foreign_owner([], OURS, lambda: {"rex-prod", "/", "b"}) == (
        "not marked, with permissions on vhost '/', 'b'"
    )
    assert foreign_owner(["administrator"], OURS, no_vhosts) == ("not marked, tagged administrator")


def test_member_commands_log_in_as_the_deployments_login(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: dict[str, object] = {}

    class Recorder:
        def __init__(self, member: str, password: str, url: str, *, login: str) -> None:
            seen.update(member=member, login=login)

    monkeypatch.setattr(cli_trading, "Client", Recorder)
    monkeypatch.setenv("REX_DEPLOYMENT", "prod")
    cli_trading.member_client(argparse.Namespace(member="ganzhou-magnet", password="pw"))
    assert seen == {"member": "ganzhou-magnet", "login": "prod.ganzhou-magnet"}
