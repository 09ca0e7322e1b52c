"""What one trade does to the ledger (settlement_worker/obligations/settle.py): the trade
date in exchange time, the obligation entry, the fee entry; amounts worked out by hand.

1 000 kg of PRND-OX at 415 000 CNY/t is 415 000.00 CNY = 41 500 000 fen; 2 bps of it is
8 300 fen."""

from __future__ import annotations

import datetime as dt

from rex.money import Money
from rex.protocol import TradeMessage
from settlement_worker.ledger.rules import EXCHANGE, AccountId, AccountKind, JournalEntry, Posting
from settlement_worker.obligations.fees import FeeRule, FeeSchedule
from settlement_worker.obligations.settle import settle_trade, trade_date
from tests.settlement_worker.factories import product

BUYER = "ganzhou-magnet"
SELLER = "baotou-metals"
PRND = product()
VALUE = 41_500_000
#: 2026-11-18 16:30:00 UTC: 00:30 on 19 November in Beijing.
AFTER_MIDNIGHT_IN_BEIJING = dt.datetime(2026, 11, 18, 16, 30, tzinfo=dt.UTC)


def ns(when: dt.datetime) -> int:
    return int(when.timestamp()) * 1_000_000_000


def trade(timestamp: int = ns(AFTER_MIDNIGHT_IN_BEIJING) + 123) -> TradeMessage:
    return TradeMessage(
        trade_id="PRND-OX-7",
        product="PRND-OX",
        price=415_000,
        quantity=1_000,
        buyer=BUYER,
        seller=SELLER,
        buy_order_id=7,
        sell_order_id=8,
        aggressor="buy",
        sequence=7,
        timestamp=timestamp,
        currency="CNY",
    )


def account(owner: str, kind: AccountKind) -> AccountId:
    return AccountId(owner, kind, "CNY")


def test_the_trade_date_is_the_day_in_exchange_time() -> None:
    assert trade_date(ns(AFTER_MIDNIGHT_IN_BEIJING)) == dt.date(2026, 11, 19)
    before = AFTER_MIDNIGHT_IN_BEIJING - dt.timedelta(minutes=31)  # 23:59 in Beijing
    assert trade_date(ns(before)) == dt.date(2026, 11, 18)


def test_a_trade_books_what_the_buyer_owes_the_seller() -> None:
    settled = settle_trade(trade(), PRND, FeeSchedule(FeeRule("*", 0, 0)))
    assert (settled.obligation.payer, settled.obligation.payee) == (BUYER, SELLER)
    assert settled.obligation.amount == Money(VALUE, "CNY")
    assert settled.entries == (
        JournalEntry(
            entry_id="trade-PRND-OX-7",
            postings=(
                Posting(account(SELLER, AccountKind.RECEIVABLES), VALUE),
                Posting(account(BUYER, AccountKind.PAYABLES), -VALUE),
            ),
            reason="trade",
            reference="PRND-OX-7",
            effective=dt.date(2026, 11, 19),
            created_at=AFTER_MIDNIGHT_IN_BEIJING,
        ),
    )


def test_both_sides_fees_are_booked_against_the_exchanges_fee_income() -> None:
    _, fees = settle_trade(trade(), PRND, FeeSchedule(FeeRule("*", 2, 2))).entries
    assert (fees.entry_id, fees.reason, fees.reference) == ("fees-PRND-OX-7", "fee", "PRND-OX-7")
    assert fees.postings == (
        Posting(account(BUYER, AccountKind.FEES), 8_300),
        Posting(account(SELLER, AccountKind.FEES), 8_300),
        Posting(account(EXCHANGE, AccountKind.FEE_INCOME), -16_600),
    )
    assert fees.effective == dt.date(2026, 11, 19)


def test_a_side_that_owes_no_fee_gets_no_posting() -> None:
    _, fees = settle_trade(trade(), PRND, FeeSchedule(FeeRule("*", 2, 0))).entries
    assert fees.postings == (
        Posting(account(BUYER, AccountKind.FEES), 8_300),
        Posting(account(EXCHANGE, AccountKind.FEE_INCOME), -8_300),
    )


def test_a_trade_with_no_fees_has_no_fee_entry() -> None:
    entries = settle_trade(trade(), PRND, FeeSchedule(FeeRule("*", 0, 0))).entries
    assert [e.entry_id for e in entries] == ["trade-PRND-OX-7"]


def test_settling_a_trade_again_gives_the_same_entries() -> None:
    schedule = FeeSchedule(FeeRule("*", 2, 2))
    assert settle_trade(trade(), PRND, schedule) == settle_trade(trade(), PRND, schedule)
