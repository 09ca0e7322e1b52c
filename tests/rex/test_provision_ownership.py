"""`rex provision` beside another deployment on the same RabbitMQ: it never changes or
deletes a user that belongs to another deployment, adopts its own legacy (unmarked) users,
and says what to do.

Everything here has the unique prefix ``own-<random>``: two vhosts, the deployment names and
so every user; all of it is removed afterwards.
"""

from __future__ import annotations

import secrets
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from cli import main as cli
from rex.config import ProcessConfig
from rex.environment import REX_BROKER_ADMIN_URL, REX_TEST_AMQP_URL
from rex.ownership import Owner
from rex.provision import BrokerAdmin, MemberAction, member_permissions, provision

pytestmark = pytest.mark.broker

ADMIN_URL = REX_BROKER_ADMIN_URL.get()
AMQP_BASE = REX_TEST_AMQP_URL.get()
REPO = Path(__file__).resolve().parents[2]
PASSWORD = "own-secret"


@dataclass
class Broker:
    admin: BrokerAdmin
    token: str
    x: str  # the first deployment's vhost
    y: str  # the second one's

    @property
    def deployment(self) -> str:
        return f"own-{self.token}"

    def url(self, vhost: str) -> str:
        return f"{AMQP_BASE}/{urllib.parse.quote(vhost, safe='')}"

    def process_config(self, config: Path, vhost: str, deployment: str) -> ProcessConfig:
        return ProcessConfig(config, Path("data"), self.url(vhost), ADMIN_URL, deployment)

    def state(self, login: str) -> tuple[Any, ...]:
        """All the broker holds of a user: hash, tags, and its permissions everywhere."""
        user = self.admin.get_user(login)
        assert user is not None, login
        perms = {v: self.admin.get_permissions(v, login) for v in (self.x, self.y)}
        return (user["password_hash"], tuple(user["tags"]), perms, self.admin.user_vhosts(login))


@pytest.fixture
def broker() -> Iterator[Broker]:
    admin = BrokerAdmin(ADMIN_URL, timeout=5)
    token = secrets.token_hex(4)
    found = Broker(admin, token, f"rex-own-{token}-x", f"rex-own-{token}-y")
    try:
        for vhost in (found.x, found.y):
            admin.put_vhost(vhost)
            admin.put_permissions(vhost, "guest", ".*", ".*", ".*")  # declares the topology
        yield found
    finally:
        for user in admin.list_users():
            if user.startswith(f"own-{token}"):
                admin.delete_user(user)
        for vhost in (found.x, found.y):
            admin.delete_vhost(vhost)


def write_config(directory: Path, members: dict[str, bool]) -> Path:
    """The shipped PRND-OX and ``members`` (id -> enabled), all with one password."""
    directory.mkdir(parents=True, exist_ok=True)
    shipped = (REPO / "config" / "products.toml").read_text()
    start = shipped.index('[[products]]\nsymbol = "PRND-OX"')
    (directory / "products.toml").write_text(
        shipped[start : shipped.index("[[products]]", start + 1)]
    )
    (directory / "members.toml").write_text(
        "".join(
            f'[[members]]\nid = "{m}"\nname = "Firm {m}"\npassword = "{PASSWORD}"\n'
            f"enabled = {str(on).lower()}\n\n"
            for m, on in members.items()
        )
    )
    return directory


def test_provision_leaves_another_deployments_users_alone_and_adopts_its_legacy_ones(
    broker: Broker,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    admin, d = broker.admin, broker.deployment
    # Deployment X, named d, on vhost x.
    x_config = write_config(tmp_path / "x", {"m1": True, "m2": True})
    report = provision(broker.process_config(x_config, broker.x, d), {})
    assert [(m.login, m.action) for m in report.members] == [
        (f"{d}.m1", MemberAction.CREATED),
        (f"{d}.m2", MemberAction.CREATED),
    ]
    # Users of the same names that are not X's own marked ones: unmarked but with
    # permissions on x, unmarked with a tag, and two legacy ones of Y (unmarked: with
    # permissions on y only, with none).
    for login in (f"{d}.m3", f"{d}.m4", f"{d}.m5", f"{d}.m6"):
        admin.put_user(login, "theirs", "monitoring" if login.endswith("m4") else "")
    admin.put_permissions(broker.x, f"{d}.m3", "^$", "^$", "^$")
    admin.put_permissions(broker.y, f"{d}.m5", "^$", "^$", "^$")
    foreign = [f"{d}.m{i}" for i in range(1, 5)]
    before = {login: broker.state(login) for login in foreign}

    # Deployment Y on vhost y, wrongly given the same name: m2 is disabled there.
    y_config = write_config(
        tmp_path / "y", {"m1": True, "m2": False, "m3": True, "m4": True, "m5": True, "m6": True}
    )
    report = provision(broker.process_config(y_config, broker.y, d), {})
    assert [(m.member, m.action, m.owner) for m in report.members] == [
        ("m1", MemberAction.FOREIGN, f"deployment '{d}' on vhost '{broker.x}'"),
        ("m2", MemberAction.FOREIGN, f"deployment '{d}' on vhost '{broker.x}'"),
        ("m3", MemberAction.FOREIGN, f"not marked, with permissions on vhost '{broker.x}'"),
        ("m4", MemberAction.FOREIGN, "not marked, tagged monitoring"),
        ("m5", MemberAction.UPDATED, None),
        ("m6", MemberAction.UPDATED, None),
    ]
    assert [m.member for m in report.refused] == ["m1", "m2", "m3", "m4"]
    # Never changed, never deleted (m2, disabled in Y, still exists), nothing granted on y.
    assert {login: broker.state(login) for login in foreign} == before
    # The legacy users are Y's now: marked, with Y's permissions.
    mark = Owner(d, broker.y).tag
    for member in ("m5", "m6"):
        user = admin.get_user(f"{d}.{member}")
        assert user is not None and user["tags"] == [mark]
        assert admin.get_permissions(broker.y, f"{d}.{member}") == member_permissions(member)

    # The command says so per member, exits 1 and says what to do.
    monkeypatch.setenv("REX_BROKER_URL", broker.url(broker.y))
    monkeypatch.setenv("REX_BROKER_ADMIN_URL", ADMIN_URL)
    monkeypatch.setenv("REX_DEPLOYMENT", d)
    assert cli.main(["provision", "--config-dir", str(y_config)]) == 1
    out, err = capsys.readouterr()
    assert (
        f"m1  refused: user '{d}.m1' belongs to deployment '{d}' on vhost '{broker.x}'; left alone"
    ) in out.splitlines()
    assert "4 refused" in out.splitlines()[-1]
    assert err.startswith(
        f"rex: 4 member users belong to another deployment on this broker and were left alone "
        f"(REX_DEPLOYMENT is '{d}'). Give this deployment a name of its own, e.g. "
        "REX_DEPLOYMENT=prod"
    )
    assert {login: broker.state(login) for login in foreign} == before

    # Following the advice: Y under a name of its own provisions cleanly, X untouched.
    monkeypatch.setenv("REX_DEPLOYMENT", f"{d}-y")
    assert cli.main(["provision", "--config-dir", str(y_config)]) == 0
    assert f"deployment '{d}-y': members log in as {d}-y.<id>" in capsys.readouterr().out
    user = admin.get_user(f"{d}-y.m1")
    assert user is not None and user["tags"] == [Owner(f"{d}-y", broker.y).tag]
    assert {login: broker.state(login) for login in foreign} == before


def test_a_disabled_members_own_user_is_still_deleted(broker: Broker, tmp_path: Path) -> None:
    d = broker.deployment
    provision(broker.process_config(write_config(tmp_path / "on", {"m1": True}), broker.x, d), {})
    report = provision(
        broker.process_config(write_config(tmp_path / "off", {"m1": False}), broker.x, d), {}
    )
    assert [(m.login, m.action) for m in report.members] == [(f"{d}.m1", MemberAction.DELETED)]
    assert broker.admin.get_user(f"{d}.m1") is None


def test_a_dry_run_reports_a_foreign_user_and_changes_nothing(
    broker: Broker, tmp_path: Path
) -> None:
    d = broker.deployment
    provision(broker.process_config(write_config(tmp_path / "x", {"m1": True}), broker.x, d), {})
    before = broker.state(f"{d}.m1")
    config = write_config(tmp_path / "y", {"m1": True})
    report = provision(broker.process_config(config, broker.y, d), {}, dry_run=True)
    assert [m.action for m in report.members] == [MemberAction.FOREIGN]
    assert broker.state(f"{d}.m1") == before
