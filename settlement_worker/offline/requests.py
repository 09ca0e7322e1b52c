"""Offline (negotiated) trades as settlement requests: a member reports a trade agreed off
the book, its counterparty confirms (which books it) or declines it, the reporter cancels
it while it is pending.

=========================  =============================================================
kind                       body (besides ``member`` and ``reason``)
=========================  =============================================================
``report_offline_trade``   ``counterparty`` (a member), ``product``, ``side`` (the
                           sender's: ``buy`` / ``sell``), ``price``, ``quantity``
                           (integers in the product's units), ``ref`` (the sender's
                           reference, 1-64 printable characters: its idempotency key)
``confirm_offline_trade``  ``offline_id``, ``price``, ``quantity`` (as agreed)
``decline_offline_trade``  ``offline_id``
``cancel_offline_trade``   ``offline_id``
=========================  =============================================================

Members' requests: a member sends them for itself, an operator account with
``settlement_ops`` for a member it names (rex.operators.Action.ACT_FOR_MEMBER; ``rex
offline`` sends them so). Each needs a ``reason`` (the desk's; for decline and cancel it is
the audit row's why). The audit rows name who sent the request, ``member:<id>`` or
``operator:<name>``, the broker-verified login.

Refusals: ``malformed`` (a field missing, unknown or mistyped, a number that is no
positive 63-bit integer); ``unknown_offline_trade`` also for a report the member is no
party to (a request learns nothing of others' negotiations); else the rule's own code
(``unknown_member``, ``unknown_product``, ``self_trade``, ``invalid_ref``,
``duplicate_ref``, ``not_counterparty``, ``not_reporter``, ``terms_mismatch``,
``not_pending``; settlement_worker/offline/rules.py). A trading rule of the product
(``price_not_on_tick``, ``outside_price_band``, ``product_halted``, ...) is answered
``offline_rule_violation`` with the rule in ``detail["rule"]``.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator, Mapping
from contextlib import contextmanager
from functools import partial
from typing import Any, Final

from rex.config import Product
from rex.money import Money
from rex.settlement_protocol import (
    CANCEL_OFFLINE_TRADE,
    CONFIRM_OFFLINE_TRADE,
    DECLINE_OFFLINE_TRADE,
    REPORT_OFFLINE_TRADE,
)
from rex.vocabulary import Side
from settlement_worker.codes import RuleViolation, SettlementCode
from settlement_worker.configuration import SettlementConfig
from settlement_worker.obligations.rules import ObligationError
from settlement_worker.offline.operations import (
    confirm_in_store,
    get_offline,
    report_in_store,
    withdraw_in_store,
)
from settlement_worker.offline.rules import OfflineTrade
from settlement_worker.requests.desk import RequestKind, RequestRefused, SettlementRequest
from settlement_worker.store import Transaction

__all__ = ["offline_request_kinds"]

_MAX_ID: Final = 64
_MAX_NUMBER: Final = 2**63 - 1  # what msgpack and the store's integers carry


def offline_request_kinds(
    products: Mapping[str, Product], config: SettlementConfig, enabled: Collection[str]
) -> dict[str, RequestKind]:
    """The four kinds; ``enabled``: the members who may trade (reporter and counterparty)."""
    members = frozenset(enabled)
    return {
        REPORT_OFFLINE_TRADE: RequestKind(
            REPORT_OFFLINE_TRADE, partial(_report, dict(products), members)
        ),
        CONFIRM_OFFLINE_TRADE: RequestKind(
            CONFIRM_OFFLINE_TRADE, partial(_confirm, dict(products), config)
        ),
        DECLINE_OFFLINE_TRADE: RequestKind(DECLINE_OFFLINE_TRADE, partial(_withdraw, False)),
        CANCEL_OFFLINE_TRADE: RequestKind(CANCEL_OFFLINE_TRADE, partial(_withdraw, True)),
    }


# ------------------------------------------------------------------------ handlers


def _report(
    products: Mapping[str, Product],
    members: frozenset[str],
    tx: Transaction,
    request: SettlementRequest,
) -> Mapping[str, Any]:
    params = request.params
    _fields(params, "counterparty", "product", "side", "price", "quantity", "ref")
    counterparty = _text(params, "counterparty")
    symbol = _text(params, "product")
    side = params["side"]
    if side not in ("buy", "sell"):
        raise RequestRefused(SettlementCode.MALFORMED, "side must be buy or sell", "side")
    price, quantity = _number(params, "price"), _number(params, "quantity")
    ref = params["ref"]
    if not isinstance(ref, str) or len(ref) > _MAX_ID:
        raise RequestRefused(SettlementCode.MALFORMED, f"ref must be 1-{_MAX_ID} characters", "ref")
    product = products.get(symbol)
    with _rules():
        if product is None:
            raise RuleViolation(SettlementCode.UNKNOWN_PRODUCT, f"unknown product {symbol}")
        trade = report_in_store(
            tx,
            request.member,
            counterparty,
            product,
            Side(side),
            price,
            quantity,
            ref,
            at=request.at,
            members=members,
            actor=request.actor,
        )
    return {"offline_trade": _view(trade)}


def _confirm(
    products: Mapping[str, Product],
    config: SettlementConfig,
    tx: Transaction,
    request: SettlementRequest,
) -> Mapping[str, Any]:
    params = request.params
    _fields(params, "offline_id", "price", "quantity")
    offline_id = _party_to(tx, request.member, params)
    price, quantity = _number(params, "price"), _number(params, "quantity")
    with _rules():
        trade, message = confirm_in_store(
            tx,
            offline_id,
            request.member,
            price,
            quantity,
            products=products,
            config=config,
            at=request.at,
            actor=request.actor,
        )
        rows = tx.execute(
            "SELECT payer, payee, amount, currency FROM obligations WHERE trade_id = ?",
            [message.trade_id],
        )
    payer, payee, amount, currency = rows[0]
    return {
        "offline_trade": _view(trade),
        "obligation": {
            "payer": payer,
            "payee": payee,
            "amount": int(amount),
            "currency": currency,
            "text": str(Money(int(amount), currency)),
        },
    }


def _withdraw(cancelling: bool, tx: Transaction, request: SettlementRequest) -> Mapping[str, Any]:
    _fields(request.params, "offline_id")
    offline_id = _party_to(tx, request.member, request.params)
    assert request.reason is not None  # the desk requires one of a kind that changes
    with _rules():
        trade = withdraw_in_store(
            tx,
            offline_id,
            request.member,
            request.reason,
            at=request.at,
            cancelling=cancelling,
            actor=request.actor,
        )
    return {"offline_trade": _view(trade)}


# ------------------------------------------------------------------------- helpers


@contextmanager
def _rules() -> Iterator[None]:
    """A rule's refusal as an answer: its own code, or a trading rule's as
    ``offline_rule_violation`` naming it."""
    try:
        yield
    except RuleViolation as error:
        if isinstance(error.code, SettlementCode):
            raise RequestRefused(error.code, str(error)) from None
        raise RequestRefused(
            SettlementCode.OFFLINE_RULE_VIOLATION, str(error), detail={"rule": str(error.code)}
        ) from None
    except ObligationError as error:
        raise RequestRefused(SettlementCode.OFFLINE_RULE_VIOLATION, str(error)) from None


def _fields(params: Mapping[str, Any], *required: str) -> None:
    extra = sorted(str(k)[:32] for k in params if k not in required)
    if extra:
        raise RequestRefused(SettlementCode.MALFORMED, f"unknown fields {extra[:5]}")
    for name in required:
        if name not in params:
            raise RequestRefused(SettlementCode.MALFORMED, f"{name!r} is required", name)


def _text(params: Mapping[str, Any], name: str) -> str:
    value = params[name]
    if not isinstance(value, str) or not 0 < len(value) <= _MAX_ID:
        raise RequestRefused(
            SettlementCode.MALFORMED, f"{name} must be 1-{_MAX_ID} characters", name
        )
    return value


def _number(params: Mapping[str, Any], name: str) -> int:
    value = params[name]
    if isinstance(value, bool) or not isinstance(value, int) or not 0 < value <= _MAX_NUMBER:
        raise RequestRefused(
            SettlementCode.MALFORMED,
            f"{name} must be a positive integer (the product's units)",
            name,
        )
    return value


def _party_to(tx: Transaction, member: str, params: Mapping[str, Any]) -> str:
    """The report's id, if ``member`` is its reporter or counterparty; one of others is
    refused like one that does not exist."""
    offline_id = _text(params, "offline_id")
    try:
        trade = get_offline(tx, offline_id)
    except RuleViolation:
        trade = None
    if trade is None or member not in (trade.reporter, trade.counterparty):
        raise RequestRefused(
            SettlementCode.UNKNOWN_OFFLINE_TRADE,
            f"no offline trade {offline_id} of {member}'s",
            "offline_id",
        )
    return offline_id


def _view(trade: OfflineTrade) -> dict[str, Any]:
    return {
        "offline_id": trade.offline_id,
        "state": str(trade.state),
        "reporter": trade.reporter,
        "counterparty": trade.counterparty,
        "product": trade.product,
        "side": str(trade.side),
        "price": trade.price,
        "quantity": trade.quantity,
        "ref": trade.ref,
        "trade_id": trade.trade_id,
    }
