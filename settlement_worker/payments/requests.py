"""The operator's payment actions as settlement requests: ``payment_release`` (a payment in
manual review sent again, on a bank), ``payment_resolve`` (an unknown payment settled
with what its bank said) and ``payment_mark_paid`` (a payment in review paid outside REX,
with the bank's reference), as ``rex payments --release|--resolve|--mark-paid`` send them.

Sent by an operator account with the role ``settlement_ops`` (rex.operators.ACTION_ROLES;
the desk checks it), for no member. Bodies::

    {"payment_id": "P-...", "bank": "icbc-baotou", "reason": "bank back up"}
    {"payment_id": "P-...", "paid": true, "reference": "ICBC-889", "reason": "bank said so"}
    {"payment_id": "P-...", "reference": "ICBC-890", "reason": "paid at the counter"}

(``reason`` is the desk's optional note, kept with the request.)

The payment's history names ``operator:<name>``, the broker-verified login.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Collection, Mapping
from functools import partial
from typing import Any, Final

from rex.operators import Action
from settlement_worker.codes import SettlementCode
from settlement_worker.payments import rules as pm
from settlement_worker.payments.operations import move_payment
from settlement_worker.payments.sql import load_payment
from settlement_worker.requests.desk import (
    RequestConflict,
    RequestKind,
    RequestRefused,
    SettlementRequest,
)
from settlement_worker.store import ConcurrentUpdate, Transaction

__all__ = ["payment_request_kinds"]

_MAX_ID: Final = 64
_MAX_REFERENCE: Final = 64


def payment_request_kinds(banks: Collection[str]) -> dict[str, RequestKind]:
    """The three kinds; ``banks``: the banks a payment may be released on."""
    release, resolve = Action.PAYMENT_RELEASE, Action.PAYMENT_RESOLVE
    mark_paid = Action.PAYMENT_MARK_PAID
    return {
        release.value: RequestKind(
            release.value, partial(_release, frozenset(banks)), members_may_act=False,
            action=release,
        ),
        resolve.value: RequestKind(
            resolve.value, _resolve, members_may_act=False, action=resolve
        ),
        mark_paid.value: RequestKind(
            mark_paid.value, _mark_paid, members_may_act=False, action=mark_paid
        ),
    }  # fmt: skip


def _text(params: Mapping[str, Any], name: str, longest: int) -> str:
    value = params.get(name)
    if not isinstance(value, str) or not 0 < len(value) <= longest:
        raise RequestRefused(
            SettlementCode.MALFORMED, f"{name} must be 1-{longest} characters", name
        )
    return value


def _only(params: Mapping[str, Any], *allowed: str) -> None:
    unknown = sorted(str(k)[:32] for k in params if k not in allowed)
    if unknown:
        raise RequestRefused(SettlementCode.MALFORMED, f"unknown fields {unknown[:5]}")


def _release(
    banks: frozenset[str], tx: Transaction, request: SettlementRequest
) -> Mapping[str, Any]:
    _only(request.params, "payment_id", "bank")
    payment_id = _text(request.params, "payment_id", _MAX_ID)
    bank = _text(request.params, "bank", _MAX_ID)
    if bank not in banks:
        raise RequestRefused(SettlementCode.UNKNOWN_BANK, f"no bank {bank!r}", "bank")
    actor, note = request.actor, request.reason or ""
    return _operate(tx, payment_id, lambda p, now: pm.release(p, bank, actor, now, note), actor)


def _resolve(tx: Transaction, request: SettlementRequest) -> Mapping[str, Any]:
    _only(request.params, "payment_id", "paid", "reference")
    payment_id = _text(request.params, "payment_id", _MAX_ID)
    paid = request.params.get("paid")
    if not isinstance(paid, bool):
        raise RequestRefused(SettlementCode.MALFORMED, "paid must be true or false", "paid")
    reference = ""
    if paid:
        reference = _text(request.params, "reference", _MAX_REFERENCE)
    elif "reference" in request.params:
        raise RequestRefused(SettlementCode.MALFORMED, "reference goes with paid", "reference")
    actor, note = request.actor, request.reason or ""
    rules = pm.RetryPolicy()

    def transition(p: pm.Payment, now: int) -> pm.Step:
        return pm.resolve(p, paid, actor, note, now, rules, reference)

    return _operate(tx, payment_id, transition, actor)


def _mark_paid(tx: Transaction, request: SettlementRequest) -> Mapping[str, Any]:
    """The store operation of ``rex payments --mark-paid`` (pm.mark_paid_manually)."""
    _only(request.params, "payment_id", "reference")
    payment_id = _text(request.params, "payment_id", _MAX_ID)
    reference = _text(request.params, "reference", _MAX_REFERENCE)
    actor = request.actor

    def transition(p: pm.Payment, now: int) -> pm.Step:
        return pm.mark_paid_manually(p, actor, reference, now)

    return _operate(tx, payment_id, transition, actor)


def _operate(
    tx: Transaction,
    payment_id: str,
    transition: Callable[[pm.Payment, int], pm.Step],
    actor: str,
) -> Mapping[str, Any]:
    loaded = load_payment(tx, payment_id)
    if loaded is None:
        raise RequestRefused(
            SettlementCode.UNKNOWN_SUBJECT, f"no payment {payment_id}", "payment_id"
        )
    old, version = loaded
    try:
        step = transition(old, time.time_ns())
        move_payment(tx, old, version, step.payment, actor)
    except pm.PaymentError as error:
        raise RequestRefused(SettlementCode.INVALID_STATE, str(error), "payment_id") from None
    except ConcurrentUpdate as error:
        raise RequestConflict(str(error)) from error
    return {"payment_id": payment_id, "state": str(step.payment.state)}
