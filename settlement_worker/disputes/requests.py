"""Disputes as settlement requests: a party opens one (``open_dispute``), an operator
resolves it (``dispute_resolve``).

``open_dispute`` is a member's request: a member sends it for itself, an operator account
with ``settlement_ops`` for a member it names (rex.operators.Action.ACT_FOR_MEMBER, as
``rex dispute open --member`` sends it). Body::

    {"trade_id": "PRND-OX-1", "reason": "wrong grade delivered"}     # or "bill_id"

``reason`` is the dispute's. The dispute is the member's (``opened_by``); its audit rows
name who sent it, ``member:<id>`` or ``operator:<name>``. A bill the member is no party
to is refused like a bill that does not exist (``unknown_subject``), so a request learns
nothing of other members' bills (their ids derive from public trade ids); a trade it is no
party to is ``not_a_party`` (trades are public).

``dispute_resolve`` is an operator action: sent by an operator account with the role
``settlement_ops`` (rex.operators.ACTION_ROLES; the desk checks it,
settlement_worker/requests/desk.py), for no member. Body::

    {"dispute_id": "D-1", "uphold": true, "reason": "the trade was keyed twice"}

``reason`` is the resolution's note. The audit rows name ``operator:<name>``, the
broker-verified login.

Refusals: ``malformed`` (a field missing, unknown or mistyped), else the dispute rule's
own code (``unknown_subject``, ``not_a_party``, ``already_disputed``, ``already_upheld``,
``unknown_dispute``, ``already_resolved``, ...; settlement_worker/disputes/rules.py).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from rex.operators import Action
from rex.settlement_protocol import OPEN_DISPUTE
from settlement_worker.codes import RuleViolation, SettlementCode
from settlement_worker.disputes.operations import open_in_store, resolve_in_store
from settlement_worker.disputes.rules import Actor, SubjectType
from settlement_worker.ledger.rules import LedgerError
from settlement_worker.requests.desk import RequestKind, RequestRefused, SettlementRequest
from settlement_worker.store import Transaction

__all__ = ["dispute_request_kinds"]

_MAX_ID: Final = 64
#: A trade's or a bill's id (bill ids are longer: they name their trade).
_MAX_SUBJECT_ID: Final = 128


def dispute_request_kinds() -> dict[str, RequestKind]:
    name = Action.DISPUTE_RESOLVE.value
    return {
        OPEN_DISPUTE: RequestKind(OPEN_DISPUTE, _open),
        name: RequestKind(name, _resolve, members_may_act=False, action=Action.DISPUTE_RESOLVE),
    }


def _only(params: Mapping[str, Any], *allowed: str) -> None:
    unknown = sorted(str(k)[:32] for k in params if k not in allowed)
    if unknown:
        raise RequestRefused(SettlementCode.MALFORMED, f"unknown fields {unknown[:5]}")


def _refused(error: RuleViolation, detail: Mapping[str, Any]) -> RequestRefused:
    code = error.code if isinstance(error.code, SettlementCode) else SettlementCode.INVALID_STATE
    return RequestRefused(code, str(error), detail=detail)


def _open(tx: Transaction, request: SettlementRequest) -> Mapping[str, Any]:
    params = request.params
    _only(params, "trade_id", "bill_id")
    given = [
        (t, params[f"{t}_id"]) for t in (SubjectType.TRADE, SubjectType.BILL) if f"{t}_id" in params
    ]
    if len(given) != 1:
        raise RequestRefused(SettlementCode.MALFORMED, "give one of trade_id and bill_id")
    [(subject_type, subject_id)] = given
    field = f"{subject_type}_id"
    if (
        not isinstance(subject_id, str)
        or not 0 < len(subject_id) <= _MAX_SUBJECT_ID
        or not subject_id.isprintable()
    ):
        raise RequestRefused(
            SettlementCode.MALFORMED, f"{field} must be 1-{_MAX_SUBJECT_ID} characters", field
        )
    assert request.reason is not None  # the desk requires one of a kind that changes
    about = {field: subject_id}
    try:
        dispute = open_in_store(
            tx,
            subject_type,
            subject_id,
            Actor.member(request.member),
            request.reason,
            request.at,
            actor=request.actor,
        )
    except RuleViolation as error:
        hidden = (SettlementCode.NOT_A_PARTY, SettlementCode.UNKNOWN_SUBJECT)
        if subject_type is SubjectType.BILL and error.code in hidden:
            # Alike: a bill of others is not told apart from one that does not exist.
            raise RequestRefused(
                SettlementCode.UNKNOWN_SUBJECT,
                f"no bill {subject_id} of {request.member}'s in the ledger",
                field,
                about,
            ) from None
        raise _refused(error, about) from None
    return {
        "dispute_id": dispute.dispute_id,
        "state": str(dispute.state),
        "subject_type": str(subject_type),
        "subject_id": subject_id,
    }


def _resolve(tx: Transaction, request: SettlementRequest) -> Mapping[str, Any]:
    params = request.params
    _only(params, "dispute_id", "uphold")
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
        raise _refused(error, {"dispute_id": dispute_id}) from None
    except LedgerError as error:
        raise RequestRefused(SettlementCode.INVALID_STATE, str(error)) from None
    return {
        "dispute_id": dispute_id,
        "state": str(resolution.dispute.state),
        "reversed_entries": list(resolution.reversals),
    }
