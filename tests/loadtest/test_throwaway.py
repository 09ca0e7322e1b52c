"""Throw-away exchanges' marks (loadtest/throwaway.py): the names that share one token, the
creator mark on their users, and whether the creating process is gone."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time

import pytest

from loadtest.throwaway import Creator, Names, process_gone
from rex.identity import check_deployment
from rex.ownership import Owner


def test_throw_away_names_share_one_token() -> None:
    names = Names.new()
    assert names.vhost == f"rex-tmp-{names.token}"
    assert names.deployment == f"tmp-{names.token}"
    assert check_deployment(names.deployment) is None
    assert Names.of_vhost(names.vhost) == names
    assert names.owner == Owner(names.deployment, names.vhost)
    assert Names.new() != names


@pytest.mark.parametrize("vhost", ["/", "rex-tmp-", "rex-tmp-A1", "rex-e2e-1234", "rex-tmp-a.b"])
def test_other_vhosts_are_not_throw_away_ones(vhost: str) -> None:
    assert Names.of_vhost(vhost) is None


def test_a_creator_mark_reads_back() -> None:
    creator = Creator("host-1", 4242, 1_700_000_000)
    assert creator.tags == (
        "rex-throwaway",
        "host:host-1",
        "pid:4242",
        "created:1700000000",
    )
    assert Creator.from_tags(list(creator.tags)) == creator
    assert "pid 4242 on host-1" in creator.description
    assert Creator.from_tags(["host:h", "pid:1", "created:1"]) is None  # not a throw-away
    assert Creator.from_tags(["rex-throwaway", "host:h", "pid:x", "created:1"]) is None


def test_this_process_is_alive() -> None:
    me = Creator.this_process()
    assert (me.host, me.pid) == (socket.gethostname(), os.getpid())
    assert not process_gone(me)


def test_an_ended_process_is_gone() -> None:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    assert process_gone(Creator(socket.gethostname(), child.pid, int(time.time())))


def test_a_live_pid_that_started_after_the_mark_is_another_process() -> None:
    # This process started long after 2001: its pid cannot be that mark's creator.
    assert process_gone(Creator(socket.gethostname(), os.getpid(), 1_000_000_000))
