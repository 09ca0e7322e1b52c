"""Broker addresses: one AMQP URL, or a list of them, one per node of a RabbitMQ cluster.

Wherever REX takes a broker URL (``REX_BROKER_URL``, a service's own ``REX_*_BROKER_URL``,
the SDK's ``url``, a command's ``--broker``), it takes a list too: full URLs separated by
commas or white space::

    amqp://alpha:pw@node1:5672/rex, amqp://alpha:pw@node2:5672/rex, amqp://alpha:pw@node3:5672/rex

Every URL of a list names the same vhost and the same user (they are one login on one
cluster: anything else is a mistake, refused with both named). A process connects to the
first node that answers, in list order, and after losing a connection tries the next one
first (the node it lost is the likeliest to be down). A comma inside a URL's password must
be percent-encoded (``%2C``), as any reserved character.
"""

from __future__ import annotations

import re
import urllib.parse
from dataclasses import dataclass
from typing import Final

import pika

__all__ = [
    "MAX_ADDRESSES",
    "BrokerAddressError",
    "BrokerAddresses",
    "parse_addresses",
    "split_urls",
]

#: More nodes than a cluster of REX's has; a longer list is a mistake.
MAX_ADDRESSES: Final = 16

# A separator: commas or white space, then the next URL's scheme.
_SEPARATOR = re.compile(r"(?:\s*,\s*|\s+)(?=amqps?://)", re.IGNORECASE)


class BrokerAddressError(ValueError):
    """A broker URL (or list) that cannot be used; the message says which and why."""


def split_urls(value: str) -> tuple[str, ...]:
    """The URLs of ``value`` (one URL or a list), stripped; no empty ones."""
    urls = tuple(u.strip().rstrip(",").strip() for u in _SEPARATOR.split(value.strip()))
    return tuple(u for u in urls if u)


def _redact(url: str) -> str:
    parts = urllib.parse.urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.rsplit("@", 1)[-1]
    user = parts.username or ""
    return urllib.parse.urlunsplit(parts._replace(netloc=f"{user}:***@{netloc}"))


@dataclass(frozen=True, slots=True)
class BrokerAddresses:
    """The nodes of one broker (a cluster, or one node), in the order to try them."""

    urls: tuple[str, ...]

    @property
    def first(self) -> str:
        return self.urls[0]

    def parameters(self) -> list[pika.URLParameters]:
        """pika's parameters for each node, in order (a BlockingConnection given the list
        tries each in turn)."""
        return [pika.URLParameters(u) for u in self.urls]

    @property
    def vhost(self) -> str:
        return str(pika.URLParameters(self.first).virtual_host)

    @property
    def username(self) -> str:
        return str(pika.URLParameters(self.first).credentials.username)

    def where(self, index: int) -> str:
        """host:port/vhost of node ``index`` (modulo the list), for logs: no password."""
        params = pika.URLParameters(self.urls[index % len(self.urls)])
        vhost = str(params.virtual_host)
        return f"{params.host}:{params.port}{vhost if vhost.startswith('/') else '/' + vhost}"

    def describe(self) -> str:
        """Every node as host:port, for messages."""
        return ", ".join(self.where(i).split("/", 1)[0] for i in range(len(self.urls)))


def parse_addresses(value: str) -> BrokerAddresses:
    """``value`` as broker addresses; :class:`BrokerAddressError` if it is empty, too long,
    a URL pika refuses, or URLs naming different vhosts or users."""
    urls = split_urls(value)
    if not urls:
        raise BrokerAddressError(
            "no broker URL given (expected amqp://user:password@host:port/vhost)"
        )
    if len(urls) > MAX_ADDRESSES:
        raise BrokerAddressError(
            f"{len(urls)} broker URLs given, at most {MAX_ADDRESSES}: list a cluster's nodes once"
        )
    seen: list[tuple[str, str]] = []
    for url in urls:
        if not re.match(r"amqps?://", url, re.IGNORECASE):
            raise BrokerAddressError(
                f"broker URL {_redact(url)!r} does not start with amqp:// or amqps://"
            )
        try:
            params = pika.URLParameters(url)
        except ValueError as error:
            raise BrokerAddressError(f"broker URL {_redact(url)!r}: {error}") from None
        seen.append((str(params.virtual_host), str(params.credentials.username)))
    for url, (vhost, user) in zip(urls[1:], seen[1:], strict=True):
        if (vhost, user) != seen[0]:
            raise BrokerAddressError(
                f"broker URLs {_redact(urls[0])!r} and {_redact(url)!r} name different "
                f"vhosts or users ({seen[0][0]!r} as {seen[0][1]!r}, {vhost!r} as {user!r}): "
                "the URLs of a list are one cluster's nodes, for one login on one vhost"
            )
    return BrokerAddresses(urls)
