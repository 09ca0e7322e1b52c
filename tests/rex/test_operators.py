"""rex.operators: operator accounts (operators.toml) and the one table of which action
needs which role."""

from __future__ import annotations

from pathlib import Path

import pytest

from rex.config import ProcessConfig
from rex.config_check import check_configuration
from rex.errors import ConfigError
from rex.operators import (
    ACTION_ROLES,
    Action,
    OperatorAccount,
    Role,
    check_against_members,
    load_operators,
    markdown_roles_table,
    role_needed,
)

REPO = Path(__file__).resolve().parents[2]
SHIPPED = REPO / "config"

ACCOUNT = """
[[operators]]
name = "li-wei"
display_name = "Li Wei"
roles = ["market_ops"]
password_env = "REX_PW_OPERATOR_LI_WEI"
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "operators.toml"
    path.write_text(text)
    return path


def test_every_action_needs_exactly_one_role_and_the_market_actions_need_market_ops() -> None:
    assert set(ACTION_ROLES) == set(Action)
    assert {a: role_needed(a) for a in (Action.HALT, Action.RESUME, Action.CLOSE)} == {
        Action.HALT: Role.MARKET_OPS,
        Action.RESUME: Role.MARKET_OPS,
        Action.CLOSE: Role.MARKET_OPS,
    }
    assert [r.value for r in Role] == ["market_ops", "settlement_ops", "audit"]


@pytest.mark.parametrize("role", list(Role))
@pytest.mark.parametrize("action", list(Action))
def test_an_account_may_exactly_what_its_roles_allow(role: Role, action: Action) -> None:
    account = OperatorAccount("li-wei", "Li Wei", frozenset({role}), "REX_PW_X")
    assert account.may(action) is (ACTION_ROLES[action] is role)


def test_the_audit_role_may_only_read_the_audit_log() -> None:
    assert {a for a, role in ACTION_ROLES.items() if role is Role.AUDIT} == {Action.AUDIT_SEARCH}


def test_an_account_loads(tmp_path: Path) -> None:
    [account] = load_operators(write(tmp_path, ACCOUNT)).values()
    assert account == OperatorAccount(
        "li-wei", "Li Wei", frozenset({Role.MARKET_OPS}), "REX_PW_OPERATOR_LI_WEI"
    )
    assert account.enabled
    assert account.resolve_password({"REX_PW_OPERATOR_LI_WEI": "s3cret"}) == "s3cret"


def test_no_file_is_no_accounts(tmp_path: Path) -> None:
    assert load_operators(tmp_path / "operators.toml") == {}


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (('name = "li-wei"', 'name = "Li-Wei"'), "field 'name': must be 1-32 lower-case"),
        (('name = "li-wei"', 'name = "li.wei"'), "field 'name': must be 1-32 lower-case"),
        (('["market_ops"]', '["root"]'), "field 'roles': unknown role string 'root' (roles are"),
        (('["market_ops"]', "[]"), "field 'roles': must be a non-empty list"),
        (
            ('password_env = "REX_PW_OPERATOR_LI_WEI"', 'password = "hunter2"'),
            "field 'password': unknown key",
        ),
        (('display_name = "Li Wei"\n', ""), "field 'display_name': required field is missing"),
        (('roles = ["market_ops"]', 'roles = ["audit"]\nenabled = "yes"'), "field 'enabled'"),
    ],
)
def test_a_bad_account_names_the_file_entry_and_field(
    tmp_path: Path, change: tuple[str, str], message: str
) -> None:
    path = write(tmp_path, ACCOUNT.replace(*change))
    with pytest.raises(ConfigError) as error:
        load_operators(path)
    assert str(path) in str(error.value)
    assert message in str(error.value)
    assert "hunter2" not in str(error.value)  # a password never shows


def test_a_duplicate_name_and_an_unknown_table_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="duplicate name"):
        load_operators(write(tmp_path, ACCOUNT + ACCOUNT))
    with pytest.raises(ConfigError, match="unknown top-level key 'members'"):
        load_operators(write(tmp_path, ACCOUNT + '\n[[members]]\nid = "x"\n'))


def test_an_unset_password_names_the_variable(tmp_path: Path) -> None:
    [account] = load_operators(write(tmp_path, ACCOUNT)).values()
    with pytest.raises(ConfigError) as error:
        account.resolve_password({})
    assert str(error.value) == (
        f"{tmp_path / 'operators.toml'}: operator 'li-wei': field 'password_env': environment "
        "variable 'REX_PW_OPERATOR_LI_WEI' is not set; set it to the operator's RabbitMQ "
        "password"
    )


def test_an_operator_named_like_a_member_is_refused(tmp_path: Path) -> None:
    accounts = load_operators(write(tmp_path, ACCOUNT))
    with pytest.raises(ConfigError, match="is also a member id"):
        check_against_members(accounts, ["li-wei"], tmp_path / "operators.toml")
    check_against_members(accounts, ["baotou-metals"], tmp_path / "operators.toml")


def test_the_shipped_accounts_load_through_the_process_config() -> None:
    accounts = ProcessConfig(SHIPPED, Path("data"), "amqp://x").operators()
    assert {name: (a.roles, a.enabled) for name, a in accounts.items()} == {
        "li-wei": (frozenset({Role.MARKET_OPS}), True),
        "zhang-min": (frozenset({Role.SETTLEMENT_OPS}), False),
        "chen-jing": (frozenset({Role.AUDIT}), False),
    }


def test_config_check_reports_an_enabled_accounts_unset_password(tmp_path: Path) -> None:
    for name in ("products.toml", "members.toml"):
        (tmp_path / name).write_text((SHIPPED / name).read_text())
    write(tmp_path, ACCOUNT)
    report = check_configuration({"REX_PW_BAOTOU_METALS": "x"}, tmp_path)
    assert [str(p) for p in report.problems] == [
        f"{tmp_path / 'operators.toml'}: operator 'li-wei': field 'password_env': environment "
        "variable 'REX_PW_OPERATOR_LI_WEI' is not set; set it to the operator's RabbitMQ "
        "password"
    ]
    report = check_configuration(
        {"REX_PW_BAOTOU_METALS": "x", "REX_PW_OPERATOR_LI_WEI": "y"}, tmp_path
    )
    assert report.problems == [] and list(report.operators) == ["li-wei"]


def test_the_security_docs_show_the_role_table() -> None:
    document = (REPO / "docs" / "operators" / "security.md").read_text(encoding="utf-8")
    begin = "<!-- roles table: rex.operators.markdown_roles_table() -->\n"
    end = "<!-- end of roles table -->"
    assert document[document.index(begin) + len(begin) : document.index(end)] == (
        markdown_roles_table()
    ), "docs/operators/security.md's roles table differs from rex.operators.ACTION_ROLES"
