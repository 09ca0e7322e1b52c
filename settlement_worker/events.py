"""Settlement events members receive: what happened to their obligations, bills and
payments. Published to `rex.settlement` with routing key `<member>.<event>`, so each lands on
the member's own queue. Event ids derive from what happened, so a republished event is
recognisable."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, ClassVar

from rex import topology
from rex.bus import Envelope
from rex.protocol import pack

OBLIGATION_CREATED = "obligation_created"
BILL_ISSUED = "bill_issued"
BILL_ENDORSED = "bill_endorsed"
BILL_DISCOUNTED = "bill_discounted"
BILL_PAID = "bill_paid"
BILL_DISHONOURED = "bill_dishonoured"
SETTLEMENT_EVENTS = (
    OBLIGATION_CREATED,
    BILL_ISSUED,
    BILL_ENDORSED,
    BILL_DISCOUNTED,
    BILL_PAID,
    BILL_DISHONOURED,
    "payment_sent",
    "payment_confirmed",
    "payment_failed",
    "dispute_opened",
    "dispute_resolved",
)


@dataclass(frozen=True, slots=True)
class SettlementEvent:
    kind: ClassVar[str] = "settlement_event"
    event_id: str
    member: str
    event: str  # one of SETTLEMENT_EVENTS
    subject_id: str  # obligation, bill or payment id
    detail: dict[str, Any]
    timestamp: int  # ns

    def envelope(self) -> Envelope:
        body = pack(
            {
                "event_id": self.event_id,
                "member": self.member,
                "event": self.event,
                "subject_id": self.subject_id,
                "detail": self.detail,
                "timestamp": self.timestamp,
            }
        )
        return Envelope(
            topology.SETTLEMENT,
            f"{self.member}.{self.event}",
            body,
            self.kind,
            self.event_id,
            self.timestamp // 1_000_000_000,
        )


def obligation_created(
    obligation_id: str, payer: str, payee: str, amount_minor: int, currency: str, at: int
) -> list[SettlementEvent]:
    """Both parties learn of the obligation."""
    detail = {"payer": payer, "payee": payee, "amount": amount_minor, "currency": currency}
    return [
        SettlementEvent(
            f"{obligation_id}/created/{member}",
            member,
            OBLIGATION_CREATED,
            obligation_id,
            detail,
            at,
        )
        for member in (payer, payee)
    ]


def bill_events(
    bill_id: str,
    event: str,
    key: str,
    members: Iterable[str],
    detail: dict[str, Any],
    at: int,
) -> list[SettlementEvent]:
    """``event`` (``bill_issued``, ``bill_endorsed``...) about ``bill_id`` to each member
    once; ``key`` names the step (``issued``, ``endorsed-2``...) so the id is stable."""
    return [
        SettlementEvent(f"{bill_id}/{key}/{member}", member, event, bill_id, detail, at)
        for member in dict.fromkeys(members)
    ]
