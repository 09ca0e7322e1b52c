"""The auditor's settlement request: ``audit_search``, a page of the audit log.

Sent by an operator account with the role ``audit`` (rex.operators.ACTION_ROLES; the desk
checks it), for no member; it changes nothing, so it needs no ``reason``. Body (every field
optional; settlement_worker.audit.rules bounds them)::

    {"actor": "operator:li-wei", "subject_type": "bill", "subject_id": "B-...",
     "since_ns": 1764720000000000000, "until_ns": 1764806400000000000,
     "after_seq": 0, "limit": 50}

Answered with ``entries`` (seq, at, actor, subject_type, subject_id, action, detail; oldest
first) and ``next_after_seq`` (send it as ``after_seq`` for the next page; null at the end).
A bad field is refused ``malformed`` with the field named.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from rex.operators import Action
from settlement_worker.audit.operations import search_page
from settlement_worker.audit.rules import QueryError, parse_query
from settlement_worker.codes import SettlementCode
from settlement_worker.requests.desk import RequestKind, RequestRefused, SettlementRequest
from settlement_worker.store import Transaction

__all__ = ["audit_request_kinds"]


def audit_request_kinds() -> dict[str, RequestKind]:
    name = Action.AUDIT_SEARCH.value
    return {
        name: RequestKind(
            name, _search, changes=False, members_may_act=False, action=Action.AUDIT_SEARCH
        )
    }


def _search(tx: Transaction, request: SettlementRequest) -> Mapping[str, Any]:
    try:
        query = parse_query(request.params)
    except QueryError as error:
        raise RequestRefused(SettlementCode.MALFORMED, str(error), error.field) from None
    return search_page(tx, query)
