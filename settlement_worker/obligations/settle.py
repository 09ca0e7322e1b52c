"""What one trade does to the ledger: pure, no I/O, no clock.

A trade creates the obligation (the buyer owes the seller the trade value) and the fees both
sides owe the exchange. Entry ids derive from the trade id, so settling a trade again gives
the same entries, and the ledger and the store refuse to book them twice.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from rex.config import Product
from rex.exchange_time import EXCHANGE_TIME
from rex.protocol import TradeMessage
from settlement_worker.ledger.rules import EXCHANGE, AccountId, AccountKind, JournalEntry, Posting
from settlement_worker.obligations.fees import FeeSchedule, fees_for
from settlement_worker.obligations.rules import Obligation, obligation_from_trade


@dataclass(frozen=True, slots=True)
class TradeSettlement:
    obligation: Obligation
    entries: tuple[JournalEntry, ...]


def trade_date(timestamp_ns: int) -> dt.date:
    return dt.datetime.fromtimestamp(timestamp_ns / 1e9, EXCHANGE_TIME).date()


def settle_trade(trade: TradeMessage, product: Product, fees: FeeSchedule) -> TradeSettlement:
    when = dt.datetime.fromtimestamp(trade.timestamp // 1_000_000_000, dt.UTC)
    day = trade_date(trade.timestamp)
    obligation = obligation_from_trade(trade, product, day)
    ccy = obligation.amount.currency
    value = obligation.amount.minor
    entries = [
        JournalEntry(
            entry_id=f"trade-{trade.trade_id}",
            postings=(
                Posting(AccountId(obligation.payee, AccountKind.RECEIVABLES, ccy), value),
                Posting(AccountId(obligation.payer, AccountKind.PAYABLES, ccy), -value),
            ),
            reason="trade",
            reference=trade.trade_id,
            effective=day,
            created_at=when,
        )
    ]
    owed = fees_for(obligation, fees)
    fee_postings = [
        Posting(AccountId(member, AccountKind.FEES, ccy), amount)
        for member, amount in (
            (obligation.payer, owed.buyer_minor),
            (obligation.payee, owed.seller_minor),
        )
        if amount
    ]
    if fee_postings:
        total = owed.buyer_minor + owed.seller_minor
        fee_postings.append(Posting(AccountId(EXCHANGE, AccountKind.FEE_INCOME, ccy), -total))
        entries.append(
            JournalEntry(
                entry_id=f"fees-{trade.trade_id}",
                postings=tuple(fee_postings),
                reason="fee",
                reference=trade.trade_id,
                effective=day,
                created_at=when,
            )
        )
    return TradeSettlement(obligation, tuple(entries))
