"""`rex provision` for operator accounts (rex/operators.py): one RabbitMQ user per person.

For each account of ``operators.toml``, on the vhost of ``REX_BROKER_URL``:

* enabled: a user named after the account's login (rex.identity: ``<name>``, or
  ``<REX_DEPLOYMENT>.<name>``), its password from the account's ``password_env``, the mark
  of its deployment (rex.ownership), no management access and no ``impersonator`` (so the
  broker checks that a request's ``user_id`` is the login), and::

      configure  ^$                                   declare, delete and bind nothing
      write      ^(rex\\.operator\\.requests|rex\\.settlement\\.requests)$
                                                      publish operator and settlement
                                                      requests only
      read       ^rex\\.operator\\.<name>\\.answers$   read its own answers only
      topic permission on rex.operator.requests and on rex.settlement.requests:
      write      ^<name>\\.[^.]+$                     routing key <name>.<action>, its own
      read       ^$

  What an operator may *do* is not the broker's business: any operator may publish any
  action; the operator desk (gateway/operator_desk.py) checks the role. The broker's part
  is who is speaking.
* disabled: the user is deleted and its connections closed; its answer stream stays.
* a user of that name that belongs to another deployment is left alone (FOREIGN), as for
  members.

Kept apart from rex/provision.py's members so that each can change without the other.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Final

from rex import topology
from rex.operators import OperatorAccount
from rex.ownership import Owner
from rex.provision import (
    BrokerAdmin,
    MemberResult,
    Permissions,
    TopicPermissions,
    provision_login,
)

__all__ = [
    "OPERATOR_REQUEST_EXCHANGES",
    "operator_permissions",
    "operator_topic_permission_set",
    "operator_topic_permissions",
    "provision_operators",
]


#: Where operators publish: market actions to the gateway's desk, settlement actions (and
#: requests for a member) to the settlement worker's.
OPERATOR_REQUEST_EXCHANGES: Final = (topology.OPERATOR_REQUESTS, topology.SETTLEMENT_REQUESTS)


def operator_permissions(name: str) -> Permissions:
    """Configure nothing, write only to the operator and settlement request exchanges,
    read only its own answers."""
    exchanges = "|".join(re.escape(e) for e in OPERATOR_REQUEST_EXCHANGES)
    return Permissions(
        configure="^$",
        write=f"^({exchanges})$",
        read=f"^{re.escape(topology.operator_answers(name))}$",
    )


def operator_topic_permissions(
    name: str, exchange: str = topology.OPERATOR_REQUESTS
) -> TopicPermissions:
    """On a request exchange, only routing keys ``<name>.<action>``."""
    return TopicPermissions(exchange=exchange, write=rf"^{re.escape(name)}\.[^.]+$", read="^$")


def operator_topic_permission_set(name: str) -> tuple[TopicPermissions, ...]:
    return tuple(operator_topic_permissions(name, e) for e in OPERATOR_REQUEST_EXCHANGES)


def provision_operators(
    admin: BrokerAdmin,
    owner: Owner,
    accounts: Mapping[str, OperatorAccount],
    passwords: Mapping[str, str],
    dry_run: bool,
) -> tuple[MemberResult, ...]:
    """Each account's user and permissions; ``passwords`` has every enabled account's.
    The results are MemberResults whose ``member`` is the account's name."""
    return tuple(
        _provision_operator(admin, owner, a, passwords.get(a.name), dry_run)
        for a in accounts.values()
    )


def _provision_operator(
    admin: BrokerAdmin,
    owner: Owner,
    account: OperatorAccount,
    password: str | None,
    dry_run: bool,
) -> MemberResult:
    return provision_login(
        admin,
        owner,
        account.name,
        account.enabled,
        password,
        operator_permissions(account.name),
        operator_topic_permission_set(account.name),
        dry_run,
    )
