"""The bank protocol over AMQP: names, topology and message bodies (msgpack).

Requests go to the direct exchange `rex.bank` with the bank id as routing key, into the
bank's quorum queue `rex.bank.<bank>`; AMQP `type` is `bank.send` or `bank.query`. The
bus's Envelope has no reply-to or correlation-id property, so they travel as headers:
`reply_to` (the client's reply queue, reached through the default exchange) and
`correlation_id` (the payment id). Replies have type `bank.result`.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from rex import topology
from rex.protocol import pack, unpack
from rex.topology import Topology
from settlement_worker.payments.banks import BankOutcome, BankRequestKind, BankResult, SendRequest

BANK_EXCHANGE = topology.BANK
SEND_TYPE = "bank.send"
QUERY_TYPE = "bank.query"
RESULT_TYPE = "bank.result"
REPLY_TO = "reply_to"
CORRELATION_ID = "correlation_id"


def bank_queue(bank_id: str) -> str:
    return topology.bank_queue(bank_id)


def reply_queue(client: str) -> str:
    return topology.bank_reply_queue(client)


def for_bank(bank_id: str) -> Topology:
    """What one bank (the simulator) declares."""
    return for_banks([bank_id])


def for_banks(bank_ids: Iterable[str]) -> Topology:
    return topology.for_banks(bank_ids)


def for_client(bank_ids: Iterable[str], client: str) -> Topology:
    """What a payer declares (rex.topology.for_bank_client)."""
    return topology.for_bank_client(bank_ids, client)


def encode_send(request: SendRequest) -> bytes:
    return pack(
        {
            "payment_id": request.payment_id,
            "attempt": request.attempt,
            "payer": request.payer,
            "payee": request.payee,
            "amount": request.amount_minor,
            "currency": request.currency,
            "deadline": request.deadline,
        }
    )


def decode_send(body: bytes) -> SendRequest:
    data = _map(body)
    return SendRequest(
        payment_id=_str(data, "payment_id"),
        attempt=_int(data, "attempt"),
        payer=_str(data, "payer"),
        payee=_str(data, "payee"),
        amount_minor=_int(data, "amount"),
        currency=_str(data, "currency"),
        deadline=_int(data, "deadline"),
    )


def encode_query(payment_id: str, attempt: int, deadline: int) -> bytes:
    return pack({"payment_id": payment_id, "attempt": attempt, "deadline": deadline})


def decode_query(body: bytes) -> tuple[str, int, int]:
    data = _map(body)
    return _str(data, "payment_id"), _int(data, "attempt"), _int(data, "deadline")


def encode_result(result: BankResult) -> bytes:
    return pack(
        {
            "kind": str(result.kind),
            "payment_id": result.payment_id,
            "bank": result.bank,
            "attempt": result.attempt,
            "outcome": str(result.outcome),
            "reason": result.reason,
        }
    )


def decode_result(body: bytes) -> BankResult:
    data = _map(body)
    return BankResult(
        kind=BankRequestKind(_str(data, "kind")),
        payment_id=_str(data, "payment_id"),
        bank=_str(data, "bank"),
        attempt=_int(data, "attempt"),
        outcome=BankOutcome(_str(data, "outcome")),
        reason=str(data.get("reason", "")),
    )


def _map(body: bytes) -> dict[str, Any]:
    try:
        data = unpack(body)
    except Exception as error:  # msgpack raises several types for garbage
        raise ValueError(f"not msgpack: {error}") from None
    if not isinstance(data, dict):
        raise ValueError("a bank message must be a msgpack map")
    return data


def _str(data: dict[str, Any], name: str) -> str:
    value = data.get(name)
    if not isinstance(value, str) or not value:
        raise ValueError(f"{name} must be a non-empty string")
    return value


def _int(data: dict[str, Any], name: str) -> int:
    value = data.get(name)
    if type(value) is not int:
        raise ValueError(f"{name} must be an integer")
    return value
