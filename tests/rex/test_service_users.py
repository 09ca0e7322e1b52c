"""The services' broker users (rex/service_users.py): each permission regex matches exactly
the names that service uses, among every name of the exchange's topology (exchanges and
queues alike: RabbitMQ matches one regex against both)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from rex import config, topology
from rex.environment import MEMBER_ID_RE, VARIABLES
from rex.errors import ConfigError
from rex.provision import service_permissions, service_user_passwords
from rex.service_users import (
    NAME_PATTERN,
    PRODUCT_PATTERN,
    SERVICE_USERS,
    Service,
    broker_url_of,
    markdown_table,
    service_user,
)
from settlement_worker import configuration
from settlement_worker.payments.banks import wire

REPO = Path(__file__).resolve().parents[2]
PRODUCTS = ("PRND-OX", "DY-OX", "PRND-OX-USD")
MEMBERS = ("ganzhou-magnet", "xinyu-pvc")
GROUPS = ("main", "oxides")
BANKS = ("icbc-baotou", "boc-ganzhou")
CLIENT = topology.SETTLEMENT_BANK_CLIENT
OPERATORS = ("li-wei", "zhang-min")
PER_MEMBER = tuple(topology.member_request_queue(m) for m in MEMBERS)
SETTLEMENT_PER_MEMBER = tuple(topology.member_settlement_queue(m) for m in MEMBERS)


def _names(topo: topology.Topology) -> set[str]:
    return {e.name for e in topo.exchanges} | {q.name for q in topo.queues}


#: Every name on the vhost, of any kind, and a few that are not (yet) there.
UNIVERSE = (
    _names(topology.full(PRODUCTS, MEMBERS, OPERATORS))
    | _names(topology.for_bank_client(BANKS, CLIENT))
    | {topology.lock_queue(topology.engine_lock(g)) for g in GROUPS}
    | {topology.lock_queue(topology.PAYER_LOCK)}
    | {topology.legacy_member_queue(m) for m in MEMBERS}
    | {topology.bank_reply_queue("another-payer"), "amq.default", "rex.engine.images"}
    | set(PER_MEMBER)
    | set(SETTLEMENT_PER_MEMBER)
)

ENGINE_LOGS = {topology.engine_input_queue(p) for p in PRODUCTS}
IMAGE_LOGS = {topology.engine_image_log(p) for p in PRODUCTS}
MARKETDATA_LOGS = {topology.marketdata_log(p) for p in PRODUCTS}
BANK_QUEUES = {topology.bank_queue(b) for b in BANKS}
REPLIES = topology.bank_reply_queue(CLIENT)
GATEWAY_QUEUES = {topology.GATEWAY_REQUESTS, *PER_MEMBER}
SETTLEMENT_REQUEST_QUEUES = {topology.SETTLEMENT_REQUEST_QUEUE, *SETTLEMENT_PER_MEMBER}

# By hand, from what each service does (its __main__ and service modules): configure what it
# declares, write where it publishes and the queues it binds, read what it consumes and the
# exchanges it binds from.
EXPECTED: dict[Service, dict[str, set[str]]] = {
    Service.GATEWAY: {
        "configure": {
            topology.REQUESTS,
            topology.ENGINE,
            topology.EXECUTIONS,
            *GATEWAY_QUEUES,
            *ENGINE_LOGS,
            topology.OPERATOR_REQUESTS,
            topology.OPERATOR_ANSWERS,
            topology.GATEWAY_OPERATOR_REQUESTS,
        },
        "write": {
            topology.ENGINE,
            topology.EXECUTIONS,
            *GATEWAY_QUEUES,
            *ENGINE_LOGS,
            topology.OPERATOR_ANSWERS,  # it answers operators
            topology.GATEWAY_OPERATOR_REQUESTS,  # binds it
        },
        "read": {
            *GATEWAY_QUEUES,
            topology.REQUESTS,
            topology.ENGINE,
            topology.GATEWAY_OPERATOR_REQUESTS,  # consumes it
            topology.OPERATOR_REQUESTS,  # binds from it
            *ENGINE_LOGS,  # reads its forwards back (gateway/read_back.py)
        },
    },
    Service.ENGINE: {
        "configure": {
            topology.ENGINE,
            topology.ENGINE_IMAGES,
            topology.EXECUTIONS,
            topology.TRADES,
            topology.MARKETDATA,
            topology.SETTLEMENT_TRADES,
            *ENGINE_LOGS,
            *IMAGE_LOGS,
            *MARKETDATA_LOGS,
            *(topology.lock_queue(topology.engine_lock(g)) for g in GROUPS),
        },
        "write": {
            topology.ENGINE,
            topology.ENGINE_IMAGES,
            topology.EXECUTIONS,
            topology.TRADES,
            topology.MARKETDATA,
            topology.SETTLEMENT_TRADES,
            *ENGINE_LOGS,
            *IMAGE_LOGS,
            *MARKETDATA_LOGS,
        },
        "read": {
            *ENGINE_LOGS,
            *IMAGE_LOGS,
            topology.ENGINE,
            topology.ENGINE_IMAGES,
            topology.MARKETDATA,
            topology.TRADES,
        },
    },
    Service.SETTLEMENT: {
        "configure": {
            topology.TRADES,
            topology.SETTLEMENT,
            topology.SETTLEMENT_REQUESTS,
            topology.SETTLEMENT_TRADES,
            *SETTLEMENT_REQUEST_QUEUES,
            topology.BANK,
            *BANK_QUEUES,
            REPLIES,
            topology.lock_queue(topology.PAYER_LOCK),
        },
        "write": {
            topology.SETTLEMENT,
            topology.BANK,
            topology.SETTLEMENT_TRADES,
            *SETTLEMENT_REQUEST_QUEUES,
            *BANK_QUEUES,
        },
        "read": {
            topology.SETTLEMENT_TRADES,
            *SETTLEMENT_REQUEST_QUEUES,
            REPLIES,
            topology.TRADES,
            topology.SETTLEMENT_REQUESTS,
            topology.BANK,
        },
    },
    Service.BANK_SIM: {
        "configure": {topology.BANK, *BANK_QUEUES},
        "write": {"amq.default", *BANK_QUEUES},
        "read": {topology.BANK, *BANK_QUEUES},
    },
}


@pytest.mark.parametrize("column", ["configure", "write", "read"])
@pytest.mark.parametrize("service", list(Service))
def test_each_regex_matches_exactly_the_names_the_service_uses(
    service: Service, column: str
) -> None:
    regex = getattr(service_permissions(service_user(service)), column)
    matched = {name for name in UNIVERSE if re.fullmatch(regex, name)}
    expected = EXPECTED[service][column]
    assert expected <= UNIVERSE
    assert sorted(matched - expected) == [], "allowed beyond its need"
    assert sorted(expected - matched) == [], "refused what it needs"


@pytest.mark.parametrize(
    ("service", "declared"),
    [
        (Service.GATEWAY, topology.for_gateway(PRODUCTS)),
        (Service.ENGINE, topology.for_engine(PRODUCTS)),
        (
            Service.SETTLEMENT,
            topology.for_settlement(MEMBERS, OPERATORS) + wire.for_client(BANKS, CLIENT),
        ),
        (Service.BANK_SIM, wire.for_banks(BANKS)),
    ],
)
def test_each_service_may_declare_and_bind_what_it_declares_at_start_up(
    service: Service, declared: topology.Topology
) -> None:
    rights = service_permissions(service_user(service))
    assert all(re.fullmatch(rights.configure, n) for n in _names(declared))
    # queue.bind and queue.unbind: write on the queue, read on the exchange
    for binding in (*declared.bindings, *declared.unbindings):
        assert re.fullmatch(rights.write, binding.queue), binding
        assert re.fullmatch(rights.read, binding.exchange), binding


REQUESTS_AND_DEAD_LETTERS = {
    topology.REQUESTS,
    topology.SETTLEMENT_REQUESTS,
    topology.DEAD,
    *GATEWAY_QUEUES,
    *SETTLEMENT_REQUEST_QUEUES,
}


def test_the_engine_reads_no_request_not_even_by_binding_a_queue_of_its_own() -> None:
    # read on an exchange lets a user bind a queue it may configure to it, and read that.
    read = service_permissions(service_user(Service.ENGINE)).read
    assert sorted(n for n in REQUESTS_AND_DEAD_LETTERS if re.fullmatch(read, n)) == []


def test_no_service_reads_the_dead_letters() -> None:
    # rex.dead is an exchange and a queue: read on either name is read on both.
    for user in SERVICE_USERS:
        assert not re.fullmatch(service_permissions(user).read, topology.DEAD), user.service


def test_the_name_patterns_are_the_configurations_own() -> None:
    assert config._SYMBOL_RE.pattern == PRODUCT_PATTERN
    assert NAME_PATTERN == MEMBER_ID_RE.pattern == configuration._ID_RE.pattern


def test_each_service_logs_in_with_its_own_url_else_rex_broker_url() -> None:
    own = "amqp://rex-gateway:pw@broker:5672/rex"
    assert broker_url_of(Service.GATEWAY, "amqp://shared", {"REX_GATEWAY_BROKER_URL": own}) == own
    assert broker_url_of(Service.GATEWAY, "amqp://shared", {}) == "amqp://shared"
    assert broker_url_of(Service.ENGINE, "amqp://shared", {"REX_GATEWAY_BROKER_URL": own}) == (
        "amqp://shared"
    )


def test_every_service_users_variable_is_registered() -> None:
    names = {v.name for v in VARIABLES}
    for user in SERVICE_USERS:
        assert {user.url.name, user.password.name} <= names


def test_passwords_are_required_only_when_asked_and_a_missing_one_is_named() -> None:
    given = {"REX_GATEWAY_BROKER_PASSWORD": "secret"}
    passwords = service_user_passwords(given)
    assert passwords[Service.GATEWAY] == "secret" and passwords[Service.ENGINE] is None
    with pytest.raises(ConfigError, match="REX_ENGINE_BROKER_PASSWORD: is not set"):
        service_user_passwords(given, required=True)


SERVICE_PACKAGES = ("gateway", "engine", "settlement_worker")


def test_no_service_reads_the_broker_administrators_url() -> None:
    readers = sorted(
        path.relative_to(REPO).as_posix()
        for package in SERVICE_PACKAGES
        for path in (REPO / package).rglob("*.py")
        if re.search(r"REX_BROKER_ADMIN_URL|broker_admin_url", path.read_text())
    )
    assert readers == []


def test_docker_compose_gives_the_admin_only_to_provision() -> None:
    compose = yaml.safe_load((REPO / "docker-compose.yml").read_text())
    for name, service in compose["services"].items():
        env = service.get("environment") or {}
        if "REX_BROKER_ADMIN_URL" in env:
            assert name == "provision", name
        if name in ("rabbitmq", "postgres", "prometheus", "grafana", "provision"):
            continue
        assert "REX_BROKER_URL" not in env, name
        urls = [value for key, value in env.items() if key.endswith("_BROKER_URL")]
        assert len(urls) == 1 and "guest" not in urls[0], name


def test_security_md_shows_the_table_as_it_is() -> None:
    text = (REPO / "docs" / "operators" / "security.md").read_text()
    begin = "<!-- service users table: rex.service_users.markdown_table() -->\n"
    end = "<!-- end of service users table -->"
    shown = text[text.index(begin) + len(begin) : text.index(end)]
    assert shown == markdown_table()
