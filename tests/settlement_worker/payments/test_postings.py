"""payments/postings.py: what a payment's move books and announces, computed."""

from __future__ import annotations

import dataclasses
import datetime as dt

from rex.money import Money
from settlement_worker.ledger.rules import EXCHANGE, AccountKind
from settlement_worker.payments import rules as pm
from settlement_worker.payments.postings import (
    PaymentEffects,
    paid_entry,
    paid_entry_id,
    payment_effects,
)
from settlement_worker.store import PostingRow

#: 2026-11-18 16:30 UTC is 00:30 on 2026-11-19 in Beijing: the entry's date is the 19th.
AFTER_MIDNIGHT_IN_BEIJING = int(dt.datetime(2026, 11, 18, 16, 30, tzinfo=dt.UTC).timestamp()) * (
    10**9
)


def payment() -> pm.Payment:
    return pm.new_payment(
        pm.payment_id_for("obl-PRND-OX-7", 0),
        "obl-PRND-OX-7",
        "ganzhou-magnet",
        "baotou-metals",
        Money(41_500_000, "CNY"),
        "icbc-baotou",
        AFTER_MIDNIGHT_IN_BEIJING,
        ("boc-ganzhou",),
    )


def test_a_paid_payment_debits_the_payers_payables_and_credits_the_payees_receivables() -> None:
    p = payment()
    entry = paid_entry(p, AFTER_MIDNIGHT_IN_BEIJING)
    assert entry.entry_id == paid_entry_id(p.payment_id) == f"paid-{p.payment_id}"
    assert (entry.kind, entry.reference) == ("payment", p.payment_id)
    assert entry.postings == (
        PostingRow("ganzhou-magnet", AccountKind.PAYABLES.value, "CNY", 41_500_000),
        PostingRow("baotou-metals", AccountKind.RECEIVABLES.value, "CNY", -41_500_000),
    )
    assert sum(posting.amount for posting in entry.postings) == 0


def test_the_entry_is_dated_by_the_day_in_exchange_time() -> None:
    entry = paid_entry(payment(), AFTER_MIDNIGHT_IN_BEIJING)
    assert entry.effective_date == "2026-11-19"
    assert entry.created_at == AFTER_MIDNIGHT_IN_BEIJING


def test_a_recourse_payment_to_a_bank_leaves_through_the_exchanges_bank_settlement() -> None:
    entry = paid_entry(payment(), AFTER_MIDNIGHT_IN_BEIJING, to_bank=True)
    assert entry.postings == (
        PostingRow("ganzhou-magnet", AccountKind.PAYABLES.value, "CNY", 41_500_000),
        PostingRow(EXCHANGE, AccountKind.BANK_SETTLEMENT.value, "CNY", -41_500_000),
    )


def moved(p: pm.Payment, state: pm.PaymentState, **changes: object) -> pm.Payment:
    return dataclasses.replace(p, state=state, updated_at=p.updated_at + 1, **changes)  # type: ignore[arg-type]


def test_a_move_that_changes_nothing_books_and_announces_nothing() -> None:
    p = payment()
    assert payment_effects(p, p) == PaymentEffects()


def test_a_confirmed_payment_is_booked_and_both_parties_told() -> None:
    sent = moved(payment(), pm.PaymentState.SENT, send_no=1)
    confirmed = moved(sent, pm.PaymentState.CONFIRMED)
    effects = payment_effects(sent, confirmed)
    assert effects.paid is True
    assert effects.entries == (paid_entry(confirmed, confirmed.updated_at),)
    assert [(e.member, e.event) for e in effects.events] == [
        ("ganzhou-magnet", "payment_confirmed"),
        ("baotou-metals", "payment_confirmed"),
    ]
    to_bank = payment_effects(sent, confirmed, to_bank=True)
    assert to_bank.entries == (paid_entry(confirmed, confirmed.updated_at, to_bank=True),)


def test_a_send_tells_the_payer_and_books_nothing() -> None:
    p = payment()
    sent = moved(p, pm.PaymentState.SENT, send_no=1)
    effects = payment_effects(p, sent)
    assert effects.entries == () and effects.paid is False
    [event] = effects.events
    assert (event.member, event.event, event.event_id) == (
        "ganzhou-magnet", "payment_sent", f"{p.payment_id}/sent-1/ganzhou-magnet",
    )  # fmt: skip


def test_a_failure_after_a_send_tells_the_payer_why() -> None:
    sent = moved(payment(), pm.PaymentState.SENT, send_no=2)
    failed = moved(sent, pm.PaymentState.MANUAL_REVIEW, last_error="rejected: account closed")
    [event] = payment_effects(sent, failed).events
    assert event.event == "payment_failed"
    assert event.detail["reason"] == "rejected: account closed" and event.detail["attempt"] == 2
