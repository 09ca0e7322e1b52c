"""Each service's own RabbitMQ user, and the least it may do on the broker (issue 12).

The services used to log in as the broker's administrator (``guest``). Now each has a user
of its own, made by ``rex provision`` (rex/provision.py, "service users") with no
management tag and these vhost permissions, derived below from the names of
rex/topology.py::

    configure  what it declares: the exchanges it uses, its own queues (the exclusive
               queues of its locks too)
    write      the exchanges it publishes to, and the queues it binds (RabbitMQ checks
               write on the queue for queue.bind)
    read       the queues it consumes, and the exchanges it binds them from (read on the
               exchange for queue.bind)

Names that vary (a product, a member, an engine group, a bank) become the patterns their
configuration allows: no product symbol, member id or bank id contains a dot, so
``rex\\.engine\\.<product>`` never matches ``rex.engine.images``. RabbitMQ matches one regex
against exchange and queue names alike, so every pattern is checked against both kinds of
name (tests/rex/test_service_users.py).

What this keeps out, at the broker: the gateway cannot publish trades or read what
settlement reads (the members' settlement request queues included); the engine reads no
member's request (neither the queues nor, by binding a queue of its own, the request
exchanges); settlement cannot write engine input; none may read the dead letters, which
hold members' requests.

RabbitMQ's configure permission covers delete as well as declare, so a service may delete
what it declares (the gateway, the engines' input logs it declares so that its input waits
for an engine; the engine, rex.settlement.trades, for the same reason). And a queue with a
dead-letter exchange is declared the first time only by a user who may also write to
rex.dead, which no service may: ``rex provision`` (the administrator) creates every queue
before the services start, and a service whose queue is missing stops with the broker's
refusal (run ``rex provision``).
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Final

from rex import environment, topology
from rex.environment import Variable
from rex.identity import login_of
from rex.topology import Binding, Topology

__all__ = [
    "DEFAULT_EXCHANGE",
    "SERVICE_USERS",
    "VARIABLE_NAMES",
    "Rights",
    "Service",
    "ServiceUser",
    "broker_url_of",
    "markdown_table",
    "service_user",
]

#: What a product symbol may be (rex/config.py), a member id, engine group or bank id
#: (rex/environment.py, settlement_worker/configuration.py). None holds a dot.
PRODUCT_PATTERN: Final = "[A-Z0-9][A-Z0-9-]{0,15}"
NAME_PATTERN: Final = environment.MEMBER_ID_RE.pattern

#: RabbitMQ's name, for permissions, of the default exchange (publishing to a queue by name).
DEFAULT_EXCHANGE: Final = "amq.default"

# Names are built from rex.topology with these in place of a product, member, engine group
# or bank, then turned into patterns.
_PRODUCT, _MEMBER, _GROUP, _BANK = "{product}", "{member}", "{group}", "{bank}"
_PLACEHOLDERS: Final = {
    _PRODUCT: PRODUCT_PATTERN,
    _MEMBER: NAME_PATTERN,
    _GROUP: NAME_PATTERN,
    _BANK: NAME_PATTERN,
}


class Service(StrEnum):
    GATEWAY = "gateway"
    ENGINE = "engine"
    SETTLEMENT = "settlement"
    BANK_SIM = "bank-sim"


@dataclass(frozen=True, slots=True)
class Rights:
    """A user's vhost permissions: three anchored regexes over exchange and queue names
    (rex.provision.Permissions is the same, as the management API shows it)."""

    configure: str
    write: str
    read: str


@dataclass(frozen=True, slots=True)
class ServiceUser:
    """One service's broker user: what it does, in rex.topology's names (with
    placeholders), and the variables of its URL and password."""

    service: Service
    name: str  # the login, before REX_DEPLOYMENT's prefix
    url: Variable[str | None]
    password: Variable[str | None]
    declares: Topology
    publishes: tuple[str, ...]  # exchanges
    consumes: tuple[str, ...]  # queues
    locks: tuple[str, ...] = ()  # bus lock names (exclusive queues rex.lock.<name>)
    also: tuple[str, ...] = ()  # patterns for all three: names not in rex.topology yet

    def login(self, deployment: str) -> str:
        return login_of(self.name, deployment)

    def configures(self) -> tuple[str, ...]:
        return (
            *(e.name for e in self.declares.exchanges),
            *(q.name for q in self.declares.queues),
            *(topology.lock_queue(name) for name in self.locks),
        )

    def _bound(self) -> tuple[Binding, ...]:
        # An unbind needs what a bind needs: write on the queue, read on the exchange.
        return (*self.declares.bindings, *self.declares.unbindings)

    def writes(self) -> tuple[str, ...]:
        return (*self.publishes, *(b.queue for b in self._bound()))

    def reads(self) -> tuple[str, ...]:
        return (*self.consumes, *(b.exchange for b in self._bound()))

    def rights(self) -> Rights:
        return Rights(
            _regex(self.configures(), self.also),
            _regex(self.writes(), self.also),
            _regex(self.reads(), self.also),
        )


def _pattern(name: str) -> str:
    pattern = re.escape(name)
    for placeholder, allowed in _PLACEHOLDERS.items():
        pattern = pattern.replace(re.escape(placeholder), allowed)
    return pattern


def _regex(names: Iterable[str], also: Iterable[str]) -> str:
    """``^(a|b|...)$`` over the names' patterns and ``also``, each once, sorted (a name
    that one of ``also`` matches already is left out); ``^$`` for none."""
    also = tuple(also)
    own = {_pattern(name) for name in names if not any(re.fullmatch(wider, name) for wider in also)}
    patterns = sorted({*own, *also})
    return f"^({'|'.join(patterns)})$" if patterns else "^$"


SERVICE_USERS: Final[tuple[ServiceUser, ...]] = (
    ServiceUser(
        Service.GATEWAY,
        "rex-gateway",
        environment.REX_GATEWAY_BROKER_URL,
        environment.REX_GATEWAY_BROKER_PASSWORD,
        declares=topology.for_gateway([_PRODUCT], [_MEMBER]),
        publishes=(topology.ENGINE, topology.EXECUTIONS, topology.OPERATOR_ANSWERS),
        consumes=(
            topology.GATEWAY_REQUESTS,
            topology.member_request_queue(_MEMBER),
            topology.GATEWAY_OPERATOR_REQUESTS,
            # reads its own forwards back (gateway/read_back.py)
            topology.engine_input_queue(_PRODUCT),
        ),
    ),
    ServiceUser(
        Service.ENGINE,
        "rex-engine",
        environment.REX_ENGINE_BROKER_URL,
        environment.REX_ENGINE_BROKER_PASSWORD,
        declares=topology.for_engine([_PRODUCT]),
        publishes=(
            topology.ENGINE,  # fences and trading-status entries into its own input log
            topology.ENGINE_IMAGES,
            topology.EXECUTIONS,
            topology.TRADES,
            topology.MARKETDATA,
        ),
        consumes=(topology.engine_input_queue(_PRODUCT), topology.engine_image_log(_PRODUCT)),
        locks=(topology.engine_lock(_GROUP),),
    ),
    ServiceUser(
        Service.SETTLEMENT,
        "rex-settlement",
        environment.REX_SETTLEMENT_BROKER_URL,
        environment.REX_SETTLEMENT_BROKER_PASSWORD,
        # An operator's name appears in routing keys only (its binding is to the shared
        # queue), never in a queue's or exchange's name: it needs no pattern.
        declares=topology.for_settlement([_MEMBER], ["operator"])
        + topology.for_bank_client([_BANK], topology.SETTLEMENT_BANK_CLIENT),
        publishes=(topology.SETTLEMENT, topology.BANK),
        consumes=(
            topology.SETTLEMENT_TRADES,
            topology.SETTLEMENT_REQUEST_QUEUE,
            topology.member_settlement_queue(_MEMBER),
            topology.bank_reply_queue(topology.SETTLEMENT_BANK_CLIENT),
        ),
        locks=(topology.PAYER_LOCK,),
    ),
    ServiceUser(
        Service.BANK_SIM,
        "rex-bank-sim",
        environment.REX_BANK_SIM_BROKER_URL,
        environment.REX_BANK_SIM_BROKER_PASSWORD,
        declares=topology.for_banks([_BANK]),
        # Replies go to the payer's queue by name, through the default exchange. RabbitMQ
        # checks no queue permission there: this user can put a message in any queue of
        # the vhost (docs/operators/security.md). A real bank's gateway needs a reply
        # exchange of its own instead.
        publishes=(DEFAULT_EXCHANGE,),
        consumes=(topology.bank_queue(_BANK),),
    ),
)


#: Every service user's URL and password variable. A throw-away exchange (loadtest/stack.py)
#: drops them from the environment it inherits: its services must not reach the deployment
#: these name.
VARIABLE_NAMES: Final = frozenset(
    name for user in SERVICE_USERS for name in (user.url.name, user.password.name)
)


def service_user(service: Service) -> ServiceUser:
    return next(u for u in SERVICE_USERS if u.service is service)


def broker_url_of(service: Service, fallback: str, env: Mapping[str, str] = os.environ) -> str:
    """The URL ``service`` logs in with: its own variable (``REX_GATEWAY_BROKER_URL``, ...),
    else ``fallback`` (``REX_BROKER_URL``, as before service users, so a development setup
    with one login keeps working)."""
    return service_user(service).url.get(env) or fallback


def markdown_table(deployment: str = "") -> str:
    """The users and their permissions, as docs/operators/security.md shows them (a unit
    test keeps the two the same)."""

    def cell(text: str) -> str:
        return f"`{text}`".replace("|", "\\|")

    lines = [
        "| service | user | its URL | configure | write | read |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for user in SERVICE_USERS:
        rights = user.rights()
        lines.append(
            f"| {user.service} | `{user.login(deployment)}` | `{user.url.name}` "
            f"| {cell(rights.configure)} | {cell(rights.write)} | {cell(rights.read)} |"
        )
    return "\n".join(lines) + "\n"
