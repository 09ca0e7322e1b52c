"""Whose a RabbitMQ user is: the mark `rex provision` puts on each member user it makes.

RabbitMQ users are global to the broker, so one deployment's ``rex provision`` could change
or delete another deployment's user of the same name. Each member user therefore carries a
tag naming the deployment and the vhost it was provisioned for::

    rex-deployment:<REX_DEPLOYMENT>@<vhost, percent-encoded>

e.g. ``rex-deployment:prod@rex-prod``, or ``rex-deployment:@%2F`` for an unnamed deployment
on vhost "/". (The vhost is percent-encoded because RabbitMQ splits tags at commas, which a
vhost name may contain.) A tag that is not one of RabbitMQ's own gives no rights: the user
still has no management access and cannot impersonate.

`rex provision` changes or deletes a user only if it is its own: marked for its deployment
and vhost, or a *legacy* user -- unmarked, with no other tags and permissions on no vhost
but its own, as provisioning made them before marks existed -- which it adopts by marking.
"""

from __future__ import annotations

import urllib.parse
from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass
from typing import Final

__all__ = ["MARK_PREFIX", "Owner", "foreign_owner", "owners_marked"]

MARK_PREFIX: Final = "rex-deployment:"


@dataclass(frozen=True, slots=True)
class Owner:
    """A deployment on a vhost: who a member user belongs to."""

    deployment: str
    vhost: str

    @property
    def tag(self) -> str:
        return f"{MARK_PREFIX}{self.deployment}@{urllib.parse.quote(self.vhost, safe='')}"

    @classmethod
    def from_tag(cls, tag: str) -> Owner | None:
        """The owner a tag names; None if it is not a mark. A mark without '@' names a
        deployment on an unknown vhost ("?"), so it is never taken for ours."""
        if not tag.startswith(MARK_PREFIX):
            return None
        deployment, at, vhost = tag[len(MARK_PREFIX) :].partition("@")
        return cls(deployment, urllib.parse.unquote(vhost) if at else "?")

    def __str__(self) -> str:
        name = repr(self.deployment) if self.deployment else "(unnamed)"
        return f"deployment {name} on vhost {self.vhost!r}"


def owners_marked(tags: Iterable[str]) -> frozenset[Owner]:
    """The owners a user's tags name (usually one, or none)."""
    return frozenset(o for o in map(Owner.from_tag, tags) if o is not None)


def foreign_owner(
    tags: Collection[str], ours: Owner, vhosts: Callable[[], Collection[str]]
) -> str | None:
    """Whom a user belongs to if not to ``ours``, in words; None if it is ours to change.

    ``tags`` are the user's tags; ``vhosts`` gives the vhosts it has permissions (or topic
    permissions) on, asked only for an unmarked user.
    """
    owners = owners_marked(tags)
    if owners:
        others = sorted(str(o) for o in owners - {ours})
        return None if not others else ", ".join(others)
    if tags:
        return f"not marked, tagged {', '.join(sorted(tags))}"
    elsewhere = sorted(v for v in vhosts() if v != ours.vhost)
    if elsewhere:
        return f"not marked, with permissions on vhost {', '.join(map(repr, elsewhere))}"
    return None
