"""Pure checks that turn a member's AMQP message into an engine input or a reject.

No I/O: the service gives it the message's properties, the products, the time, and what the
gateway remembers; it answers with what to do.
"""

from __future__ import annotations

from dataclasses import dataclass

from rex.config import Product
from rex.price_band import ANY_PRICE
from rex.protocol import (
    MAX_TIMESTAMP_S,
    MESSAGE_ID,
    EngineInput,
    Malformed,
    NewOrderRequest,
    ReplaceRequest,
    Request,
    decode_request,
)
from rex.rules import order_problem, reject_text, replace_problem, status_problem
from rex.vocabulary import Reason

NS_PER_MS = 1_000_000
NS_PER_S = 1_000_000_000


@dataclass(slots=True, frozen=True)
class Forward:
    entry: EngineInput

    @property
    def request(self) -> Request | None:
        return self.entry.request

    @property
    def client_order_id(self) -> str | None:
        return None if self.entry.request is None else self.entry.request.client_order_id

    @property
    def product(self) -> str | None:
        return self.entry.product


@dataclass(slots=True, frozen=True)
class Reject:
    reason: Reason
    text: str
    client_order_id: str | None
    product: str | None
    request: Request | None = None


Verdict = Forward | Reject


def usable_message_id(message_id: object) -> str | None:
    """The request's message_id if the gateway may use it (as its key, in the answer's id),
    else None. (pika hands over a short string that is not UTF-8 as bytes.)"""
    if isinstance(message_id, str) and MESSAGE_ID.fullmatch(message_id):
        return message_id
    return None


def properties_problem(message_id: object, timestamp_s: int | None) -> str | None:
    """What is wrong with the AMQP properties of a request that the gateway reads, the first
    in this order; None when they are usable. The others (correlation_id, content_type,
    headers, ...) are never read (docs/members/protocol.md#bounds)."""
    if not message_id:
        return "message_id is required"
    if usable_message_id(message_id) is None:
        return "message_id must be 1-128 printable ASCII characters without spaces"
    if timestamp_s is not None and not 0 <= timestamp_s <= MAX_TIMESTAMP_S:
        return f"timestamp must be seconds since the epoch, at most {MAX_TIMESTAMP_S} (2100-01-01)"
    return None


def answer_time_ns(timestamp_s: int | None, now: int) -> int:
    """The time a gateway answer carries: the request's own AMQP timestamp, so an answer sent
    again after a crash is the same bytes; `now` if it has none or one out of bounds."""
    if timestamp_s and 0 < timestamp_s <= MAX_TIMESTAMP_S:
        return timestamp_s * NS_PER_S
    return now


def judge(
    member: str,
    kind: str | None,
    routing_key: str,
    message_id: object,
    body: bytes,
    products: dict[str, Product],
    now: int,
    *,
    timestamp_s: int | None = None,
) -> Verdict:
    """Decode and check one request from an authenticated member (`member` is the
    broker-verified user_id): its properties first, then its body. `now` (ns) stamps the
    forwarded entry."""
    request = decode_request(kind, body)
    problem = properties_problem(message_id, timestamp_s)
    if problem is not None:
        # Answered by what of the body can be used, so the member can tell which it was.
        if isinstance(request, Malformed):
            return Reject(Reason.MALFORMED, problem, request.client_order_id, request.product)
        return _reject(Reason.MALFORMED, problem, request)
    if isinstance(request, Malformed):
        return Reject(Reason.MALFORMED, request.problem, request.client_order_id, request.product)
    if routing_key != f"{member}.{request.product}":
        return Reject(
            Reason.MALFORMED,
            f"routing key must be {member}.{request.product}",
            request.client_order_id,
            request.product,
            request,
        )
    product = products.get(request.product)
    if product is None:
        return _reject(Reason.UNKNOWN_PRODUCT, Reason.UNKNOWN_PRODUCT.text, request)
    reason = _static_problem(product, request, now)
    if reason is not None:
        return _reject(reason, reject_text(product, reason), request)
    assert isinstance(message_id, str)  # properties_problem
    return Forward(
        EngineInput(
            kind=request.kind,
            product=request.product,
            received=now,
            member=member,
            request_id=message_id,
            request=request,
        )
    )


def _static_problem(product: Product, request: Request, now: int) -> Reason | None:
    """The rules the gateway can check alone. Not the price band: it is market state that
    operators change through the engine's input log (rex/price_band.py), so the engine,
    which follows that log, rejects a price outside it."""
    if isinstance(request, NewOrderRequest):
        expire_ns = None if request.expire_time is None else request.expire_time * NS_PER_MS
        return status_problem(product.status) or order_problem(
            product,
            request.order_type,
            request.price,
            request.quantity,
            request.time_in_force,
            expire_ns,
            request.post_only,
            now,
            ANY_PRICE,
        )
    if isinstance(request, ReplaceRequest):
        return replace_problem(product, request.price, request.quantity, ANY_PRICE)
    return None


def _reject(reason: Reason, text: str, request: Request) -> Reject:
    return Reject(reason, text, request.client_order_id, request.product, request)
