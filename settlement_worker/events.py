"""Settlement events members receive: what happened to their obligations, bills and
payments. Published to `rex.settlement` with routing key `<member>.<event>`, so each lands on
the member's own queue. Event ids derive from what happened, so a republished event is
recognisable."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from rex import topology
from rex.bus import Envelope
from rex.protocol import pack

OBLIGATION_CREATED = "obligation_created"
SETTLEMENT_EVENTS = (
    OBLIGATION_CREATED,
    "bill_issued",
    "bill_endorsed",
    "bill_discounted",
    "bill_paid",
    "bill_dishonoured",
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
