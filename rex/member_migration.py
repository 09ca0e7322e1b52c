"""Upgrading a running exchange from protocol version 1's member queues to member logs.

Version 1 delivered a member's reports and settlement messages to a quorum queue,
``rex.member.<id>``, with a delivery limit: a client that read selectively let messages
reach the limit and be dead-lettered to ``rex.dead``. Version 2 appends them to the stream
``rex.member.<id>.log`` (rex/member_log.py). RabbitMQ cannot turn a queue into a stream, so
`rex provision` migrates, after declaring the logs and their bindings:

1. unbind the old queue, so nothing new goes there (the log is bound first, so no message
   is ever unroutable);
2. move what waits in it into the member's log, in order, each published with its own
   properties and confirmed before it is acked (a crash half-way leaves the rest in the
   queue for the next run; a message moved twice carries the same id and the SDK hands
   it out once);
3. delete the old queue once it is empty and no old client is consuming it (otherwise it
   says so, and the next run finishes);
4. give back what version 1 dead-lettered from a member queue: messages in ``rex.dead``
   whose first death was in ``rex.member.<id>`` go to that member's log; every other dead
   letter stays where it is.

What is moved lands in the log after what arrived since step 1, so a member may read an old
report after a newer one; ids tell them apart. Idempotent: a second run finds nothing to do.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from dataclasses import dataclass
from typing import Any, Final

import pika
import pika.exceptions
from pika.adapters.blocking_connection import BlockingChannel, BlockingConnection

from rex import topology

__all__ = ["MAX_DEAD_LETTERS_PER_RUN", "MemberMigration", "migrate", "pending"]

#: Dead letters looked at per run (the rest wait for the next run): bounds the memory of
#: the unacked ones held while looking.
MAX_DEAD_LETTERS_PER_RUN: Final = 50_000  # at most 65,535: an AMQP prefetch count


@dataclass(frozen=True, slots=True)
class MemberMigration:
    """What the migration did (or, in a dry run, would do) for one member."""

    member: str
    waiting: int  # messages found in the old queue
    moved: int = 0
    deleted: bool = False
    held_by: int = 0  # consumers still attached to the old queue: deleted on a later run
    recovered: int = 0  # dead letters given back from rex.dead

    @property
    def changed(self) -> bool:
        return bool(self.moved or self.deleted or self.recovered)


def _queue_state(connection: BlockingConnection, queue: str) -> tuple[int, int] | None:
    """(messages, consumers) of ``queue``, or None if it does not exist."""
    channel = connection.channel()
    try:
        ok = channel.queue_declare(queue, passive=True)
    except pika.exceptions.ChannelClosedByBroker as error:
        if error.reply_code == 404:
            return None
        raise
    channel.close()
    return ok.method.message_count, ok.method.consumer_count


def pending(
    connection: BlockingConnection, members: Iterable[str], queues: Collection[str]
) -> list[MemberMigration]:
    """The members whose old queue still exists (is among ``queues``, the vhost's queue
    names), and what waits in it (for a dry run)."""
    found = []
    for member in members:
        if topology.legacy_member_queue(member) not in queues:
            continue
        state = _queue_state(connection, topology.legacy_member_queue(member))
        if state is not None:
            found.append(MemberMigration(member, waiting=state[0], held_by=state[1]))
    return found


def _properties(properties: pika.BasicProperties) -> pika.BasicProperties:
    """The message's own properties, minus what the broker added for its queue."""
    headers = {
        key: value
        for key, value in (properties.headers or {}).items()
        if not key.startswith("x-")  # x-death, x-delivery-count, x-first-death-...
    }
    return pika.BasicProperties(
        content_type=properties.content_type,
        delivery_mode=2,
        type=properties.type,
        message_id=properties.message_id,
        timestamp=properties.timestamp,
        headers=headers or None,
    )


def _move_queue(channel: BlockingChannel, queue: str, log: str) -> int:
    moved = 0
    while True:
        method, properties, body = channel.basic_get(queue, auto_ack=False)
        if method is None:
            return moved
        channel.basic_publish("", log, body, _properties(properties), mandatory=True)
        channel.basic_ack(method.delivery_tag)  # only once the log has it (confirmed)
        moved += 1


def _migrate_queue(connection: BlockingConnection, member: str) -> MemberMigration | None:
    queue = topology.legacy_member_queue(member)
    state = _queue_state(connection, queue)
    if state is None:
        return None
    channel = connection.channel()
    channel.confirm_delivery()
    for exchange in (topology.EXECUTIONS, topology.SETTLEMENT):
        channel.queue_unbind(queue, exchange, f"{member}.#")
    moved = _move_queue(channel, queue, topology.member_log(member))
    after = _queue_state(connection, queue)
    consumers = 0 if after is None else after[1]
    deleted = False
    if after is not None and after == (0, 0):
        # Quorum queues refuse if-empty; it is empty and unbound, and members cannot
        # publish to it, so nothing can be lost in between.
        channel.queue_delete(queue)
        deleted = True
    channel.close()
    return MemberMigration(member, state[0], moved, deleted, consumers)


def _first_death_queue(properties: pika.BasicProperties) -> str | None:
    headers: dict[str, Any] = properties.headers or {}
    first = headers.get("x-first-death-queue")
    if isinstance(first, bytes):
        first = first.decode("utf-8", "replace")
    return first if isinstance(first, str) else None


def _recover_dead_letters(connection: BlockingConnection, members: Iterable[str]) -> dict[str, int]:
    """Give members back what version 1 dead-lettered from their queues."""
    owner = {topology.legacy_member_queue(m): m for m in members}
    state = _queue_state(connection, topology.DEAD_LETTERS)
    if state is None or state[0] == 0:
        return {}
    channel = connection.channel()
    channel.confirm_delivery()
    # Every dead letter looked at stays unacked until the end (prefetch: all of them).
    channel.basic_qos(prefetch_count=MAX_DEAD_LETTERS_PER_RUN)
    recovered: dict[str, int] = {}
    # Consumed, not fetched one by one: the dead letters that stay are left unacked and
    # return, in their order, when the channel closes, instead of coming round again.
    messages = channel.consume(topology.DEAD_LETTERS, inactivity_timeout=1.0)
    for seen, (method, properties, body) in enumerate(messages, start=1):
        if method is None:
            break
        member = owner.get(_first_death_queue(properties) or "")
        if member is not None:
            channel.basic_publish(
                "", topology.member_log(member), body, _properties(properties), mandatory=True
            )
            channel.basic_ack(method.delivery_tag)
            recovered[member] = recovered.get(member, 0) + 1
        if seen >= MAX_DEAD_LETTERS_PER_RUN:
            break
    channel.close()  # a quorum queue takes the unacked back
    return recovered


def migrate(
    connection: BlockingConnection, members: Iterable[str], queues: Collection[str]
) -> list[MemberMigration]:
    """Migrate every member's old queue (those among ``queues``, the vhost's queue names
    before the logs were declared) and give back its dead letters (the module's steps);
    the logs and their bindings must be declared already."""
    members = list(members)
    old = [m for m in members if topology.legacy_member_queue(m) in queues]
    results = {m.member: m for m in (_migrate_queue(connection, x) for x in old) if m}
    for member, count in _recover_dead_letters(connection, members).items():
        base = results.get(member) or MemberMigration(member, waiting=0)
        results[member] = MemberMigration(
            member, base.waiting, base.moved, base.deleted, base.held_by, count
        )
    return [results[m] for m in members if m in results]
