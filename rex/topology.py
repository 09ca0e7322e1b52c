"""Every exchange, queue and binding of REX in one table (peatio's topology-as-data).

Each service declares, idempotently at start-up, the part it uses (`for_gateway`,
`for_engine`, ...); `rex provision` declares all of it, the members' queues included.
Declaring is idempotent as long as the arguments never change: a queue re-declared with
different arguments is refused by the broker, so change them only with a migration.

The quorum queues' length bounds (`QUEUE_BOUNDS`) are not arguments but broker policies,
which `rex provision` sets (rex/provision.py): a policy applies to a queue that already
exists, where a changed argument would make every declare of it fail (406).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Hashable, Iterable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Final, TypeVar

T = TypeVar("T")

# Exchanges
REQUESTS = "rex.requests"  # topic: members publish <member>.<product>
ENGINE = "rex.engine"  # direct: validated input for the engines, routing key = product
ENGINE_IMAGES = "rex.engine.images"  # direct: the engines' market images, key = product
EXECUTIONS = "rex.executions"  # topic: <member>.<product>
TRADES = "rex.trades"  # topic: <product>
MARKETDATA = "rex.marketdata"  # topic: <product>.trade, <product>.book, <product>.band
SETTLEMENT = "rex.settlement"  # topic: <member>.<event>; also <member>.settlement_answer
SETTLEMENT_REQUESTS = "rex.settlement.requests"  # topic: members publish <member>.<kind>
DEAD = "rex.dead"  # fanout: dead letters
BANK = "rex.bank"  # direct: payment requests to the banks, key = bank id
OPERATOR_REQUESTS = "rex.operator.requests"  # topic: operators publish <operator>.<action>
OPERATOR_ANSWERS = "rex.operator.answers"  # topic: <operator>.<action>, to its answer stream

# Queues
# Protocol 2's one shared request queue: no longer bound, drained by the gateway only (a
# deployment made before member request queues may still hold requests in it).
GATEWAY_REQUESTS = "rex.gateway.requests"
SETTLEMENT_TRADES = "rex.settlement.trades"
# Not named like its exchange: members may write to the exchange, and a write permission
# matching a queue's name would also let them bind to that queue. Since member settlement
# queues, the operator accounts' requests only (each member's are on a queue of its own).
SETTLEMENT_REQUEST_QUEUE = "rex.settlement.member-requests"
DEAD_LETTERS = "rex.dead"
# Not named like its exchange, as for settlement: operators may write to the exchange.
GATEWAY_OPERATOR_REQUESTS = "rex.gateway.operator-desk"

# Work queues give up on a message after this many deliveries and dead-letter it, so one
# poison message cannot loop forever.
DELIVERY_LIMIT = 5
# How long the engines' input logs are kept. A take-over restores the latest market image
# and replays the log after it, so this must outlast the time between images by far, and
# any time a product's engine may be down (an engine refuses a log that lost entries its
# image does not cover).
INPUT_LOG_MAX_AGE = "7D"
MARKETDATA_MAX_AGE = "1D"
# Members' logs: everything sent to a member (docs/members/protocol.md, "Your log"), kept at least
# this long for reading again; bounded in bytes too, so no member's volume can fill the
# broker's disk (a member that outgrows the bound keeps its latest MEMBER_LOG_MAX_BYTES).
# Small segments, because retention drops whole segments only.
MEMBER_LOG_MAX_AGE = "7D"
MEMBER_LOG_MAX_BYTES = 1024 * 1024 * 1024
MEMBER_LOG_SEGMENT_BYTES = 16 * 1024 * 1024
# Market images: a take-over reads the stream through, keeping the last image, so it is
# kept short; RabbitMQ never drops the segment being written, so the latest image stays.
IMAGE_LOG_MAX_BYTES = 64 * 1024 * 1024
IMAGE_LOG_SEGMENT_BYTES = 8 * 1024 * 1024
# An operator's answers: few and small, kept long enough to read again after an incident.
OPERATOR_ANSWERS_MAX_AGE = "30D"
OPERATOR_ANSWERS_MAX_BYTES = 64 * 1024 * 1024


MIB: Final = 1024 * 1024


class Overflow(StrEnum):
    """What a quorum queue at its bound does with one more message (RabbitMQ 3.10 quorum
    queues know these two; reject-publish-dlx is for classic queues only)."""

    REJECT_PUBLISH = "reject-publish"  # refuse it: a publisher with confirms gets a nack
    DROP_HEAD = "drop-head"  # take it, and drop (or dead-letter) the oldest


@dataclass(frozen=True, slots=True)
class QueueBound:
    """A quorum queue's length bound, set as a broker policy by `rex provision`.
    RabbitMQ applies the bound after a message is in: a queue at its bound takes one
    more and refuses (or drops) from then on, so it may hold one message over."""

    queue: str
    max_length: int  # messages
    max_length_bytes: int  # message bodies
    overflow: Overflow
    why: str  # what the choice of overflow protects (docs/operators/operations.md)
    #: The queue names the bound applies to (a regex); by default ``queue`` alone. A family
    #: of queues (one per member) shares one policy, so adding a member adds no policy.
    pattern: str = ""

    @property
    def policy(self) -> str:
        return f"rex-bound-{self.queue}"

    @property
    def queue_pattern(self) -> str:
        return self.pattern or f"^{re.escape(self.queue)}$"

    def definition(self) -> dict[str, Any]:
        """The policy's definition, as the management API shows it."""
        return {
            "max-length": self.max_length,
            "max-length-bytes": self.max_length_bytes,
            "overflow": str(self.overflow),
        }


#: Higher than an operator's catch-all policy would usually be: one policy applies to a
#: queue, the one of highest priority.
QUEUE_BOUND_PRIORITY: Final = 10


def engine_input_queue(product: str) -> str:
    return f"rex.engine.{product}"


def engine_image_log(product: str) -> str:
    """The images of one product's market (engine/image.py), newest last."""
    return f"rex.engine.{product}.images"


def marketdata_log(product: str) -> str:
    """Public market data of one product, as a stream: members read it by offset with no
    queue or binding of their own (they may configure and bind nothing)."""
    return f"rex.marketdata.{product}"


def member_log(member: str) -> str:
    """The member's log: its execution reports, settlement events and answers, as a
    stream (rex/member_log.py)."""
    return f"rex.member.{member}.log"


def legacy_member_queue(member: str) -> str:
    """Protocol version 1's member queue (quorum, delivery limit), which `rex provision`
    drains into the member's log and deletes (rex/member_migration.py)."""
    return f"rex.member.{member}"


def member_request_queue(member: str) -> str:
    """The member's own request queue: what it publishes to rex.requests, and nothing from
    anyone else (its topic permission allows only routing keys ``<member>.<word>``), so a
    flood fills this queue alone and the gateway takes from each member's queue fairly."""
    return f"{GATEWAY_REQUESTS}.{member}"


def member_settlement_queue(member: str) -> str:
    """The member's own settlement request queue: what it publishes to
    rex.settlement.requests (its topic permission allows only routing keys
    ``<member>.<kind>``), so a member's flood of settlement requests fills this queue alone
    and the settlement worker takes from each member's queue in turn."""
    return f"{SETTLEMENT_REQUEST_QUEUE}.{member}"


def lock_queue(name: str) -> str:
    """The exclusive queue behind the bus lock ``name`` (rex.bus ``hold_lock``)."""
    return f"rex.lock.{name}"


def engine_lock(group: str) -> str:
    """The lock the active engine of ``group`` holds; its standbys wait for it."""
    return f"engine.{group}"


#: The lock of the one settlement worker that pays (settlement_worker/service.py).
PAYER_LOCK: Final = "payer"


def bank_queue(bank_id: str) -> str:
    """A bank's requests (settlement_worker/payments/banks/wire.py)."""
    return f"{BANK}.{bank_id}"


def bank_reply_queue(client: str) -> str:
    """A payer's replies from the banks, reached through the default exchange."""
    return f"{BANK}.replies.{client}"


def operator_answers(operator: str) -> str:
    """An operator account's answer stream: only that operator may read it."""
    return f"rex.operator.{operator}.answers"


def operator_request_key(operator: str, action: str) -> str:
    return f"{operator}.{action}"


def request_key(member: str, product: str) -> str:
    return f"{member}.{product}"


def settlement_request_key(sender: str, kind: str) -> str:
    """Routing key of a settlement request: the sender's user name and the request kind."""
    return f"{sender}.{kind}"


@dataclass(frozen=True, slots=True)
class Exchange:
    name: str
    type: str  # topic, direct, fanout


@dataclass(frozen=True, slots=True)
class Queue:
    name: str
    arguments: dict[str, Any] = field(default_factory=dict)

    @property
    def is_stream(self) -> bool:
        return self.arguments.get("x-queue-type") == "stream"


@dataclass(frozen=True, slots=True)
class Binding:
    exchange: str
    queue: str
    routing_key: str


@dataclass(frozen=True, slots=True)
class Topology:
    exchanges: tuple[Exchange, ...] = ()
    queues: tuple[Queue, ...] = ()
    bindings: tuple[Binding, ...] = ()
    #: Bindings an earlier version made that must not exist: removed after declaring (an
    #: unbind of a binding that is not there is a no-op).
    unbindings: tuple[Binding, ...] = ()

    def __add__(self, other: Topology) -> Topology:
        return Topology(
            _unique(self.exchanges + other.exchanges, lambda e: e.name),
            _unique(self.queues + other.queues, lambda q: q.name),
            _unique(self.bindings + other.bindings, lambda b: b),
            _unique(self.unbindings + other.unbindings, lambda b: b),
        )


def _unique(items: Iterable[T], key: Callable[[T], Hashable]) -> tuple[T, ...]:
    """First of each, in order."""
    seen: dict[Hashable, T] = {}
    for item in items:
        seen.setdefault(key(item), item)
    return tuple(seen.values())


def work_queue(name: str) -> Queue:
    """A quorum queue that carries work: replicated, bounded redelivery, dead letters kept."""
    return Queue(
        name,
        {
            "x-queue-type": "quorum",
            "x-delivery-limit": DELIVERY_LIMIT,
            "x-dead-letter-exchange": DEAD,
        },
    )


def input_log(name: str) -> Queue:
    """A stream: an append-only, replayable log read by offset."""
    return Queue(name, {"x-queue-type": "stream", "x-max-age": INPUT_LOG_MAX_AGE})


# Every quorum queue's bound. The streams are bounded by their own arguments (max-age,
# max-length-bytes, above); protocol 1's member queues are drained and deleted by
# `rex provision` (rex/member_migration.py) and have none.
#: A member's request queue holds this many requests: at the default rate (1,000 a second)
#: two seconds of them. What a member sends faster than its rate waits here (the gateway
#: takes from it no faster, gateway/lanes.py); beyond it the broker refuses the publish.
MEMBER_REQUESTS_MAX = 2_000
MEMBER_REQUESTS_MAX_BYTES = 8 * MIB
#: A member's settlement request queue: settlement requests are a person's or a back
#: office's, a few a second; each is one database transaction, so 1,000 of them are
#: seconds of the worker's time, and the member's alone (each member's queue is taken in
#: turn, service.py).
MEMBER_SETTLEMENT_REQUESTS_MAX = 1_000
MEMBER_SETTLEMENT_REQUESTS_MAX_BYTES = 4 * MIB

QUEUE_BOUNDS: Final = (
    QueueBound(
        GATEWAY_REQUESTS,
        200_000,
        256 * MIB,
        Overflow.REJECT_PUBLISH,
        "a member's request is refused (its publish nacked) rather than dropped unseen",
    ),
    QueueBound(
        member_request_queue("*"),
        MEMBER_REQUESTS_MAX,
        MEMBER_REQUESTS_MAX_BYTES,
        Overflow.REJECT_PUBLISH,
        "a member sending faster than its rate fills its own queue, and then its own"
        " publishes are refused (nacked); no other member's request waits behind them",
        pattern=rf"^{re.escape(GATEWAY_REQUESTS)}\.[^.]+$",
    ),
    QueueBound(
        SETTLEMENT_REQUEST_QUEUE,
        100_000,
        128 * MIB,
        Overflow.REJECT_PUBLISH,
        "an operator's settlement request is refused (its publish nacked), never dropped",
    ),
    QueueBound(
        member_settlement_queue("*"),
        MEMBER_SETTLEMENT_REQUESTS_MAX,
        MEMBER_SETTLEMENT_REQUESTS_MAX_BYTES,
        Overflow.REJECT_PUBLISH,
        "a member flooding settlement requests fills its own queue, and then its own"
        " publishes are refused (nacked); no other member's request waits behind them",
        pattern=rf"^{re.escape(SETTLEMENT_REQUEST_QUEUE)}\.[^.]+$",
    ),
    QueueBound(
        GATEWAY_OPERATOR_REQUESTS,
        10_000,
        16 * MIB,
        Overflow.REJECT_PUBLISH,
        "an operator's request is refused (its publish nacked, `rex halt` says so), never dropped",
    ),
    QueueBound(
        SETTLEMENT_TRADES,
        2_000_000,
        1024 * MIB,
        Overflow.REJECT_PUBLISH,
        "no trade is ever dropped: the engine, nacked, stops (exit 3) until settlement"
        " drains the queue",
    ),
    QueueBound(
        DEAD_LETTERS,
        100_000,
        128 * MIB,
        Overflow.DROP_HEAD,
        "dead letters are for an operator to look at; the newest are kept, the oldest"
        " dropped, and nothing upstream is refused for them",
    ),
)


EXCHANGES = Topology(
    exchanges=(
        Exchange(REQUESTS, "topic"),
        Exchange(ENGINE, "direct"),
        Exchange(ENGINE_IMAGES, "direct"),
        Exchange(EXECUTIONS, "topic"),
        Exchange(TRADES, "topic"),
        Exchange(MARKETDATA, "topic"),
        Exchange(SETTLEMENT, "topic"),
        Exchange(SETTLEMENT_REQUESTS, "topic"),
        Exchange(DEAD, "fanout"),
        Exchange(OPERATOR_REQUESTS, "topic"),
        Exchange(OPERATOR_ANSWERS, "topic"),
    ),
    queues=(Queue(DEAD_LETTERS, {"x-queue-type": "quorum"}),),
    bindings=(Binding(DEAD, DEAD_LETTERS, ""),),
)


#: Protocol 2's binding of every request into the one shared queue. Each service that
#: declares the gateway's part removes it, so no request lands twice (there and in its
#: member's queue) while a deployment moves to member request queues.
SHARED_REQUESTS_BINDING: Final = Binding(REQUESTS, GATEWAY_REQUESTS, "#")


def for_members_requests(members: Iterable[str]) -> Topology:
    """Each member's request queue, bound to its own routing keys only."""
    members = tuple(members)
    return Topology(
        queues=tuple(work_queue(member_request_queue(m)) for m in members),
        bindings=tuple(Binding(REQUESTS, member_request_queue(m), f"{m}.*") for m in members),
    )


def engine_input_logs(products: Iterable[str]) -> Topology:
    """The engines' input logs, bound to rex.engine: declared by the gateway (so its input
    waits even before an engine first runs) and by the engines (which read them)."""
    products = tuple(products)
    return Topology(
        exchanges=(Exchange(ENGINE, "direct"),),
        queues=tuple(input_log(engine_input_queue(p)) for p in products),
        bindings=tuple(Binding(ENGINE, engine_input_queue(p), p) for p in products),
    )


def settlement_trades() -> Topology:
    """The trades settlement books: declared by the engine too, so trades wait for
    settlement even before it first runs."""
    return Topology(
        exchanges=(Exchange(TRADES, "topic"),),
        queues=(work_queue(SETTLEMENT_TRADES),),
        bindings=(Binding(TRADES, SETTLEMENT_TRADES, "#"),),
    )


# Each service declares only what it uses: the exchanges it publishes to or binds its own
# queues from, and its queues. Declaring needs the broker's configure permission (which
# also allows deleting) and binding needs read on the exchange, so a service that declared
# everything would need rights over everything (rex/service_users.py derives each
# service's broker permissions from these). `rex provision` declares it all (`full`).


def for_gateway(products: Iterable[str], members: Iterable[str] = ()) -> Topology:
    return (
        Topology(
            exchanges=(
                Exchange(REQUESTS, "topic"),
                Exchange(EXECUTIONS, "topic"),
                Exchange(OPERATOR_REQUESTS, "topic"),
                Exchange(OPERATOR_ANSWERS, "topic"),
            ),
            queues=(work_queue(GATEWAY_REQUESTS), work_queue(GATEWAY_OPERATOR_REQUESTS)),
            bindings=(Binding(OPERATOR_REQUESTS, GATEWAY_OPERATOR_REQUESTS, "#"),),
            unbindings=(SHARED_REQUESTS_BINDING,),
        )
        + engine_input_logs(products)
        + for_members_requests(members)
    )


def for_engine(products: Iterable[str]) -> Topology:
    products = tuple(products)
    marketdata = tuple(
        Queue(marketdata_log(p), {"x-queue-type": "stream", "x-max-age": MARKETDATA_MAX_AGE})
        for p in products
    )
    images = tuple(
        Queue(
            engine_image_log(p),
            {
                "x-queue-type": "stream",
                "x-max-length-bytes": IMAGE_LOG_MAX_BYTES,
                "x-stream-max-segment-size-bytes": IMAGE_LOG_SEGMENT_BYTES,
            },
        )
        for p in products
    )
    return (
        engine_input_logs(products)
        + settlement_trades()
        + Topology(
            exchanges=(
                Exchange(ENGINE_IMAGES, "direct"),
                Exchange(EXECUTIONS, "topic"),
                Exchange(MARKETDATA, "topic"),
            ),
            queues=marketdata + images,
            bindings=(
                *(Binding(MARKETDATA, marketdata_log(p), f"{p}.*") for p in products),
                *(Binding(ENGINE_IMAGES, engine_image_log(p), p) for p in products),
            ),
        )
    )


#: Before member settlement queues, every settlement request went to the one shared queue.
#: Each service that declares settlement's part removes it, so no member's request lands
#: twice (there and in its own queue) and the shared queue holds operators' requests only.
SHARED_SETTLEMENT_BINDING: Final = Binding(SETTLEMENT_REQUESTS, SETTLEMENT_REQUEST_QUEUE, "#")


def for_members_settlement(members: Iterable[str]) -> Topology:
    """Each member's settlement request queue, bound to its own routing keys only."""
    members = tuple(members)
    return Topology(
        queues=tuple(work_queue(member_settlement_queue(m)) for m in members),
        bindings=tuple(
            Binding(SETTLEMENT_REQUESTS, member_settlement_queue(m), f"{m}.*") for m in members
        ),
    )


def for_settlement(members: Iterable[str] = (), operators: Iterable[str] = ()) -> Topology:
    """``members``: whose settlement request queues; ``operators``: the operator accounts
    (operators.toml), whose requests the shared queue takes (``<name>.*``). A request
    under any other routing key routes nowhere: the broker returns it (mandatory)."""
    return (
        settlement_trades()
        + Topology(
            exchanges=(Exchange(SETTLEMENT, "topic"), Exchange(SETTLEMENT_REQUESTS, "topic")),
            queues=(work_queue(SETTLEMENT_REQUEST_QUEUE),),
            bindings=tuple(
                Binding(SETTLEMENT_REQUESTS, SETTLEMENT_REQUEST_QUEUE, f"{o}.*") for o in operators
            ),
            unbindings=(SHARED_SETTLEMENT_BINDING,),
        )
        + for_members_settlement(members)
    )


#: The payer's name for its reply queue (settlement_worker/__main__.py).
SETTLEMENT_BANK_CLIENT: Final = "settlement"


def for_banks(bank_ids: Iterable[str]) -> Topology:
    """The banks' request queues on rex.bank: what a bank (the simulator) declares."""
    ids = tuple(bank_ids)
    return Topology(
        exchanges=(Exchange(BANK, "direct"),),
        queues=tuple(Queue(bank_queue(b), {"x-queue-type": "quorum"}) for b in ids),
        bindings=tuple(Binding(BANK, bank_queue(b), b) for b in ids),
    )


def for_bank_client(bank_ids: Iterable[str], client: str) -> Topology:
    """What a payer declares: the banks' queues too, so requests route (and wait) even
    before a bank first runs, and its own durable reply queue."""
    return for_banks(bank_ids) + Topology(
        queues=(Queue(bank_reply_queue(client), {"x-queue-type": "quorum"}),)
    )


def member_log_queue(member: str) -> Queue:
    return Queue(
        member_log(member),
        {
            "x-queue-type": "stream",
            "x-max-age": MEMBER_LOG_MAX_AGE,
            "x-max-length-bytes": MEMBER_LOG_MAX_BYTES,
            "x-stream-max-segment-size-bytes": MEMBER_LOG_SEGMENT_BYTES,
        },
    )


def for_member(member: str) -> Topology:
    log = member_log(member)
    return EXCHANGES + Topology(
        queues=(member_log_queue(member),),
        bindings=(
            Binding(EXECUTIONS, log, f"{member}.#"),
            Binding(SETTLEMENT, log, f"{member}.#"),
        ),
    )


def for_operator(operator: str) -> Topology:
    """An operator account's answer stream, bound to its own routing keys only."""
    answers = operator_answers(operator)
    return EXCHANGES + Topology(
        queues=(
            Queue(
                answers,
                {
                    "x-queue-type": "stream",
                    "x-max-age": OPERATOR_ANSWERS_MAX_AGE,
                    "x-max-length-bytes": OPERATOR_ANSWERS_MAX_BYTES,
                },
            ),
        ),
        bindings=(
            Binding(OPERATOR_ANSWERS, answers, f"{operator}.#"),
            # The settlement worker's answers to the operator's settlement requests.
            Binding(SETTLEMENT, answers, f"{operator}.settlement_answer"),
        ),
    )


def full(
    products: Iterable[str], members: Iterable[str], operators: Iterable[str] = ()
) -> Topology:
    """Everything: what `rex provision` declares."""
    products, members, operators = tuple(products), tuple(members), tuple(operators)
    result = (
        EXCHANGES
        + for_gateway(products, members)
        + for_engine(products)
        + for_settlement(members, operators)
    )
    for member in members:
        result = result + for_member(member)
    for operator in operators:
        result = result + for_operator(operator)
    return result
