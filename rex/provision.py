"""`rex provision`: the members' RabbitMQ users and permissions, and the whole topology.

For each member of ``members.toml``, on the vhost of ``REX_BROKER_URL``:

* enabled: a user named after the member's login (:mod:`rex.identity`: the member id, or
  ``<REX_DEPLOYMENT>.<id>`` in a named deployment), with its password and one tag, the mark
  of its deployment and vhost (:mod:`rex.ownership`; no management access and no
  ``impersonator``: the broker checks that a message's ``user_id`` is the publisher's
  login), and these permissions (``<id>`` is the member id, never the login)::

      configure  ^$                        declare, delete and bind nothing
      write      ^(rex\\.requests|rex\\.settlement\\.requests)$
                                            publish trading and settlement requests,
                                            nothing else
      read       ^(rex\\.member\\.<id>\\.log|rex\\.marketdata\\.[^.]+)$
                                            read its own log and the public
                                            market-data streams, nothing else
      topic permission on rex.requests:
      write      ^<id>\\.[^.]+$             routing key <member>.<product>, its own id only
      read       ^$
      topic permission on rex.settlement.requests:
      write      ^<id>\\.[^.]+$             routing key <member>.<kind>, its own id only
      read       ^$

  Members configure and bind nothing: besides keeping them off the shared topology, RabbitMQ
  3.10 has a memory-exhaustion bug reachable through bindings, so no member may create one.
* disabled (``enabled = false``): the user is deleted and its open connections closed, so
  the member can no longer log in. Its queue stays: the engine's messages to it must still
  route, and it can be re-enabled.
* a user of that name that belongs to another deployment (:func:`rex.ownership.foreign_owner`)
  is neither changed nor deleted: the member is reported :attr:`MemberAction.FOREIGN`, with
  the owner found, and ``rex provision`` exits 1.

Each service (gateway, engine, settlement worker, bank simulator) whose password variable is
set (``REX_GATEWAY_BROKER_PASSWORD``, ...) gets its own user, ``rex-gateway`` ... (with the
deployment's prefix), marked like a member's, with only the permissions its service needs
(:mod:`rex.service_users`); ``require_service_users`` makes an unset one an error.

A user marked only for this deployment and vhost that no file names any more (a member or
an operator account taken out of its file) is deleted and its connections closed
(:mod:`rex.stray_users`), so leaving a file is like ``enabled = false``.

Then each quorum queue's length bound (:data:`rex.topology.QUEUE_BOUNDS`) is set as a
policy ``rex-bound-<queue>`` through the API, and the whole topology
(:func:`rex.topology.full`) is declared as the ``REX_BROKER_URL`` user, members' queues
included (those of disabled members too). Policies rather than queue arguments, so a
deployment made before the bounds is bounded in place by the next ``rex provision``.

Users and permissions go through the management plugin's HTTP API
(``REX_BROKER_ADMIN_URL``, default ``http://guest:guest@127.0.0.1:15672``) rather than
``rabbitmqctl``: the API works against a remote broker (a container, another host, a managed
service) with nothing but an HTTP client, where ``rabbitmqctl`` must run beside the node and
share its Erlang cookie. The stdlib's ``urllib`` is enough; there is no new dependency.

Everything is idempotent: the current state is read first and only what differs is written,
so a second run changes nothing (passwords are compared against the stored salted hash, not
re-set). ``dry_run`` reads and reports without writing.
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import json
import re
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Final

import pika
import pika.exceptions

from rex import member_migration, topology
from rex.broker_addresses import parse_addresses, split_urls
from rex.cluster_replication import UnderReplicated, too_few_nodes, under_replicated
from rex.config import ConfigError, Member, ProcessConfig
from rex.environment import REX_REPLICATION
from rex.identity import login_of
from rex.member_migration import MemberMigration
from rex.operators import OperatorAccount
from rex.ownership import Owner, foreign_owner
from rex.replication import as_it_exists, existing_copies, factor_for, replicated
from rex.service_users import SERVICE_USERS, Service, ServiceUser
from rex.stray_users import StrayUser, remove_stray_users
from rex.topology import Topology

__all__ = [
    "DEFAULT_TIMEOUT",
    "BrokerAdmin",
    "BrokerAdminError",
    "BrokerAdminUnreachable",
    "MemberAction",
    "MemberResult",
    "Permissions",
    "ProvisionError",
    "ProvisionReport",
    "ServiceAction",
    "ServiceUserResult",
    "TopicPermissions",
    "TopologyResult",
    "declare_blocking",
    "member_permissions",
    "member_topic_permission_set",
    "member_topic_permissions",
    "provision",
    "redact_url",
    "service_permissions",
    "service_user_passwords",
    "vhost_of",
]

_MEMBERS_WAIT_S: Final = 10.0  # for the members of streams just made to be listed
#: Seconds to wait for the management API or the broker before giving up.
DEFAULT_TIMEOUT: Final = 10.0


class ProvisionError(Exception):
    """Provisioning failed; the message says what and where (never a password)."""


class BrokerAdminError(ProvisionError):
    """The management API answered with an error status (or not at all)."""

    def __init__(self, method: str, url: str, status: int | None, body: str, message: str) -> None:
        self.method = method
        self.url = url
        self.status = status
        self.body = body
        super().__init__(message)


class BrokerAdminUnreachable(BrokerAdminError):
    """Nothing answered at the management API's address."""


# ---------------------------------------------------------------------- permissions


@dataclass(frozen=True, slots=True)
class Permissions:
    """A user's vhost permissions: three regular expressions over resource names."""

    configure: str
    write: str
    read: str


@dataclass(frozen=True, slots=True)
class TopicPermissions:
    """A user's topic permissions on one topic exchange: regexes over routing keys."""

    exchange: str
    write: str
    read: str


def _escape(member_id: str) -> str:
    # Python's re.escape output (e.g. "\-") is valid PCRE, which RabbitMQ uses.
    return re.escape(member_id)


#: The public market-data streams, ``rex.marketdata.<product>`` (one per product). Members
#: read them by offset with no queue or binding of their own. Read permission on a stream is
#: harmless: a stream cannot be purged (540 NOT_IMPLEMENTED) and reading it takes nothing
#: away from another reader.
MARKETDATA_LOGS: Final = rf"{re.escape(topology.MARKETDATA)}\.[^.]+"


#: The exchanges members publish requests to: trading (the gateway) and settlement.
REQUEST_EXCHANGES: Final = (topology.REQUESTS, topology.SETTLEMENT_REQUESTS)


def member_permissions(member_id: str) -> Permissions:
    """Configure nothing, write only to the request exchanges, read only its own log and
    the market-data streams."""
    exchanges = "|".join(re.escape(e) for e in REQUEST_EXCHANGES)
    return Permissions(
        configure="^$",
        write=f"^({exchanges})$",
        read=f"^({re.escape(topology.member_log(member_id))}|{MARKETDATA_LOGS})$",
    )


def member_topic_permissions(member_id: str, exchange: str = topology.REQUESTS) -> TopicPermissions:
    """On a request exchange, publish only with routing key ``<member_id>.<word>`` (the
    product on rex.requests, the request kind on rex.settlement.requests)."""
    return TopicPermissions(exchange=exchange, write=rf"^{_escape(member_id)}\.[^.]+$", read="^$")


def member_topic_permission_set(member_id: str) -> tuple[TopicPermissions, ...]:
    """The member's topic permissions: one per request exchange."""
    return tuple(member_topic_permissions(member_id, e) for e in REQUEST_EXCHANGES)


# --------------------------------------------------------------------------- helpers


def redact_url(url: str) -> str:
    """``url`` (or each of a list's) with any password replaced by ``***``, for messages."""
    urls = split_urls(url)
    if len(urls) > 1:
        return ", ".join(redact_url(u) for u in urls)
    parts = urllib.parse.urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    netloc = f"{parts.username or ''}:***@{host}"
    if parts.port is not None:
        netloc += f":{parts.port}"
    return urllib.parse.urlunsplit(parts._replace(netloc=netloc))


def vhost_of(broker_url: str) -> str:
    """The vhost of an AMQP URL (or list, rex.broker_addresses), decoded as pika decodes it
    (``%2F`` and no path are "/")."""
    return parse_addresses(broker_url).vhost


def _user_of(url: str) -> str | None:
    name = urllib.parse.urlsplit(split_urls(url)[0] if split_urls(url) else url).username
    return None if name is None else urllib.parse.unquote(name)


def _q(segment: str) -> str:
    """One path segment of an API URL: vhost "/" is "%2F"."""
    return urllib.parse.quote(segment, safe="")


_HASHES: Final[Mapping[str, str]] = {
    "rabbit_password_hashing_sha256": "sha256",
    "rabbit_password_hashing_sha512": "sha512",
    "rabbit_password_hashing_md5": "md5",
}


def password_matches(user: Mapping[str, Any], password: str) -> bool:
    """Whether ``password`` is the one stored for ``user`` (a GET /api/users/<name> body).

    RabbitMQ stores ``base64(salt[4] + H(salt + password))``. An unknown algorithm counts
    as a mismatch, so the password is simply set again.
    """
    algorithm = _HASHES.get(str(user.get("hashing_algorithm", "")))
    stored = user.get("password_hash")
    if algorithm is None or not isinstance(stored, str) or not stored:
        return False
    try:
        raw = base64.b64decode(stored, validate=True)
    except ValueError:
        return False
    salt, digest = raw[:4], raw[4:]
    return hashlib.new(algorithm, salt + password.encode()).digest() == digest


def _tags_of(user: Mapping[str, Any]) -> frozenset[str]:
    tags = user.get("tags", "")
    if isinstance(tags, str):  # before 3.9 tags were one comma-separated string
        tags = tags.split(",")
    return frozenset(str(t).strip() for t in tags if str(t).strip())


# ---------------------------------------------------------------------- BrokerAdmin


class BrokerAdmin:
    """A small client for RabbitMQ's management HTTP API.

    ``url`` is the API's base, with the admin's credentials in it:
    ``http://guest:guest@127.0.0.1:15672``. Every failure raises :class:`BrokerAdminError`
    with the method, the URL (no password), the HTTP status and the body.
    """

    def __init__(self, url: str, *, timeout: float = DEFAULT_TIMEOUT) -> None:
        parts = urllib.parse.urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ProvisionError(
                f"management API URL must be http(s)://user:password@host:port, "
                f"got {redact_url(url)!r}"
            )
        self.username = urllib.parse.unquote(parts.username or "")
        password = urllib.parse.unquote(parts.password or "")
        netloc = parts.hostname if ":" not in parts.hostname else f"[{parts.hostname}]"
        if parts.port is not None:
            netloc += f":{parts.port}"
        path = parts.path.rstrip("/")
        #: The API's base URL without credentials: safe to print.
        self.base_url = urllib.parse.urlunsplit((parts.scheme, netloc, path, "", ""))
        token = base64.b64encode(f"{self.username}:{password}".encode()).decode("ascii")
        self._auth = f"Basic {token}"
        self.timeout = timeout

    # -- transport

    def request(self, method: str, path: str, body: Any = None) -> Any:
        """Send one request to ``<base>/api/<path>``; the decoded JSON answer, or None."""
        url = f"{self.base_url}/api/{path}"
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(url, data=data, method=method)
        req.add_header("Authorization", self._auth)
        req.add_header("Accept", "application/json")
        if data is not None:
            req.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(req, timeout=self.timeout) as resp:
                raw = resp.read()
        except urllib.error.HTTPError as exc:
            text = exc.read().decode("utf-8", "replace").strip()
            hint = ""
            if exc.code == 401:
                hint = f" (check the credentials of user {self.username!r} in the admin URL)"
            raise BrokerAdminError(
                method,
                url,
                exc.code,
                text,
                f"management API: {method} {url} failed: HTTP {exc.code}{hint}: {text}",
            ) from None
        except (urllib.error.URLError, OSError) as exc:
            reason = exc.reason if isinstance(exc, urllib.error.URLError) else exc
            raise BrokerAdminUnreachable(
                method,
                url,
                None,
                "",
                f"management API not reachable at {self.base_url} ({reason}): "
                f"enable the rabbitmq_management plugin "
                f"(rabbitmq-plugins enable rabbitmq_management) or set REX_BROKER_ADMIN_URL",
            ) from None
        if not raw.strip():
            return None
        return json.loads(raw)

    def _get_or_none(self, path: str) -> Any:
        try:
            return self.request("GET", path)
        except BrokerAdminError as exc:
            if exc.status == 404:
                return None
            raise

    # -- users

    def get_user(self, name: str) -> dict[str, Any] | None:
        result = self._get_or_none(f"users/{_q(name)}")
        return result if isinstance(result, dict) else None

    def list_users(self) -> list[str]:
        return [str(u["name"]) for u in self.request("GET", "users") or ()]

    def list_user_tags(self) -> dict[str, frozenset[str]]:
        """Every user's tags, by user name."""
        found = self.request("GET", "users?columns=name,tags") or ()
        return {str(u["name"]): _tags_of(u) for u in found}

    def user_vhosts(self, name: str) -> set[str]:
        """The vhosts the user has permissions or topic permissions on."""
        found = [
            *(self._get_or_none(f"users/{_q(name)}/permissions") or ()),
            *(self._get_or_none(f"users/{_q(name)}/topic-permissions") or ()),
        ]
        return {str(p["vhost"]) for p in found}

    def put_user(self, name: str, password: str, tags: str = "") -> None:
        """Create the user, or set its password and tags."""
        self.request("PUT", f"users/{_q(name)}", {"password": password, "tags": tags})

    def delete_user(self, name: str) -> bool:
        """Delete the user; False if there was none."""
        try:
            self.request("DELETE", f"users/{_q(name)}")
        except BrokerAdminError as exc:
            if exc.status == 404:
                return False
            raise
        return True

    # -- vhosts

    def get_vhost(self, vhost: str) -> dict[str, Any] | None:
        result = self._get_or_none(f"vhosts/{_q(vhost)}")
        return result if isinstance(result, dict) else None

    def list_vhosts(self) -> list[dict[str, Any]]:
        """Every vhost: its name, description and tags."""
        found = self.request("GET", "vhosts?columns=name,description,tags") or ()
        return [dict(v) for v in found]

    def put_vhost(self, vhost: str, description: str = "", tags: Iterable[str] = ()) -> None:
        """Create the vhost (no-op if it exists); with a description or tags, set those."""
        marks = ",".join(tags)
        body = {"description": description, "tags": marks} if description or marks else None
        self.request("PUT", f"vhosts/{_q(vhost)}", body)

    def delete_vhost(self, vhost: str) -> bool:
        """Delete the vhost and everything in it; False if there was none."""
        try:
            self.request("DELETE", f"vhosts/{_q(vhost)}")
        except BrokerAdminError as exc:
            if exc.status == 404:
                return False
            raise
        return True

    # -- permissions

    def get_permissions(self, vhost: str, user: str) -> Permissions | None:
        p = self._get_or_none(f"permissions/{_q(vhost)}/{_q(user)}")
        if not isinstance(p, dict):
            return None
        return Permissions(str(p["configure"]), str(p["write"]), str(p["read"]))

    def put_permissions(self, vhost: str, user: str, configure: str, write: str, read: str) -> None:
        self.request(
            "PUT",
            f"permissions/{_q(vhost)}/{_q(user)}",
            {"configure": configure, "write": write, "read": read},
        )

    def get_topic_permissions(self, vhost: str, user: str) -> list[TopicPermissions]:
        """The user's topic permissions on ``vhost``, one per exchange ([] if none)."""
        found = self._get_or_none(f"topic-permissions/{_q(vhost)}/{_q(user)}") or ()
        return [
            TopicPermissions(str(t["exchange"]), str(t["write"]), str(t["read"])) for t in found
        ]

    def put_topic_permissions(
        self, vhost: str, user: str, exchange: str, write: str, read: str
    ) -> None:
        self.request(
            "PUT",
            f"topic-permissions/{_q(vhost)}/{_q(user)}",
            {"exchange": exchange, "write": write, "read": read},
        )

    # -- policies

    def get_policy(self, vhost: str, name: str) -> dict[str, Any] | None:
        found = self._get_or_none(f"policies/{_q(vhost)}/{_q(name)}")
        return found if isinstance(found, dict) else None

    def put_policy(
        self, vhost: str, name: str, pattern: str, definition: dict[str, Any], priority: int
    ) -> None:
        """A policy on queues (only): ``pattern`` is a regex over queue names."""
        self.request(
            "PUT",
            f"policies/{_q(vhost)}/{_q(name)}",
            {
                "pattern": pattern,
                "apply-to": "queues",
                "definition": definition,
                "priority": priority,
            },
        )

    # -- connections

    def list_user_connections(self, user: str) -> list[str]:
        """Names of the user's open connections."""
        found = self.request("GET", f"connections/username/{_q(user)}") or ()
        return [str(c["name"]) for c in found]

    def close_user_connections(self, user: str) -> None:
        """Close every connection of the user (there may be none)."""
        self.request("DELETE", f"connections/username/{_q(user)}")

    # -- topology, for reporting what is new

    def _names(self, kind: str, vhost: str) -> set[str]:
        found = self.request("GET", f"{kind}/{_q(vhost)}?columns=name") or ()
        return {str(item["name"]) for item in found}

    def list_exchanges(self, vhost: str) -> set[str]:
        return self._names("exchanges", vhost)

    def list_queues(self, vhost: str) -> set[str]:
        return self._names("queues", vhost)

    def list_running_nodes(self) -> list[str]:
        """The names of the cluster's running nodes (one, on a single broker)."""
        found = self.request("GET", "nodes?columns=name,running") or ()
        return sorted(str(n["name"]) for n in found if n.get("running"))

    def list_replicated_queues(self, vhost: str) -> dict[str, tuple[str, tuple[str, ...]]]:
        """Each quorum queue and stream of ``vhost``: its type and the nodes it has members
        on. (The full listing: with ``columns`` RabbitMQ 3.10 leaves out a stream's members.)"""
        found = self.request("GET", f"queues/{_q(vhost)}") or ()
        return {
            str(q["name"]): (str(q["type"]), tuple(str(m) for m in q.get("members") or ()))
            for q in found
            if q.get("type") in ("quorum", "stream")
        }

    def list_queue_bindings(self, vhost: str) -> set[tuple[str, str, str]]:
        """(exchange, queue, routing key) of every exchange-to-queue binding on ``vhost``."""
        found = self.request("GET", f"bindings/{_q(vhost)}") or ()
        return {
            (str(b["source"]), str(b["destination"]), str(b["routing_key"]))
            for b in found
            if b.get("destination_type") == "queue" and b.get("source")
        }


# --------------------------------------------------------------------------- report


class MemberAction(StrEnum):
    CREATED = "created"
    UPDATED = "updated"  # password or tags changed
    UNCHANGED = "unchanged"
    DELETED = "deleted"  # disabled: its user was removed
    ABSENT = "absent"  # disabled, and it had no user already
    FOREIGN = "foreign"  # a user of its login belongs to another deployment: left alone


@dataclass(frozen=True, slots=True)
class MemberResult:
    member: str
    enabled: bool
    action: MemberAction
    permissions_set: bool = False
    topic_permissions_set: bool = False
    connections_closed: int = 0
    login: str = ""  # its RabbitMQ user (rex.identity)
    owner: str | None = None  # FOREIGN: whom the user belongs to, in words

    @property
    def changed(self) -> bool:
        return (
            self.action not in (MemberAction.UNCHANGED, MemberAction.ABSENT, MemberAction.FOREIGN)
            or self.permissions_set
            or self.topic_permissions_set
            or self.connections_closed > 0
        )


@dataclass(frozen=True, slots=True)
class TopologyResult:
    exchanges: int
    queues: int
    bindings: int
    new_exchanges: tuple[str, ...] = ()
    new_queues: tuple[str, ...] = ()
    new_bindings: tuple[tuple[str, str, str], ...] = ()
    bounds_set: tuple[str, ...] = ()  # queues whose bound policy was (or would be) set
    # bindings of an earlier version found, and (unless a dry run) removed
    old_bindings: tuple[tuple[str, str, str], ...] = ()

    @property
    def changed(self) -> bool:
        return bool(
            self.new_exchanges
            or self.new_queues
            or self.new_bindings
            or self.bounds_set
            or self.old_bindings
        )


class ServiceAction(StrEnum):
    CREATED = "created"
    UPDATED = "updated"  # password or tags changed
    UNCHANGED = "unchanged"
    SKIPPED = "skipped"  # its password variable is unset: left alone
    FOREIGN = "foreign"  # a user of its login belongs to another deployment: left alone


@dataclass(frozen=True, slots=True)
class ServiceUserResult:
    service: Service
    login: str
    action: ServiceAction
    permissions_set: bool = False
    owner: str | None = None  # FOREIGN: whom the user belongs to, in words

    @property
    def changed(self) -> bool:
        return self.action in (ServiceAction.CREATED, ServiceAction.UPDATED) or (
            self.permissions_set
        )


@dataclass(frozen=True, slots=True)
class ProvisionReport:
    vhost: str
    members: tuple[MemberResult, ...]
    topology: TopologyResult
    dry_run: bool = False
    deployment: str = ""
    # members' protocol-1 queues migrated to their logs (or, in a dry run, still to migrate)
    migrations: tuple[MemberMigration, ...] = ()
    services: tuple[ServiceUserResult, ...] = ()  # the services' own users
    # operator accounts' users (rex/operator_provision.py); `member` is the account's name
    operators: tuple[MemberResult, ...] = ()
    # this deployment's users that no file names any more (rex/stray_users.py): deleted
    strays: tuple[StrayUser, ...] = ()
    replication: int = 1  # copies of each quorum queue and stream (rex.replication)
    running_nodes: tuple[str, ...] = ()  # the cluster's, as the management API listed them
    # the deployment's quorum queues and streams with fewer members than `replication`
    under_replicated: tuple[UnderReplicated, ...] = ()

    @property
    def changed(self) -> bool:
        """Whether anything was (or, in a dry run, would be) changed."""
        return (
            self.topology.changed
            or any(m.changed for m in self.members)
            or any(o.changed for o in self.operators)
            or any(m.changed or self.dry_run for m in self.migrations)
            or any(s.changed for s in self.services)
            or bool(self.strays)
        )

    @property
    def refused(self) -> tuple[MemberResult, ...]:
        """The members (and operator accounts) whose user belongs to another deployment
        (left alone)."""
        return tuple(
            m for m in (*self.members, *self.operators) if m.action is MemberAction.FOREIGN
        )

    @property
    def refused_services(self) -> tuple[ServiceUserResult, ...]:
        """The service users that belong to another deployment (left alone)."""
        return tuple(s for s in self.services if s.action is ServiceAction.FOREIGN)


# ------------------------------------------------------------------------ provision


def declare_blocking(channel: Any, topo: Topology, replication: int = 1) -> Any:
    """Declare ``topo`` on a pika ``BlockingChannel``: durable exchanges, durable queues
    with the table's arguments and ``replication`` copies (rex.replication), then the
    bindings. Idempotent while arguments never change; a queue that exists with other
    arguments makes the broker close the channel (406) -- except one made with other copies,
    declared again as it is. Returns the channel it ended on (a new one after such a 406)."""
    for exchange in topo.exchanges:
        channel.exchange_declare(exchange=exchange.name, exchange_type=exchange.type, durable=True)
    for queue in replicated(topo, replication).queues:
        channel = _declare_queue_blocking(channel, queue)
    for binding in topo.bindings:
        channel.queue_bind(
            queue=binding.queue, exchange=binding.exchange, routing_key=binding.routing_key
        )
    for binding in topo.unbindings:  # unbind-ok also when it is not there
        channel.queue_unbind(
            queue=binding.queue, exchange=binding.exchange, routing_key=binding.routing_key
        )


def _declare_queue_blocking(channel: Any, queue: topology.Queue) -> Any:
    try:
        channel.queue_declare(queue=queue.name, durable=True, arguments=dict(queue.arguments))
        return channel
    except pika.exceptions.ChannelClosedByBroker as exc:
        existing = existing_copies(exc.reply_text) if exc.reply_code == 406 else None
        if existing is None or existing[0] != queue.name:
            raise
    channel = channel.connection.channel()
    as_it_is = as_it_exists(queue, existing[1])
    channel.queue_declare(queue=queue.name, durable=True, arguments=dict(as_it_is.arguments))
    return channel


def _declare_and_migrate(
    broker_url: str,
    topo: Topology,
    members: Iterable[str],
    queues: Collection[str],
    timeout: float,
    dry_run: bool,
    replication: int,
) -> tuple[MemberMigration, ...]:
    """Declare ``topo`` (unless a dry run), then migrate the members' protocol-1 queues
    (rex/member_migration.py; a dry run only finds them)."""
    nodes = parse_addresses(broker_url).parameters()  # a cluster's: the first that answers
    for params in nodes:
        params.connection_attempts = 1
        params.socket_timeout = timeout
        params.stack_timeout = timeout
        params.blocked_connection_timeout = timeout
    where = redact_url(broker_url)
    try:
        connection = pika.BlockingConnection(nodes)
    except pika.exceptions.AMQPError as exc:
        raise ProvisionError(f"cannot connect to the broker at {where}: {exc!r}") from None
    step = "declaring the topology"
    try:
        if dry_run:
            step = "looking for members' old queues"
            return tuple(member_migration.pending(connection, members, queues))
        declare_blocking(connection.channel(), topo, replication)
        step = "migrating members' old queues to their logs"
        return tuple(member_migration.migrate(connection, members, queues))
    except pika.exceptions.ChannelClosedByBroker as exc:
        raise ProvisionError(
            f"{step} on {where} failed: {exc.reply_code} {exc.reply_text}"
        ) from None
    except pika.exceptions.AMQPError as exc:
        raise ProvisionError(f"{step} on {where} failed: {exc!r}") from None
    finally:
        if connection.is_open:
            connection.close()


def _provision_member(
    admin: BrokerAdmin, owner: Owner, member: Member, password: str | None, dry_run: bool
) -> MemberResult:
    return provision_login(
        admin,
        owner,
        member.id,
        member.enabled,
        password,
        member_permissions(member.id),
        member_topic_permission_set(member.id),
        dry_run,
    )


def provision_login(
    admin: BrokerAdmin,
    owner: Owner,
    name: str,
    enabled: bool,
    password: str | None,
    permissions: Permissions,
    topic_permissions: tuple[TopicPermissions, ...],
    dry_run: bool,
) -> MemberResult:
    """A person's user (a member firm's, or an operator's; ``name`` is the member id or
    the account's name): made or updated with ``password``, the deployment's mark and
    these permissions when ``enabled``, deleted (its connections closed) when not, and
    left alone if another deployment owns it. ``password`` is given when ``enabled``."""
    vhost, login = owner.vhost, login_of(name, owner.deployment)
    user = admin.get_user(login)
    if user is not None:
        foreign = foreign_owner(_tags_of(user), owner, lambda: admin.user_vhosts(login))
        if foreign is not None:
            return MemberResult(name, enabled, MemberAction.FOREIGN, login=login, owner=foreign)
    if not enabled:
        if user is None:
            return MemberResult(name, False, MemberAction.ABSENT, login=login)
        # From the management stats, so a connection opened in the last few seconds may be
        # missing from the count; deleting the user closes it all the same.
        connections = len(admin.list_user_connections(login))
        if not dry_run:
            # RabbitMQ 3.10 closes the user's connections itself ("CONNECTION_FORCED - user
            # ... is deleted"); closing them here too does not depend on that.
            admin.delete_user(login)
            admin.close_user_connections(login)
        return MemberResult(
            name, False, MemberAction.DELETED, connections_closed=connections, login=login
        )

    assert password is not None
    if user is None:
        action = MemberAction.CREATED
    elif password_matches(user, password) and _tags_of(user) == {owner.tag}:
        action = MemberAction.UNCHANGED
    else:
        action = MemberAction.UPDATED  # a legacy user (unmarked) is adopted here
    if action is not MemberAction.UNCHANGED and not dry_run:
        admin.put_user(login, password, owner.tag)

    current = None if user is None else admin.get_permissions(vhost, login)
    permissions_set = current != permissions
    if permissions_set and not dry_run:
        admin.put_permissions(
            vhost, login, permissions.configure, permissions.write, permissions.read
        )

    current_topic = [] if user is None else admin.get_topic_permissions(vhost, login)
    missing = [t for t in topic_permissions if t not in current_topic]
    if not dry_run:
        for wanted_topic in missing:
            admin.put_topic_permissions(
                vhost, login, wanted_topic.exchange, wanted_topic.write, wanted_topic.read
            )
    return MemberResult(name, True, action, permissions_set, bool(missing), login=login)


def _topology_result(
    admin: BrokerAdmin, vhost: str, topo: Topology, queues: set[str]
) -> TopologyResult:
    exchanges = admin.list_exchanges(vhost)
    bindings = admin.list_queue_bindings(vhost)
    return TopologyResult(
        exchanges=len(topo.exchanges),
        queues=len(topo.queues),
        bindings=len(topo.bindings),
        new_exchanges=tuple(e.name for e in topo.exchanges if e.name not in exchanges),
        new_queues=tuple(q.name for q in topo.queues if q.name not in queues),
        new_bindings=tuple(
            (b.exchange, b.queue, b.routing_key)
            for b in topo.bindings
            if (b.exchange, b.queue, b.routing_key) not in bindings
        ),
        old_bindings=tuple(
            (b.exchange, b.queue, b.routing_key)
            for b in topo.unbindings
            if (b.exchange, b.queue, b.routing_key) in bindings
        ),
    )


def _set_bounds(admin: BrokerAdmin, vhost: str, dry_run: bool) -> tuple[str, ...]:
    """Each quorum queue's length bound (rex.topology.QUEUE_BOUNDS) as a policy matching
    that queue only. A policy, not a queue argument: it applies to a queue that exists,
    so an existing deployment is bounded in place; an argument would have to be the same
    in every declare, and a queue declared before with other arguments refuses (406).
    Returns the queues whose policy was missing or different (and so was set)."""
    changed = []
    for bound in topology.QUEUE_BOUNDS:
        pattern = bound.queue_pattern
        current = admin.get_policy(vhost, bound.policy)
        wanted = (pattern, "queues", bound.definition(), topology.QUEUE_BOUND_PRIORITY)
        if (
            current is not None
            and (
                current.get("pattern"),
                current.get("apply-to"),
                current.get("definition"),
                current.get("priority"),
            )
            == wanted
        ):
            continue
        if not dry_run:
            admin.put_policy(
                vhost, bound.policy, pattern, bound.definition(), topology.QUEUE_BOUND_PRIORITY
            )
        changed.append(bound.queue)
    return tuple(changed)


def _check_no_clash(
    members: Iterable[Member], deployment: str, reserved: Mapping[str, str]
) -> None:
    for member in members:
        login = login_of(member.id, deployment)
        if login in reserved:
            raise ProvisionError(
                f"member {member.id!r} (login {login!r}) has the same name as the "
                f"{reserved[login]} user; provisioning it would change or delete that user "
                f"(rename the member, or set REX_DEPLOYMENT)"
            )


# --------------------------------------------------------------------- service users
# Each service's own user (rex/service_users.py): made like a member's, with its password
# from the environment, the deployment's mark as its one tag (no management access) and
# the permissions its table derives from rex/topology.py; no topic permissions.


def service_permissions(user: ServiceUser) -> Permissions:
    rights = user.rights()
    return Permissions(rights.configure, rights.write, rights.read)


def service_user_passwords(
    env: Mapping[str, str], *, required: bool = False
) -> dict[Service, str | None]:
    """Each service user's password from its variable (``REX_GATEWAY_BROKER_PASSWORD``,
    ...); None where unset, so that user is skipped. With ``required`` an unset one is a
    :class:`ConfigError` naming the variable, raised before anything is changed."""
    passwords: dict[Service, str | None] = {}
    for user in SERVICE_USERS:
        password = user.password.get(env)
        if password is None and required:
            raise ConfigError(
                user.password.name,
                f"is not set; set it to the password of the {user.service} service's broker "
                f"user {user.name!r} (the one in {user.url.name}), or provision without "
                "--service-users to leave the users whose password is unset alone",
            )
        passwords[user.service] = password
    return passwords


def _provision_service_user(
    admin: BrokerAdmin, owner: Owner, user: ServiceUser, password: str | None, dry_run: bool
) -> ServiceUserResult:
    login = user.login(owner.deployment)
    if password is None:
        return ServiceUserResult(user.service, login, ServiceAction.SKIPPED)
    current = admin.get_user(login)
    if current is not None:
        foreign = foreign_owner(_tags_of(current), owner, lambda: admin.user_vhosts(login))
        if foreign is not None:
            return ServiceUserResult(user.service, login, ServiceAction.FOREIGN, owner=foreign)
    if current is None:
        action = ServiceAction.CREATED
    elif password_matches(current, password) and _tags_of(current) == {owner.tag}:
        action = ServiceAction.UNCHANGED
    else:
        action = ServiceAction.UPDATED
    if action is not ServiceAction.UNCHANGED and not dry_run:
        admin.put_user(login, password, owner.tag)
    wanted = service_permissions(user)
    permissions_set = current is None or admin.get_permissions(owner.vhost, login) != wanted
    if permissions_set and not dry_run:
        admin.put_permissions(owner.vhost, login, wanted.configure, wanted.write, wanted.read)
    return ServiceUserResult(user.service, login, action, permissions_set)


def _provision_service_users(
    admin: BrokerAdmin,
    owner: Owner,
    passwords: Mapping[Service, str | None],
    dry_run: bool,
) -> tuple[ServiceUserResult, ...]:
    return tuple(
        _provision_service_user(admin, owner, user, passwords.get(user.service), dry_run)
        for user in SERVICE_USERS
    )


def provision(
    process_config: ProcessConfig,
    env: Mapping[str, str],
    *,
    dry_run: bool = False,
    timeout: float = DEFAULT_TIMEOUT,
    require_service_users: bool = False,
) -> ProvisionReport:
    """Create, update or delete the members' users and permissions and the services' users,
    then declare the topology. A service user whose password variable is unset is skipped,
    unless ``require_service_users`` (then that is an error). Raises
    :class:`~rex.config.ConfigError` for bad configuration (a password variable unset
    included; checked before anything is changed) and :class:`ProvisionError`
    (:class:`BrokerAdminError` for the API) for broker trouble."""
    products = process_config.products()
    members = process_config.members()
    # Every password first: a missing one must not leave the broker half-provisioned.
    passwords = {m.id: m.resolve_password(env) for m in members.values() if m.enabled}
    service_passwords = service_user_passwords(env, required=require_service_users)
    operators, operator_passwords = _operator_accounts(process_config, members, env)

    admin = BrokerAdmin(process_config.broker_admin_url, timeout=timeout)
    reserved: dict[str, str] = {}
    for name, role in (
        (_user_of(process_config.broker_url), "broker (REX_BROKER_URL)"),
        (admin.username, "management API (REX_BROKER_ADMIN_URL)"),
        *((u.login(process_config.deployment), f"{u.service} service") for u in SERVICE_USERS),
    ):
        if name:
            reserved.setdefault(name, role)
    _check_no_clash(members.values(), process_config.deployment, reserved)
    _check_no_operator_clash(operators, process_config.deployment, reserved)

    vhost = vhost_of(process_config.broker_url)
    if admin.get_vhost(vhost) is None:
        raise ProvisionError(
            f"vhost {vhost!r} (from REX_BROKER_URL) does not exist on the broker at "
            f"{admin.base_url}; create it first (rabbitmqctl add_vhost {vhost})"
        )

    replication = factor_for(
        len(parse_addresses(process_config.broker_url).urls), REX_REPLICATION.get(env)
    )
    running = tuple(admin.list_running_nodes())
    refusal = too_few_nodes(replication, running, admin.base_url)
    if refusal is not None:
        raise ProvisionError(refusal)

    owner = Owner(process_config.deployment, vhost)
    results = tuple(
        _provision_member(admin, owner, m, passwords.get(m.id), dry_run) for m in members.values()
    )
    services = _provision_service_users(admin, owner, service_passwords, dry_run)

    operator_results = _provision_operators(admin, owner, operators, operator_passwords, dry_run)
    known = {
        *reserved,
        *(login_of(m, process_config.deployment) for m in members),
        *(login_of(a, process_config.deployment) for a in operators),
    }
    strays = remove_stray_users(admin, owner, known, dry_run)

    # Every member's log, disabled ones too: the engine's messages to them must route.
    topo = topology.full(products, members, operators)
    queues = admin.list_queues(vhost)
    topo_result = _topology_result(admin, vhost, topo, queues)
    # Before declaring, so a queue made now is bounded from its first message.
    topo_result = dataclasses.replace(topo_result, bounds_set=_set_bounds(admin, vhost, dry_run))
    migrations = _declare_and_migrate(
        process_config.broker_url, topo, members, queues, timeout, dry_run, replication
    )
    lacking = _under_replicated(admin, vhost, {q.name for q in topo.queues}, replication)
    return ProvisionReport(
        vhost,
        results,
        topo_result,
        dry_run,
        process_config.deployment,
        migrations,
        services=services,
        operators=operator_results,
        strays=strays,
        replication=replication,
        running_nodes=running,
        under_replicated=lacking,
    )


def _under_replicated(
    admin: BrokerAdmin, vhost: str, ours: Collection[str], replication: int
) -> tuple[UnderReplicated, ...]:
    """The queues of ``ours`` with fewer members than ``replication``. A stream just made
    lists no members for a moment: asked again (for up to `_MEMBERS_WAIT_S`) until each has
    some."""
    deadline = time.monotonic() + _MEMBERS_WAIT_S
    while True:
        lacking = under_replicated(admin.list_replicated_queues(vhost), ours, replication)
        if all(q.members for q in lacking) or time.monotonic() > deadline:
            return lacking
        time.sleep(0.2)


# ------------------------------------------------------------------ operator accounts


def _operator_accounts(
    process_config: ProcessConfig, members: Collection[str], env: Mapping[str, str]
) -> tuple[dict[str, OperatorAccount], dict[str, str]]:
    """operators.toml's accounts and every enabled one's password (a ConfigError naming the
    variable if one is unset), checked before anything is changed."""
    from rex.operators import check_against_members

    accounts = process_config.operators()
    check_against_members(accounts, members, process_config.operators_file)
    passwords = {a.name: a.resolve_password(env) for a in accounts.values() if a.enabled}
    return accounts, passwords


def _check_no_operator_clash(
    accounts: Mapping[str, OperatorAccount], deployment: str, reserved: Mapping[str, str]
) -> None:
    for name in accounts:
        login = login_of(name, deployment)
        if login in reserved:
            raise ProvisionError(
                f"operator {name!r} (login {login!r}) has the same name as the "
                f"{reserved[login]} user; provisioning it would change or delete that user "
                f"(rename the operator account, or set REX_DEPLOYMENT)"
            )


def _provision_operators(
    admin: BrokerAdmin,
    owner: Owner,
    accounts: Mapping[str, OperatorAccount],
    passwords: Mapping[str, str],
    dry_run: bool,
) -> tuple[MemberResult, ...]:
    from rex.operator_provision import provision_operators  # it builds on this module

    return provision_operators(admin, owner, accounts, passwords, dry_run)
