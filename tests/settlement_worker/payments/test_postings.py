"""payments/postings.py's pure part: the entry that books a paid payment."""

from __future__ import annotations

import datetime as dt

from rex.money import Money
from settlement_worker.ledger.rules import EXCHANGE, AccountKind
from settlement_worker.payments import rules as pm
from settlement_worker.payments.postings import paid_entry, paid_entry_id
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
