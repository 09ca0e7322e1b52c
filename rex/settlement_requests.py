"""Settlement requests and their answers on the wire: what the member SDK and the
settlement worker share (docs/protocol.md, "Settlement requests").

A member (or an operator) publishes a request to the exchange ``rex.settlement.requests``
with routing key ``<sender>.<kind>``, AMQP ``type`` = the kind, a unique ``message_id`` and
``user_id`` = its RabbitMQ login, which the broker verifies. The body is a msgpack map:
``member`` (on whose behalf: whose settings or bills; optional for a member, who may only
name itself), ``reason`` (why, for the audit log; required by requests that change
something) and the kind's own fields. The worker answers each request exactly once with
a :class:`SettlementAnswer` (kind ``settlement_answer``) on ``rex.settlement``, routing key
``<recipient>.settlement_answer``: to the sender, and also to the member when an operator
acted for it. ``request_id`` in the answer is the request's ``message_id``.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, ClassVar, Final

from rex.protocol import pack, unpack

__all__ = [
    "ACCEPTED",
    "ANSWER_ROUTING_WORD",
    "DISCOUNT_BILL",
    "ENDORSE_BILL",
    "REJECTED",
    "SET_PAYMENT_METHOD",
    "SET_RECEIPT_LIMITS",
    "SHOW_BILLS",
    "SHOW_SETTLEMENT_SETTINGS",
    "RequestReason",
    "SettlementAnswer",
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

ACCEPTED: Final = "accepted"
REJECTED: Final = "rejected"
#: The last word of an answer's routing key: ``<recipient>.settlement_answer``.
ANSWER_ROUTING_WORD: Final = "settlement_answer"


class RequestReason(StrEnum):
    """Why a settlement request was rejected. Nothing changes when a request is rejected."""

    MALFORMED = "malformed"
    UNKNOWN_REQUEST = "unknown_request"
    UNKNOWN_MEMBER = "unknown_member"
    NOT_PERMITTED = "not_permitted"
    REASON_REQUIRED = "reason_required"
    INVALID_LIMITS = "invalid_limits"
    INVALID_PAYMENT_METHOD = "invalid_payment_method"
    NOTHING_TO_CHANGE = "nothing_to_change"
    VERSION_MISMATCH = "version_mismatch"
    BILL_RULE = "bill_rule"

    @property
    def text(self) -> str:
        return _TEXT[self]


_TEXT: Final[dict[RequestReason, str]] = {
    RequestReason.MALFORMED: (
        "The request could not be decoded: not a msgpack map, a missing, unknown or mistyped"
        " field, no message_id, or a routing key other than <sender>.<kind>."
    ),
    RequestReason.UNKNOWN_REQUEST: "No settlement request of that kind exists.",
    RequestReason.UNKNOWN_MEMBER: (
        "The sender is neither an enabled member nor an operator, or the member named is not"
        " a member of the exchange."
    ),
    RequestReason.NOT_PERMITTED: (
        "A member may only act for itself; this request is not open to the sender."
    ),
    RequestReason.REASON_REQUIRED: "A change needs a reason (1-500 characters) for the audit log.",
    RequestReason.INVALID_LIMITS: "A receipt limit is invalid; `field` names it.",
    RequestReason.INVALID_PAYMENT_METHOD: "The payment method is invalid; `field` names it.",
    RequestReason.NOTHING_TO_CHANGE: "The request would leave the settings as they are.",
    RequestReason.VERSION_MISMATCH: (
        "The settings changed since the version given in if_version; read them again."
    ),
    RequestReason.BILL_RULE: (
        "A rule of bills refused the request; detail.rule names it (docs/settlement.md)."
    ),
}


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
