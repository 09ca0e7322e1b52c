"""Payment methods, receipt limits, run-time changes and the 6-month law."""

from __future__ import annotations

import datetime as dt
import pickle

import pytest

from settlement_worker.plans.receipt_limits import (
    LimitsError,
    PaymentKind,
    PaymentMethod,
    ReceiptLimits,
    legal_max_tenor_days,
    parse_payment_method,
    update_limits,
)
from tests.settlement_worker.factories import BANKS

KNOWN = frozenset(BANKS) | {"ningbo-alloy", "xinyu-pvc"}


def test_receipt_limits_default_to_refusing_bills() -> None:
    limits = ReceiptLimits()
    assert limits.accept_bills is False
    assert not limits.accepts(PaymentKind.BANK_ACCEPTANCE, "icbc-baotou")
    assert limits.accepts(PaymentKind.CASH, "")


def test_update_limits_applies_changes_and_keeps_the_rest() -> None:
    current = ReceiptLimits(accept_bills=True, max_tenor_days=120)
    new = update_limits(
        current,
        {"max_bill_face_minor": 50_000_000, "accepted_acceptors": ["icbc-baotou", "ccb-ningbo"]},
        known_acceptors=KNOWN,
    )
    assert new == ReceiptLimits(
        accept_bills=True,
        max_bill_face_minor=50_000_000,
        max_tenor_days=120,
        accepted_acceptors=frozenset({"icbc-baotou", "ccb-ningbo"}),
    )
    assert current.max_bill_face_minor is None  # the old value is untouched


def test_update_limits_can_lift_a_limit() -> None:
    current = ReceiptLimits(
        accept_bills=True, max_bill_face_minor=100, accepted_acceptors=frozenset({"abc-hohhot"})
    )
    for face, acceptors in ((None, None), ("unlimited", "any")):
        new = update_limits(current, {"max_bill_face_minor": face, "accepted_acceptors": acceptors})
        assert (new.max_bill_face_minor, new.accepted_acceptors) == (None, None)


@pytest.mark.parametrize(
    ("changes", "field", "fragment"),
    [
        ({"max_tenor_days": 184}, "max_tenor_days", "from 1 to 183"),  # the 6-month law
        ({"max_tenor_days": 0}, "max_tenor_days", "from 1 to 183"),
        ({"max_tenor_days": True}, "max_tenor_days", "got boolean true"),
        ({"max_bill_share_bps": 10_001}, "max_bill_share_bps", "from 0 to 10000"),
        ({"max_bill_share_bps": -1}, "max_bill_share_bps", "from 0 to 10000"),
        ({"max_bill_face_minor": 0}, "max_bill_face_minor", "positive integer (fen)"),
        ({"max_bill_face_minor": 1.5}, "max_bill_face_minor", "got float 1.5"),
        ({"max_bill_face_minor": "lots"}, "max_bill_face_minor", "or 'unlimited'"),
        ({"accept_bills": "yes"}, "accept_bills", "must be a boolean"),
        ({"accept_commercial": 1}, "accept_commercial", "must be a boolean"),
        ({"accepted_acceptors": "icbc-baotou"}, "accepted_acceptors", "must be a list"),
        ({"accepted_acceptors": ["abc-hohhot", "abc-hohhot"]}, "accepted_acceptors", "twice"),
        ({"accepted_acceptors": ["hsbc-london"]}, "accepted_acceptors", "unknown acceptor"),
        ({"accepted_acceptors": [""]}, "accepted_acceptors", "must be an id"),
        ({"max_bill_face": 1}, "max_bill_face", "did you mean 'max_bill_face_minor'"),
    ],
)
def test_update_limits_refuses_bad_values(
    changes: dict[str, object], field: str, fragment: str
) -> None:
    with pytest.raises(LimitsError) as info:
        update_limits(ReceiptLimits(accept_bills=True), changes, known_acceptors=KNOWN)
    assert info.value.field == field
    assert fragment in info.value.reason


def test_update_limits_is_all_or_nothing() -> None:
    current = ReceiptLimits()
    with pytest.raises(LimitsError):
        update_limits(current, {"accept_bills": True, "max_tenor_days": 400})
    assert current == ReceiptLimits()


def test_limits_error_survives_pickling() -> None:
    error = pickle.loads(pickle.dumps(LimitsError("max_tenor_days", "too long")))
    assert isinstance(error, LimitsError)
    assert (error.field, error.reason) == ("max_tenor_days", "too long")


def test_commercial_bills_need_accept_commercial_or_a_listed_drawer() -> None:
    kind = PaymentKind.COMMERCIAL_ACCEPTANCE
    assert not ReceiptLimits(accept_bills=True).accepts(kind, "ningbo-alloy")
    assert ReceiptLimits(accept_bills=True, accept_commercial=True).accepts(kind, "ningbo-alloy")
    listed = ReceiptLimits(accept_bills=True, accepted_acceptors=frozenset({"ningbo-alloy"}))
    assert listed.accepts(kind, "ningbo-alloy")
    assert not listed.accepts(kind, "baotou-metals")
    # Listing a drawer restricts banks too: only listed ids are accepted.
    assert not listed.accepts(PaymentKind.BANK_ACCEPTANCE, "icbc-baotou")


@pytest.mark.parametrize(
    ("issue", "days"),
    [
        (dt.date(2024, 1, 15), 182),  # to 2024-07-15: 31+29+31+30+31+30
        (dt.date(2024, 8, 31), 181),  # to 2025-02-28 (no Feb 31): 30+31+30+31+31+28
        (dt.date(2024, 7, 31), 184),  # to 2025-01-31: 31+30+31+30+31+31
        (dt.date(2023, 8, 31), 182),  # to 2024-02-29 (leap year): 30+31+30+31+31+29
    ],
)
def test_legal_max_tenor_is_six_calendar_months(issue: dt.date, days: int) -> None:
    assert legal_max_tenor_days(issue) == days


def test_payment_method_constructors() -> None:
    assert PaymentMethod.cash() == PaymentMethod()
    bank = PaymentMethod.bank_acceptance("icbc-baotou", 90)
    assert (bank.kind, bank.acceptor, bank.tenor_days, bank.min_tenor_days) == (
        PaymentKind.BANK_ACCEPTANCE,
        "icbc-baotou",
        90,
        1,  # by default a payer prefers a shorter bill to cash
    )
    commercial = PaymentMethod.commercial_acceptance(60, 30)
    assert (commercial.acceptor, commercial.min_tenor_days) == (None, 30)


@pytest.mark.parametrize(
    ("table", "field"),
    [
        ({"method": "cheque"}, "method"),
        ({}, "method"),
        ({"method": "cash", "tenor_days": 30}, "tenor_days"),
        ({"method": "bank_acceptance", "tenor_days": 90}, "acceptor"),
        ({"method": "bank_acceptance", "acceptor": "hsbc-london", "tenor_days": 90}, "acceptor"),
        ({"method": "bank_acceptance", "acceptor": "icbc-baotou"}, "tenor_days"),
        ({"method": "bank_acceptance", "acceptor": "icbc-baotou", "tenor_days": 200}, "tenor_days"),
        (
            {"method": "commercial_acceptance", "acceptor": "icbc-baotou", "tenor_days": 9},
            "acceptor",
        ),
        (
            {"method": "commercial_acceptance", "tenor_days": 60, "min_tenor_days": 61},
            "min_tenor_days",
        ),
        ({"method": "cash", "bank": "icbc-baotou"}, "bank"),
    ],
)
def test_payment_method_refuses_bad_values(table: dict[str, object], field: str) -> None:
    with pytest.raises(LimitsError) as info:
        parse_payment_method(table, known_banks=BANKS)
    assert info.value.field == field
