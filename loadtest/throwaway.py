"""Throw-away exchanges on a shared broker: their names, their marks, and sweeping the ones
whose creator died.

A throw-away exchange (`rex loadtest`, `rex demo --broker`) lives in a vhost of its own,
``rex-tmp-<token>``, as a deployment of its own, ``tmp-<token>`` (:mod:`rex.identity`), so its
members' users are ``tmp-<token>.<member>``: never a real member's login, never another
run's. Its creator removes it when it ends, also on an error, Ctrl-C or SIGTERM. A run
killed outright (SIGKILL, a power cut) cannot, so the vhost is marked with the creating
host, pid and time (its description and tags)::

    rex-throwaway, host:<hostname>, pid:<pid>, created:<unix seconds>

and the next run on the same host (or ``rex loadtest --cleanup``) removes every throw-away
exchange whose creating process on this host has ended. Those of live processes, and of
other hosts (whose processes cannot be seen from here), are left alone.
"""

from __future__ import annotations

import os
import secrets
import socket
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from rex.ownership import Owner, owners_marked
from rex.provision import BrokerAdmin

__all__ = ["MARK", "Creator", "Names", "process_gone", "sweep"]

MARK: Final = "rex-throwaway"
VHOST_PREFIX: Final = "rex-tmp-"
DEPLOYMENT_PREFIX: Final = "tmp-"
_TICKS: Final = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
# A process that started this long after the mark was made cannot be its creator.
_START_SLACK_S: Final = 5


@dataclass(frozen=True, slots=True)
class Names:
    """The vhost and deployment name of one throw-away exchange."""

    token: str

    @classmethod
    def new(cls) -> Names:
        return cls(secrets.token_hex(4))

    @classmethod
    def of_vhost(cls, vhost: str) -> Names | None:
        token = vhost.removeprefix(VHOST_PREFIX)
        if token == vhost or not token or not token.isalnum() or token != token.lower():
            return None
        return cls(token)

    @property
    def vhost(self) -> str:
        return f"{VHOST_PREFIX}{self.token}"

    @property
    def deployment(self) -> str:
        return f"{DEPLOYMENT_PREFIX}{self.token}"

    @property
    def owner(self) -> Owner:
        """The mark `rex provision` gives this exchange's member users."""
        return Owner(self.deployment, self.vhost)


@dataclass(frozen=True, slots=True)
class Creator:
    """The process that made a throw-away exchange."""

    host: str
    pid: int
    created: int  # unix seconds

    @classmethod
    def this_process(cls) -> Creator:
        return cls(socket.gethostname(), os.getpid(), int(time.time()))

    @classmethod
    def from_tags(cls, tags: Iterable[str]) -> Creator | None:
        """The creator a vhost's tags name; None if they are not a full throw-away mark."""
        found = dict(t.partition(":")[::2] for t in tags if ":" in t)
        if MARK not in tags or not {"host", "pid", "created"} <= found.keys():
            return None
        try:
            return cls(found["host"], int(found["pid"]), int(found["created"]))
        except ValueError:
            return None

    @property
    def tags(self) -> tuple[str, ...]:
        return (MARK, f"host:{self.host}", f"pid:{self.pid}", f"created:{self.created}")

    @property
    def description(self) -> str:
        when = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(self.created))
        return (
            f"REX throw-away exchange of pid {self.pid} on {self.host}, made {when}; removed "
            f"when that process ends (or by the next rex loadtest / rex demo on that host)"
        )


def _started_at(pid: int) -> float | None:
    """When the process started (unix seconds), from /proc; None if unknown."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        boot = next(
            int(line.split()[1])
            for line in Path("/proc/stat").read_text().splitlines()
            if line.startswith("btime ")
        )
    except (OSError, IndexError, ValueError, StopIteration):
        return None
    return boot + int(stat[19]) / _TICKS  # field 22, starttime, in ticks since boot


def process_gone(creator: Creator) -> bool:
    """Whether ``creator`` (a process on this host) has ended. A live process with its pid
    that started after the mark was made is another one: the creator is gone."""
    try:
        os.kill(creator.pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        pass  # alive, another user's
    started = _started_at(creator.pid)
    return started is not None and started > creator.created + _START_SLACK_S


def _stale(vhost: Mapping[str, Any], host: str) -> tuple[Names, Creator] | None:
    """The throw-away exchange a vhost is, and its creator, if that process on this host
    has ended; else None."""
    names = Names.of_vhost(str(vhost.get("name", "")))
    tags = vhost.get("tags") or ()
    creator = Creator.from_tags([str(t) for t in tags] if isinstance(tags, list) else ())
    if names is None or creator is None or creator.host != host or not process_gone(creator):
        return None
    return names, creator


def sweep(admin: BrokerAdmin) -> list[str]:
    """Remove every throw-away exchange whose creating process on this host has ended --
    its member users, then its vhost -- and any throw-away member user whose vhost is gone.
    Returns what was removed, in words."""
    host = socket.gethostname()
    # Users first, then vhosts: a user is made after its vhost and removed before it, so a
    # user seen here whose vhost is not listed after it has lost its vhost for good.
    users = admin.list_user_tags()
    vhosts = admin.list_vhosts()
    present = {str(v.get("name")) for v in vhosts}
    removed = []
    for vhost in vhosts:
        stale = _stale(vhost, host)
        if stale is None:
            continue
        names, creator = stale
        theirs = [u for u, tags in users.items() if names.owner in owners_marked(tags)]
        for user in theirs:
            admin.delete_user(user)
        admin.delete_vhost(names.vhost)
        removed.append(
            f"stale throw-away vhost {names.vhost} and its {len(theirs)} users "
            f"(pid {creator.pid} on this host has ended)"
        )
    for user, tags in users.items():
        for owner in owners_marked(tags):
            run = Names.of_vhost(owner.vhost)
            if run is not None and run.owner == owner and owner.vhost not in present:
                admin.delete_user(user)
                removed.append(f"throw-away user {user} (its vhost {owner.vhost} is gone)")
    return removed
