"""`rex provision` deletes the users it made for people who are no longer in its files.

A member firm or an operator account taken out of ``members.toml`` or ``operators.toml``
(rather than marked ``enabled = false``) would otherwise keep its RabbitMQ user, and with it
a working login: an operator who left could still publish requests that the operator desk
refuses only until the next gateway start reads an older file. So a user is *stray*, and is
deleted with its connections closed, when it is

* marked for this deployment and vhost (rex.ownership), and by that mark alone (a user with
  any other tag, such as ``administrator``, is somebody's deliberate work: left alone);
* not the login of any member (enabled or not), operator account or service user of this
  deployment, nor the user of the broker or management URL.

Unmarked users, and users of other deployments, are never touched.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from typing import TYPE_CHECKING

from rex.ownership import Owner

if TYPE_CHECKING:  # rex.provision calls this module
    from rex.provision import BrokerAdmin

__all__ = ["StrayUser", "remove_stray_users"]


@dataclass(frozen=True, slots=True)
class StrayUser:
    """A user of this deployment that no file names any more: deleted (or, in a dry run,
    to delete)."""

    login: str
    connections_closed: int = 0


def remove_stray_users(
    admin: BrokerAdmin, owner: Owner, known_logins: Collection[str], dry_run: bool
) -> tuple[StrayUser, ...]:
    """Delete every user marked only for ``owner`` whose login is not in ``known_logins``."""
    strays = []
    for login, tags in sorted(admin.list_user_tags().items()):
        if login in known_logins or tags != {owner.tag}:
            continue
        # From the management stats, so a connection opened in the last seconds may be
        # missing from the count; deleting the user closes it all the same.
        connections = len(admin.list_user_connections(login))
        if not dry_run:
            admin.delete_user(login)
            admin.close_user_connections(login)
        strays.append(StrayUser(login, connections))
    return tuple(strays)
