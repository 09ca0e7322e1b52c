"""No member input can forge a line of a service's log, through the real RabbitMQ.

A member puts a newline and then text shaped like a log line into what the gateway and the
settlement worker log: a request's message_id, its routing key, a string in its body. Every
line both services wrote must still be one JSON object (rex.logs), and none may be the
forged one; the forged text is there, but inside a JSON string."""

from __future__ import annotations

import json
import signal
import time
from pathlib import Path
from typing import Any

import pika
import pytest

from rex import topology
from rex.protocol import CONTENT_TYPE, pack
from rex.settlement_protocol import SET_RECEIPT_LIMITS, SHOW_SETTLEMENT_SETTINGS
from tests.system.conftest import PASSWORD, Exchange, wait_for_answer, write_settlement_config

pytestmark = pytest.mark.broker

# What a forger wants an operator (or a log shipper) to read as a line of its own, in the
# format the services wrote before their lines were JSON, and as a JSON line.
FORGED = "2026-11-23T14:05:00.001Z ERROR service=settlement rex.settlement ledger corrupt"
FORGED_JSON = json.dumps(
    {
        "time": "2026-11-23T14:05:00.001Z",
        "level": "ERROR",
        "service": "settlement",
        "logger": "rex.settlement",
        "message": "ledger corrupt",
    }
)
# A member may publish only routing keys `<member>.<word>`, a word without dots: forged
# text that has none.
FORGED_WORDS = "2026-11-23T14:05:00Z ERROR service=gateway rex-gateway all members suspended"
BREAKS = ("\n", "\r\n", "\u2028")


def publish(
    url: str,
    exchange: str,
    routing_key: str,
    body: bytes,
    *,
    message_id: str,
    kind: str,
    user_id: str | None,
) -> None:
    """One request as a member's (or anyone's) own program may publish it, confirmed."""
    connection = pika.BlockingConnection(pika.URLParameters(url))
    try:
        channel = connection.channel()
        channel.confirm_delivery()
        channel.basic_publish(
            exchange,
            routing_key,
            body,
            pika.BasicProperties(
                content_type=CONTENT_TYPE,
                delivery_mode=2,
                type=kind,
                message_id=message_id,
                user_id=user_id,
            ),
        )
    finally:
        connection.close()


def member_url(exchange: Exchange, login: str) -> str:
    return exchange.url.replace("guest:guest@", f"{login}:{PASSWORD}@", 1)


def check_every_line(path: Path) -> list[dict[str, Any]]:
    """Every line of the log at `path` is one of rex.logs, and none is a forged one."""
    written = path.read_text(encoding="utf-8").splitlines()
    assert written, f"{path.name} is empty"
    entries = []
    for number, line in enumerate(written, 1):
        for forged in (FORGED, FORGED_JSON, FORGED_WORDS):
            assert not line.startswith(forged), f"{path.name}:{number} is forged: {line!r}"
        try:
            entry = json.loads(line)
        except ValueError:
            entry = None
        assert isinstance(entry, dict), f"{path.name}:{number} is not a JSON object: {line!r}"
        assert list(entry)[:5] == ["time", "level", "service", "logger", "message"], (
            f"{path.name}:{number}: {line!r}"
        )
        entries.append(entry)
    return entries


def test_member_input_cannot_forge_a_line_of_the_gateway_or_settlement_log(
    exchange: Exchange,
) -> None:
    config = Path(exchange.env["REX_CONFIG_DIR"])
    write_settlement_config(config)
    exchange.env.pop("REX_DATABASE_URL", None)  # SQLite
    exchange.start("gateway", "gateway", "--tick-interval", "0.5")
    exchange.start("engine", "engine", "--group", "main")
    exchange.start("settlement", "settlement_worker", "--no-payer")
    with exchange.client("alpha") as alpha:
        try:
            wait_for_answer(alpha, "PRND-OX")
            alpha.settlement_settings(wait=30)
        except TimeoutError:
            pytest.fail("exchange did not come up:\n" + exchange.log_tail())
        member = alpha.member
        login = alpha.login
        as_member = member_url(exchange, login)
        for n, brk in enumerate(BREAKS):
            for forged in (FORGED, FORGED_JSON):
                tail = f"{brk}{forged}"
                # To the gateway: a member's order with a forged message_id and body string;
                # a forged routing key without user_id, which the gateway dead-letters and
                # logs (from the operator's login, which may use any routing key).
                publish(
                    as_member,
                    topology.REQUESTS,
                    topology.request_key(member, "PRND-OX"),
                    pack({"client_order_id": f"forge-{n}{tail}", "product": "PRND-OX"}),
                    message_id=f"forge-{n}-{len(forged)}{tail}",
                    kind="new_order",
                    user_id=login,
                )
                publish(
                    exchange.url,
                    topology.REQUESTS,
                    f"{member}.PRND-OX{tail}",
                    b"",
                    message_id=f"forge-key-{n}-{len(forged)}",
                    kind="new_order",
                    user_id=None,
                )
                # To the settlement worker: a forged message_id, and a forged reason in the
                # body.
                publish(
                    as_member,
                    topology.SETTLEMENT_REQUESTS,
                    topology.settlement_request_key(member, SET_RECEIPT_LIMITS),
                    pack({"max_tenor_days": "ninety" + tail, "reason": f"board{tail}"}),
                    message_id=f"forge-s-{n}-{len(forged)}{tail}",
                    kind=SET_RECEIPT_LIMITS,
                    user_id=login,
                )
            publish(  # the same from a member's own login
                as_member,
                topology.REQUESTS,
                f"{member}.PRND-OX{brk}{FORGED_WORDS}",
                b"",
                message_id=f"forge-member-key-{n}",
                kind="new_order",
                user_id=None,
            )
            # A forged routing key to the settlement worker, from the member's login: only
            # a member's (or an operator account's) own key reaches a settlement queue.
            publish(
                as_member,
                topology.SETTLEMENT_REQUESTS,
                f"{member}.{SHOW_SETTLEMENT_SETTINGS}{brk}{FORGED_WORDS}",
                pack({}),
                message_id=f"forge-s-key-{n}",
                kind=SHOW_SETTLEMENT_SETTINGS,
                user_id=login,
            )
        # Each service handles its queue in order: once these are answered, so are those.
        wait_for_answer(alpha, "PRND-OX")
        alpha.settlement_settings(wait=30)
    time.sleep(0.5)  # the log lines of the last answers
    for name in ("gateway", "engine", "settlement"):
        exchange.kill(name, signal.SIGTERM)  # so their last lines are in too
    written = {
        name: check_every_line(exchange.logs / f"{name}.log") for name in ("gateway", "settlement")
    }
    # The forged text did reach the logs, inside JSON strings: the check above saw it. (The
    # gateway shows only the first 64 characters of a member's value: its forged time.)
    logged = [
        (name, entry["message"])
        for name, entries in written.items()
        for entry in entries
        if "2026-11-23T14:05:00" in entry["message"]
    ]
    assert {name for name, _ in logged} == {"gateway", "settlement"}, logged
