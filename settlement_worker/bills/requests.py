"""Settlement requests about bills: a member endorses or discounts a bill it holds, and
reads its bills, over AMQP (docs/members/protocol.md), through the same
:class:`~settlement_worker.bills.operations.BillDesk` methods as ``rex bills``.

=================  ===================================================================
kind               body (besides ``member`` and ``reason``)
=================  ===================================================================
``endorse_bill``   ``bill_id``, ``to`` (an enabled member), ``on`` (optional)
``discount_bill``  ``bill_id``, ``bank`` (of ``[[banks]]``), ``annual_rate`` (a decimal
                   string, a fraction: ``"0.0135"`` is 1.35 %), ``on`` (optional)
``show_bills``     ``include_closed`` (bool, optional), ``bill_id`` (optional)
=================  ===================================================================

The two that move a bill need a ``reason`` (it is the audit row's why) and are answered
with the bill after the step (and the discount's working); ``show_bills`` with the
member's bills, each with its roles and its chain as the member may see it
(:func:`~settlement_worker.bills.rules.visible_chain`). The step's journal entry, audit rows and
``bill_endorsed`` / ``bill_discounted`` events are written by the desk in the request's
transaction, so they go out with the answer or not at all.

**Refusals.** Every rule of the bill model and of the desk is answered ``bill_rule`` with
the rule's code in ``detail["rule"]`` (``not_holder``, ``overdue``, ``not_transferable``,
``receipt_limits``, ...; docs/members/settlement.md lists them), one reason with the code beside
it as ``invalid_limits`` has its ``field``. Two codes are the requests' own:

* ``unknown_bill`` also for a bill the member is no party to, so a request learns nothing
  of other members' bills (their ids derive from public trade ids);
* ``not_today``: a request is dated by the exchange, on its business date (Beijing) when
  the desk takes it, never earlier or later. ``on`` names the date the sender means, so a
  discount priced before midnight is refused rather than booked the next day with other
  days of interest. An operator acting for a member (``rex bills endorse|discount``, as an
  operator account with ``settlement_ops``) sends these same requests, dated today too.

A ``to`` that is not an enabled member is ``unknown_member`` (a bank gets bills by
discount only). Maturity and dishonour are operators' actions about no one member:
settlement_worker.bills.operator_requests (``bill_mature``, ``bill_dishonour``).
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Collection, Iterator, Mapping
from contextlib import contextmanager
from decimal import Decimal
from functools import partial
from typing import Any, Final

from rex.settlement_protocol import DISCOUNT_BILL, ENDORSE_BILL, SHOW_BILLS
from settlement_worker.bills.discount import DiscountResult
from settlement_worker.bills.operations import BillDesk, DiscountParams, EndorseParams
from settlement_worker.bills.records import bill_detail
from settlement_worker.bills.rules import Bill, is_live, parties, roles, visible_chain
from settlement_worker.bills.sql import load_bill
from settlement_worker.codes import RuleViolation, SettlementCode
from settlement_worker.obligations.settle import trade_date
from settlement_worker.requests.desk import (
    RequestConflict,
    RequestKind,
    RequestRefused,
    SettlementRequest,
)
from settlement_worker.store import ConcurrentUpdate, Transaction

__all__ = ["MAX_SHOWN", "bill_request_kinds", "bill_rules", "check_fields", "date_field"]

#: The most bills one ``show_bills`` answer lists (earliest due first); ``truncated`` says
#: when there were more. Keeps an answer a few hundred kB at most.
MAX_SHOWN: Final = 1000
_MAX_BILL_ID: Final = 128
# A plain decimal of bounded size: an exponent ("1e-999999999") would make the exact
# interest arithmetic build an enormous fraction.
_RATE_RE: Final = re.compile(r"[0-9]{1,3}(\.[0-9]{1,12})?|\.[0-9]{1,12}")
_DATE_RE: Final = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


def bill_request_kinds(desk: BillDesk, enabled: Collection[str]) -> dict[str, RequestKind]:
    """The bill requests, applied through ``desk``; ``enabled``: the enabled members (the
    only ones a bill may be endorsed to)."""
    members = frozenset(enabled)
    return {
        ENDORSE_BILL: RequestKind(ENDORSE_BILL, partial(_endorse, desk, members)),
        DISCOUNT_BILL: RequestKind(DISCOUNT_BILL, partial(_discount, desk)),
        SHOW_BILLS: RequestKind(SHOW_BILLS, partial(_show, desk), changes=False),
    }


# ------------------------------------------------------------------------ handlers


def _endorse(
    desk: BillDesk, members: frozenset[str], tx: Transaction, request: SettlementRequest
) -> dict[str, Any]:
    check_fields(request.params, required=("bill_id", "to"), optional=("on",))
    bill_id = _bill_id(request.params)
    to = _text(request.params, "to")
    with bill_rules(bill_id):
        on = _today(request)
        _party_to(tx, request.member, bill_id)
        if to not in members:
            raise RuleViolation(SettlementCode.UNKNOWN_MEMBER, f"{to!r} is not a member")
        params = EndorseParams(bill_id, to, on, request.reason)
        done = desk.endorse(tx, request.member, params, request.at, actor=request.actor)
    return {"bill": _view(done.bill, request.member)}


def _discount(desk: BillDesk, tx: Transaction, request: SettlementRequest) -> dict[str, Any]:
    check_fields(request.params, required=("bill_id", "bank", "annual_rate"), optional=("on",))
    bill_id = _bill_id(request.params)
    bank = _text(request.params, "bank")
    rate = _rate(request.params)
    with bill_rules(bill_id):
        on = _today(request)
        _party_to(tx, request.member, bill_id)
        params = DiscountParams(bill_id, bank, rate, on, request.reason)
        done = desk.discount(tx, request.member, params, request.at, actor=request.actor)
    return {
        "bill": _view(done.bill, request.member),
        "discount": _working(done.bill.holder, done.result),
    }


def _show(desk: BillDesk, tx: Transaction, request: SettlementRequest) -> dict[str, Any]:
    check_fields(request.params, required=(), optional=("include_closed", "bill_id"))
    closed = request.params.get("include_closed", False)
    if not isinstance(closed, bool):
        raise RequestRefused(SettlementCode.MALFORMED, "include_closed must be true or false")
    wanted = _bill_id(request.params) if "bill_id" in request.params else None
    with bill_rules(wanted):
        bills = desk.bills_of(tx, request.member)
        if wanted is not None:
            bills = [b for b in bills if b.bill_id == wanted]
            if not bills:
                raise RuleViolation(SettlementCode.UNKNOWN_BILL, f"no bill {wanted} of yours")
        elif not closed:
            bills = [b for b in bills if is_live(b.state)]
        shown = [_view(b, request.member) for b in bills[:MAX_SHOWN]]
    return {"member": request.member, "bills": shown, "truncated": len(bills) > MAX_SHOWN}


# ------------------------------------------------------------------------- helpers


@contextmanager
def bill_rules(bill_id: str | None) -> Iterator[None]:
    """A rule's refusal as the answer ``bill_rule`` naming it; a bill another writer moved
    meanwhile as a conflict, which the desk runs again on fresh reads."""
    try:
        yield
    except ConcurrentUpdate as error:
        raise RequestConflict(str(error)) from error
    except RuleViolation as error:
        detail = (
            {"rule": error.code} if bill_id is None else {"rule": error.code, "bill_id": bill_id}
        )
        raise RequestRefused(SettlementCode.BILL_RULE, str(error), detail=detail) from None


def _party_to(tx: Transaction, member: str, bill_id: str) -> None:
    """Refuse a bill that does not exist or that ``member`` is no party to alike."""
    stored = load_bill(tx, bill_id)
    if stored is None or member not in parties(stored.bill):
        raise RuleViolation(SettlementCode.UNKNOWN_BILL, f"no bill {bill_id} of yours")


def check_fields(
    params: Mapping[str, Any], *, required: tuple[str, ...], optional: tuple[str, ...]
) -> None:
    extra = sorted(str(k) for k in params if k not in required and k not in optional)
    if extra:
        raise RequestRefused(SettlementCode.MALFORMED, f"unknown field {extra[0]!r}")
    for name in required:
        if name not in params:
            raise RequestRefused(SettlementCode.MALFORMED, f"{name!r} is required")


def _text(params: Mapping[str, Any], name: str) -> str:
    value = params[name]
    if not isinstance(value, str) or not value:
        raise RequestRefused(SettlementCode.MALFORMED, f"{name} must be a non-empty string")
    return value


def _bill_id(params: Mapping[str, Any]) -> str:
    value = _text(params, "bill_id")
    if len(value) > _MAX_BILL_ID or not value.isprintable():
        raise RequestRefused(SettlementCode.MALFORMED, "bill_id is not a bill id")
    return value


def _rate(params: Mapping[str, Any]) -> Decimal:
    """The annual rate, exact: a decimal string only (a float is never exact)."""
    value = params["annual_rate"]
    if not isinstance(value, str) or _RATE_RE.fullmatch(value) is None:
        raise RequestRefused(
            SettlementCode.MALFORMED,
            'annual_rate must be a decimal string, a fraction ("0.0135" is 1.35 %)',
        )
    return Decimal(value)


def _today(request: SettlementRequest) -> dt.date:
    """The exchange's business date when the desk took the request; ``on``, if given, must
    be it (see the module docstring)."""
    today = trade_date(request.at)
    day = date_field(request.params)
    if day is None:
        return today
    if day != today:
        raise RuleViolation(
            SettlementCode.NOT_TODAY, f"requests are dated today, {today}, not {day}"
        )
    return day


def date_field(params: Mapping[str, Any]) -> dt.date | None:
    """The request's ``on``, a date ``YYYY-MM-DD``; None if it gives none."""
    on = params.get("on")
    if on is None:
        return None
    if not isinstance(on, str) or _DATE_RE.fullmatch(on) is None:
        raise RequestRefused(SettlementCode.MALFORMED, "on must be a date YYYY-MM-DD", "on")
    try:
        return dt.date.fromisoformat(on)
    except ValueError:
        raise RequestRefused(SettlementCode.MALFORMED, f"no such date {on!r}", "on") from None


def _view(bill: Bill, member: str) -> dict[str, Any]:
    """A bill as ``member`` sees it: the event form, its roles, and the chain (a party's)."""
    return {
        "bill_id": bill.bill_id,
        **bill_detail(bill),
        "transferable": bill.transferable,
        "accepted_on": None if bill.accepted_on is None else bill.accepted_on.isoformat(),
        "closed_on": None if bill.closed_on is None else bill.closed_on.isoformat(),
        "roles": roles(bill, member),
        "chain": [
            {
                "sequence": link.sequence,
                "from": link.from_holder,
                "to": link.to_holder,
                "kind": link.kind.value,
                "on": link.date.isoformat(),
            }
            for link in visible_chain(bill, member)
        ],
    }


def _working(bank: str, result: DiscountResult) -> dict[str, Any]:
    """The discount's arithmetic, money in minor units and the rate as a decimal string."""
    return {
        "bank": bank,
        "on": result.discount_date.isoformat(),
        "annual_rate": str(result.annual_rate),
        "days": result.days,
        "other_city": result.other_city,
        "interest": result.interest.minor,
        "proceeds": result.proceeds.minor,
        "currency": result.proceeds.currency,
    }
