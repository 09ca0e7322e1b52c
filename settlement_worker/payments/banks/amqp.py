"""Banks reached over AMQP (the simulator, or a gateway to a real bank speaking banks.wire).

One :class:`AmqpBankClient` per payer process owns the durable reply queue and hands out
an :class:`AmqpBank` adapter per bank id. Requests are published with confirms; a refused
or unconfirmed publish is only logged: the request may or may not have reached the bank,
which is exactly a timeout, and the payer's timer handles it (it never re-sends on its
own). A reply is matched to its request by (kind, payment id, bank, attempt); one that
matches nothing (after a restart, or a second answer to a repeated query) goes to
`on_unmatched`. Replies are acked after their callback has returned, so a payer that
persists in the callback loses none.
"""

from __future__ import annotations

import itertools
import logging
import time
import uuid
from collections import OrderedDict
from collections.abc import Iterable

from rex.bus import Bus, Delivery, Envelope, Subscription
from rex.topology import Topology
from settlement_worker.payments.banks import (
    BankAdapter,
    BankRequestKind,
    ResultCallback,
    SendRequest,
    wire,
)

__all__ = ["AmqpBank", "AmqpBankClient"]

log = logging.getLogger("rex.settlement.banks")

_Key = tuple[str, str, str, int]  # kind, payment id, bank, attempt
MAX_PENDING = 100_000  # oldest callbacks are forgotten beyond this (their replies: unmatched)


class AmqpBankClient:
    def __init__(
        self,
        bus: Bus,
        client: str,
        bank_ids: Iterable[str],
        on_unmatched: ResultCallback | None = None,
        prefetch: int = 200,
    ) -> None:
        self.bus = bus
        self.client = client
        self.bank_ids = tuple(bank_ids)
        self.on_unmatched = on_unmatched
        self.prefetch = prefetch
        self.reply_queue = wire.reply_queue(client)
        self._pending: OrderedDict[_Key, ResultCallback] = OrderedDict()
        self._token = uuid.uuid4().hex[:8]
        self._ids = itertools.count(1)

    @property
    def topology(self) -> Topology:
        return wire.for_client(self.bank_ids, self.client)

    def on_ready(self) -> None:
        """Consume replies (call from the bus's `on_ready`, after every reconnect)."""
        self.bus.consume(Subscription(self.reply_queue, self._on_reply, prefetch=self.prefetch))

    def adapter(self, bank_id: str) -> AmqpBank:
        if bank_id not in self.bank_ids:
            raise ValueError(f"bank {bank_id!r} is not one of {', '.join(self.bank_ids)}")
        return AmqpBank(self, bank_id)

    def request(
        self,
        kind: BankRequestKind,
        bank_id: str,
        payment_id: str,
        attempt: int,
        body: bytes,
        on_result: ResultCallback,
    ) -> None:
        key = (str(kind), payment_id, bank_id, attempt)
        self._pending[key] = on_result
        self._pending.move_to_end(key)
        while len(self._pending) > MAX_PENDING:
            self._pending.popitem(last=False)
        envelope = Envelope(
            exchange=wire.BANK_EXCHANGE,
            routing_key=bank_id,
            body=body,
            type=wire.SEND_TYPE if kind is BankRequestKind.SEND else wire.QUERY_TYPE,
            message_id=f"{kind}-{payment_id}-{attempt}-{self._token}-{next(self._ids)}",
            timestamp=int(time.time()),
            headers={wire.REPLY_TO: self.reply_queue, wire.CORRELATION_ID: payment_id},
        )

        def confirmed(ok: bool) -> None:
            if not ok:
                log.warning(
                    "bank request not confirmed kind=%s bank=%s payment_id=%s attempt=%d",
                    kind,
                    bank_id,
                    payment_id,
                    attempt,
                )

        self.bus.publish(envelope, confirmed)

    def _on_reply(self, delivery: Delivery) -> None:
        try:
            result = wire.decode_result(delivery.body)
        except ValueError as error:
            log.error("undecodable bank reply message_id=%s: %s", delivery.message_id, error)
            delivery.reject(requeue=False)
            return
        key = (str(result.kind), result.payment_id, result.bank, result.attempt)
        callback = self._pending.pop(key, None) or self.on_unmatched
        if callback is None:
            log.warning("bank reply matched nothing payment_id=%s", result.payment_id)
        else:
            callback(result)
        delivery.ack()


class AmqpBank(BankAdapter):
    def __init__(self, client: AmqpBankClient, bank_id: str) -> None:
        self.client = client
        self.bank_id = bank_id

    def send(self, request: SendRequest, on_result: ResultCallback) -> None:
        body = wire.encode_send(request)
        self.client.request(
            BankRequestKind.SEND, self.bank_id, request.payment_id, request.attempt, body, on_result
        )

    def query(
        self, payment_id: str, on_result: ResultCallback, *, attempt: int, deadline: int
    ) -> None:
        body = wire.encode_query(payment_id, attempt, deadline)
        self.client.request(
            BankRequestKind.QUERY, self.bank_id, payment_id, attempt, body, on_result
        )
