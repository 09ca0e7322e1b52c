"""The wire contract of operator requests and their answers (docs/operators/accounts.md).

An operator publishes to the topic exchange ``rex.operator.requests`` with routing key
``<operator>.<action>`` (the broker's topic permissions allow an operator its own name
only), AMQP ``user_id`` its login (the broker refuses any other), ``type``
``operator_request``, a ``message_id`` it chose, and a msgpack map body: ``{"product":
"PRND-OX"}`` for halt, resume and close; ``{"product": "PRND-OX", "band_low": 380000,
"band_high": 460000}`` for set_band (integer prices in the product's price units, both
included). The answer comes on the operator's own answer stream,
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

from rex.config import Product
from rex.operators import OPERATOR_NAME_RE, Action
from rex.price_band import MAX_BAND_FACTOR, MAX_PRICE, PriceBand
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
    "band_refusal",
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
    BAND_NOT_ON_TICK = "band_not_on_tick"
    BAND_INVERTED = "band_inverted"
    BAND_OUT_OF_RANGE = "band_out_of_range"


#: What each refusal means, as the answer says it (ROLE_REQUIRED names the role as well).
REFUSALS: Final[Mapping[Refusal, str]] = {
    Refusal.NOT_AN_OPERATOR: "the login is not an operator account of this deployment"
    " (operators.toml)",
    Refusal.ACCOUNT_DISABLED: "the operator account is disabled in operators.toml",
    Refusal.ROLE_REQUIRED: "the operator account lacks the role this action needs",
    Refusal.UNKNOWN_ACTION: "no such operator action",
    Refusal.UNKNOWN_PRODUCT: "no such product on this exchange",
    Refusal.BAD_REQUEST: "the request is malformed",
    Refusal.BAND_NOT_ON_TICK: "band_low and band_high must be multiples of the product's tick",
    Refusal.BAND_INVERTED: "band_low must be below band_high",
    Refusal.BAND_OUT_OF_RANGE: f"the band must lie within 1/{MAX_BAND_FACTOR} and"
    f" {MAX_BAND_FACTOR} times the product's reference_price (products.toml)",
}

#: The fields of each action's body.
_FIELDS: Final[Mapping[Action, tuple[str, ...]]] = {
    Action.SET_BAND: ("product", "band_low", "band_high"),
}
_PRODUCT_ONLY: Final = ("product",)


@dataclass(frozen=True, slots=True)
class OperatorRequest:
    """A checked request: the action, the product it is for and, for set_band, the band
    (its shape read; :func:`band_refusal` judges it against the product)."""

    action: Action
    product: str
    band: PriceBand | None = None


@dataclass(frozen=True, slots=True)
class OperatorAnswer:
    request_id: str
    action: str  # as asked ("-" if it could not be read), so the answer names the request
    product: str
    verdict: Verdict
    reason: str | None = None  # a Refusal, when refused
    text: str = ""


def encode_request(request: OperatorRequest) -> bytes:
    body: dict[str, Any] = {"product": request.product}
    if request.band is not None:
        body["band_low"], body["band_high"] = request.band.low, request.band.high
    return pack(body)


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
    fields = _FIELDS.get(action, _PRODUCT_ONLY)
    unknown = sorted(str(k)[:32] for k in data if k not in fields)
    if unknown:
        # An "actor" or "operator" field in particular: who acts is the login, never a field.
        return Refusal.BAD_REQUEST, f"unknown fields {', '.join(map(repr, unknown[:5]))}"
    product = data.get("product")
    if not isinstance(product, str) or not PRODUCT_FIELD.fullmatch(product):
        return (
            Refusal.BAD_REQUEST,
            "'product' must be 1-32 printable ASCII characters without spaces or dots",
        )
    if action is not Action.SET_BAND:
        return OperatorRequest(action, product)
    limits = []
    for name in ("band_low", "band_high"):
        value = data.get(name)
        if type(value) is not int or not 0 < value <= MAX_PRICE:  # bool is not a price
            return Refusal.BAD_REQUEST, f"{name!r} must be a positive integer price"
        limits.append(value)
    return OperatorRequest(action, product, PriceBand(*limits))


def band_refusal(product: Product, band: PriceBand) -> tuple[Refusal, str] | None:
    """Why ``band`` may not be ``product``'s (code, text), or None. Both limits on the
    tick, low below high, and both within 1/MAX_BAND_FACTOR .. MAX_BAND_FACTOR times
    products.toml's reference price (a digit too many or too few is refused)."""
    unit = product.price_unit
    if band.low % product.tick or band.high % product.tick:
        return (
            Refusal.BAND_NOT_ON_TICK,
            f"{REFUSALS[Refusal.BAND_NOT_ON_TICK]} ({product.tick} {unit}), got {band}",
        )
    if band.low >= band.high:
        return Refusal.BAND_INVERTED, f"{REFUSALS[Refusal.BAND_INVERTED]}, got {band}"
    reference = product.reference_price
    lowest = -(-reference // MAX_BAND_FACTOR)
    highest = reference * MAX_BAND_FACTOR
    if band.low < lowest or band.high > highest:
        return (
            Refusal.BAND_OUT_OF_RANGE,
            f"{REFUSALS[Refusal.BAND_OUT_OF_RANGE]}: {lowest}..{highest} {unit} for "
            f"{product.symbol}, got {band}",
        )
    return None


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
