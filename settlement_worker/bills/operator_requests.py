"""The operator's bill steps as settlement requests: ``bill_mature`` (pay every outstanding
bill due on or before a business date) and ``bill_dishonour`` (a bill was not paid at
maturity: the holder's recourse), as ``rex bills mature|dishonour`` send them.

Sent by an operator account with the role ``settlement_ops`` (rex.operators.ACTION_ROLES;
the desk checks it), for no member: they are about no one member. Bodies::

    {"on": "2027-02-15", "reason": "maturity run"}
    {"bill_id": "B-...", "on": "2027-02-15", "recourse_to": "baotou-metals",
     "reason": "acceptor did not pay"}

``on`` (optional, default the exchange's business date when the desk takes the request) is
the date the step is booked on: today or up to :data:`MAX_DAYS_BACK` days earlier (a run
missed over a holiday), never later -- a maturity payment or a dishonour is recorded after
it happened. ``recourse_to`` (optional, default the drawer) is the earlier party the holder
claims from. The ``reason`` is the dishonour's audit why (for a maturity run it is kept
with the request). The bills' audit rows, entries and the recourse payments name
``operator:<name>``, the broker-verified login.

Refusals: ``malformed`` (a field missing, unknown or mistyped); every bill rule, and an
``on`` outside the range (``date_out_of_range``), is ``bill_rule`` with the rule in
``detail["rule"]``, as for the members' bill requests (settlement_worker.bills.requests).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from functools import partial
from typing import Any, Final

from rex.operators import Action
from settlement_worker.bills.operations import BillDesk, DishonourParams, MatureParams
from settlement_worker.bills.records import bill_detail
from settlement_worker.bills.requests import MAX_SHOWN, bill_rules, check_fields, date_field
from settlement_worker.codes import RuleViolation, SettlementCode
from settlement_worker.obligations.settle import trade_date
from settlement_worker.requests.desk import RequestKind, RequestRefused, SettlementRequest
from settlement_worker.store import Transaction

__all__ = ["MAX_DAYS_BACK", "bill_operator_kinds"]

#: How far back an operator may date a maturity run or a dishonour, in days.
MAX_DAYS_BACK: Final = 31
_MAX_BILL_ID: Final = 128
_MAX_PARTY: Final = 64


def bill_operator_kinds(desk: BillDesk) -> dict[str, RequestKind]:
    mature, dishonour = Action.BILL_MATURE, Action.BILL_DISHONOUR
    return {
        mature.value: RequestKind(
            mature.value, partial(_mature, desk), members_may_act=False, action=mature
        ),
        dishonour.value: RequestKind(
            dishonour.value, partial(_dishonour, desk), members_may_act=False, action=dishonour
        ),
    }


def _mature(desk: BillDesk, tx: Transaction, request: SettlementRequest) -> Mapping[str, Any]:
    check_fields(request.params, required=(), optional=("on",))
    with bill_rules(None):
        on = _business_date(request)
        run = desk.mature(tx, request.sender, MatureParams(on), request.at)
    return {
        "on": on.isoformat(),
        "paid": [
            {
                "bill_id": b.bill_id,
                "holder": b.holder,
                "face": b.face.minor,
                "currency": b.face.currency,
            }
            for b in run.paid[:MAX_SHOWN]
        ],
        "paid_count": len(run.paid),
        "frozen": list(run.frozen[:MAX_SHOWN]),
        "frozen_count": len(run.frozen),
    }


def _dishonour(desk: BillDesk, tx: Transaction, request: SettlementRequest) -> Mapping[str, Any]:
    params = request.params
    check_fields(params, required=("bill_id",), optional=("on", "recourse_to"))
    bill_id = params["bill_id"]
    if (
        not isinstance(bill_id, str)
        or not 0 < len(bill_id) <= _MAX_BILL_ID
        or not bill_id.isprintable()
    ):
        raise RequestRefused(SettlementCode.MALFORMED, "bill_id is not a bill id", "bill_id")
    recourse_to = params.get("recourse_to")
    if recourse_to is not None and (
        not isinstance(recourse_to, str) or not 0 < len(recourse_to) <= _MAX_PARTY
    ):
        raise RequestRefused(
            SettlementCode.MALFORMED,
            f"recourse_to must be a party's id (1-{_MAX_PARTY} characters)",
            "recourse_to",
        )
    assert request.reason is not None  # the desk requires one of a kind that changes
    with bill_rules(bill_id):
        on = _business_date(request)
        params_ = DishonourParams(bill_id, on, recourse_to, request.reason)
        done = desk.dishonour(tx, request.sender, params_, request.at)
    return {
        "bill": {"bill_id": done.bill.bill_id, **bill_detail(done.bill)},
        "claims": [
            {
                "recourse_id": c.recourse_id,
                "debtor": c.debtor,
                "creditor": c.creditor,
                "amount": c.amount.minor,
                "currency": c.amount.currency,
                "payment_id": c.payment_id,
            }
            for c in done.claims
        ],
    }


def _business_date(request: SettlementRequest) -> dt.date:
    """``on``, or today (the exchange's business date when the desk took the request);
    refused outside today and the :data:`MAX_DAYS_BACK` days before."""
    today = trade_date(request.at)
    day = date_field(request.params)
    if day is None:
        return today
    earliest = today - dt.timedelta(days=MAX_DAYS_BACK)
    if not earliest <= day <= today:
        raise RuleViolation(
            SettlementCode.DATE_OUT_OF_RANGE,
            f"on must be from {earliest} to today, {today}; not {day}",
        )
    return day
