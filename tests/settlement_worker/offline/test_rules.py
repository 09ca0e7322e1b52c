"""The offline-trade rules (settlement_worker.offline.rules), one test per rule, named after it."""

from __future__ import annotations

import dataclasses

import pytest

from rex.config import ProcessConfig, TradingStatus
from rex.protocol import TradeMessage
from rex.vocabulary import Side
from settlement_worker.codes import RuleViolation
from settlement_worker.obligations.fees import FeeRule, FeeSchedule
from settlement_worker.obligations.settle import settle_trade
from settlement_worker.offline.rules import (
    OfflineState,
    OfflineTrade,
    cancel,
    confirm,
    decline,
    report_offline_trade,
)

PRODUCT = ProcessConfig.from_env({}).products()[
    "PRND-OX"
]  # tick 50, lot 100, band 373,500..456,500
BUYER, SELLER, OTHER = "ganzhou-magnet", "baotou-metals", "ningbo-alloy"
MEMBERS = frozenset({BUYER, SELLER, OTHER})
AT = 1_795_000_000_000_000_000


def reported(
    reporter: str = BUYER,
    counterparty: str = SELLER,
    side: Side = Side.BUY,
    price: int = 415_000,
    quantity: int = 1_000,
    ref: str = "deal-7",
) -> OfflineTrade:
    return report_offline_trade(
        reporter,
        counterparty,
        PRODUCT,
        side,
        price,
        quantity,
        ref,
        offline_id="OFF-1",
        at=AT,
        members=MEMBERS,
    )


def refused(call: object, *args: object, **kwargs: object) -> str:
    assert callable(call)
    with pytest.raises(RuleViolation) as error:
        call(*args, **kwargs)
    return error.value.code


def test_a_report_is_pending_until_confirmed() -> None:
    trade = reported()
    assert (trade.state, trade.trade_id, trade.buyer, trade.seller) == (
        OfflineState.PENDING,
        None,
        BUYER,
        SELLER,
    )


@pytest.mark.parametrize(("reporter", "counterparty"), [("nobody", SELLER), (BUYER, "nobody")])
def test_both_parties_must_be_trading_members(reporter: str, counterparty: str) -> None:
    assert refused(reported, reporter, counterparty) == "unknown_member"


def test_no_self_trade() -> None:
    assert refused(reported, BUYER, BUYER) == "self_trade"


@pytest.mark.parametrize("ref", ["", " padded", "x" * 65, "tab\there"])
def test_the_reference_is_printable_text(ref: str) -> None:
    assert refused(reported, ref=ref) == "invalid_ref"


@pytest.mark.parametrize(
    ("price", "quantity", "rule"),
    [
        (415_010, 1_000, "price_not_on_tick"),
        (373_450, 1_000, "outside_price_band"),
        (456_550, 1_000, "outside_price_band"),
        (415_000, 150, "quantity_not_on_lot"),
        (415_000, 0, "quantity_out_of_range"),
        (415_000, PRODUCT.max_quantity + PRODUCT.lot, "quantity_out_of_range"),
    ],
)
def test_tick_lot_and_band_rules_apply(price: int, quantity: int, rule: str) -> None:
    assert refused(reported, price=price, quantity=quantity) == rule


def test_band_edges_are_allowed() -> None:
    assert reported(price=PRODUCT.band_low).price == PRODUCT.band_low
    assert reported(price=PRODUCT.band_high).price == PRODUCT.band_high


@pytest.mark.parametrize(
    ("status", "rule"),
    [(TradingStatus.HALTED, "product_halted"), (TradingStatus.CLOSED, "product_closed")],
)
def test_no_offline_trade_in_a_halted_or_closed_product(status: TradingStatus, rule: str) -> None:
    halted = dataclasses.replace(PRODUCT, status=status)
    code = refused(
        report_offline_trade,
        BUYER,
        SELLER,
        halted,
        Side.BUY,
        415_000,
        1_000,
        "r",
        offline_id="OFF-1",
        at=AT,
        members=MEMBERS,
    )
    assert code == rule


def test_only_the_counterparty_confirms() -> None:
    for who in (BUYER, OTHER):
        code = refused(confirm, reported(), who, 415_000, 1_000, PRODUCT, at=AT, sequence=1)
        assert code == "not_counterparty"


@pytest.mark.parametrize(("price", "quantity"), [(415_050, 1_000), (415_000, 900)])
def test_confirmed_terms_must_match_the_report(price: int, quantity: int) -> None:
    code = refused(confirm, reported(), SELLER, price, quantity, PRODUCT, at=AT, sequence=1)
    assert code == "terms_mismatch"


def test_the_band_is_checked_again_at_confirmation() -> None:
    moved = dataclasses.replace(PRODUCT, reference_price=500_000)  # band 450,000..550,000
    code = refused(confirm, reported(), SELLER, 415_000, 1_000, moved, at=AT, sequence=1)
    assert code == "outside_price_band"


def test_only_a_pending_report_is_confirmed_declined_or_cancelled() -> None:
    done, _ = confirm(reported(), SELLER, 415_000, 1_000, PRODUCT, at=AT + 1, sequence=1)
    declined = decline(reported(), SELLER, at=AT + 1)
    cancelled = cancel(reported(), BUYER, at=AT + 1)
    for closed in (done, declined, cancelled):
        assert refused(confirm, closed, SELLER, 415_000, 1_000, PRODUCT, at=AT, sequence=2) == (
            "not_pending"
        )
        assert refused(decline, closed, SELLER, at=AT + 2) == "not_pending"
        assert refused(cancel, closed, BUYER, at=AT + 2) == "not_pending"


def test_only_the_counterparty_declines() -> None:
    assert refused(decline, reported(), BUYER, at=AT + 1) == "not_counterparty"
    assert decline(reported(), SELLER, at=AT + 1).state is OfflineState.DECLINED


def test_only_the_reporter_cancels() -> None:
    assert refused(cancel, reported(), SELLER, at=AT + 1) == "not_reporter"
    assert cancel(reported(), BUYER, at=AT + 1).state is OfflineState.CANCELLED


@pytest.mark.parametrize(
    ("side", "buyer", "seller"), [(Side.BUY, BUYER, SELLER), (Side.SELL, SELLER, BUYER)]
)
def test_confirmation_gives_an_otc_trade_message(side: Side, buyer: str, seller: str) -> None:
    done, message = confirm(
        reported(side=side), SELLER, 415_000, 1_000, PRODUCT, at=AT + 9, sequence=3
    )
    assert (done.state, done.trade_id, done.closed_at) == (
        OfflineState.CONFIRMED,
        "OTC-PRND-OX-3",
        AT + 9,
    )
    assert message == TradeMessage(
        trade_id="OTC-PRND-OX-3",
        product="PRND-OX",
        price=415_000,
        quantity=1_000,
        buyer=buyer,
        seller=seller,
        buy_order_id=0,
        sell_order_id=0,
        aggressor=Side.SELL.value if side is Side.BUY else Side.BUY.value,
        sequence=3,
        timestamp=AT + 9,
        currency="CNY",
    )


def test_an_offline_trade_settles_like_a_matched_trade() -> None:
    fees = FeeSchedule(FeeRule("*", 2, 2))
    _, message = confirm(reported(), SELLER, 415_000, 1_000, PRODUCT, at=AT, sequence=1)
    matched = dataclasses.replace(message, trade_id="PRND-OX-1", buy_order_id=1, sell_order_id=2)
    otc, book = settle_trade(message, PRODUCT, fees), settle_trade(matched, PRODUCT, fees)
    assert otc.obligation.amount.minor == book.obligation.amount.minor == 41_500_000
    assert [e.postings for e in otc.entries] == [e.postings for e in book.entries]
    assert [e.entry_id for e in otc.entries] == ["trade-OTC-PRND-OX-1", "fees-OTC-PRND-OX-1"]
