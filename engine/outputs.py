"""What the engine publishes for the market's results, and what its metrics count of them.

The market (engine/market.py) answers each input-log entry with results: execution reports,
trades, and now and then a book snapshot. Here they become envelopes, each addressed as the
topology wants it (rex/topology.py):

* a report goes to `rex.executions` under `<member>.<product>`, id its exec id;
* a trade goes to `rex.trades` under the product, id its trade id, and must be routed (the
  settlement queue is bound: an unroutable trade stops the engine); its public view, without
  the members' names, goes to `rex.marketdata` under `<product>.trade`;
* a snapshot goes to `rex.marketdata` under `<product>.book`;
* a new price band (an operator set it) goes to `rex.marketdata` under `<product>.band`,
  id `<product>-band-<book sequence>`.

Those of one input-log message going to the same exchange and routing key -- one member's
reports for one product, the product's trades, its public tape -- travel as one batch
message (``rex.protocol.BATCHABLE`` kinds, type ``<kind>_batch``): every broker operation
(route, enqueue, deliver, ack, confirm) is then paid once per batch, not once per message,
and the broker is what this machine's CPU goes to. Grouping depends only on the results,
which depend only on the log, so a replay after a take-over republishes byte-identical
batches.

Everything here is pure: the service (engine/service.py) publishes the envelopes and adds
the tally to its metrics.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from rex import topology
from rex.bus import Envelope
from rex.protocol import (
    BATCHABLE,
    BookSnapshot,
    ExecStatus,
    ExecutionReport,
    PriceBandMessage,
    PublicTrade,
    TradeMessage,
    batch_kind,
    encode,
    join_bodies,
)

from .market import Result

NS_PER_S = 1_000_000_000

#: The most messages in one batch (a batch is one AMQP message; keep it well under a frame
#: size limit's worth of bodies, ~100 KB at ~200 bytes per report).
MAX_BATCH = 500

#: Report statuses that carry the reason the engine counts by (a reject, a cancel, an expiry).
_COUNTED = frozenset({ExecStatus.REJECTED, ExecStatus.CANCELLED, ExecStatus.EXPIRED})


@dataclass(slots=True)
class Tally:
    """What results count in the engine's metrics."""

    reports: int = 0
    trades: int = 0
    # (status, reason) of each reject, cancel and expiry -> how many
    reasons: dict[tuple[str, str], int] = field(default_factory=dict)


@dataclass(slots=True)
class Outputs:
    """What the service publishes for one input-log message, and what it counts of it."""

    envelopes: list[Envelope]
    tally: Tally


def outputs(results: list[Result], snapshot: BookSnapshot | None = None) -> Outputs:
    """The envelopes of `results` (then of `snapshot`), batched, and their tally."""
    envelopes: list[Envelope] = []
    add = envelopes.append
    tally = Tally()
    reasons = tally.reasons
    for result in results:
        if isinstance(result, ExecutionReport):
            tally.reports += 1
            status = result.status
            if status in _COUNTED:
                reason = result.reason
                assert reason is not None  # a reject, cancel or expiry always says why
                key = (status, reason)
                reasons[key] = reasons.get(key, 0) + 1
            add(execution_envelope(result))
        elif isinstance(result, PriceBandMessage):
            add(band_envelope(result))
        else:
            tally.trades += 1
            add(trade_envelope(result))
            add(public_trade_envelope(result))
    if snapshot is not None:
        add(book_envelope(snapshot))
    return Outputs(batched(envelopes), tally)


def execution_envelope(report: ExecutionReport) -> Envelope:
    return Envelope(
        topology.EXECUTIONS,
        f"{report.member}.{report.product}",
        encode(report),
        report.kind,
        report.exec_id,
        report.timestamp // NS_PER_S,
        mandatory=False,
    )


def trade_envelope(trade: TradeMessage) -> Envelope:
    return Envelope(
        topology.TRADES,
        trade.product,
        encode(trade),
        trade.kind,
        trade.trade_id,
        trade.timestamp // NS_PER_S,
    )


def public_trade(trade: TradeMessage) -> PublicTrade:
    """The trade as the public tape shows it: no members, no order ids."""
    return PublicTrade(
        trade.trade_id,
        trade.product,
        trade.price,
        trade.quantity,
        trade.aggressor,
        trade.sequence,
        trade.timestamp,
    )


def public_trade_envelope(trade: TradeMessage) -> Envelope:
    public = public_trade(trade)
    return Envelope(
        topology.MARKETDATA,
        f"{trade.product}.trade",
        encode(public),
        public.kind,
        f"{trade.trade_id}.public",
        trade.timestamp // NS_PER_S,
        mandatory=False,
    )


def book_envelope(snapshot: BookSnapshot) -> Envelope:
    return Envelope(
        topology.MARKETDATA,
        f"{snapshot.product}.book",
        encode(snapshot),
        snapshot.kind,
        f"{snapshot.product}-book-{snapshot.sequence}",
        snapshot.timestamp // NS_PER_S,
        mandatory=False,
    )


def band_envelope(band: PriceBandMessage) -> Envelope:
    return Envelope(
        topology.MARKETDATA,
        f"{band.product}.band",
        encode(band),
        band.kind,
        f"{band.product}-band-{band.sequence}",
        band.timestamp // NS_PER_S,
        mandatory=False,
    )


def batched(envelopes: list[Envelope]) -> list[Envelope]:
    """`envelopes` with those of one batchable kind and destination joined, each batch in
    the place of its first message; a lone message stays as it was."""
    groups: dict[tuple[str, str, str], list[Envelope]] = {}
    order: list[list[Envelope]] = []
    for envelope in envelopes:
        if envelope.type not in BATCHABLE:
            order.append([envelope])
            continue
        key = (envelope.exchange, envelope.routing_key, envelope.type)
        group = groups.get(key)
        if group is None or len(group) >= MAX_BATCH:
            group = groups[key] = []
            order.append(group)
        group.append(envelope)
    if len(order) == len(envelopes):
        return envelopes
    return [group[0] if len(group) == 1 else _join(group) for group in order]


def _join(group: list[Envelope]) -> Envelope:
    first, last = group[0], group[-1]
    return Envelope(
        first.exchange,
        first.routing_key,
        join_bodies([e.body for e in group]),
        batch_kind(first.type),
        f"{first.message_id}..{last.message_id}",
        first.timestamp,
        mandatory=first.mandatory,
    )
