"""Offline trades in the settlement store: the rules of :mod:`settlement_worker.offline.rules`
inside the caller's transaction, every change audited (subject ``offline_trade``).

Confirmation **books the trade in the same transaction** (:func:`booking.book_trade`: the
worker's own ``settle_trade`` step), so a confirmed offline trade always has its
obligation and entries and never has them twice. A copy of the same ``TradeMessage``
published on ``rex.trades`` would be skipped by the worker (its trade id is processed).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import replace
from typing import Any

from rex.config import Product
from rex.protocol import TradeMessage
from rex.vocabulary import Side
from settlement_worker.booking.operations import book_trade
from settlement_worker.codes import RuleViolation, SettlementCode
from settlement_worker.configuration import SettlementConfig
from settlement_worker.member_settings.operations import current_config
from settlement_worker.offline.rules import (
    OfflineState,
    OfflineTrade,
    cancel,
    confirm,
    decline,
    report_offline_trade,
)
from settlement_worker.store import Transaction
from settlement_worker.store.ids import give_back, take_number

__all__ = [
    "confirm_in_store",
    "get_offline",
    "list_offline",
    "report_in_store",
    "withdraw_in_store",
]

_COLUMNS = (
    "offline_id, reporter, counterparty, product, side, price, quantity, ref, reported_at,"
    " state, trade_id, closed_at"
)
_SUBJECT = "offline_trade"
#: The id series of reports: OFF-1, OFF-2, ...
OFFLINE_SERIES = "offline"


def otc_series(product: str) -> str:
    """The id series of a product's confirmed offline trades: OTC-<product>-1, -2, ..."""
    return f"otc:{product}"


def _offline(row: Sequence[Any]) -> OfflineTrade:
    return OfflineTrade(
        offline_id=row[0],
        reporter=row[1],
        counterparty=row[2],
        product=row[3],
        side=Side(row[4]),
        price=int(row[5]),
        quantity=int(row[6]),
        ref=row[7],
        reported_at=int(row[8]),
        state=OfflineState(row[9]),
        trade_id=row[10],
        closed_at=None if row[11] is None else int(row[11]),
    )


def get_offline(tx: Transaction, offline_id: str) -> OfflineTrade:
    rows = tx.execute(f"SELECT {_COLUMNS} FROM offline_trades WHERE offline_id = ?", [offline_id])
    if not rows:
        raise RuleViolation(SettlementCode.UNKNOWN_OFFLINE_TRADE, f"no offline trade {offline_id}")
    return _offline(rows[0])


def list_offline(
    tx: Transaction, member: str | None = None, state: OfflineState | None = None
) -> list[OfflineTrade]:
    where, params = ["1 = 1"], []
    if member is not None:
        where.append("(reporter = ? OR counterparty = ?)")
        params += [member, member]
    if state is not None:
        where.append("state = ?")
        params.append(state.value)
    rows = tx.execute(
        f"SELECT {_COLUMNS} FROM offline_trades WHERE {' AND '.join(where)}"
        " ORDER BY reported_at, offline_id",
        params,
    )
    return [_offline(r) for r in rows]


def report_in_store(
    tx: Transaction,
    reporter: str,
    counterparty: str,
    product: Product,
    side: Side,
    price: int,
    quantity: int,
    ref: str,
    *,
    at: int,
    members: Collection[str],
    actor: str | None = None,
) -> OfflineTrade:
    """Record a PENDING report. The reporter's ``ref`` is its idempotency key: the same
    report again returns the first one; other terms under the same ref are refused.
    ``actor`` (audit): who acted, by default ``member:<reporter>``; an operator acting for
    the member is ``operator:<name>`` (here and in the other steps)."""
    # Checked with a provisional id: the rules come before the reference's idempotency.
    trade = report_offline_trade(
        reporter,
        counterparty,
        product,
        side,
        price,
        quantity,
        ref,
        offline_id="OFF-?",
        at=at,
        members=members,
    )
    earlier = _reported_under(tx, trade)
    if earlier is not None:
        return earlier
    number = take_number(tx, OFFLINE_SERIES)
    # Again under the series' lock: the same report by a concurrent process has committed
    # by now if it took its number first (PostgreSQL, read committed).
    earlier = _reported_under(tx, trade)
    if earlier is not None:
        give_back(tx, OFFLINE_SERIES, number)
        return earlier
    trade = replace(trade, offline_id=f"OFF-{number}")
    tx.execute(
        f"INSERT INTO offline_trades ({_COLUMNS})"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, NULL, NULL)",
        [
            trade.offline_id,
            trade.reporter,
            trade.counterparty,
            trade.product,
            trade.side.value,
            trade.price,
            trade.quantity,
            trade.ref,
            trade.reported_at,
            trade.state.value,
        ],
    )
    tx.audit(
        at,
        actor or f"member:{reporter}",
        _SUBJECT,
        trade.offline_id,
        "reported",
        {
            "counterparty": counterparty,
            "product": product.symbol,
            "side": trade.side.value,
            "price": price,
            "quantity": quantity,
            "ref": ref,
            "reason": "agreed off the book",
        },
    )
    return trade


def _reported_under(tx: Transaction, trade: OfflineTrade) -> OfflineTrade | None:
    """The report already made under ``trade``'s reporter and ref, if its terms are the
    same; a report under that ref with other terms is refused (``duplicate_ref``)."""
    rows = tx.execute(
        f"SELECT {_COLUMNS} FROM offline_trades WHERE reporter = ? AND ref = ?",
        [trade.reporter, trade.ref],
    )
    if not rows:
        return None
    earlier = _offline(rows[0])
    terms = ("counterparty", "product", "side", "price", "quantity")
    if all(getattr(earlier, t) == getattr(trade, t) for t in terms):
        return earlier
    raise RuleViolation(
        SettlementCode.DUPLICATE_REF,
        f"{trade.reporter} already reported {earlier.offline_id} under ref {trade.ref!r}"
        " with other terms",
    )


def _close(tx: Transaction, before: OfflineTrade, after: OfflineTrade) -> None:
    changed = tx.execute(
        "UPDATE offline_trades SET state = ?, trade_id = ?, closed_at = ?"
        " WHERE offline_id = ? AND state = 'pending' RETURNING offline_id",
        [after.state.value, after.trade_id, after.closed_at, before.offline_id],
    )
    if not changed:
        raise RuleViolation(
            SettlementCode.NOT_PENDING, f"offline trade {before.offline_id} changed meanwhile"
        )


def confirm_in_store(
    tx: Transaction,
    offline_id: str,
    by: str,
    price: int,
    quantity: int,
    *,
    products: Mapping[str, Product],
    config: SettlementConfig,
    at: int,
    actor: str | None = None,
) -> tuple[OfflineTrade, TradeMessage]:
    """The counterparty confirms; the trade ``OTC-<product>-<n>`` is booked in this
    transaction and returned."""
    before = get_offline(tx, offline_id)
    product = products.get(before.product)
    if product is None:
        raise RuleViolation(SettlementCode.UNKNOWN_PRODUCT, f"unknown product {before.product}")
    # The product's OTC number is locked until commit: a concurrent confirmation in the same
    # product waits and takes the next one. A refusal rolls the number back with the rest.
    number = take_number(tx, otc_series(before.product))
    after, message = confirm(before, by, price, quantity, product, at=at, sequence=number)
    _close(tx, before, after)
    # Booked with the limits and methods in force now, run-time changes included.
    if not book_trade(tx, message, product, current_config(tx, config), at):
        raise RuleViolation(
            SettlementCode.OFFLINE_RULE_VIOLATION, f"trade id {message.trade_id} is already booked"
        )
    tx.audit(
        at,
        actor or f"member:{by}",
        _SUBJECT,
        offline_id,
        "confirmed",
        {"trade_id": message.trade_id, "reason": "confirmed by the counterparty"},
    )
    return after, message


def withdraw_in_store(
    tx: Transaction,
    offline_id: str,
    by: str,
    reason: str,
    *,
    at: int,
    cancelling: bool,
    actor: str | None = None,
) -> OfflineTrade:
    """The counterparty declines (``cancelling`` false), or the reporter cancels, a pending
    report."""
    before = get_offline(tx, offline_id)
    after = cancel(before, by, at=at) if cancelling else decline(before, by, at=at)
    _close(tx, before, after)
    tx.audit(
        at,
        actor or f"member:{by}",
        _SUBJECT,
        offline_id,
        after.state.value,
        {"reason": reason or "no reason given"},
    )
    return after
