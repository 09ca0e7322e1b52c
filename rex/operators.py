"""The exchange's operator accounts: people with roles, in ``operators.toml``.

An operator is a person with a login of their own, never the broker's administrator nor the
services' user. ``operators.toml`` (beside ``members.toml``) holds one ``[[operators]]``
table per account::

    [[operators]]
    name = "li-wei"                       # the person's login (rex.identity: <deployment>.<name>)
    display_name = "Li Wei"
    roles = ["market_ops"]
    password_env = "REX_PW_OPERATOR_LI_WEI"   # the password is never in the file
    enabled = true

What each role may do is one table, :data:`ACTION_ROLES`: every check (the gateway's
operator desk, the settlement worker) and the documentation (docs/operators/security.md)
read it. The store is kept general -- an account is a login, a name, roles and a password
from the environment -- so that issue 14's portal users can live in it with roles of their
own.

A missing ``operators.toml`` means no operator accounts: nobody may halt, resume or set the
band of a product until one is made (``rex config check`` says so).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any, Final

from rex.config import password_from_env, read_toml
from rex.errors import ConfigError
from rex.fields import FieldError, check_keys, describe_value, matching, text

__all__ = [
    "ACTION_ROLES",
    "MARKET_ACTIONS",
    "OPERATOR_NAME_RE",
    "Action",
    "OperatorAccount",
    "Role",
    "load_operators",
    "role_needed",
]

#: A person's login: lower-case, so that "Li-Wei" and "li-wei" are never two people; no
#: '.', so the routing key ``<name>.<action>`` has one reading.
OPERATOR_NAME_RE: Final = re.compile(r"[a-z][a-z0-9_-]{0,31}")
_ENV_NAME_RE: Final = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_MAX_DISPLAY_NAME: Final = 100


class Role(StrEnum):
    """What an operator account may do; :data:`ACTION_ROLES` says which action needs which."""

    MARKET_OPS = "market_ops"  # a product's trading status (halt, resume, close), price bands
    SETTLEMENT_OPS = "settlement_ops"  # disputes, manual-review payments, bills
    AUDIT = "audit"  # read-only: the audit log


class Action(StrEnum):
    """Every action an operator may ask for through the authenticated path: the market
    actions go to the gateway's operator desk (``rex.operator.requests``), the settlement
    ones are settlement requests of that kind (``rex.settlement.requests``)."""

    HALT = "halt"
    RESUME = "resume"
    CLOSE = "close"
    SET_BAND = "set_band"  # a product's price band from now on
    DISPUTE_RESOLVE = "dispute_resolve"  # uphold or reject an open dispute
    PAYMENT_RELEASE = "payment_release"  # send a payment in manual review again
    PAYMENT_RESOLVE = "payment_resolve"  # settle an unknown payment with what its bank said
    PAYMENT_MARK_PAID = "payment_mark_paid"  # a payment in review was paid outside REX
    BILL_MATURE = "bill_mature"  # pay every outstanding bill due by a business date
    BILL_DISHONOUR = "bill_dishonour"  # a bill was not paid at maturity: recourse
    AUDIT_SEARCH = "audit_search"  # read the settlement audit log (who changed what, and why)
    # Any other settlement request sent for a member (receipt limits, payment method, a
    # member's bill steps, opening a dispute, offline trades).
    ACT_FOR_MEMBER = "act_for_member"


#: Which role each action needs: the one table every check and the docs use.
ACTION_ROLES: Final[Mapping[Action, Role]] = {
    Action.HALT: Role.MARKET_OPS,
    Action.RESUME: Role.MARKET_OPS,
    Action.CLOSE: Role.MARKET_OPS,
    Action.SET_BAND: Role.MARKET_OPS,
    Action.DISPUTE_RESOLVE: Role.SETTLEMENT_OPS,
    Action.PAYMENT_RELEASE: Role.SETTLEMENT_OPS,
    Action.PAYMENT_RESOLVE: Role.SETTLEMENT_OPS,
    Action.PAYMENT_MARK_PAID: Role.SETTLEMENT_OPS,
    Action.BILL_MATURE: Role.SETTLEMENT_OPS,
    Action.BILL_DISHONOUR: Role.SETTLEMENT_OPS,
    Action.ACT_FOR_MEMBER: Role.SETTLEMENT_OPS,
    Action.AUDIT_SEARCH: Role.AUDIT,
}

#: The actions the gateway's operator desk serves: a product's trading status and its
#: price band.
MARKET_ACTIONS: Final = frozenset({Action.HALT, Action.RESUME, Action.CLOSE, Action.SET_BAND})


def role_needed(action: Action) -> Role:
    """The role ``action`` needs."""
    return ACTION_ROLES[action]


@dataclass(frozen=True, slots=True)
class OperatorAccount:
    """One person's account. ``password_env`` names the environment variable holding the
    password (never the password itself); ``source`` is the file it came from."""

    name: str
    display_name: str
    roles: frozenset[Role]
    password_env: str
    enabled: bool = True
    source: Path | None = field(default=None, repr=False, compare=False, kw_only=True)

    def __post_init__(self) -> None:
        matching(
            "name",
            self.name,
            OPERATOR_NAME_RE,
            "1-32 lower-case letters, digits, '_' or '-', starting with a letter",
        )
        text("display_name", self.display_name)
        if len(self.display_name) > _MAX_DISPLAY_NAME:
            raise FieldError("display_name", f"must be at most {_MAX_DISPLAY_NAME} characters")
        object.__setattr__(self, "roles", _roles(self.roles))
        matching(
            "password_env",
            self.password_env,
            _ENV_NAME_RE,
            "an environment variable name ([A-Za-z_][A-Za-z0-9_]*)",
        )
        if not isinstance(self.enabled, bool):
            raise FieldError(
                "enabled", f"must be a boolean (true or false), got {describe_value(self.enabled)}"
            )

    def may(self, action: Action) -> bool:
        """Whether the account has the role ``action`` needs (enabled or not: see enabled)."""
        return role_needed(action) in self.roles

    def resolve_password(self, env: Mapping[str, str]) -> str:
        """The password in ``env[password_env]``; a ConfigError naming the variable if it is
        unset or empty."""
        return password_from_env(
            env, self.password_env, self.source, f"operator {self.name!r}", "operator's"
        )


def _roles(value: object) -> frozenset[Role]:
    allowed = ", ".join(repr(r.value) for r in Role)
    if isinstance(value, (set, frozenset)):
        value = sorted(value)
    if not isinstance(value, list | tuple) or not value:
        raise FieldError("roles", f"must be a non-empty list of {allowed}")
    roles = set()
    for item in value:
        try:
            roles.add(Role(item))
        except ValueError:
            raise FieldError(
                "roles", f"unknown role {describe_value(item)} (roles are {allowed})"
            ) from None
    return frozenset(roles)


_REQUIRED: Final = ("name", "display_name", "roles", "password_env")
_OPTIONAL: Final = ("enabled",)


def operators_from_document(path: Path, doc: Mapping[str, Any]) -> dict[str, OperatorAccount]:
    """The accounts of a parsed ``operators.toml``, keyed by name in file order."""
    for key in doc:
        if key != "operators":
            raise ConfigError(
                path, f"unknown top-level key {key!r} (expected only [[operators]] tables)"
            )
    tables = doc.get("operators", [])
    if not isinstance(tables, list):
        raise ConfigError(path, "'operators' must be an array of tables ([[operators]])")
    accounts: dict[str, OperatorAccount] = {}
    for index, table in enumerate(tables, start=1):
        raw = table.get("name") if isinstance(table, dict) else None
        label = f"operator {raw!r}" if isinstance(raw, str) and raw else f"operator #{index}"
        if not isinstance(table, dict):
            raise ConfigError(path, f"must be a table, got {describe_value(table)}", entry=label)
        try:
            check_keys(table, _REQUIRED + _OPTIONAL)
            for key in _REQUIRED:
                if key not in table:
                    raise FieldError(key, "required field is missing")
            account = OperatorAccount(**table, source=path)
        except FieldError as exc:
            raise ConfigError(path, exc.reason, entry=label, field=exc.field) from None
        if account.name in accounts:
            raise ConfigError(path, "duplicate name", entry=label, field="name")
        accounts[account.name] = account
    return accounts


def load_operators(path: Path) -> dict[str, OperatorAccount]:
    """Load ``operators.toml``; a file that does not exist is no accounts."""
    if not path.exists():
        return {}
    return operators_from_document(path, read_toml(path))


def check_against_members(
    accounts: Mapping[str, OperatorAccount], members: Iterable[str], path: Path
) -> None:
    """An operator named like a member would share its RabbitMQ user: a ConfigError."""
    member_ids = set(members)
    for name, account in accounts.items():
        if name in member_ids:
            raise ConfigError(
                account.source or path,
                "is also a member id; an operator's login must not be a member's "
                "(rename the operator account)",
                entry=f"operator {name!r}",
                field="name",
            )


#: What each role is for, as the docs' table says it.
ROLE_MEANING: Final[Mapping[Role, str]] = {
    Role.MARKET_OPS: "a product's trading status and its price band",
    Role.SETTLEMENT_OPS: "disputes, manual-review payments, bills",
    Role.AUDIT: "read-only: searches the settlement audit log (`rex audit`), changes nothing",
}


def markdown_roles_table() -> str:
    """:data:`ACTION_ROLES` as docs/operators/security.md shows it (a test keeps them equal)."""
    lines = ["| role | may | actions |", "| --- | --- | --- |"]
    for role in Role:
        actions = ", ".join(f"`{a}`" for a, r in ACTION_ROLES.items() if r is role) or "none"
        lines.append(f"| `{role}` | {ROLE_MEANING[role]} | {actions} |")
    return "\n".join(lines) + "\n"
