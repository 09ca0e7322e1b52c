"""The writers' sequence numbers in an input log, and the gaps between them: evidence, not
trust, that every batch a gateway wrote reached the log (issue 13).

Each gateway connection writes its forwards to a product's log numbered 1, 2, 3, ... under a
writer id of its own (headers `rex-writer`, `rex-seq`: rex.protocol). Reading the log, a
number past the next expected one is a gap: a batch the broker did not keep although a later
one of the same writer is there -- confirmed and lost (the broker's stream fail-over), or
failed and sent again under a later number (the gateway's log says so). A number already seen
is a repeat, or a gap's batch arriving late: the gap is then filled. A writer first met starts
its run at the number it is met with, so a gap is found between two batches the engine read.
Pure: the engine counts and logs what this returns; nothing here changes what it matches.

Bounded: at most `MAX_WRITERS` writers (the oldest forgotten first: a gateway's old
connection writes no more), each with at most `MAX_OPEN_GAPS` missing numbers remembered.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Final

__all__ = ["MAX_OPEN_GAPS", "MAX_WRITERS", "InputSequences", "Seen", "SequenceVerdict"]

MAX_WRITERS: Final = 1024
MAX_OPEN_GAPS: Final = 10_000


class SequenceVerdict(StrEnum):
    NEXT = "next"  # the one expected
    GAP = "gap"  # past the one expected: `missing` numbers skipped
    FILLED = "filled"  # a number a gap skipped, come late
    REPEAT = "repeat"  # seen before: a re-send whose first copy got there


@dataclass(frozen=True, slots=True)
class Seen:
    verdict: SequenceVerdict
    missing: tuple[int, ...] = ()  # for a GAP: the numbers skipped (at most MAX_OPEN_GAPS)


@dataclass(slots=True)
class _Writer:
    last: int = 0
    open_gaps: set[int] = field(default_factory=set)


class InputSequences:
    """One product log's writers and their numbers."""

    def __init__(self) -> None:
        self._writers: OrderedDict[str, _Writer] = OrderedDict()

    def see(self, writer: str, sequence: int) -> Seen:
        state = self._writers.get(writer)
        if state is None:
            # A writer first met here may have written before where this engine began
            # reading (an image, a take-over): its first number seen starts its run.
            self._writers[writer] = _Writer(last=sequence)
            while len(self._writers) > MAX_WRITERS:
                self._writers.popitem(last=False)
            return Seen(SequenceVerdict.NEXT)
        self._writers.move_to_end(writer)
        if sequence == state.last + 1:
            state.last = sequence
            return Seen(SequenceVerdict.NEXT)
        if sequence > state.last:
            skipped = range(max(state.last + 1, sequence - MAX_OPEN_GAPS), sequence)
            state.last = sequence
            state.open_gaps.update(skipped)
            while len(state.open_gaps) > MAX_OPEN_GAPS:
                state.open_gaps.discard(min(state.open_gaps))
            return Seen(SequenceVerdict.GAP, tuple(skipped))
        if sequence in state.open_gaps:
            state.open_gaps.discard(sequence)
            return Seen(SequenceVerdict.FILLED)
        return Seen(SequenceVerdict.REPEAT)

    @property
    def open_gaps(self) -> int:
        """Numbers skipped and not (yet) come, over every writer."""
        return sum(len(w.open_gaps) for w in self._writers.values())
