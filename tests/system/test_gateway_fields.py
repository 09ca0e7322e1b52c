"""Every field a member controls, through real RabbitMQ: the three requests once seen to make
the gateway's own reject fail (and with it the gateway's connection), and a fuzz of every
field of every request kind, body and AMQP properties, interleaved with another member's
innocent orders (docs/members/protocol.md#bounds).

What is checked: each attack gets its specific reject; the gateway never loses its
connection (its log has no "bus connection lost" line) and stays up; every innocent order is
answered; every fuzz request is answered, or dropped by a documented rule: dead-lettered
for want of `user_id`, or not applied again for a `message_id` (or, where that is unusable,
a body and message_id) the gateway already answered.

The fuzz sends GATEWAY_FUZZ_PAYLOADS requests (default 1500; seeded by GATEWAY_FUZZ_SEED).
Publishes the broker itself refuses (a routing key the member's topic permission does not
allow) never reach the gateway: the fuzz counts them apart and sends no more of them.
"""

from __future__ import annotations

import os
import random
import re
import time
from collections.abc import Iterator
from typing import Any

import pika
import pika.exceptions
import pytest

from rex import topology
from rex.client import Client
from rex.member_log import MemoryCursorStore
from rex.protocol import CONTENT_TYPE, ExecutionReport, NewOrderRequest, pack
from rex.vocabulary import Side, TimeInForce
from tests.system.conftest import PASSWORD, Exchange, wait_for_answer

pytestmark = [pytest.mark.broker, pytest.mark.slow]

LOST = "bus connection lost"
FUZZ_PAYLOADS = int(os.environ.get("GATEWAY_FUZZ_PAYLOADS", "1500"))
FUZZ_SEED = int(os.environ.get("GATEWAY_FUZZ_SEED", "12"))
#: A message_id the gateway uses as it is (docs/members/protocol.md#bounds); it knows a
#: request with another by its body and that message_id.
USABLE_MESSAGE_ID = re.compile(r"[\x21-\x7e]{1,128}")
INNOCENT_EVERY = 10  # one innocent order per this many fuzz requests


@pytest.fixture(scope="module")
def running(exchange: Exchange) -> Iterator[Exchange]:
    exchange.start("gateway", "gateway", "--tick-interval", "0.5")
    exchange.start("engine-main", "engine", "--group", "main")
    with exchange.client("gamma") as gamma:
        try:
            wait_for_answer(gamma, "PRND-OX")
        except TimeoutError:
            pytest.fail("exchange did not come up:\n" + exchange.log_tail())
    yield exchange


def gateway_log(exchange: Exchange) -> str:
    return (exchange.logs / "gateway.log").read_text(errors="replace")


def connection_losses(exchange: Exchange) -> int:
    return gateway_log(exchange).count(LOST)


class RawMember:
    """A member publishing raw AMQP messages with properties of its choosing."""

    def __init__(self, exchange: Exchange, short: str) -> None:
        self.member = exchange.members[short]
        params = pika.URLParameters(exchange.url)
        params.credentials = pika.PlainCredentials(self.member, PASSWORD)
        self.connection = pika.BlockingConnection(params)
        self.channel = self._channel()

    def _channel(self) -> Any:
        channel = self.connection.channel()
        channel.confirm_delivery()
        return channel

    def publish(
        self, body: bytes, routing_key: str | None = None, *, user_id: bool = True, **props: Any
    ) -> bool:
        """Publish; False if the broker refused it (the channel is opened again)."""
        properties = pika.BasicProperties(user_id=self.member if user_id else None, **props)
        try:
            self.channel.basic_publish(
                topology.REQUESTS,
                routing_key or f"{self.member}.PRND-OX",
                body,
                properties,
            )
        except pika.exceptions.ChannelClosedByBroker:
            self.channel = self._channel()
            return False
        return True

    def close(self) -> None:
        self.connection.close()


def reports(exchange: Exchange, short: str, want: int, timeout: float) -> list[ExecutionReport]:
    """The member's reports from the start of its log: until `want` of them (or `timeout`),
    then whatever else comes within a second."""
    got: list[ExecutionReport] = []
    client = Client(exchange.members[short], PASSWORD, exchange.url, cursor=MemoryCursorStore())
    try:
        deadline = time.monotonic() + timeout
        while len(got) < want and time.monotonic() < deadline:
            got.extend(client.executions(timeout=0.5))
        got.extend(client.executions(timeout=1.0))
    finally:
        client.close()
    return got


def innocent(client: Client, cid: str) -> None:
    """A harmless order of another member: an IOC bid below any fuzz ask."""
    client.send(
        NewOrderRequest(cid, "PRND-OX", Side.BUY, 100, price=450_000, time_in_force=TimeInForce.IOC)
    )


def order_body(cid: str, product: str = "PRND-OX") -> bytes:
    """An order the gateway rejects in any case (off tick), so that its own reject is what
    the old gateway failed to publish."""
    return pack(
        {
            "client_order_id": cid,
            "product": product,
            "side": "buy",
            "quantity": 100,
            "price": 455_010,
            "time_in_force": "IOC",
        }
    )


def dead_letters(exchange: Exchange) -> int:
    connection = pika.BlockingConnection(pika.URLParameters(exchange.url))
    try:
        frame = connection.channel().queue_declare(topology.DEAD_LETTERS, passive=True)
        return int(frame.method.message_count)
    finally:
        connection.close()


# --------------------------------------------------------------------------- the three attacks


def test_the_three_seen_attacks_get_specific_rejects_and_break_nothing(running: Exchange) -> None:
    losses = connection_losses(running)
    attacker = RawMember(running, "alpha")
    member = attacker.member
    innocents = [f"inn-a{n}" for n in range(15)]
    with running.client("beta") as beta:
        for n in range(5):
            innocent(beta, innocents[n])
        attacker.publish(
            order_body("atk-mid"),
            message_id="m" * 250,
            type="new_order",
            content_type=CONTENT_TYPE,
            timestamp=int(time.time()),
        )
        for n in range(5, 10):
            innocent(beta, innocents[n])
        attacker.publish(
            order_body("atk-ts"),
            message_id="atk-ts-1",
            type="new_order",
            content_type=CONTENT_TYPE,
            timestamp=2**62,
        )
        attacker.publish(
            order_body("atk-prod", "P" * 300),
            message_id="atk-prod-1",
            type="new_order",
            content_type=CONTENT_TYPE,
            timestamp=int(time.time()),
        )
        for n in range(10, 15):
            innocent(beta, innocents[n])
    attacker.close()
    answers = {r.client_order_id: r for r in reports(running, "alpha", 3, 30) if r.exec_id}
    assert {"atk-mid", "atk-ts", "atk-prod"} <= set(answers), running.log_tail()
    by_mid, by_ts, by_product = answers["atk-mid"], answers["atk-ts"], answers["atk-prod"]
    assert (by_mid.status, by_mid.reason) == ("rejected", "malformed")
    assert by_mid.text == "message_id must be 1-128 printable ASCII characters without spaces"
    assert by_mid.exec_id.startswith(f"gw-{member}-sha1-")  # not the message_id echoed
    assert (by_ts.status, by_ts.reason, by_ts.exec_id) == (
        "rejected",
        "malformed",
        f"gw-{member}-atk-ts-1",
    )
    assert by_ts.text == (
        "timestamp must be seconds since the epoch, at most 4102444800 (2100-01-01)"
    )
    assert by_ts.timestamp < 2**63
    assert (by_product.status, by_product.reason, by_product.product) == (
        "rejected",
        "malformed",
        "",
    )
    assert by_product.text == (
        "product must be 1-32 printable ASCII characters without spaces or dots"
    )
    answered = {r.client_order_id for r in reports(running, "beta", len(innocents), 30)}
    assert set(innocents) <= answered, "innocent orders unanswered"
    assert connection_losses(running) == losses, gateway_log(running)[-5000:]
    assert running.processes["gateway"].poll() is None


# --------------------------------------------------------------------------- fuzz


FIELDS = {
    "new_order": (
        "client_order_id",
        "product",
        "side",
        "quantity",
        "order_type",
        "price",
        "time_in_force",
        "expire_time",
        "post_only",
        "stp",
    ),
    "cancel": ("client_order_id", "orig_client_order_id", "product"),
    "replace": ("client_order_id", "orig_client_order_id", "product", "price", "quantity"),
    "mass_cancel": ("client_order_id", "product"),
}


class Fuzz:
    """Seeded payloads: each field of the kind valid most of the time, junk otherwise."""

    def __init__(self, seed: int, member: str) -> None:
        self.rng = random.Random(seed)
        self.member = member
        self.cids: list[str] = []
        self.message_ids: list[str] = []

    def text(self, most: int = 300) -> str:
        rng = self.rng
        alphabet = rng.choice(
            [
                "abcXYZ019-_",
                "a. b#*\t\n\x00",
                "稀土氧化镨钕",
                "\U0001f600\u202e\ufeff",
                "".join(map(chr, range(32, 127))),
            ]
        )
        return "".join(rng.choice(alphabet) for _ in range(rng.choice([0, 1, 5, 33, 65, most])))

    def shortstr(self) -> str:
        """A string pika can encode as an AMQP short string (at most 255 bytes)."""
        value = self.text(255)
        while len(value.encode()) > 255:
            value = value[: len(value) // 2]
        return value

    def junk(self, depth: int = 0) -> Any:
        rng = self.rng
        choice = rng.randrange(12 if depth < 3 else 8)
        if choice == 0:
            return self.text()
        if choice == 1:
            return rng.choice(
                [0, -1, 1, 2**31, 2**63 - 1, 2**63, 2**64 - 1, -(2**63), -(2**63) - 1]
            )
        if choice == 2:
            return rng.choice([0.5, -1e300, float("inf"), float("nan")])
        if choice == 3:
            return rng.choice([True, False])
        if choice == 4:
            return None
        if choice == 5:
            return bytes(rng.randrange(256) for _ in range(rng.choice([0, 3, 70])))
        if choice == 6:
            return rng.randrange(-(10**6), 10**7)
        if choice == 7:
            return ""
        if choice == 8:
            return [self.junk(depth + 1) for _ in range(rng.randrange(4))]
        if choice == 9:
            return {self.text(40): self.junk(depth + 1) for _ in range(rng.randrange(4))}
        nested: Any = 1
        for _ in range(rng.choice([10, 100, 2000])):
            nested = [nested]
        return nested

    def valid(self, name: str) -> Any:
        rng = self.rng
        if name == "client_order_id":
            cid = f"fz-{len(self.cids)}"
            if self.cids and rng.random() < 0.05:
                cid = rng.choice(self.cids)  # used before: duplicate_client_order_id
            self.cids.append(cid)
            return cid
        if name == "orig_client_order_id":
            return rng.choice(self.cids) if self.cids else "fz-none"
        if name == "product":
            return rng.choice(["PRND-OX", "PRND-OX", "DY-OX", "XX-OX"])
        if name == "side":
            return rng.choice(["buy", "sell"])
        if name == "quantity":
            return rng.choice([100, 200, 150, 0])
        if name == "order_type":
            return rng.choice(["limit", "market"])
        if name == "price":
            return rng.choice([460_000, 470_000, 540_000, 455_025, 1_800_000])
        if name == "time_in_force":
            return rng.choice(["GTC", "IOC", "FOK", "GTD"])
        if name == "expire_time":
            return int(time.time() * 1000) + rng.choice([-1000, 60_000, 10**15])
        if name == "post_only":
            return rng.choice([True, False])
        return rng.choice(["cancel_newest", "cancel_oldest", "cancel_both"])

    def body(self, kind: str | None) -> bytes:
        rng = self.rng
        roll = rng.random()
        if roll < 0.03:
            return bytes(rng.randrange(256) for _ in range(rng.choice([1, 50, 5000])))
        if roll < 0.05:
            try:
                return pack(self.junk())
            except (ValueError, OverflowError, TypeError):  # what msgpack cannot carry
                return pack([1])
        if roll < 0.07:
            return pack({"client_order_id": self.valid("client_order_id"), "pad": "x" * 5000})
        names = FIELDS.get(kind or "", FIELDS["new_order"])
        data: dict[Any, Any] = {}
        for name in names:
            roll = rng.random()
            if roll < 0.9:
                data[name] = self.valid(name)
            elif roll < 0.97:
                data[name] = self.junk()
            # else: left out
        if rng.random() < 0.08:
            data[rng.choice([self.text(300), "extra", "x" * 200])] = self.junk()
        if rng.random() < 0.02:
            data[b"\xff\xfe"] = 1  # a bytes key
        try:
            return pack(data)
        except (ValueError, OverflowError, TypeError):
            return pack({k: v for k, v in data.items() if isinstance(v, str)})

    def headers(self) -> dict[str, Any] | None:
        rng = self.rng
        if rng.random() < 0.6:
            return None
        headers: dict[str, Any] = {}
        for _ in range(rng.choice([1, 3, 30])):
            key = self.shortstr()[:100] or "k"
            headers[key] = rng.choice(
                [
                    self.text(),
                    rng.randrange(-(2**31), 2**31),
                    True,
                    {"nested": {"deeper": [1, "two", {"three": 3}]}},
                    ["a", 1, False],
                    "v" * 2000,
                ]
            )
        if rng.random() < 0.3:
            headers["x-stream-offset"] = rng.randrange(10)  # a stream's header, forged
        if rng.random() < 0.2:
            headers["x-delivery-count"] = 99
        return headers

    def message_id(self) -> str | bytes | None:
        rng = self.rng
        roll = rng.random()
        if roll < 0.8:
            mid = f"fz-m{len(self.message_ids)}"
        elif roll < 0.85 and self.message_ids:
            mid = rng.choice(self.message_ids)  # used before: not applied again
        elif roll < 0.9:
            return None
        elif roll < 0.92:
            return b"\xff\xfe-" + str(len(self.message_ids)).encode()  # not UTF-8
        else:
            mid = self.shortstr()
        self.message_ids.append(mid)
        return mid

    def message(self) -> tuple[str, bytes, bool, dict[str, Any]]:
        """(routing key, body, with user_id, AMQP properties)."""
        rng = self.rng
        kind = rng.choice([*FIELDS, *FIELDS, *FIELDS, None, "bogus", self.shortstr(), b"\xc3("])
        body = self.body(kind)
        word = rng.choice(["PRND-OX"] * 8 + ["DY-OX", "XX-OX", self.shortstr() or "w"])
        word = word.replace(".", "_") or "w"
        routing_key = f"{self.member}.{word}"
        while len(routing_key.encode()) > 255:
            routing_key = routing_key[:-1]
        props: dict[str, Any] = {
            "message_id": self.message_id(),
            "type": kind,
            "headers": self.headers(),
        }
        for name in ("correlation_id", "content_type", "content_encoding", "reply_to", "app_id"):
            if rng.random() < 0.3:
                props[name] = self.shortstr() if rng.random() < 0.9 else b"\xff"  # not UTF-8
        if rng.random() < 0.5:
            props["timestamp"] = rng.choice(
                [0, 1, int(time.time()), 4_102_444_800, 4_102_444_801, 2**62, 2**64 - 1]
            )
        if rng.random() < 0.2:
            props["expiration"] = str(rng.choice([600_000, 3_600_000, 10**9]))
        if rng.random() < 0.2:
            props["priority"] = rng.randrange(256)
        if rng.random() < 0.2:
            props["delivery_mode"] = rng.choice([1, 2])
        return routing_key, body, rng.random() > 0.03, props


def test_fuzzed_requests_are_each_answered_or_dropped_by_rule_and_innocents_all_answered(
    running: Exchange,
) -> None:
    losses = connection_losses(running)
    dead_before = dead_letters(running)
    earlier = {r.exec_id for r in reports(running, "gamma", 0, 0)}  # the fixture's order
    fuzzer = RawMember(running, "gamma")
    fuzz = Fuzz(FUZZ_SEED, fuzzer.member)
    sent = refused = without_user = repeated = 0
    keys: set[object] = set()  # what the gateway knows a request by (docs: bounds)
    innocents: list[str] = []
    started = time.monotonic()
    with running.client("beta") as beta:
        for n in range(FUZZ_PAYLOADS):
            routing_key, body, with_user, props = fuzz.message()
            if not fuzzer.publish(body, routing_key, user_id=with_user, **props):
                refused += 1
                continue
            sent += 1
            mid = props["message_id"]
            if not with_user:
                without_user += 1
            else:
                usable = isinstance(mid, str) and USABLE_MESSAGE_ID.fullmatch(mid)
                key = mid if usable else (mid or "", body)
                if key in keys:
                    repeated += 1
                keys.add(key)
            if n % INNOCENT_EVERY == 0:
                cid = f"inn-f{n}"
                innocent(beta, cid)
                innocents.append(cid)
    fuzzer.close()
    answered_expected = sent - without_user - repeated
    got = [r for r in reports(running, "gamma", answered_expected, 60) if r.exec_id not in earlier]
    gateway_answers = {r.exec_id for r in got if r.exec_id.startswith("gw-")}
    engine_answers = {r.client_order_id for r in got if not r.exec_id.startswith("gw-")}
    innocent_answers = {r.client_order_id for r in reports(running, "beta", len(innocents), 30)}
    elapsed = time.monotonic() - started
    with running.client("gamma") as gamma:  # leave the books as found
        for product in ("PRND-OX", "DY-OX"):
            gamma.mass_cancel(product, wait=10)
    print(
        f"fuzz: {sent} sent ({refused} refused by the broker), {without_user} without user_id, "
        f"{repeated} repeated ids, {len(gateway_answers)} gateway rejects, "
        f"{len(engine_answers)} engine answers, {len(innocents)} innocents, {elapsed:.1f}s"
    )
    assert refused < sent / 10
    assert connection_losses(running) == losses, gateway_log(running)[-5000:]
    assert running.processes["gateway"].poll() is None
    assert set(innocents) <= innocent_answers, "innocent orders unanswered"
    assert len(gateway_answers) + len(engine_answers) == answered_expected, running.log_tail()
    assert dead_letters(running) - dead_before == without_user
    assert " ERROR " not in gateway_log(running)
