"""Market images: the whole state of one product's Market at an input-log offset.

An engine taking over restores the latest image and replays only the input-log entries
after it, instead of the whole log (the log's retention would lose its start, and with it
resting orders and the id counters). So an image holds everything that can influence any
later output, and a restored Market goes on byte for byte as the original would:
`encode_image(decode_image(p, encode_image(m, t))[0], t) == encode_image(m, t)`.

The body is one msgpack map, plain values only (no pickle):

    {"format": 3, "product": symbol, "through": offset,
     "market": {clock, next_order_id, report_sequence, book_changed, last_snapshot_at,
                live: [[member, client_order_id, order_id]...]            in dict order,
                info: [[order_id, member, client_order_id, side, price, quantity]...],
                client_ids_day: trading day (days since 1970-01-01, exchange time),
                client_id_members: [member...]                       first seen first,
                used_client_ids: [[member index, [client_order_id...]]...]  arrival order,
                seen_requests: [[second, [key...]]...]                 arrival order},
     "book": {status, band: [low, high], sequence, trade_sequence, next_expiry,
              best: [bid key, ask key],
              bids / asks: [[price, quantity, order_count, dead, [entry...]]...] best first,
              orders: [order_id...]                          resting, in acceptance order,
              expiries: [[expire_time, order_id]...]         the heap as it is}}

    entry = [order_id, member, quantity, order_type, time_in_force, expire_time, post_only,
             stp, client_order_id, timestamp, remaining, filled, resting]

An entry is an order queued in a level, those that have left the book (remaining 0)
included; its side and price are the level's. `resting` marks the object the book's order
index holds: a replace that moves an order leaves a dead entry with the same order id
behind. The remembered ids (engine/market.py's windows) are written in the order they came,
which decides which goes first, as runs: the client order ids of one member in a row (the
member as an index into client_id_members), the request ids of one second of input time
(`second` = ns // 10**9). Times that may not fit
msgpack's 64 bits (a member's far-off GTD expiry, the no-expiry sentinel) are written as
decimal strings.

Formats 2 (before operators set bands: no "band") and 1 are still read; their book has
the band of products.toml, which was the only band then. Format 1 (before the windows) is
read so: its sets, written sorted with no times, all count as arriving at the image's
clock, in that order (so its request ids are kept a full horizon from then, and its client
order ids until the end of the image's trading day).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Final

import msgpack

from rex.config import Product, TradingStatus
from rex.price_band import PriceBand, band_shape_problem
from rex.protocol import pack
from rex.vocabulary import OrderType, SelfTradePrevention, Side, TimeInForce

from .book import BookState, Level
from .market import NS_PER_S, Market, _OrderInfo, trading_day
from .orders import Order

IMAGE_KIND: Final = "engine_image"  # AMQP message type the service will use
IMAGE_FORMAT: Final = 3  # bump when the layout changes
#: 1: sets of ids, sorted, no times; 2: no band. An engine older than format 3 refuses a
#: format-3 image (rather than drop the band an operator set) and replays instead.
READABLE_FORMATS: Final = (1, 2, IMAGE_FORMAT)

_SIDES: Final = {side.value: side for side in Side}
_ORDER_TYPES: Final = {kind.value: kind for kind in OrderType}
_TIME_IN_FORCE: Final = {tif.value: tif for tif in TimeInForce}
_STP: Final = {stp.value: stp for stp in SelfTradePrevention}
_STATUSES: Final = {status.value: status for status in TradingStatus}
_MSGPACK_INTS: Final = range(-(1 << 63), 1 << 64)


class ImageError(ValueError):
    """An image that cannot be restored (format, product, corrupt); .code is a short str:
    "format", "product" or "malformed"."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


# ----------------------------------------------------------------------- encoding


def encode_image(market: Market, through: int) -> bytes:
    """The whole state of `market`, which has applied every input-log entry up to offset
    `through`."""
    book = market.book.export_state()
    return pack(
        {
            "format": IMAGE_FORMAT,
            "product": market.product.symbol,
            "through": through,
            "market": {
                "clock": market.clock,
                "next_order_id": market.next_order_id,
                "report_sequence": market.report_sequence,
                "book_changed": market.book_changed,
                "last_snapshot_at": market.last_snapshot_at,
                "live": [[*key, order_id] for key, order_id in market.live.items()],
                "info": [
                    [order_id, i.member, i.client_order_id, i.side, i.price, i.quantity]
                    for order_id, i in market.info.items()
                ],
                "client_ids_day": market.used_client_ids.day,
                **_member_runs(market.used_client_ids.keys),
                "seen_requests": market.seen_requests.by_second(),
            },
            "book": {
                "status": book.status,
                "band": [market.book.band.low, market.book.band.high],
                "sequence": book.sequence,
                "trade_sequence": book.trade_sequence,
                "next_expiry": _wide(book.next_expiry),
                "best": [book.best_bid, book.best_ask],
                "bids": _levels(book.bids, book.orders),
                "asks": _levels(book.asks, book.orders),
                "orders": list(book.orders),
                "expiries": [[_wide(time), order_id] for time, order_id in book.expiries],
            },
        }
    )


def _levels(levels: list[Level], resting: dict[int, Order]) -> list[Any]:
    return [
        [
            level.price,
            level.quantity,
            level.order_count,
            level.dead,
            [
                [
                    o.order_id,
                    o.member,
                    o.quantity,
                    o.order_type,
                    o.time_in_force,
                    _wide(o.expire_time),
                    o.post_only,
                    o.stp,
                    o.client_order_id,
                    o.timestamp,
                    o.remaining,
                    o.filled,
                    resting.get(o.order_id) is o,
                ]
                for o in level
            ],
        ]
        for level in levels
    ]


def _member_runs(pairs: Iterable[tuple[str, str]]) -> dict[str, list[Any]]:
    """(member, client order id) pairs in their order, one member's in a row together and
    each member named once: members' requests interleave, and a name per id would cost more
    than the id."""
    members: dict[str, int] = {}
    runs: list[Any] = []
    last = None
    ids: list[str] = []
    for member, client_order_id in pairs:
        if member != last:
            ids = []
            runs.append([members.setdefault(member, len(members)), ids])
            last = member
        ids.append(client_order_id)
    return {"client_id_members": list(members), "used_client_ids": runs}


def _wide(value: int | None) -> int | str | None:
    """An int msgpack can carry, or its decimal string if it is too wide."""
    return value if value is None or value in _MSGPACK_INTS else str(value)


# ----------------------------------------------------------------------- decoding


def decode_image(
    product: Product, body: bytes, *, snapshot_interval_ns: int = 0
) -> tuple[Market, int]:
    """The Market restored from `body`, and its `through` offset. Raises ImageError for a
    different product symbol, an unknown format, or a malformed body (never anything else)."""
    try:
        image = msgpack.unpackb(body, raw=False, use_list=False, strict_map_key=True)
    except Exception as error:  # msgpack raises several types for garbage; all mean this
        raise ImageError("malformed", f"not a msgpack body: {error}") from error
    if not isinstance(image, dict):
        raise ImageError("malformed", "an image is a msgpack map")
    found = image.get("format")
    if type(found) is not int or found not in READABLE_FORMATS:
        readable = " and ".join(map(str, READABLE_FORMATS))
        raise ImageError("format", f"image format {_show(found)}, this engine reads {readable}")
    if image.get("product") != product.symbol:
        raise ImageError(
            "product", f"an image of {_show(image.get('product'))}, not {product.symbol}"
        )
    try:
        market = Market(product, snapshot_interval_ns=snapshot_interval_ns)
        _restore_market(market, image["market"], found)
        market.book.restore_state(_book_state(image["book"], product, found))
        return market, _int(image["through"])
    except ImageError:
        raise
    except (KeyError, TypeError, ValueError, IndexError, AttributeError) as error:
        raise ImageError("malformed", f"a malformed image: {error!r}") from error


def _restore_market(market: Market, part: dict[str, Any], image_format: int) -> None:
    market.clock = _int(part["clock"])
    market.next_order_id = _int(part["next_order_id"])
    market.report_sequence = _int(part["report_sequence"])
    market.book_changed = _bool(part["book_changed"])
    market.last_snapshot_at = _int(part["last_snapshot_at"])
    live = _array(part["live"])
    market.live = {(_str(m), _str(cid)): _int(order_id) for m, cid, order_id in live}
    market.info = {
        _int(order_id): _OrderInfo(
            _str(member), _str(cid), _SIDES[side], _int_or_none(price), _int(quantity)
        )
        for order_id, member, cid, side, price, quantity in _array(part["info"])
    }
    if image_format == 1:  # sets, sorted, without times: all as of the image's clock
        client_ids = [
            (_str(member), _str(cid))
            for member, ids in _array(part["used_client_ids"])
            for cid in _array(ids)
        ]
        day = trading_day(market.clock)
        keys = [_str(key) for key in _array(part["seen_requests"])]
        runs = [(market.clock // NS_PER_S, keys)] if keys else []
    else:
        members = [_str(member) for member in _array(part["client_id_members"])]
        client_ids = [
            (members[_index(member, members)], _str(cid))
            for member, ids in _array(part["used_client_ids"])
            for cid in _array(ids)
        ]
        day = _int(part["client_ids_day"])
        runs = [
            (_int(second), [_str(key) for key in _array(keys)])
            for second, keys in _array(part["seen_requests"])
        ]
        seconds = [second for second, _ in runs]
        if seconds != sorted(seconds) or not all(keys for _, keys in runs):
            raise ImageError("malformed", "request ids out of their arrival order")
    market.used_client_ids.restore(day, client_ids)  # ValueError: an id twice
    market.seen_requests.restore(runs)


def _book_state(part: dict[str, Any], product: Product, image_format: int) -> BookState:
    resting: dict[int, Order] = {}  # order id -> the object the book's index holds
    bids = [_level(Side.BUY, item, resting) for item in _array(part["bids"])]
    asks = [_level(Side.SELL, item, resting) for item in _array(part["asks"])]
    order_ids = _array(part["orders"])
    orders = {order_id: resting[_int(order_id)] for order_id in order_ids}
    if len(orders) != len(resting) or len(orders) != len(order_ids):
        raise ImageError("malformed", "resting orders and level entries disagree")
    best_bid, best_ask = _array(part["best"])
    return BookState(
        _STATUSES[part["status"]],
        _int(part["sequence"]),
        _int(part["trade_sequence"]),
        bids,
        asks,
        _int(best_bid),
        _int(best_ask),
        orders,
        [(_narrow(time), _int(order_id)) for time, order_id in _array(part["expiries"])],
        _narrow(part["next_expiry"]),
        _band(part, product, image_format),
    )


def _band(part: dict[str, Any], product: Product, image_format: int) -> PriceBand | None:
    """The band the image's book had; None (products.toml's) for an image from before."""
    if image_format < 3:
        return None
    low, high = _array(part["band"])
    problem = band_shape_problem(product.tick, low, high)
    if problem is not None:
        raise ImageError("malformed", f"the image's band {_show(part['band'])}: {problem}")
    return PriceBand(low, high)


def _level(side: Side, item: Any, resting: dict[int, Order]) -> Level:
    price, quantity, order_count, dead, entries = _array(item)
    level = Level(_int(price))
    level.quantity = _int(quantity)
    level.order_count = _int(order_count)
    level.dead = _int(dead)
    append = level.append
    for entry in _array(entries):
        (order_id, member, size, order_type, tif, expire, post_only, stp, cid, ts, left, filled,
         is_resting) = entry  # fmt: skip
        if not (
            type(order_id) is int
            and type(size) is int
            and type(ts) is int
            and type(left) is int
            and type(filled) is int
            and type(member) is str
            and type(cid) is str
            and type(post_only) is bool
            and type(is_resting) is bool
        ):
            raise ImageError("malformed", f"a malformed order entry {_show(entry)}")
        order = Order(
            order_id,
            member,
            side,
            size,
            price,
            _ORDER_TYPES[order_type],
            _TIME_IN_FORCE[tif],
            None if expire is None else _narrow(expire),
            post_only,
            _STP[stp],
            cid,
            ts,
        )
        order.remaining = left
        order.filled = filled
        append(order)
        if is_resting:
            if order_id in resting:
                raise ImageError("malformed", f"order {order_id} rests twice")
            resting[order_id] = order
    return level


def _narrow(value: Any) -> int:
    """The int `_wide` wrote."""
    if type(value) is str and value.lstrip("-").isdigit():
        return int(value)
    return _int(value)


def _array(value: Any) -> tuple[Any, ...]:
    if type(value) is not tuple:  # msgpack arrays unpack as tuples here
        raise ImageError("malformed", f"{_show(value)} where an array belongs")
    return value


def _int(value: Any) -> int:
    if type(value) is not int:  # bool is not a count
        raise ImageError("malformed", f"{_show(value)} where an integer belongs")
    return value


def _index(value: Any, items: list[str]) -> int:
    if not 0 <= _int(value) < len(items):
        raise ImageError("malformed", f"{_show(value)} is not an index into {len(items)} items")
    index: int = value
    return index


def _int_or_none(value: Any) -> int | None:
    return None if value is None else _int(value)


def _bool(value: Any) -> bool:
    if type(value) is not bool:
        raise ImageError("malformed", f"{_show(value)} where true or false belongs")
    return value


def _str(value: Any) -> str:
    if type(value) is not str:
        raise ImageError("malformed", f"{_show(value)} where a text belongs")
    return value


def _show(value: Any) -> str:
    """A value for an error message, cut short: a malformed image can be large."""
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."
