"""A gateway's forwards from publish until read back from the input log: the broker's confirm
is not taken as proof (issue 13: RabbitMQ 3.10 confirmed batches a stream's fail-over then
lost).

Each forward batch has its writer's number (engine/input_sequences.py). The gateway reads
every product's log and, for its own writer, hands each number it reads to :meth:`read`:
that batch is in the log (its members' requests may now be acked), and any earlier batch of
the writer not read yet never will be -- the log keeps one publisher channel's messages in
order -- so it is returned to be sent again (the engine drops a request it has by id). A
confirmed batch not read back within a bound (the last one before a loss has no later one to
give it away) is returned by :meth:`overdue`. Pure: no clock of its own, no I/O.
Bounded by what it holds: each batch's requests are unacked on their members' queues, at
most a prefetch per member.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from typing import Generic, TypeVar

__all__ = ["ReadBack", "Sent"]

T = TypeVar("T")


@dataclass(slots=True)
class Sent(Generic[T]):
    """A batch sent and not read back yet."""

    sequence: int
    payload: T
    sent_at: float  # when it was (last) sent, monotonic seconds
    attempt: int = 1  # 1 when first sent, +1 per re-send
    confirmed: bool = False


class ReadBack(Generic[T]):
    """One writer's batches to one product's log, in number order."""

    def __init__(self) -> None:
        self._sent: OrderedDict[int, Sent[T]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._sent)

    def sent(self, sequence: int, payload: T, now: float) -> None:
        self._sent[sequence] = Sent(sequence, payload, now)

    def confirmed(self, sequence: int, attempt: int) -> None:
        entry = self._sent.get(sequence)
        if entry is not None and entry.attempt == attempt:
            entry.confirmed = True

    def failed(self, sequence: int, attempt: int) -> T | None:
        """The broker refused this attempt: the batch's payload, to put back (None if that
        attempt is stale: read back already, or sent again since)."""
        entry = self._sent.get(sequence)
        if entry is None or entry.attempt != attempt:
            return None
        del self._sent[sequence]
        return entry.payload

    def read(self, sequence: int, now: float) -> tuple[T | None, list[Sent[T]]]:
        """Batch ``sequence`` is in the log: its payload (None if not ours to finish: read
        before, or not sent by this process), and the earlier batches that are not, each
        marked sent again at ``now``."""
        entry = self._sent.pop(sequence, None)
        lost = [e for s, e in self._sent.items() if s < sequence]
        for e in lost:
            self._again(e, now)
        return (entry.payload if entry is not None else None), lost

    def overdue(self, now: float, bound_s: float) -> list[Sent[T]]:
        """Confirmed batches not read back ``bound_s`` after they were sent, marked sent
        again at ``now``."""
        late = [e for e in self._sent.values() if e.confirmed and now - e.sent_at > bound_s]
        for e in late:
            self._again(e, now)
        return late

    def clear(self) -> list[T]:
        """Forget every batch (the connection went: their requests come again)."""
        payloads = [e.payload for e in self._sent.values()]
        self._sent.clear()
        return payloads

    @staticmethod
    def _again(entry: Sent[T], now: float) -> None:
        entry.attempt += 1
        entry.sent_at = now
        entry.confirmed = False
