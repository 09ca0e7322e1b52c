"""Several outputs for one destination, out of one input, as one AMQP message.

An input log entry (a batch of members' requests) produces execution reports, trades and
public trades. Those going to the same exchange and routing key -- one member's reports for
one product, the product's trades, its public tape -- travel as one batch message
(``rex.protocol.BATCHABLE`` kinds, type ``<kind>_batch``): every broker operation (route,
enqueue, deliver, ack, confirm) is then paid once per batch, not once per message, and the
broker is what this machine's CPU goes to. Grouping depends only on the outputs, which
depend only on the log, so a replay after a take-over republishes byte-identical batches.
"""

from __future__ import annotations

from rex.bus import Envelope
from rex.protocol import BATCHABLE, batch_kind, join_bodies

#: The most messages in one batch (a batch is one AMQP message; keep it well under a frame
#: size limit's worth of bodies, ~100 KB at ~200 bytes per report).
MAX_BATCH = 500


def batched(outputs: list[Envelope]) -> list[Envelope]:
    """``outputs`` with those of one batchable kind and destination joined, each batch in
    the place of its first message; a lone message stays as it was."""
    groups: dict[tuple[str, str, str], list[Envelope]] = {}
    order: list[list[Envelope]] = []
    for envelope in outputs:
        if envelope.type not in BATCHABLE:
            order.append([envelope])
            continue
        key = (envelope.exchange, envelope.routing_key, envelope.type)
        group = groups.get(key)
        if group is None or len(group) >= MAX_BATCH:
            group = groups[key] = []
            order.append(group)
        group.append(envelope)
    if len(order) == len(outputs):
        return outputs
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
