"""The wire protocol: every message kind as a slotted dataclass, and the one msgpack codec.

docs/members/protocol.md is the reference for members; this module is its implementation. Bodies
are msgpack maps; the AMQP `type` property names the kind. Times in bodies are integer
nanoseconds since the Unix epoch (UTC), except `expire_time` on orders, which members give
in milliseconds.

Decoding a member's request never raises: anything that is not a well-formed request of its
kind becomes a `Malformed` value carrying what could be salvaged (the client order id) and a
sentence saying what is wrong, so the gateway can answer it.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, fields
from typing import Any, ClassVar, Final, TypeVar

import msgpack

from rex.vocabulary import OrderType, Reason, SelfTradePrevention, Side, TimeInForce

PROTOCOL_VERSION = 2  # 2: members read their logs (docs/members/protocol.md)
CONTENT_TYPE = "application/msgpack"
MAX_INT = (1 << 63) - 1

# Bounds on what a member sends (docs/members/protocol.md#bounds). Each is checked before
# anything else reads the value, so a reject never carries, and no id, routing key, log line
# or metric label is built from, a value outside them.
CLIENT_ORDER_ID = re.compile(r"[\x21-\x7e]{1,64}")  # printable ASCII, no spaces
#: A product field: printable ASCII without spaces or dots (a routing key's word), at most 32
#: (listed symbols are shorter: rex.config); a well-formed one that is not listed is
#: `unknown_product`.
PRODUCT_FIELD = re.compile(r"[\x21-\x2d\x2f-\x7e]{1,32}")
#: A request's AMQP message_id. At most 128, so that the gateway's answer id
#: `gw-<member>-<message_id>` stays inside an AMQP short string (255 bytes).
MESSAGE_ID = re.compile(r"[\x21-\x7e]{1,128}")
MAX_REQUEST_BODY_BYTES = 4096  # a request of any kind, every field at its longest, is under 300
#: The latest AMQP timestamp (seconds) a request may carry: 2100-01-01T00:00:00Z. The
#: gateway stamps its answer with it (in ns), which must stay an int64.
MAX_TIMESTAMP_S = 4_102_444_800
#: A field name or message kind the gateway repeats in a reject's text; others are counted,
#: not shown.
_SHOWN_NAME = re.compile(r"[a-z_]{1,32}")
_SHOWN_NAMES = 5


class ExecStatus:
    NEW = "new"
    PARTIALLY_FILLED = "partially_filled"
    FILLED = "filled"
    CANCELLED = "cancelled"
    REPLACED = "replaced"
    REJECTED = "rejected"
    EXPIRED = "expired"


# ----------------------------------------------------------------------- member requests


@dataclass(slots=True, frozen=True)
class NewOrderRequest:
    kind: ClassVar[str] = "new_order"
    client_order_id: str
    product: str
    side: Side
    quantity: int
    order_type: OrderType = OrderType.LIMIT
    price: int | None = None
    time_in_force: TimeInForce = TimeInForce.GTC
    expire_time: int | None = None  # epoch milliseconds, GTD only
    post_only: bool = False
    stp: SelfTradePrevention = SelfTradePrevention.CANCEL_NEWEST


@dataclass(slots=True, frozen=True)
class CancelRequest:
    kind: ClassVar[str] = "cancel"
    client_order_id: str
    orig_client_order_id: str
    product: str


@dataclass(slots=True, frozen=True)
class ReplaceRequest:
    kind: ClassVar[str] = "replace"
    client_order_id: str
    orig_client_order_id: str
    product: str
    price: int | None = None
    quantity: int | None = None  # new total quantity


@dataclass(slots=True, frozen=True)
class MassCancelRequest:
    """Cancel all of the member's open orders in one product (the kill switch)."""

    kind: ClassVar[str] = "mass_cancel"
    client_order_id: str
    product: str


Request = NewOrderRequest | CancelRequest | ReplaceRequest | MassCancelRequest
REQUEST_TYPES: dict[str, type[Request]] = {
    t.kind: t for t in (NewOrderRequest, CancelRequest, ReplaceRequest, MassCancelRequest)
}


@dataclass(slots=True, frozen=True)
class Malformed:
    """A request that could not be decoded; answered with reason `malformed`."""

    problem: str
    client_order_id: str | None = None
    product: str | None = None
    reason: Reason = Reason.MALFORMED


# ----------------------------------------------------------------------- exchange messages


@dataclass(slots=True, frozen=True)
class ExecutionReport:
    kind: ClassVar[str] = "execution"
    exec_id: str
    member: str
    product: str
    status: str
    timestamp: int
    order_id: int | None = None
    client_order_id: str | None = None
    orig_client_order_id: str | None = None
    side: str | None = None
    price: int | None = None
    quantity: int | None = None
    last_price: int | None = None
    last_quantity: int | None = None
    cumulative_quantity: int = 0
    leaves_quantity: int = 0
    trade_id: str | None = None
    reason: str | None = None
    text: str | None = None


@dataclass(slots=True, frozen=True)
class TradeMessage:
    """A trade as settlement sees it (exchange `rex.trades`)."""

    kind: ClassVar[str] = "trade"
    trade_id: str
    product: str
    price: int
    quantity: int
    buyer: str
    seller: str
    buy_order_id: int
    sell_order_id: int
    aggressor: str
    sequence: int
    timestamp: int
    currency: str


@dataclass(slots=True, frozen=True)
class PublicTrade:
    """A trade on the public tape (no member names)."""

    kind: ClassVar[str] = "public_trade"
    trade_id: str
    product: str
    price: int
    quantity: int
    aggressor: str
    sequence: int
    timestamp: int


@dataclass(slots=True, frozen=True)
class BookSnapshot:
    """Top-N level-2 depth; levels are [price, quantity, orders], best first."""

    kind: ClassVar[str] = "book"
    product: str
    sequence: int
    bids: list[list[int]]
    asks: list[list[int]]
    timestamp: int


@dataclass(slots=True, frozen=True)
class PriceBandMessage:
    """The product's price band from now on (an operator set it): the lowest and highest
    price a new order or a replace may have, both included. Orders resting outside it
    stay (docs/members/protocol.md#price-band)."""

    kind: ClassVar[str] = "price_band"
    product: str
    band_low: int
    band_high: int
    sequence: int  # the book's event sequence of the change
    timestamp: int


Message = ExecutionReport | TradeMessage | PublicTrade | BookSnapshot | PriceBandMessage
MESSAGE_TYPES: dict[str, type[Message]] = {
    t.kind: t for t in (ExecutionReport, TradeMessage, PublicTrade, BookSnapshot, PriceBandMessage)
}

M = TypeVar("M", bound=Message)


# ----------------------------------------------------------------------- codec


def pack(value: Any) -> bytes:
    """The one msgpack encoding used everywhere (StrEnum members pack as strings)."""
    packed: bytes = msgpack.packb(value, use_bin_type=True)
    return packed


def unpack(body: bytes) -> Any:
    return msgpack.unpackb(body, raw=False, strict_map_key=True)


def encode(message: Request | Message) -> bytes:
    """A message as a msgpack map, fields in declaration order (so bytes are stable)."""
    names = _FIELD_NAMES.get(type(message))
    if names is None:
        names = _FIELD_NAMES[type(message)] = tuple(f.name for f in fields(message))
    return pack({name: getattr(message, name) for name in names})


_FIELD_NAMES: dict[type, tuple[str, ...]] = {}


def decode_message(kind: str, body: bytes, expected: type[M]) -> M:
    """Decode an exchange message we produced ourselves (trusted shape)."""
    if kind != expected.kind:
        raise ValueError(f"expected a {expected.kind!r} message, got {kind!r}")
    data = unpack(body)
    return expected(**{f.name: data[f.name] for f in fields(expected) if f.name in data})


#: The AMQP type of a batch is the kind of its messages and this suffix ("execution_batch").
BATCH_SUFFIX = "_batch"
#: The kinds the engine may send as batches: several for one destination out of one input.
BATCHABLE = frozenset({ExecutionReport.kind, TradeMessage.kind, PublicTrade.kind})


def batch_kind(kind: str) -> str:
    return kind + BATCH_SUFFIX


def join_bodies(bodies: Sequence[bytes]) -> bytes:
    """Encoded messages of one kind as one batch body: a msgpack array of their maps. Each
    body is already a msgpack map, so an array header in front is all a batch adds (no
    re-encoding, and the batch's bytes follow from its messages' bytes)."""
    count = len(bodies)
    if count < 16:
        header = bytes((0x90 | count,))
    elif count < 1 << 16:
        header = b"\xdc" + count.to_bytes(2, "big")
    else:
        header = b"\xdd" + count.to_bytes(4, "big")
    return header + b"".join(bodies)


def unpack_messages(kind: str | None, body: bytes) -> list[Any]:
    """The message maps of one delivery, whether it holds one message or a batch."""
    data = unpack(body)
    return data if (kind or "").endswith(BATCH_SUFFIX) else [data]


def decode_messages(kind: str, body: bytes, expected: type[M]) -> list[M]:
    """The messages of one delivery: a single ``expected.kind`` message, or a batch of them
    (``expected.kind + BATCH_SUFFIX``)."""
    if kind == expected.kind:
        return [decode_message(kind, body, expected)]
    if kind != batch_kind(expected.kind):
        raise ValueError(f"expected {expected.kind!r} messages, got {kind!r}")
    items = unpack(body)
    if not isinstance(items, list):
        raise ValueError(f"a {kind!r} body must be an array")
    names = [f.name for f in fields(expected)]
    return [expected(**{n: item[n] for n in names if n in item}) for item in items]


class _Invalid(Exception):
    pass


_ID_SHAPE = "1-64 printable ASCII characters without spaces"
_PRODUCT_SHAPE = "1-32 printable ASCII characters without spaces or dots"


def _text(data: dict[str, Any], name: str, pattern: re.Pattern[str], shape: str) -> str:
    value = data.get(name)
    if not isinstance(value, str):
        raise _Invalid(f"{name} must be a string")
    if not pattern.fullmatch(value):
        raise _Invalid(f"{name} must be {shape}")
    return value


def _shown(names: Sequence[object]) -> str:
    """Names for a reject's text: those of a field's shape, the first few; the rest counted
    (a member's key may be anything msgpack carries, and the text must stay short)."""
    shown = [n for n in names if isinstance(n, str) and _SHOWN_NAME.fullmatch(n)][:_SHOWN_NAMES]
    rest = len(names) - len(shown)
    if not shown:
        return f"{rest} not shown"
    return ", ".join(shown) + (f" and {rest} more" if rest else "")


def _int(data: dict[str, Any], name: str, required: bool) -> int | None:
    value = data.get(name)
    if value is None:
        if required:
            raise _Invalid(f"{name} is required")
        return None
    if type(value) is not int:  # bool is not a quantity
        raise _Invalid(f"{name} must be an integer")
    if not -MAX_INT <= value <= MAX_INT:
        raise _Invalid(f"{name} is out of range")
    return value


def _choice(data: dict[str, Any], name: str, enum: type[Any], default: Any) -> Any:
    value = data.get(name)
    if value is None:
        return default
    try:
        return enum(value)
    except ValueError:
        allowed = ", ".join(str(e.value) for e in enum)
        raise _Invalid(f"{name} must be one of {allowed}") from None


def decode_request(kind: str | None, body: bytes) -> Request | Malformed:
    """Decode a member's request; never raises."""
    if len(body) > MAX_REQUEST_BODY_BYTES:
        return Malformed(f"the body is {len(body)} bytes; at most {MAX_REQUEST_BODY_BYTES}")
    try:
        data = unpack(body)
    except Exception:  # msgpack raises several types for garbage; all mean the same here
        return Malformed("the body is not valid msgpack")
    return decode_request_map(kind, data)


def decode_request_map(kind: str | None, data: Any) -> Request | Malformed:
    """`decode_request` for a body already unpacked; never raises."""
    if not isinstance(data, dict):
        return Malformed("the body must be a msgpack map")
    cid = data.get("client_order_id")
    product = data.get("product")
    salvaged_cid = cid if isinstance(cid, str) and CLIENT_ORDER_ID.fullmatch(cid) else None
    salvaged_product = (
        product if isinstance(product, str) and PRODUCT_FIELD.fullmatch(product) else None
    )
    try:
        request = _decode(kind, data)
    except _Invalid as problem:
        return Malformed(str(problem), salvaged_cid, salvaged_product)
    return request


def _decode(kind: str | None, data: dict[str, Any]) -> Request:
    if kind not in REQUEST_TYPES:
        named = f" {kind!r}" if isinstance(kind, str) and _SHOWN_NAME.fullmatch(kind) else ""
        raise _Invalid(f"unknown message type{named}; expected one of {', '.join(REQUEST_TYPES)}")
    known = _REQUEST_FIELDS[kind]
    if not known.issuperset(data):
        unknown = sorted((k for k in data if k not in known), key=str)
        raise _Invalid(f"unknown field(s): {_shown(unknown)}")
    cid = _text(data, "client_order_id", CLIENT_ORDER_ID, _ID_SHAPE)
    product = _text(data, "product", PRODUCT_FIELD, _PRODUCT_SHAPE)
    if kind == "new_order":
        post_only = data.get("post_only", False)
        if not isinstance(post_only, bool):
            raise _Invalid("post_only must be true or false")
        return NewOrderRequest(
            client_order_id=cid,
            product=product,
            side=_choice(data, "side", Side, None) or _missing("side"),
            quantity=_int(data, "quantity", required=True),  # type: ignore[arg-type]
            order_type=_choice(data, "order_type", OrderType, OrderType.LIMIT),
            price=_int(data, "price", required=False),
            time_in_force=_choice(data, "time_in_force", TimeInForce, TimeInForce.GTC),
            expire_time=_int(data, "expire_time", required=False),
            post_only=post_only,
            stp=_choice(data, "stp", SelfTradePrevention, SelfTradePrevention.CANCEL_NEWEST),
        )
    if kind == "cancel":
        orig = _text(data, "orig_client_order_id", CLIENT_ORDER_ID, _ID_SHAPE)
        return CancelRequest(cid, orig, product)
    if kind == "replace":
        orig = _text(data, "orig_client_order_id", CLIENT_ORDER_ID, _ID_SHAPE)
        return ReplaceRequest(
            cid,
            orig,
            product,
            price=_int(data, "price", required=False),
            quantity=_int(data, "quantity", required=False),
        )
    return MassCancelRequest(cid, product)


_REQUEST_FIELDS: dict[str, frozenset[str]] = {
    kind: frozenset(f.name for f in fields(t)) for kind, t in REQUEST_TYPES.items()
}


def _missing(name: str) -> Any:
    raise _Invalid(f"{name} is required")


# ----------------------------------------------------------------------- engine input log


class InputKind:
    NEW_ORDER = "new_order"
    CANCEL = "cancel"
    REPLACE = "replace"
    MASS_CANCEL = "mass_cancel"
    TICK = "tick"  # the clock: GTD orders due by `received` expire
    STATUS = "status"  # an operator opens, halts or closes the product
    BAND = "band"  # an operator sets the product's price band
    CHECKPOINT = "checkpoint"  # an engine: outputs of every entry up to `through` are out
    FENCE = "fence"  # an engine taking over marks where its replay catches up


ENGINE_INPUT = "engine_input"  # AMQP type of a message on an engine input log


@dataclass(slots=True, frozen=True)
class EngineInput:
    """One entry of a product's input log (a RabbitMQ stream).

    The gateway writes members' requests, stamped with the time it received them; that
    time is the engine's clock, so a replay gives the same output. One AMQP message carries
    a batch of entries."""

    kind: str
    product: str
    received: int  # ns since the epoch
    member: str | None = None
    request_id: str | None = None  # the member's AMQP message_id: a forward counts once
    request: Request | None = None
    status: str | None = None  # STATUS: open | halted | closed
    band_low: int | None = None  # BAND: the new band's lowest price
    band_high: int | None = None  # BAND: its highest
    through: int | None = None  # CHECKPOINT: last input-log offset whose output is out
    fence: str | None = None  # FENCE: the taking-over engine's token


#: AMQP headers of a gateway's input-log message: its writer (one gateway connection's run)
#: and the message's number among that writer's messages to the product's log, 1, 2, ...
#: (engine/input_sequences.py finds the gaps).
WRITER_HEADER: Final = "rex-writer"
SEQUENCE_HEADER: Final = "rex-seq"
MAX_WRITER_CHARS: Final = 64


def encode_inputs(entries: list[EngineInput]) -> bytes:
    out = []
    for entry in entries:
        item: dict[str, Any] = {
            "kind": entry.kind,
            "product": entry.product,
            "received": entry.received,
        }
        for name in ("member", "request_id", "status", "band_low", "band_high", "through", "fence"):
            value = getattr(entry, name)
            if value is not None:
                item[name] = value
        request = entry.request
        if request is not None:
            names = _FIELD_NAMES.get(type(request))
            if names is None:
                names = _FIELD_NAMES[type(request)] = tuple(f.name for f in fields(request))
            item["request"] = {name: getattr(request, name) for name in names}
        out.append(item)
    return pack(out)


def decode_inputs(body: bytes) -> list[EngineInput]:
    """Decode an input-log message. Entries are written by REX itself, but a bad one must
    not stop an engine: it raises ValueError, and the engine skips the entry."""
    items = unpack(body)
    if not isinstance(items, list):
        raise ValueError("an engine input message must be a msgpack array")
    entries = []
    for item in items:
        if not isinstance(item, dict):
            raise ValueError("an engine input entry must be a map")
        request = None
        raw = item.get("request")
        if raw is not None:
            decoded = decode_request_map(item.get("kind"), raw)
            if isinstance(decoded, Malformed):
                raise ValueError(f"bad request in engine input: {decoded.problem}")
            request = decoded
        entries.append(
            EngineInput(
                kind=str(item["kind"]),
                product=str(item["product"]),
                received=int(item["received"]),
                member=item.get("member"),
                request_id=item.get("request_id"),
                request=request,
                status=item.get("status"),
                band_low=item.get("band_low"),
                band_high=item.get("band_high"),
                through=item.get("through"),
                fence=item.get("fence"),
            )
        )
    return entries
