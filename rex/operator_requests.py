"""The wire contract of operator requests and their answers (docs/operators/accounts.md).

An operator publishes to the topic exchange ``rex.operator.requests`` with routing key
``<operator>.<action>`` (the broker's topic permissions allow an operator its own name
only), AMQP ``user_id`` its login (the broker refuses any other), ``type``
``operator_request``, a ``message_id`` it chose, and a msgpack map body: ``{"product":
"PRND-OX"}`` for the market actions. The answer comes on the operator's own answer stream,
``rex.operator.<operator>.answers``, through ``rex.operator.answers`` with the same routing
key: type ``operator_answer``, message_id ``op-<request message_id>``, body ``{"request_id",
"action", "product", "verdict", "reason", "text"}``.

Every field is bounded and checked before anything is done with it, by the same rules as a
member's (rex.protocol): an operator's mistake, or a stolen operator password, must not be
able to make the desk fail.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Final

from rex.operators import OPERATOR_NAME_RE, Action
from rex.protocol import MESSAGE_ID, PRODUCT_FIELD, pack, unpack

__all__ = [
    "ANSWER_TYPE",
    "MAX_BODY_BYTES",
    "REFUSALS",
    "REQUEST_TYPE",
    "OperatorAnswer",
    "OperatorRequest",
    "Refusal",
    "Verdict",
    "decode_answer",
    "decode_request",
    "encode_answer",
    "encode_request",
]

REQUEST_TYPE: Final = "operator_request"
ANSWER_TYPE: Final = "operator_answer"
#: A request body is one short field; anything near this is not a request.
MAX_BODY_BYTES: Final = 1024


class Verdict(StrEnum):
    DONE = "done"  # the action is in the engine's input log
    REFUSED = "refused"


class Refusal(StrEnum):
    """Why the desk refused a request: one code each, with its text in :data:`REFUSALS`."""

    NOT_AN_OPERATOR = "not_an_operator"
    ACCOUNT_DISABLED = "account_disabled"
    ROLE_REQUIRED = "role_required"
    UNKNOWN_ACTION = "unknown_action"
    UNKNOWN_PRODUCT = "unknown_product"
    BAD_REQUEST = "bad_request"


#: What each refusal means, as the answer says it (ROLE_REQUIRED names the role as well).
REFUSALS: Final[Mapping[Refusal, str]] = {
    Refusal.NOT_AN_OPERATOR: "the login is not an operator account of this deployment"
    " (operators.toml)",
    Refusal.ACCOUNT_DISABLED: "the operator account is disabled in operators.toml",
    Refusal.ROLE_REQUIRED: "the operator account lacks the role this action needs",
    Refusal.UNKNOWN_ACTION: "no such operator action",
    Refusal.UNKNOWN_PRODUCT: "no such product on this exchange",
    Refusal.BAD_REQUEST: "the request is malformed",
}


@dataclass(frozen=True, slots=True)
class OperatorRequest:
    """A checked request: the action and the product it is for."""

    action: Action
    product: str


@dataclass(frozen=True, slots=True)
class OperatorAnswer:
    request_id: str
    action: str  # as asked ("-" if it could not be read), so the answer names the request
    product: str
    verdict: Verdict
    reason: str | None = None  # a Refusal, when refused
    text: str = ""


def encode_request(request: OperatorRequest) -> bytes:
    return pack({"product": request.product})


def decode_request(action_word: str, body: bytes) -> OperatorRequest | tuple[Refusal, str]:
    """The request, or why it is refused (code, text). ``action_word`` is the second word of
    the routing key."""
    try:
        action = Action(action_word)
    except ValueError:
        known = ", ".join(a.value for a in Action)
        return Refusal.UNKNOWN_ACTION, f"no operator action {action_word[:32]!r} (known: {known})"
    if len(body) > MAX_BODY_BYTES:
        return Refusal.BAD_REQUEST, f"the body is over {MAX_BODY_BYTES} bytes"
    try:
        data = unpack(body)
    except Exception:  # msgpack raises several kinds; none may stop the desk
        return Refusal.BAD_REQUEST, "the body is not msgpack"
    if not isinstance(data, dict):
        return Refusal.BAD_REQUEST, "the body must be a msgpack map"
    unknown = sorted(str(k)[:32] for k in data if k != "product")
    if unknown:
        # An "actor" or "operator" field in particular: who acts is the login, never a field.
        return Refusal.BAD_REQUEST, f"unknown fields {', '.join(map(repr, unknown[:5]))}"
    product = data.get("product")
    if not isinstance(product, str) or not PRODUCT_FIELD.fullmatch(product):
        return (
            Refusal.BAD_REQUEST,
            "'product' must be 1-32 printable ASCII characters without spaces or dots",
        )
    return OperatorRequest(action, product)


def split_routing_key(routing_key: str) -> tuple[str, str] | None:
    """(operator, action word) of ``<operator>.<action>``; None if it is not of that shape."""
    name, dot, action = routing_key.partition(".")
    if not dot or not OPERATOR_NAME_RE.fullmatch(name) or not action or len(action) > 32:
        return None
    if "." in action:
        return None
    return name, action


def usable_request_id(message_id: object) -> str | None:
    """The request's message_id if it is one the answer may carry."""
    if isinstance(message_id, str) and MESSAGE_ID.fullmatch(message_id):
        return message_id
    return None


def encode_answer(answer: OperatorAnswer) -> bytes:
    body: dict[str, Any] = {
        "request_id": answer.request_id,
        "action": answer.action,
        "product": answer.product,
        "verdict": str(answer.verdict),
        "text": answer.text,
    }
    if answer.reason is not None:
        body["reason"] = answer.reason
    return pack(body)


def decode_answer(body: bytes) -> OperatorAnswer:
    """An answer as the desk wrote it; ValueError if it is not one."""
    data = unpack(body)
    if not isinstance(data, dict):
        raise ValueError("an operator answer must be a msgpack map")
    return OperatorAnswer(
        request_id=str(data["request_id"]),
        action=str(data["action"]),
        product=str(data["product"]),
        verdict=Verdict(data["verdict"]),
        reason=None if data.get("reason") is None else str(data["reason"]),
        text=str(data.get("text", "")),
    )
