"""Settlement on the wire: requests, their answers and settlement events, what the member
SDK and the settlement worker share (docs/members/protocol.md, "Settlement requests", "Settlement
events").

A member (or an operator) publishes a request to the exchange ``rex.settlement.requests``
with routing key ``<sender>.<kind>``, AMQP ``type`` = the kind, a unique ``message_id`` and
``user_id`` = its RabbitMQ login, which the broker verifies. The body is a msgpack map:
``member`` (on whose behalf: whose settings or bills; optional for a member, who may only
name itself), ``reason`` (why, for the audit log; required by requests that change
something) and the kind's own fields. The worker answers each request exactly once with
a :class:`SettlementAnswer` (kind ``settlement_answer``) on ``rex.settlement``, routing key
``<recipient>.settlement_answer``: to the sender, and also to the member when an operator
acted for it. ``request_id`` in the answer is the request's ``message_id``, which is at
most :data:`MAX_MESSAGE_ID_BYTES` bytes (UTF-8): the worker builds the answer's own ids
from it, and AMQP carries ids of at most 255 bytes.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, ClassVar, Final

from rex import topology
from rex.bus import Envelope
from rex.protocol import pack, unpack

__all__ = [
    "ACCEPTED",
    "ANSWER_ROUTING_WORD",
    "BILL_DISCOUNTED",
    "BILL_DISHONOURED",
    "BILL_ENDORSED",
    "BILL_ISSUED",
    "BILL_PAID",
    "CANCEL_OFFLINE_TRADE",
    "CONFIRM_OFFLINE_TRADE",
    "DECLINE_OFFLINE_TRADE",
    "DISCOUNT_BILL",
    "ENDORSE_BILL",
    "MAX_MESSAGE_ID_BYTES",
    "OBLIGATION_CREATED",
    "OPEN_DISPUTE",
    "REJECTED",
    "REPORT_OFFLINE_TRADE",
    "SETTLEMENT_EVENTS",
    "SET_PAYMENT_METHOD",
    "SET_RECEIPT_LIMITS",
    "SHOW_BILLS",
    "SHOW_SETTLEMENT_SETTINGS",
    "SettlementAnswer",
    "SettlementEvent",
    "bill_events",
    "obligation_created",
]

#: Change the member's receipt limits (as payee): body ``changes``, a map of
#: ``ReceiptLimits`` field names to new values; optional ``if_version``.
SET_RECEIPT_LIMITS: Final = "set_receipt_limits"
#: Replace the member's payment method (as payer): body ``pays``, a map like a
#: ``pays`` table of config/settlement.toml; optional ``if_version``.
SET_PAYMENT_METHOD: Final = "set_payment_method"
#: The member's current payment method and receipt limits, and their version.
SHOW_SETTLEMENT_SETTINGS: Final = "show_settlement_settings"
#: The holder endorses a whole bill to another member: body ``bill_id``, ``to``, optional
#: ``on`` (the business date the sender means; refused unless it is today).
ENDORSE_BILL: Final = "endorse_bill"
#: The holder sells a bill to a bank: body ``bill_id``, ``bank``, ``annual_rate`` (a
#: decimal string, a fraction: ``"0.0135"`` is 1.35 %), optional ``on`` as above.
DISCOUNT_BILL: Final = "discount_bill"
#: The member's bills with their chains: optional ``include_closed`` (bool), ``bill_id``.
SHOW_BILLS: Final = "show_bills"
#: A party disputes a trade or a bill, which freezes it until an operator resolves the
#: dispute: body ``trade_id`` or ``bill_id`` (one of them); the ``reason`` is the dispute's.
OPEN_DISPUTE: Final = "open_dispute"
#: Report a trade agreed off the book: body ``counterparty``, ``product``, ``side`` (the
#: sender's, ``buy`` or ``sell``), ``price`` and ``quantity`` (integers, in the product's
#: units), ``ref`` (the sender's reference: sent again, the same report is answered).
REPORT_OFFLINE_TRADE: Final = "report_offline_trade"
#: The counterparty confirms a reported offline trade, which books it: body ``offline_id``,
#: ``price`` and ``quantity`` (as agreed: they must equal the report's).
CONFIRM_OFFLINE_TRADE: Final = "confirm_offline_trade"
#: The counterparty declines a reported offline trade: body ``offline_id``.
DECLINE_OFFLINE_TRADE: Final = "decline_offline_trade"
#: The reporter withdraws its report before it is confirmed: body ``offline_id``.
CANCEL_OFFLINE_TRADE: Final = "cancel_offline_trade"

#: The longest ``message_id`` a settlement request may have, in bytes of UTF-8. The answer's
#: id is ``answer/<sender>/<message_id>/<recipient>`` (ids of 1-32 characters), so it stays
#: within AMQP's 255 bytes; a longer one is rejected (``message_id_too_long``).
MAX_MESSAGE_ID_BYTES: Final = 128

ACCEPTED: Final = "accepted"
REJECTED: Final = "rejected"
#: The last word of an answer's routing key: ``<recipient>.settlement_answer``.
ANSWER_ROUTING_WORD: Final = "settlement_answer"


@dataclass(frozen=True, slots=True)
class SettlementAnswer:
    """The answer to one settlement request.

    ``status`` is ``accepted`` or ``rejected``; a rejection has a ``reason`` code, a
    ``text`` and, for invalid settings, the ``field``. ``detail`` is the request kind's
    result: for the settings requests ``version``, ``receives`` and ``pays``; for the bill
    requests the bill(s). A ``bill_rule`` rejection names the rule in ``detail["rule"]``.
    """

    kind: ClassVar[str] = "settlement_answer"
    answer_id: str  # unique per request and recipient: a copy sent again has the same id
    request_id: str  # the request's message_id
    request: str  # the request's kind
    sender: str
    member: str  # whose settings (the sender itself, or the member an operator named)
    status: str
    timestamp: int  # ns
    reason: str | None = None
    text: str | None = None
    field: str | None = None
    detail: dict[str, Any] = dataclasses.field(default_factory=dict)

    @property
    def accepted(self) -> bool:
        return self.status == ACCEPTED

    def encode(self) -> bytes:
        return pack(
            {
                "answer_id": self.answer_id,
                "request_id": self.request_id,
                "request": self.request,
                "sender": self.sender,
                "member": self.member,
                "status": self.status,
                "reason": self.reason,
                "text": self.text,
                "field": self.field,
                "detail": self.detail,
                "timestamp": self.timestamp,
            }
        )

    @classmethod
    def decode(cls, body: bytes) -> SettlementAnswer:
        data = unpack(body)
        if not isinstance(data, dict):
            raise ValueError("a settlement answer must be a map")
        return cls(
            answer_id=str(data["answer_id"]),
            request_id=str(data["request_id"]),
            request=str(data["request"]),
            sender=str(data["sender"]),
            member=str(data["member"]),
            status=str(data["status"]),
            timestamp=int(data["timestamp"]),
            reason=data.get("reason"),
            text=data.get("text"),
            field=data.get("field"),
            detail=dict(data.get("detail") or {}),
        )


# ------------------------------------------------------------------ settlement events
#
# What happened to members' obligations, bills and payments, published to `rex.settlement`
# with routing key `<member>.<event>`, so each lands in the member's own log. Event ids
# derive from what happened, so a republished event is recognisable.

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

    @classmethod
    def decode(cls, body: bytes) -> SettlementEvent:
        """An event as it travels; ValueError if ``body`` is not one."""
        data = unpack(body)
        if not isinstance(data, dict):
            raise ValueError("a settlement event must be a map")
        try:
            return cls(
                event_id=str(data["event_id"]),
                member=str(data["member"]),
                event=str(data["event"]),
                subject_id=str(data["subject_id"]),
                detail=dict(data.get("detail") or {}),
                timestamp=int(data["timestamp"]),
            )
        except (KeyError, TypeError, ValueError) as error:
            raise ValueError(f"not a settlement event: {error!r}") from None

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
