"""Which failed publishes the outbox sets aside for good, and which it tries again."""

from __future__ import annotations

import pika.exceptions
import pytest

from rex.bus import Unpublishable
from settlement_worker.outbox.rules import MAX_QUARANTINE_REASON, is_permanent, quarantine_reason


@pytest.mark.parametrize(
    "error",
    [
        Unpublishable("message_id is 289 bytes; AMQP carries at most 255"),
        UnicodeEncodeError("utf-8", "\udc80", 0, 1, "surrogates not allowed"),
        TypeError("header value of type object"),
        OverflowError("int too large to convert"),
    ],
)
def test_an_error_of_the_message_itself_is_permanent(error: BaseException) -> None:
    assert is_permanent(error)


@pytest.mark.parametrize(
    "error",
    [
        pika.exceptions.ChannelWrongStateError("Channel is closed."),
        pika.exceptions.ConnectionWrongStateError("Connection is closed."),
        pika.exceptions.StreamLostError("Stream connection lost"),
        ConnectionResetError(104, "Connection reset by peer"),
        RuntimeError("publish channel reopening"),
    ],
)
def test_an_error_of_the_connection_passes_and_is_retried(error: BaseException) -> None:
    assert not is_permanent(error)


def test_the_cause_kept_names_the_error_and_is_bounded() -> None:
    assert quarantine_reason(Unpublishable("routing_key is 300 bytes")) == (
        "Unpublishable: routing_key is 300 bytes"
    )
    long = quarantine_reason(Unpublishable("x" * 2_000))
    assert len(long) == MAX_QUARANTINE_REASON and long.endswith("...")
