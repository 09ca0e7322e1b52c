"""Each member's settlement requests on a queue of its own, through real RabbitMQ and
`python -m settlement_worker` on SQLite (issue 12: one member can never hurt another by
volume): a member's flood of settlement requests does not hold up another member's request,
and a login that is neither a member nor an operator account -- guest, even named in the old
REX_OPERATORS -- has no queue to reach.

The flood is measured by order, not by time: the desk stamps each request when it takes it
(``received_at``), so "calm's request was taken before most of the flood" holds on a slow
machine as well as a fast one. (A member's full queue refusing its own publishes only is in
tests/rex/test_provision.py, where no worker drains the queue.)
"""

from __future__ import annotations

import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pika
import pika.exceptions
import pytest

from rex import topology
from rex.config import ProcessConfig
from rex.protocol import CONTENT_TYPE, pack
from rex.provision import BrokerAdmin, provision
from tests.system.test_settlement_requests import (
    ADMIN_URL,
    PASSWORD,
    ROOT,
    SETTLEMENT_TOML,
    Site,
    wait_until_answering,
)

pytestmark = pytest.mark.broker

SHOW = "show_settlement_settings"
FLOOD = 600  # well under a member queue's bound (1,000): every one of them is taken
TIMEOUT_S = 120.0  # for the whole flood to be answered, on the slowest machine


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    tag = uuid.uuid4().hex[:8]
    vhost = f"rex-sq-{tag}"
    admin = BrokerAdmin(ADMIN_URL)
    admin.put_vhost(vhost)
    admin.put_permissions(vhost, "guest", ".*", ".*", ".*")
    config, data = tmp_path_factory.mktemp("config"), tmp_path_factory.mktemp("data")
    a, b, c, d = (f"sq{tag}-{x}" for x in "abcd")
    for name in ("products.toml", "holidays.toml"):
        shutil.copy(ROOT / "config" / name, config / name)
    (config / "members.toml").write_text(
        "".join(
            f'[[members]]\nid = "{m}"\nname = "Firm {m}"\npassword = "{PASSWORD}"\n\n'
            for m in (a, b, c, d)
        )
    )
    (config / "settlement.toml").write_text(SETTLEMENT_TOML.format(a=a, c=c, d=d))
    url = f"amqp://guest:guest@127.0.0.1:5672/{vhost}"
    env = {
        **os.environ,
        "REX_BROKER_URL": url,
        "REX_CONFIG_DIR": str(config),
        "REX_DATA_DIR": str(data),
        "REX_METRICS_PORT": "0",
        "PYTHONUNBUFFERED": "1",
        # Named as the old worker took it: guest acted for any member. It is no longer read.
        "REX_OPERATORS": "guest",
    }
    env.pop("REX_DATABASE_URL", None)  # SQLite
    logs = tmp_path_factory.mktemp("logs") / "settlement.log"
    worker = None
    try:
        provision(ProcessConfig(config, data, url, ADMIN_URL), env)
        with open(logs, "ab") as log:
            worker = subprocess.Popen(
                [sys.executable, "-m", "settlement_worker", "--no-payer"],
                cwd=ROOT,
                env=env,
                stdout=log,
                stderr=log,
            )
        running = Site(url, env, a, b, c, d, logs, "", "")
        wait_until_answering(running)
        yield running
    finally:
        if worker is not None:
            worker.send_signal(signal.SIGTERM)
            worker.wait(timeout=20)
        for member in (a, b, c, d):
            admin.delete_user(member)
        admin.delete_vhost(vhost)


def connect(site: Site, user: str, password: str) -> pika.BlockingConnection:
    params = pika.URLParameters(site.url)
    params.credentials = pika.PlainCredentials(user, password)
    return pika.BlockingConnection(params)


def properties(login: str, message_id: str) -> pika.BasicProperties:
    return pika.BasicProperties(
        content_type=CONTENT_TYPE,
        delivery_mode=2,
        type=SHOW,
        message_id=message_id,
        user_id=login,
        timestamp=int(time.time()),
    )


def received(site: Site, sender: str) -> list[int]:
    """When the desk took each of ``sender``'s requests (ns), as the store recorded it."""
    with sqlite3.connect(Path(site.env["REX_DATA_DIR"]) / "settlement.sqlite3") as db:
        rows = db.execute(
            "SELECT received_at FROM settlement_requests WHERE sender = ?", [sender]
        ).fetchall()
    return sorted(int(r[0]) for r in rows)


def test_a_members_flood_does_not_hold_up_another_members_request(site: Site) -> None:
    flooder = connect(site, site.b, PASSWORD)
    try:
        channel = flooder.channel()  # no confirms: as fast as a flooder sends
        for n in range(FLOOD):
            channel.basic_publish(
                topology.SETTLEMENT_REQUESTS,
                topology.settlement_request_key(site.b, SHOW),
                pack({}),
                properties(site.b, f"flood-{n}"),
            )
        flooder.process_data_events(time_limit=0)
    finally:
        flooder.close()  # what it sent is in: closing flushes and waits for the broker
    with site.client(site.c) as calm:
        sent = time.monotonic()
        answer = calm.settlement_settings(wait=30)
        waited = time.monotonic() - sent
    assert answer.accepted
    deadline = time.monotonic() + TIMEOUT_S
    while len(flood := received(site, site.b)) < FLOOD:
        assert time.monotonic() < deadline, site.logs.read_text()[-3000:]
        time.sleep(0.5)
    (calm_at,) = received(site, site.c)
    after = sum(1 for at in flood if at > calm_at)
    # Behind one shared queue calm's request waited for the whole flood (after == 0). Now
    # at most a prefetch of the flooder's requests come before it: most of the flood is
    # taken after it. Loosely: half.
    assert after >= FLOOD // 2, (after, waited)
    # And the wait is not the flood's: far less than the time the flood took to drain.
    assert waited < (flood[-1] - flood[0]) / 1e9, (waited, after)


def test_a_request_from_a_login_that_is_no_member_nor_account_has_no_queue(site: Site) -> None:
    """guest, the services' login (and the old REX_OPERATORS' operator): its own key routes
    nowhere, so the broker returns the request; nothing is recorded, nothing acted."""
    connection = connect(site, "guest", "guest")
    try:
        channel = connection.channel()
        channel.confirm_delivery()
        with pytest.raises(pika.exceptions.UnroutableError):
            channel.basic_publish(
                topology.SETTLEMENT_REQUESTS,
                topology.settlement_request_key("guest", SHOW),
                pack({"member": site.a}),
                properties("guest", "guest-1"),
                mandatory=True,
            )
    finally:
        connection.close()
    with site.client(site.d) as later:  # the worker has taken what came before it
        assert later.settlement_settings(wait=30).accepted
    assert received(site, "guest") == []
