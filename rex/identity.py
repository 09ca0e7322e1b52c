"""Member ids and RabbitMQ logins: one deployment's members on a broker shared with others.

RabbitMQ users are global to the broker, so two deployments (a production exchange and a
test one, or two load tests) with a member of the same id would share one user. A
deployment therefore has a name, ``REX_DEPLOYMENT``, and its members log in as
``<deployment>.<member>``; with no name (the default) the login is the member id, as it
always was. Member ids cannot contain ``.``, so a login maps back to one member only.

RabbitMQ requires a message's ``user_id`` to equal the login, so the services receive the
login and map it back with :func:`member_of`; reports, trades, settlement and routing keys
always carry the member id.
"""

from __future__ import annotations

import re
from typing import Final

__all__ = ["DEPLOYMENT_RULE", "check_deployment", "login_of", "member_of"]

_DEPLOYMENT_RE: Final = re.compile(r"[a-z0-9][a-z0-9-]{0,31}")
#: What a deployment name must be, as error messages say it.
DEPLOYMENT_RULE: Final = (
    "must be empty or 1-32 lower-case letters, digits or '-', not starting with '-'"
)


def check_deployment(name: str) -> str | None:
    """Why ``name`` is not a valid deployment name, or None if it is ("" is: no name)."""
    if name == "" or _DEPLOYMENT_RE.fullmatch(name):
        return None
    return f"{DEPLOYMENT_RULE}, got {name!r}"


def login_of(member: str, deployment: str) -> str:
    """The RabbitMQ login of ``member`` in ``deployment``."""
    return f"{deployment}.{member}" if deployment else member


def member_of(login: str, deployment: str) -> str | None:
    """The member whose login ``login`` is in ``deployment``; None if it is not a member
    login of this deployment (another deployment's, or an operator's)."""
    if deployment:
        prefix = f"{deployment}."
        if not login.startswith(prefix):
            return None
        login = login[len(prefix) :]
    if not login or "." in login:
        return None
    return login
