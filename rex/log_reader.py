"""Reading a stream (or a plain queue) on a pika ``BlockingConnection``, for the SDK.

Each reader has a channel of its own, so it can be stopped without touching the others;
what it receives waits in its inbox until the SDK takes it, and is acked then (on a
stream an ack only returns credit), so at most ``prefetch`` messages are held in memory
however long the caller leaves them unread.

RabbitMQ 3.10 closes the whole *connection* (540 NOT_IMPLEMENTED) when a client rejects
a stream delivery, and pika's ``BlockingChannel.basic_cancel`` and ``close`` reject every
delivery not yet dispatched: :meth:`close` closes the underlying channel instead, which
cancels and closes rejecting nothing (the broker simply forgets what was unacked).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import time
from collections import deque
from dataclasses import dataclass
from typing import Any

import pika
import pika.exceptions
from pika.adapters.blocking_connection import BlockingChannel, BlockingConnection

__all__ = ["Delivered", "LogReaderError", "StreamReader"]


class LogReaderError(Exception):
    """The broker refused to let this client read the stream or queue; the message says
    which and why."""


@dataclass(frozen=True, slots=True)
class Delivered:
    """One message as read: its stream offset (None from a plain queue), AMQP type,
    message id, and body."""

    offset: int | None
    type: str | None
    message_id: str | None
    body: bytes
    delivery_tag: int


Offset = int | str | dt.datetime


class StreamReader:
    """A consumer of ``queue`` from ``offset`` (``"first"``, ``"next"``, a number or a
    time) if it is a stream, or of a plain queue if ``offset`` is None."""

    def __init__(
        self,
        connection: BlockingConnection,
        queue: str,
        offset: Offset | None,
        *,
        prefetch: int = 500,
    ) -> None:
        self.queue = queue
        self.inbox: deque[Delivered] = deque()
        self._connection = connection
        self._channel: BlockingChannel = connection.channel()
        arguments: dict[str, Any] = {} if offset is None else {"x-stream-offset": offset}
        try:
            self._channel.basic_qos(prefetch_count=prefetch)
            self._tag: str | None = self._channel.basic_consume(
                queue, self._on_message, arguments=arguments
            )
        except pika.exceptions.ChannelClosedByBroker as error:
            raise LogReaderError(_refusal(queue, error)) from error

    def _on_message(
        self, _channel: BlockingChannel, method: Any, properties: Any, body: bytes
    ) -> None:
        headers = properties.headers or {}
        offset = headers.get("x-stream-offset")
        self.inbox.append(
            Delivered(
                int(offset) if isinstance(offset, int) else None,
                properties.type,
                properties.message_id,
                body,
                method.delivery_tag,
            )
        )

    def take(self) -> Delivered | None:
        """The oldest message received and not yet taken (acked now), or None."""
        if not self.inbox:
            return None
        message = self.inbox.popleft()
        if self._channel.is_open:
            self._channel.basic_ack(message.delivery_tag)
        return message

    @property
    def is_open(self) -> bool:
        return self._channel.is_open and self._tag is not None

    def close(self, timeout_s: float = 5.0) -> None:
        """Stop reading and close the channel, rejecting nothing (see the module's note)."""
        self.inbox.clear()
        self._tag = None
        if not self._channel.is_open:
            return
        with contextlib.suppress(pika.exceptions.AMQPError):
            self._channel._impl.close()  # the underlying pika.channel.Channel
            deadline = time.monotonic() + timeout_s
            while not self._channel.is_closed and time.monotonic() < deadline:
                self._connection.process_data_events(time_limit=0.05)


def _refusal(queue: str, error: pika.exceptions.ChannelClosedByBroker) -> str:
    if error.reply_code == 404:
        return (
            f"{queue} does not exist on this broker: the exchange has not been provisioned "
            f"for protocol version 2 yet (an operator runs `rex provision`), or the member id "
            f"is wrong"
        )
    if error.reply_code == 403:
        return f"the broker does not let this login read {queue}: {error.reply_text}"
    return f"reading {queue} failed: {error.reply_code} {error.reply_text}"
