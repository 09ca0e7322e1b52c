"""One product's market: its book, plus what turns input-log entries into book commands and
the book's records into the exchange's results (execution reports, trades, book snapshots:
the protocol's messages, not yet encoded). Pure and deterministic: no I/O, no clock, no
wire format -- engine/outputs.py makes envelopes and metrics of the results.

Ids in the results derive from the input alone — order ids count the product's new orders,
exec ids count its reports, trade ids are the book's trade sequence — so replaying the input
log reproduces every result, and so every message, byte for byte.

The book's records (engine/events.py) are read as the tuples they are, never turned into
event objects: the book makes millions, and building an object for each would cost what
the records were made to save.

What the market remembers of past requests is bounded, and forgotten by the input alone (the
entries' times and their order, never a clock), so a replay forgets the same ids at the same
entry: a request id for REQUEST_HORIZON_NS of input time, at most REQUEST_IDS_MAX of them and
never fewer than the last REQUEST_IDS_KEPT (`RequestWindow`); a client order id until its
trading day ends, or for as long as its order rests (`ClientIdWindow`, and `live`).
docs/internals/engine.md ("What the market remembers") says why these bounds are safe.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Final

from rex.config import Product, TradingStatus
from rex.exchange_time import EXCHANGE_TIME
from rex.price_band import band_shape_problem
from rex.protocol import (
    BookSnapshot,
    CancelRequest,
    EngineInput,
    ExecStatus,
    ExecutionReport,
    InputKind,
    MassCancelRequest,
    NewOrderRequest,
    PriceBandMessage,
    ReplaceRequest,
    TradeMessage,
)
from rex.rules import reject_text
from rex.vocabulary import OrderType, Reason, Side

from .book import OrderBook
from .events import (
    LevelChanged,
    OrderAccepted,
    OrderCancelled,
    OrderExpired,
    OrderRejected,
    OrderReplaced,
    Record,
    Trade,
)
from .orders import (
    AdvanceTime,
    CancelOrder,
    MassCancel,
    Order,
    ReplaceOrder,
    SetPriceBand,
    SetTradingStatus,
)

NS_PER_MS = 1_000_000
NS_PER_S: Final = 1_000_000_000
NS_PER_DAY: Final = 86_400 * NS_PER_S
DEPTH_LEVELS = 10

# Request ids (the AMQP message_id the gateway forwards) are remembered for a day of input
# time, but at most the product's last REQUEST_IDS_MAX requests: memory and images stay
# bounded at any rate. What makes dedupe safe is the floor: the gateway forwards a request
# again only when it was unacked at a crash or a lost connection, and it holds at most its
# prefetch (2,000) unacked, so the copy comes within 2 x 2,000 new ids of the original,
# however long the gateway was down (the clock may jump by the whole outage, which is why
# time alone may never forget the last REQUEST_IDS_KEPT). These are constants, not options:
# every engine replaying a log must forget the same ids at the same entry.
REQUEST_HORIZON_NS: Final = 24 * 3_600 * NS_PER_S
REQUEST_IDS_MAX: Final = 100_000
REQUEST_IDS_KEPT: Final = 10_000
# Client order ids are unique per member for the trading day (and while their order rests);
# past this many in one product's day the oldest are released early (an alert says so before).
CLIENT_IDS_MAX: Final = 1_000_000
_EXCHANGE_OFFSET_NS: Final = int(EXCHANGE_TIME.utcoffset(None).total_seconds()) * NS_PER_S

MASS_CANCELLED = "mass_cancelled"  # answer to a mass_cancel request (protocol extension)

Result = ExecutionReport | TradeMessage | PriceBandMessage
"""What an input-log entry gives: a report to a member, a trade (for settlement, and
without the members' names for the public tape), or a new price band (market data)."""


def trading_day(timestamp_ns: int) -> int:
    """The exchange's trading day of a time: the calendar day in exchange time (Beijing,
    UTC+8; rex/exchange_time.py), counted in days since 1970-01-01."""
    return (timestamp_ns + _EXCHANGE_OFFSET_NS) // NS_PER_DAY


@dataclass(slots=True)
class RequestWindow:
    """The request ids seen lately, oldest first, with the second (of input time) each
    arrived in. An id is forgotten once `horizon_ns` has passed since it arrived, unless it is
    among the last `min_ids`, or once `max_ids` newer ones have come, whichever is first."""

    horizon_ns: int = REQUEST_HORIZON_NS
    max_ids: int = REQUEST_IDS_MAX
    min_ids: int = REQUEST_IDS_KEPT
    keys: deque[str] = field(default_factory=deque)  # arrival order
    runs: deque[list[int]] = field(default_factory=deque)  # [second, ids], arrival order
    _set: set[str] = field(default_factory=set)

    def __len__(self) -> int:
        return len(self.keys)

    def __contains__(self, key: object) -> bool:
        return key in self._set

    def add(self, key: str, now_ns: int) -> bool:
        """Remember `key` as arriving at `now_ns` (which never goes back); False if it is
        remembered already (then nothing changes)."""
        if key in self._set:
            return False
        self._set.add(key)
        self.keys.append(key)
        second = now_ns // NS_PER_S
        runs = self.runs
        if runs and runs[-1][0] == second:
            runs[-1][1] += 1
        else:
            runs.append([second, 1])
        if len(self.keys) > self.max_ids:
            self._drop(len(self.keys) - self.max_ids)
        return True

    def expire(self, now_ns: int) -> None:
        """Forget the ids that arrived more than `horizon_ns` before `now_ns` (kept at least
        that long: whole seconds are compared), down to the last `min_ids`."""
        runs = self.runs
        cutoff = (now_ns - self.horizon_ns) // NS_PER_S  # ids of earlier seconds are old
        while runs and runs[0][0] < cutoff and len(self.keys) > self.min_ids:
            self._drop(min(runs[0][1], len(self.keys) - self.min_ids))

    def restore(self, runs: list[tuple[int, list[str]]]) -> None:
        """Load ids in arrival order, as (second, keys) runs (engine/image.py); ValueError
        if an id comes twice."""
        self.keys = deque(key for _, keys in runs for key in keys)
        self.runs = deque([second, len(keys)] for second, keys in runs if keys)
        self._set = set(self.keys)
        if len(self._set) != len(self.keys):
            raise ValueError("a request id remembered twice")

    def by_second(self) -> list[tuple[int, list[str]]]:
        """The ids in arrival order, as (second, keys) runs."""
        out = []
        keys = iter(self.keys)
        for second, count in self.runs:
            out.append((second, [next(keys) for _ in range(count)]))
        return out

    def _drop(self, count: int) -> None:
        """Forget the oldest `count` ids."""
        keys, runs, seen = self.keys, self.runs, self._set
        while count:
            run = runs[0]
            take = min(count, run[1])
            for _ in range(take):
                seen.remove(keys.popleft())
            run[1] -= take
            if run[1] == 0:
                runs.popleft()
            count -= take


@dataclass(slots=True)
class ClientIdWindow:
    """The (member, client order id) pairs used in the trading day `day`, in the order they
    came. A new day forgets them all: a resting order's id stays reserved through
    `Market.live`, never through here. Past `max_ids` the oldest are forgotten."""

    day: int = 0
    max_ids: int = CLIENT_IDS_MAX
    keys: deque[tuple[str, str]] = field(default_factory=deque)
    _set: set[tuple[str, str]] = field(default_factory=set)

    def __len__(self) -> int:
        return len(self.keys)

    def __contains__(self, key: object) -> bool:
        return key in self._set

    def roll(self, day: int) -> None:
        """Enter trading day `day` (days only go forward: the market clock never goes back)."""
        if day > self.day:
            self.day = day
            self.keys.clear()
            self._set.clear()

    def add(self, key: tuple[str, str]) -> None:
        if key in self._set:
            return
        self._set.add(key)
        self.keys.append(key)
        while len(self.keys) > self.max_ids:
            self._set.remove(self.keys.popleft())

    def restore(self, day: int, keys: list[tuple[str, str]]) -> None:
        """Load the day's ids in the order they came; ValueError if an id comes twice."""
        self.day = day
        self.keys = deque(keys)
        self._set = set(keys)
        if len(self._set) != len(self.keys):
            raise ValueError("a client order id remembered twice")


@dataclass(slots=True)
class _OrderInfo:
    member: str
    client_order_id: str
    side: Side
    price: int | None
    quantity: int


@dataclass(slots=True)
class _Request:
    """What the reports of one command need to know about the request behind it."""

    member: str | None = None
    client_order_id: str | None = None
    orig_client_order_id: str | None = None
    order_id: int | None = None
    side: Side | None = None
    price: int | None = None
    quantity: int | None = None
    kind: str = ""


@dataclass(slots=True)
class Market:
    product: Product
    book: OrderBook = field(init=False)
    clock: int = 0  # ns; never goes back, so GTD expiry is monotonic
    next_order_id: int = 1
    report_sequence: int = 0
    live: dict[tuple[str, str], int] = field(default_factory=dict)  # (member, cid) -> order id
    info: dict[int, _OrderInfo] = field(default_factory=dict)  # order id -> what reports need
    used_client_ids: ClientIdWindow = field(default_factory=ClientIdWindow)
    seen_requests: RequestWindow = field(default_factory=RequestWindow)
    book_changed: bool = False
    # Snapshots go out at most this often in input-log time (deterministic on replay); 0
    # publishes one after every change.
    snapshot_interval_ns: int = 0
    last_snapshot_at: int = 0

    def __post_init__(self) -> None:
        self.book = OrderBook(self.product)

    # ----------------------------------------------------------------- input

    def handle(self, entry: EngineInput) -> list[Result]:
        """Apply one input-log entry; return its results, in the order they are published."""
        self.clock = max(self.clock, entry.received)
        now = self.clock
        self.seen_requests.expire(now)
        self.used_client_ids.roll(trading_day(now))
        if entry.kind == InputKind.TICK:
            return self._reports(self.book.advance_time(AdvanceTime(now)), _Request())
        if entry.kind == InputKind.STATUS:
            if entry.status not in set(TradingStatus):
                return []
            # A status change first expires the GTD orders due by its time: their owners
            # get `expired` reports, as after a tick.
            status = SetTradingStatus(TradingStatus(entry.status), now)
            return self._reports(self.book.set_status(status), _Request())
        if entry.kind == InputKind.BAND:
            return self._set_band(entry, now)
        request = entry.request
        member = entry.member
        if request is None or member is None:
            return []  # checkpoints and fences carry no request
        if entry.request_id is not None and not self.seen_requests.add(
            f"{member}/{entry.request_id}", now
        ):
            return []  # the gateway forwarded it twice; it counts once
        context = _Request(member=member, client_order_id=request.client_order_id, kind=entry.kind)
        client_id = (member, request.client_order_id)
        if client_id in self.used_client_ids or client_id in self.live:
            # Used today, or the id of a resting order (from an earlier day): a cancel or
            # replace names the order by it.
            return [self._reject(context, Reason.DUPLICATE_CLIENT_ORDER_ID, now)]
        self.used_client_ids.add(client_id)
        if isinstance(request, NewOrderRequest):
            return self._new_order(request, member, context, now)
        if isinstance(request, MassCancelRequest):
            return self._mass_cancel(member, context, now)
        assert isinstance(request, CancelRequest | ReplaceRequest)
        context.orig_client_order_id = request.orig_client_order_id
        order_id = self.live.get((member, request.orig_client_order_id))
        if order_id is None:
            return [self._reject(context, Reason.UNKNOWN_ORDER, now)]
        context.order_id = order_id
        if isinstance(request, CancelRequest):
            return self._reports(self.book.cancel(CancelOrder(order_id, member, now)), context)
        command = ReplaceOrder(
            order_id, member, request.price, request.quantity, now, request.client_order_id
        )
        return self._reports(self.book.replace(command), context)

    def _new_order(
        self, request: NewOrderRequest, member: str, context: _Request, now: int
    ) -> list[Result]:
        order_id = self.next_order_id
        self.next_order_id += 1
        context.order_id = order_id
        context.side = request.side
        context.price = request.price
        context.quantity = request.quantity
        expire_time = None if request.expire_time is None else request.expire_time * NS_PER_MS
        order = Order(
            order_id,
            member,
            request.side,
            request.quantity,
            request.price,
            request.order_type,
            request.time_in_force,
            expire_time,
            request.post_only,
            request.stp,
            request.client_order_id,
            now,
        )
        self.info[order_id] = _OrderInfo(
            member,
            request.client_order_id,
            request.side,
            None if request.order_type is OrderType.MARKET else request.price,
            request.quantity,
        )
        return self._reports(self.book.submit(order), context)

    def _set_band(self, entry: EngineInput, now: int) -> list[Result]:
        """An operator's new band (the desk checked it; a band of no shape, whoever wrote
        it, is skipped like a status that is none). As a status change, GTD orders due by
        its time expire first."""
        low, high = entry.band_low, entry.band_high
        if band_shape_problem(self.product.tick, low, high) is not None:
            return []
        assert low is not None and high is not None
        out: list[Result] = []
        records = self.book.set_band(SetPriceBand(low, high, now))
        out.extend(self._reports(records, _Request()))
        out.append(PriceBandMessage(self.product.symbol, low, high, self.book.sequence, now))
        return out

    def _mass_cancel(self, member: str, context: _Request, now: int) -> list[Result]:
        out = self._reports(self.book.mass_cancel(MassCancel(member, now)), context)
        cancelled = len(out)
        self.report_sequence += 1
        answer = ExecutionReport(
            exec_id=f"{self.product.symbol}-{self.report_sequence}",
            member=member,
            product=self.product.symbol,
            status=MASS_CANCELLED,
            timestamp=now,
            client_order_id=context.client_order_id,
            text=f"{cancelled} open order(s) cancelled.",
        )
        return [answer, *out]

    # ----------------------------------------------------------------- results

    def snapshot(self) -> BookSnapshot | None:
        """The top of the book, if it changed since the last snapshot and the snapshot
        interval (in log time: the gateway's ticks keep it moving) has passed."""
        if not self.book_changed or self.clock - self.last_snapshot_at < self.snapshot_interval_ns:
            return None
        self.book_changed = False
        self.last_snapshot_at = self.clock
        depth = self.book.depth(DEPTH_LEVELS)
        return BookSnapshot(
            product=self.product.symbol,
            sequence=depth.sequence,
            bids=[list(level) for level in depth.bids],
            asks=[list(level) for level in depth.asks],
            timestamp=self.clock,
        )

    def _reports(self, records: list[Record], context: _Request) -> list[Result]:
        """The results of one command's records (their layouts: engine/events.py)."""
        out: list[Result] = []
        pending_new: ExecutionReport | None = None
        for record in records:
            kind = record[0]
            if kind is LevelChanged:
                self.book_changed = True
            elif kind is OrderAccepted:
                # `new` is the first answer only if nothing else about the order follows.
                _, _, timestamp, order_id, _, _, _, _, quantity = record
                pending_new = self._order_report(order_id, ExecStatus.NEW, timestamp, 0, quantity)
            elif kind is Trade:
                pending_new = None
                self._trade(record, out)
            elif kind is OrderCancelled or kind is OrderExpired:
                if record[3] == context.order_id:
                    pending_new = None
                out.append(self._ended(record, context))
            elif kind is OrderReplaced:
                out.append(self._replaced(record, context))
            elif kind is OrderRejected:
                _, _, timestamp, _, _, reason = record
                out.append(self._reject(context, reason, timestamp))
        if pending_new is not None:
            out.insert(0, pending_new)
        if context.order_id is not None:
            resting = self.book.order(context.order_id)
            if resting is not None:
                self.live[(resting.member, resting.client_order_id)] = resting.order_id
        return out

    def _forget(self, order_id: int) -> None:
        """The order has left the book: drop it from the indexes."""
        info = self.info.pop(order_id, None)
        if info is not None:
            self.live.pop((info.member, info.client_order_id), None)

    def _order_report(
        self,
        order_id: int,
        status: str,
        timestamp: int,
        cumulative: int,
        leaves: int,
        *,
        client_order_id: str | None = None,
        orig_client_order_id: str | None = None,
        last_price: int | None = None,
        last_quantity: int | None = None,
        trade_id: str | None = None,
        reason: Reason | None = None,
    ) -> ExecutionReport:
        info = self.info[order_id]
        self.report_sequence += 1
        return ExecutionReport(
            exec_id=f"{self.product.symbol}-{self.report_sequence}",
            member=info.member,
            product=self.product.symbol,
            order_id=order_id,
            client_order_id=client_order_id or info.client_order_id,
            orig_client_order_id=orig_client_order_id,
            side=info.side,
            status=status,
            price=info.price,
            quantity=info.quantity,
            last_price=last_price,
            last_quantity=last_quantity,
            cumulative_quantity=cumulative,
            leaves_quantity=leaves,
            trade_id=trade_id,
            reason=reason,
            text=None if reason is None else reason.text,
            timestamp=timestamp,
        )

    def _trade(self, record: Record, out: list[Result]) -> None:
        """The taker's and the maker's reports, then the trade."""
        (_, _, ts, number, price, quantity, aggressor,
         taker_id, taker_member, _, taker_filled, taker_remaining,
         maker_id, maker_member, _, maker_filled, maker_remaining) = record  # fmt: skip
        symbol = self.product.symbol
        trade_id = f"{symbol}-{number}"
        for order_id, filled, remaining in (
            (taker_id, taker_filled, taker_remaining),
            (maker_id, maker_filled, maker_remaining),
        ):
            status = ExecStatus.FILLED if remaining == 0 else ExecStatus.PARTIALLY_FILLED
            out.append(
                self._order_report(
                    order_id,
                    status,
                    ts,
                    filled,
                    remaining,
                    last_price=price,
                    last_quantity=quantity,
                    trade_id=trade_id,
                )
            )
            if remaining == 0:
                self._forget(order_id)
        buy_is_taker = aggressor is Side.BUY
        out.append(
            TradeMessage(
                trade_id=trade_id,
                product=symbol,
                price=price,
                quantity=quantity,
                buyer=taker_member if buy_is_taker else maker_member,
                seller=maker_member if buy_is_taker else taker_member,
                buy_order_id=taker_id if buy_is_taker else maker_id,
                sell_order_id=maker_id if buy_is_taker else taker_id,
                aggressor=aggressor,
                sequence=number,
                timestamp=ts,
                currency=self.product.currency,
            )
        )

    def _ended(self, record: Record, context: _Request) -> ExecutionReport:
        """The report of an order cancelled or expired (an OrderCancelled or OrderExpired
        record: the same fields up to `filled`, and a cancel's reason after it)."""
        order_id, timestamp, filled = record[3], record[2], record[9]
        if record[0] is OrderExpired:
            report = self._order_report(
                order_id, ExecStatus.EXPIRED, timestamp, filled, 0, reason=Reason.EXPIRED
            )
        elif context.kind == InputKind.CANCEL and order_id == context.order_id:
            report = self._order_report(
                order_id,
                ExecStatus.CANCELLED,
                timestamp,
                filled,
                0,
                client_order_id=context.client_order_id,
                orig_client_order_id=context.orig_client_order_id,
                reason=record[10],
            )
        else:
            report = self._order_report(
                order_id, ExecStatus.CANCELLED, timestamp, filled, 0, reason=record[10]
            )
        self._forget(order_id)
        return report

    def _replaced(self, record: Record, context: _Request) -> ExecutionReport:
        _, _, timestamp, order_id, _, client_order_id, _, price, quantity, remaining, filled, _ = (
            record
        )
        info = self.info[order_id]
        self.live.pop((info.member, info.client_order_id), None)
        info.client_order_id = client_order_id
        info.price = price
        info.quantity = quantity
        self.live[(info.member, info.client_order_id)] = order_id
        return self._order_report(
            order_id,
            ExecStatus.REPLACED,
            timestamp,
            filled,
            remaining,
            client_order_id=context.client_order_id,
            orig_client_order_id=context.orig_client_order_id,
        )

    def _reject(self, context: _Request, reason: Reason, timestamp: int) -> ExecutionReport:
        if context.order_id is not None and context.kind == InputKind.NEW_ORDER:
            self.info.pop(context.order_id, None)
        self.report_sequence += 1
        return ExecutionReport(
            exec_id=f"{self.product.symbol}-{self.report_sequence}",
            member=context.member or "",
            product=self.product.symbol,
            status=ExecStatus.REJECTED,
            timestamp=timestamp,
            client_order_id=context.client_order_id,
            orig_client_order_id=context.orig_client_order_id,
            side=context.side,
            price=context.price,
            quantity=context.quantity,
            reason=reason,
            text=reject_text(self.product, reason, self.book.band),
        )
