"""In-order multiple acks: a delivery is acked only when it and all before it are done."""

from __future__ import annotations

from rex.bus import Delivery, InOrderAcks


class Recorded(Delivery):
    def __init__(self, tag: int, log: list[tuple[str, int, bool]]) -> None:
        self.tag = tag
        self.log = log
        self.headers = {}

    def ack(self, multiple: bool = False) -> None:
        self.log.append(("ack", self.tag, multiple))

    def reject(self, requeue: bool = False) -> None:
        self.log.append(("reject", self.tag, requeue))


def test_nothing_is_acked_while_an_earlier_delivery_is_unfinished() -> None:
    log: list[tuple[str, int, bool]] = []
    acks = InOrderAcks()
    first, second, third = (acks.arrived(Recorded(t, log)) for t in (1, 2, 3))
    acks.done(third)
    acks.done(second)
    assert log == []
    acks.done(first)
    assert log == [("ack", 3, True)]


def test_a_reject_is_settled_at_once_and_does_not_block_later_acks() -> None:
    log: list[tuple[str, int, bool]] = []
    acks = InOrderAcks()
    first, second = acks.arrived(Recorded(1, log)), acks.arrived(Recorded(2, log))
    acks.reject(first, requeue=False)
    assert log == [("reject", 1, False)]
    acks.done(second)
    assert log == [("reject", 1, False), ("ack", 2, True)]


def test_reset_forgets_deliveries_of_a_lost_connection() -> None:
    log: list[tuple[str, int, bool]] = []
    acks = InOrderAcks()
    old = acks.arrived(Recorded(1, log))
    acks.reset()
    new = acks.arrived(Recorded(1, log))
    acks.done(new)
    acks.done(old)  # late confirm of the old connection's work: nothing more to ack
    assert log == [("ack", 1, True)]
