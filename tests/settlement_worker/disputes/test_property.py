"""Property: whatever trades settle (matched through the real worker, or offline), and
whatever disputes are opened, upheld, rejected or left open, the ledger sums to zero per
currency, `reconcile` finds nothing, and the balances are exactly those of the trades that
were not reversed (computed independently with the pure settle_trade)."""

from __future__ import annotations

import tempfile
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rex.protocol import TradeMessage
from rex.vocabulary import Side
from settlement_worker.codes import RuleViolation
from settlement_worker.disputes.operations import open_in_store, resolve_in_store
from settlement_worker.disputes.rules import Actor, SubjectType
from settlement_worker.obligations.settle import settle_trade
from settlement_worker.offline.operations import confirm_in_store, report_in_store
from settlement_worker.reports.reconcile import reconcile
from settlement_worker.store import Store
from tests.settlement_worker.helpers import (
    CONFIG,
    ENABLED,
    FEES,
    PRODUCTS,
    T0,
    opened_store,
    run_worker,
)

# The test runs a @given function of its own, which tests/conftest.py cannot see.
pytestmark = pytest.mark.property

SYMBOLS = ["PRND-OX", "TB-OX", "LA-OX", "PRND-OX-USD"]
MEMBERS = sorted(ENABLED)[:4]
VERDICTS = ["uphold", "reject", "leave_open"]


@dataclass(frozen=True)
class Deal:
    symbol: str
    price: int
    quantity: int
    buyer: str
    seller: str
    offline: bool


@st.composite
def deals(draw: st.DrawFn) -> Deal:
    product = PRODUCTS[draw(st.sampled_from(SYMBOLS))]
    ticks = (product.band_high - product.band_low) // product.tick
    price = product.band_low + product.tick * draw(st.integers(0, ticks))
    quantity = product.lot * draw(st.integers(1, 50))
    buyer, seller = draw(st.lists(st.sampled_from(MEMBERS), min_size=2, max_size=2, unique=True))
    return Deal(product.symbol, price, quantity, buyer, seller, draw(st.booleans()))


scenario = st.tuples(
    st.lists(deals(), min_size=1, max_size=8),
    # (which trade, who opens: 0 buyer / 1 seller, verdict), in order; may repeat a trade
    st.lists(
        st.tuples(st.integers(0, 7), st.integers(0, 1), st.sampled_from(VERDICTS)), max_size=10
    ),
)


_CLAIMS = frozenset({"receivables", "payables", "bills_receivable", "bills_payable"})


def claims(kind: str) -> str:
    """The four kinds a trade's claim moves between (bills only change its form) as one."""
    return "claims" if kind in _CLAIMS else kind


def play(store: Store, deal_list: list[Deal], disputes: list[tuple[int, int, str]]) -> None:
    matched = [
        TradeMessage(
            f"{d.symbol}-{i}",
            d.symbol,
            d.price,
            d.quantity,
            d.buyer,
            d.seller,
            i,
            i + 1,
            "buy",
            i,
            T0 + i,
            PRODUCTS[d.symbol].currency,
        )
        for i, d in enumerate(deal_list)
        if not d.offline
    ]
    run_worker(store, matched)
    messages = {m.trade_id: m for m in matched}
    for i, d in enumerate(deal_list):
        if d.offline:
            with store.transaction() as tx:
                reported = report_in_store(
                    tx,
                    d.buyer,
                    d.seller,
                    PRODUCTS[d.symbol],
                    Side.BUY,
                    d.price,
                    d.quantity,
                    f"ref-{i}",
                    at=T0 + i,
                    members=ENABLED,
                )
                _, message = confirm_in_store(
                    tx,
                    reported.offline_id,
                    d.seller,
                    d.price,
                    d.quantity,
                    products=PRODUCTS,
                    config=CONFIG,
                    at=T0 + i,
                )
            messages[message.trade_id] = message
    trade_ids = list(messages)
    upheld: set[str] = set()
    opened: set[str] = set()
    for step, (index, side, verdict) in enumerate(disputes):
        trade_id = trade_ids[index % len(trade_ids)]
        m = messages[trade_id]
        at = T0 + 1_000 + step
        try:
            with store.transaction() as tx:
                dispute = open_in_store(
                    tx,
                    SubjectType.TRADE,
                    trade_id,
                    Actor.member((m.buyer, m.seller)[side]),
                    "grade",
                    at,
                )
                if verdict != "leave_open":
                    resolve_in_store(
                        tx,
                        dispute.dispute_id,
                        Actor.operator("li"),
                        verdict == "uphold",
                        "decided",
                        at,
                    )
        except RuleViolation as error:
            # only refused when already open or already reversed
            assert error.code == ("already_upheld" if trade_id in upheld else "already_disputed")
            assert trade_id in upheld or trade_id in opened
            continue
        if verdict == "uphold":
            upheld.add(trade_id)
        elif verdict == "leave_open":
            opened.add(trade_id)

    # The ledger is balanced and reconciles.
    assert all(total == 0 for total in store.totals_by_currency().values())
    # No publisher drains this outbox: its rows wait by design, unaged.
    report = reconcile(store, max_unpublished_age_s=None)
    assert report.clean, [str(d) for d in report.differences]
    # Balances are exactly those of the trades not reversed. Bills issued or endorsed at
    # booking only turn a member's payables / receivables into bills payable / receivable,
    # so each member's net claims (the four kinds together) are the trades'.
    expected: Counter[tuple[str, str, str]] = Counter()
    for trade_id, message in messages.items():
        if trade_id in upheld:
            continue
        for entry in settle_trade(message, PRODUCTS[message.product], FEES).entries:
            for p in entry.postings:
                key = (p.account.owner, claims(p.account.kind.value), p.account.currency)
                expected[key] += p.amount
    actual: Counter[tuple[str, str, str]] = Counter()
    for (owner, kind, currency), amount in store.balances().items():
        actual[(owner, claims(kind), currency)] += amount
    assert {k: v for k, v in actual.items() if v} == {k: v for k, v in expected.items() if v}
    # Exactly the trades with an open dispute are frozen; upheld obligations are cancelled.
    with store.transaction() as tx:
        assert tx.frozen_among("trade", trade_ids) == opened
    cancelled = {
        r[0] for r in store.query("SELECT trade_id FROM obligations WHERE state = 'cancelled'")
    }
    assert cancelled == upheld


@pytest.mark.parametrize(
    ("backend", "examples"),
    [("sqlite", 100), pytest.param("postgres", 25, marks=pytest.mark.database)],
)
def test_disputes_and_reversals_keep_the_ledger_balanced_and_reconciled(
    backend: str, examples: int
) -> None:
    @settings(
        max_examples=examples,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow],
    )
    @given(scenario)
    def check(case: tuple[list[Deal], list[tuple[int, int, str]]]) -> None:
        with tempfile.TemporaryDirectory() as tmp, opened_store(backend, Path(tmp)) as o:
            play(o.store, *case)

    check()
