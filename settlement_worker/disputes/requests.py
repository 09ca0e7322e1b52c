"""The operator's dispute action as a settlement request: ``dispute_resolve``.

Sent by an operator account with the role ``settlement_ops`` (rex.operators.ACTION_ROLES;
the desk checks it, settlement_worker/requests/desk.py), for no member. Body::

    {"dispute_id": "D-1", "uphold": true, "reason": "the trade was keyed twice"}

``reason`` is the resolution's note. The audit rows name ``operator:<name>``, the
broker-verified login, as ``rex dispute resolve --operator`` named a person by hand.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from rex.operators import Action
from settlement_worker.codes import RuleViolation, SettlementCode
from settlement_worker.disputes.operations import resolve_in_store
from settlement_worker.disputes.rules import Actor
from settlement_worker.ledger.rules import LedgerError
from settlement_worker.requests.desk import RequestKind, RequestRefused, SettlementRequest
from settlement_worker.store import Transaction

__all__ = ["dispute_request_kinds"]

_MAX_ID: Final = 64


def dispute_request_kinds() -> dict[str, RequestKind]:
    name = Action.DISPUTE_RESOLVE.value
    return {name: RequestKind(name, _resolve, members_may_act=False, action=Action.DISPUTE_RESOLVE)}


def _resolve(tx: Transaction, request: SettlementRequest) -> Mapping[str, Any]:
    params = request.params
    unknown = sorted(str(k)[:32] for k in params if k not in ("dispute_id", "uphold"))
    if unknown:
        raise RequestRefused(SettlementCode.MALFORMED, f"unknown fields {unknown[:5]}")
    dispute_id, uphold = params.get("dispute_id"), params.get("uphold")
    if not isinstance(dispute_id, str) or not 0 < len(dispute_id) <= _MAX_ID:
        raise RequestRefused(
            SettlementCode.MALFORMED, "dispute_id must be a dispute's id", "dispute_id"
        )
    if not isinstance(uphold, bool):
        raise RequestRefused(SettlementCode.MALFORMED, "uphold must be true or false", "uphold")
    assert request.reason is not None  # the desk requires one of a kind that changes
    try:
        resolution = resolve_in_store(
            tx, dispute_id, Actor.operator(request.sender), uphold, request.reason, request.at
        )
    except RuleViolation as error:
        code = (
            error.code if isinstance(error.code, SettlementCode) else SettlementCode.INVALID_STATE
        )
        raise RequestRefused(code, str(error), detail={"dispute_id": dispute_id}) from None
    except LedgerError as error:
        raise RequestRefused(SettlementCode.INVALID_STATE, str(error)) from None
    return {
        "dispute_id": dispute_id,
        "state": str(resolution.dispute.state),
        "reversed_entries": list(resolution.reversals),
    }
