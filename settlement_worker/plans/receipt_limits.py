"""How a member pays (as buyer) and which bills it accepts (as seller).

Two settings per member, both kept in ``config/settlement.toml`` and the second also
changeable at run time by an operator or member request:

* :class:`PaymentMethod`: cash by bank transfer, or an electronic acceptance bill, either
  a bank acceptance (a bank, the ``acceptor``, promises to pay at maturity) or a commercial
  acceptance (the buyer itself, the drawer, promises to pay), with the tenor the buyer
  wants to issue and the shortest tenor it will still issue.
* :class:`ReceiptLimits`: the payee's conditions for taking a bill instead of cash.

Both validate themselves, raising :class:`LimitsError` (a :class:`rex.config.FieldError`)
naming the field, so a value built in code, loaded from TOML or carried by a run-time
request obeys the same rules. :func:`update_limits` and :func:`parse_payment_method` turn
untyped request or TOML values into them.

The 6-month law: a bill's tenor is at most 6 months. Limits in configuration are in days
and capped at :data:`LEGAL_MAX_TENOR_DAYS` (183, half a leap year); the exact limit for a
bill issued on a given day is :func:`legal_max_tenor_days` (181 to 184 days, by calendar
months), which the payment planner applies too.

Pure: no I/O and no clock.
"""

from __future__ import annotations

import calendar
import datetime as dt
import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass, fields, replace
from enum import StrEnum
from typing import Any, Final

from rex.fields import (
    FieldError,
    boolean,
    check_keys,
    describe_value,
    identifier,
    int_in,
)

__all__ = [
    "ANY_ACCEPTOR",
    "LEGAL_MAX_TENOR_DAYS",
    "LEGAL_MAX_TENOR_MONTHS",
    "NO_FACE_LIMIT",
    "LimitsError",
    "PaymentKind",
    "PaymentMethod",
    "ReceiptLimits",
    "add_months",
    "describe_value",
    "legal_latest_due_date",
    "legal_max_tenor_days",
    "parse_payment_method",
    "update_limits",
]

#: A bill's tenor is at most 6 months by law.
LEGAL_MAX_TENOR_MONTHS: Final = 6
#: The static bound on tenors in configuration: 183 days, half of a leap year. The exact
#: bound for a bill issued on a given day is :func:`legal_max_tenor_days`.
LEGAL_MAX_TENOR_DAYS: Final = 183
#: Written for ``max_bill_face_minor`` in TOML (which has no null): no face limit.
NO_FACE_LIMIT: Final = "unlimited"
#: Written for ``accepted_acceptors`` in TOML: any bank.
ANY_ACCEPTOR: Final = "any"
_MAX_BPS: Final = 10_000
_ID_RE: Final = re.compile(r"[A-Za-z0-9_-]{1,32}")


class LimitsError(FieldError):
    """A payment method or receipt-limits change is invalid: ``field`` and ``reason``."""

    def __reduce__(self) -> tuple[Any, tuple[Any, ...]]:
        return LimitsError, (self.field, self.reason)


def add_months(day: dt.date, months: int) -> dt.date:
    """``day`` plus ``months`` calendar months, clamped to the last day of the month."""
    index = day.year * 12 + (day.month - 1) + months
    year, month0 = divmod(index, 12)
    last = calendar.monthrange(year, month0 + 1)[1]
    return dt.date(year, month0 + 1, min(day.day, last))


def legal_latest_due_date(issue_date: dt.date) -> dt.date:
    """The last due date the law allows a bill issued on ``issue_date``: the same day 6
    months later (the month's last day if it has no such day). The one place the 6-month
    law is written; bills and payment plans both ask it."""
    return add_months(issue_date, LEGAL_MAX_TENOR_MONTHS)


def legal_max_tenor_days(issue_date: dt.date) -> int:
    """The longest tenor the law allows a bill issued on ``issue_date``, in days.

    E.g. 2024-01-15 -> 2024-07-15: 182 days; 2024-08-31 -> 2025-02-28: 181 days.
    """
    return (legal_latest_due_date(issue_date) - issue_date).days


# ------------------------------------------------------------------- payment method


class PaymentKind(StrEnum):
    """How an obligation (or one part of it) is paid."""

    CASH = "cash"
    BANK_ACCEPTANCE = "bank_acceptance"
    COMMERCIAL_ACCEPTANCE = "commercial_acceptance"

    @property
    def is_bill(self) -> bool:
        return self is not PaymentKind.CASH


@dataclass(frozen=True, slots=True)
class PaymentMethod:
    """How a member prefers to pay as buyer.

    ``CASH``: a bank transfer of the whole amount; no other field.

    ``BANK_ACCEPTANCE``: bills accepted by the bank ``acceptor`` (a bank id from
    ``[[banks]]``), ``tenor_days`` long.

    ``COMMERCIAL_ACCEPTANCE``: bills accepted by the buyer itself (so no ``acceptor``),
    ``tenor_days`` long.

    ``min_tenor_days`` (bills only, default 1): the shortest tenor the buyer will still
    issue when the payee or the law will not take ``tenor_days``. By default a buyer
    prefers a shorter bill to paying cash now; set it to ``tenor_days`` to pay cash
    instead of shortening.
    """

    kind: PaymentKind = PaymentKind.CASH
    acceptor: str | None = None
    tenor_days: int | None = None
    min_tenor_days: int | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.kind, PaymentKind):
            raise LimitsError("method", f"must be a PaymentKind, got {describe_value(self.kind)}")
        if self.kind is PaymentKind.CASH:
            for name in ("acceptor", "tenor_days", "min_tenor_days"):
                if getattr(self, name) is not None:
                    raise LimitsError(name, "only for bills; a cash payment has none")
            return
        if self.kind is PaymentKind.BANK_ACCEPTANCE:
            if self.acceptor is None:
                raise LimitsError(
                    "acceptor", "a bank acceptance bill needs the accepting bank's id"
                )
            identifier("acceptor", self.acceptor, error=LimitsError)
        elif self.acceptor is not None:
            raise LimitsError(
                "acceptor",
                "a commercial acceptance bill is accepted by the drawer itself; give none",
            )
        if self.tenor_days is None:
            raise LimitsError("tenor_days", "a bill needs a tenor")
        tenor = int_in("tenor_days", self.tenor_days, 1, LEGAL_MAX_TENOR_DAYS, error=LimitsError)
        if self.min_tenor_days is None:
            object.__setattr__(self, "min_tenor_days", 1)
        int_in("min_tenor_days", self.min_tenor_days, 1, tenor, error=LimitsError)

    @classmethod
    def cash(cls) -> PaymentMethod:
        return cls()

    @classmethod
    def bank_acceptance(
        cls, acceptor: str, tenor_days: int, min_tenor_days: int = 1
    ) -> PaymentMethod:
        return cls(PaymentKind.BANK_ACCEPTANCE, acceptor, tenor_days, min_tenor_days)

    @classmethod
    def commercial_acceptance(cls, tenor_days: int, min_tenor_days: int = 1) -> PaymentMethod:
        return cls(PaymentKind.COMMERCIAL_ACCEPTANCE, None, tenor_days, min_tenor_days)


_METHOD_KEYS: Final = ("method", "acceptor", "tenor_days", "min_tenor_days")


def parse_payment_method(
    table: Mapping[str, object], *, known_banks: Collection[str] | None = None
) -> PaymentMethod:
    """A :class:`PaymentMethod` from a TOML table or request: ``method`` (``"cash"``,
    ``"bank_acceptance"`` or ``"commercial_acceptance"``), ``acceptor``, ``tenor_days``,
    ``min_tenor_days``. With ``known_banks``, the acceptor must be one of them."""
    check_keys(table, _METHOD_KEYS, error=LimitsError)
    if "method" not in table:
        raise LimitsError("method", "required field is missing")
    raw_kind = table["method"]
    try:
        kind = PaymentKind(raw_kind) if isinstance(raw_kind, str) else None
    except ValueError:
        kind = None
    if kind is None:
        allowed = ", ".join(repr(k.value) for k in PaymentKind)
        raise LimitsError("method", f"must be one of {allowed}, got {describe_value(raw_kind)}")
    acceptor = table.get("acceptor")
    if acceptor is not None:
        acceptor = identifier("acceptor", acceptor, error=LimitsError)
        if known_banks is not None and acceptor not in known_banks:
            raise LimitsError(
                "acceptor", f"unknown bank {acceptor!r} (known: {', '.join(sorted(known_banks))})"
            )
    # Untyped here; PaymentMethod.__post_init__ checks type and range.
    tenor: Any = table.get("tenor_days")
    min_tenor: Any = table.get("min_tenor_days")
    return PaymentMethod(kind, acceptor, tenor, min_tenor)


# ------------------------------------------------------------------- receipt limits


@dataclass(frozen=True, slots=True)
class ReceiptLimits:
    """What a member accepts as payee instead of cash.

    ``accept_bills`` (default false): whether it takes bills at all. The default is cash:
    a bill is credit (the payee is paid at maturity, or early at a discount), so taking one
    is the member's explicit choice, never something it finds out about from a statement.

    ``max_bill_face_minor`` (default None, no limit): the largest face amount of one bill,
    in fen (bills are CNY-only).

    ``max_tenor_days`` (default and at most 183, the 6-month law): the longest tenor.

    ``accepted_acceptors`` (default None, any bank): the banks whose bank acceptance bills
    it takes; a member id listed here also admits that member's commercial acceptance bills.

    ``accept_commercial`` (default false): take commercial acceptance bills from any
    drawer; otherwise only from drawers listed in ``accepted_acceptors``. A commercial bill
    is only as good as the buyer, hence opt-in.

    ``max_bill_share_bps`` (default 10000, all of it): the largest share of one obligation
    that may be paid by bill, in basis points; the rest is cash.
    """

    accept_bills: bool = False
    max_bill_face_minor: int | None = None
    max_tenor_days: int = LEGAL_MAX_TENOR_DAYS
    accepted_acceptors: frozenset[str] | None = None
    accept_commercial: bool = False
    max_bill_share_bps: int = _MAX_BPS

    def __post_init__(self) -> None:
        boolean("accept_bills", self.accept_bills, error=LimitsError)
        if self.max_bill_face_minor is not None:
            int_in("max_bill_face_minor", self.max_bill_face_minor, 1, None, error=LimitsError)
        int_in("max_tenor_days", self.max_tenor_days, 1, LEGAL_MAX_TENOR_DAYS, error=LimitsError)
        if self.accepted_acceptors is not None:
            if not isinstance(self.accepted_acceptors, frozenset):
                raise LimitsError(
                    "accepted_acceptors",
                    "must be a frozenset of ids or None, got "
                    + describe_value(self.accepted_acceptors),
                )
            for acceptor in sorted(self.accepted_acceptors, key=str):
                identifier("accepted_acceptors", acceptor, error=LimitsError)
        boolean("accept_commercial", self.accept_commercial, error=LimitsError)
        int_in("max_bill_share_bps", self.max_bill_share_bps, 0, _MAX_BPS, error=LimitsError)

    def accepts(self, kind: PaymentKind, acceptor: str) -> bool:
        """Whether a bill of ``kind`` accepted by ``acceptor`` (the drawer, for a commercial
        acceptance) is acceptable; tenor, face and share are checked separately."""
        if not self.accept_bills or kind is PaymentKind.CASH:
            return kind is PaymentKind.CASH
        listed = self.accepted_acceptors is not None and acceptor in self.accepted_acceptors
        if kind is PaymentKind.BANK_ACCEPTANCE:
            return self.accepted_acceptors is None or listed
        return self.accept_commercial or listed


_LIMIT_KEYS: Final = tuple(f.name for f in fields(ReceiptLimits))


def _acceptor_set(value: object, known: Collection[str] | None) -> frozenset[str] | None:
    name = "accepted_acceptors"
    if value is None or value == ANY_ACCEPTOR:
        return None
    if isinstance(value, str | bytes | Mapping) or not isinstance(value, Collection):
        raise LimitsError(
            name,
            f"must be a list of bank or member ids, or {ANY_ACCEPTOR!r}, "
            f"got {describe_value(value)}",
        )
    ids: list[str] = [identifier(name, item, error=LimitsError) for item in value]
    for item in ids:
        if ids.count(item) > 1:
            raise LimitsError(name, f"{item!r} is listed twice")
        if known is not None and item not in known:
            raise LimitsError(
                name, f"unknown acceptor {item!r} (known: {', '.join(sorted(known))})"
            )
    return frozenset(ids)


def update_limits(
    current: ReceiptLimits,
    changes: Mapping[str, object],
    *,
    known_acceptors: Collection[str] | None = None,
) -> ReceiptLimits:
    """``current`` with ``changes`` applied, validated; ``current`` itself is unchanged.

    ``changes`` is what an operator or member request (or a TOML table) carries: field
    names of :class:`ReceiptLimits` to new values. ``max_bill_face_minor`` takes ``None``
    or ``"unlimited"`` for no limit, ``accepted_acceptors`` a list of ids, or ``None`` or
    ``"any"`` for any bank. With ``known_acceptors`` (bank and member ids), every listed
    acceptor must be one of them.

    All or nothing: the first invalid change raises :class:`LimitsError` naming its field
    and nothing is applied.
    """
    check_keys(changes, _LIMIT_KEYS, error=LimitsError)
    values: dict[str, Any] = {}
    for key, value in changes.items():
        if key == "max_bill_face_minor":
            if value is None or value == NO_FACE_LIMIT:
                values[key] = None
            elif isinstance(value, int) and not isinstance(value, bool) and value > 0:
                values[key] = value
            else:
                raise LimitsError(
                    key,
                    f"must be a positive integer (fen) or {NO_FACE_LIMIT!r}, "
                    f"got {describe_value(value)}",
                )
        elif key == "accepted_acceptors":
            values[key] = _acceptor_set(value, known_acceptors)
        else:
            values[key] = value
    # replace() re-runs __post_init__, which checks every value's type and range.
    return replace(current, **values)
