"""What the outbox decides without I/O: whether a failed publish is worth trying again.

A publish fails in one of two ways. The broker or the connection is away (no confirm, a
nack, a channel closing): that passes, so the row stays and goes out on a later drain.
Or the message itself cannot be sent (an AMQP short string -- message_id, routing key,
type -- over 255 bytes, text that is not UTF-8, a header AMQP cannot encode): the bus
raises a ValueError (``rex.bus.Unpublishable``) or a TypeError before anything is sent,
and the same row would fail the same way for ever, blocking every row behind it. That
row is quarantined: set aside, counted and reported, never tried again.
"""

from __future__ import annotations

from typing import Final

__all__ = ["MAX_QUARANTINE_REASON", "is_permanent", "quarantine_reason"]

#: The longest cause kept with a quarantined row (characters).
MAX_QUARANTINE_REASON: Final = 500


def is_permanent(error: BaseException) -> bool:
    """True when publishing the same message again must fail the same way: the message is
    wrong (ValueError, TypeError, OverflowError: what the bus raises for an envelope it
    cannot encode, ``rex.bus.Unpublishable`` among them). False for anything else -- the
    connection's or the channel's state, an OS error -- which retrying may cure."""
    return isinstance(error, (ValueError, TypeError, OverflowError))


def quarantine_reason(error: BaseException) -> str:
    """The cause kept with a quarantined row: the error's type and text, bounded."""
    text = f"{type(error).__name__}: {error}"
    if len(text) <= MAX_QUARANTINE_REASON:
        return text
    return text[: MAX_QUARANTINE_REASON - 3] + "..."
