"""Offline (negotiated) trades: two members agree a trade away from the book and report it.

Life cycle::

    PENDING ──confirm (counterparty, same terms)──▶ CONFIRMED  → a TradeMessage OTC-<product>-<n>
       ├────decline (counterparty)──────────────▶ DECLINED
       └────cancel (reporter)───────────────────▶ CANCELLED

The reporter names its own side; the counterparty takes the other. On confirmation the
offline trade becomes an ordinary :class:`rex.protocol.TradeMessage` with trade id
``OTC-<product>-<n>`` (``n`` counts the product's confirmed offline trades from 1), and it
settles through :func:`settlement_worker.obligations.settle.settle_trade` like any matched
trade: same obligation, same fees, same journal entries, same one-booking-per-trade-id rule.
:mod:`settlement_worker.offline.operations` books it in the same transaction as the confirmation.

Rules (each refusal is a :class:`~settlement_worker.codes.RuleViolation` whose ``code``
names the rule):

* ``unknown_member``: reporter and counterparty are members allowed to trade.
* ``self_trade``: the counterparty is another member.
* the product's own rules, from :mod:`rex.rules`, at report **and** at confirmation (the
  band may have moved): ``price_not_on_tick``, ``outside_price_band``,
  ``quantity_not_on_lot``, ``quantity_out_of_range``, ``product_halted``,
  ``product_closed``.
* ``not_counterparty``: only the named counterparty confirms or declines.
* ``not_reporter``: only the reporter cancels.
* ``terms_mismatch``: the counterparty confirms the price and quantity it agreed; they must
  equal the reported ones.
* ``not_pending``: confirm, decline and cancel act on a pending report only.
* ``invalid_ref``: the reporter's reference is 1-64 printable characters.

Pure: no I/O and no clock; ``at`` is ns since the epoch.
"""

from __future__ import annotations

import re
from collections.abc import Collection
from dataclasses import dataclass, replace
from enum import StrEnum
from typing import Final

from rex import rules
from rex.config import Product
from rex.protocol import TradeMessage
from rex.vocabulary import Side
from settlement_worker.codes import RuleViolation, SettlementCode

__all__ = [
    "OTC_PREFIX",
    "OfflineState",
    "OfflineTrade",
    "cancel",
    "confirm",
    "decline",
    "otc_trade_id",
    "report_offline_trade",
]

OTC_PREFIX: Final = "OTC-"
_REF_RE: Final = re.compile(r"[\x21-\x7e]([\x20-\x7e]{0,62}[\x21-\x7e])?")


class OfflineState(StrEnum):
    PENDING = "pending"
    CONFIRMED = "confirmed"
    DECLINED = "declined"
    CANCELLED = "cancelled"


def otc_trade_id(product: str, n: int) -> str:
    return f"{OTC_PREFIX}{product}-{n}"


@dataclass(frozen=True, slots=True)
class OfflineTrade:
    """A reported negotiated trade. ``side`` is the reporter's side; prices and quantities
    are in the product's units, as on the book."""

    offline_id: str
    reporter: str
    counterparty: str
    product: str
    side: Side
    price: int
    quantity: int
    ref: str
    reported_at: int
    state: OfflineState = OfflineState.PENDING
    trade_id: str | None = None
    closed_at: int | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.side, Side):
            raise RuleViolation(
                SettlementCode.OFFLINE_RULE_VIOLATION,
                f"side must be buy or sell, got {self.side!r}",
            )
        if not isinstance(self.state, OfflineState):
            raise RuleViolation(
                SettlementCode.OFFLINE_RULE_VIOLATION,
                f"state must be an OfflineState, got {self.state!r}",
            )
        if (self.state is OfflineState.CONFIRMED) != (self.trade_id is not None):
            raise RuleViolation(
                SettlementCode.OFFLINE_RULE_VIOLATION,
                f"offline trade {self.offline_id}: trade id vs state",
            )
        if (self.state is OfflineState.PENDING) != (self.closed_at is None):
            raise RuleViolation(
                SettlementCode.OFFLINE_RULE_VIOLATION,
                f"offline trade {self.offline_id}: closed_at vs state",
            )

    @property
    def buyer(self) -> str:
        return self.reporter if self.side is Side.BUY else self.counterparty

    @property
    def seller(self) -> str:
        return self.counterparty if self.side is Side.BUY else self.reporter


def _check_terms(product: Product, price: int, quantity: int) -> None:
    for value, name in ((price, "price"), (quantity, "quantity")):
        if not isinstance(value, int) or isinstance(value, bool):
            raise RuleViolation(
                SettlementCode.OFFLINE_RULE_VIOLATION, f"{name} must be an integer, got {value!r}"
            )
    reason = (
        rules.status_problem(product.status)
        or rules.quantity_problem(product, quantity)
        or rules.price_problem(product, price)
    )
    if reason is not None:
        raise RuleViolation(
            reason, f"{product.symbol}: {reason.value} (price {price}, quantity {quantity})"
        )


def report_offline_trade(
    reporter: str,
    counterparty: str,
    product: Product,
    side: Side,
    price: int,
    quantity: int,
    ref: str,
    *,
    offline_id: str,
    at: int,
    members: Collection[str],
) -> OfflineTrade:
    """``reporter`` says it agreed to ``side`` ``quantity`` of ``product`` at ``price`` with
    ``counterparty``; ``members`` are the members allowed to trade."""
    for who in (reporter, counterparty):
        if who not in members:
            raise RuleViolation(SettlementCode.UNKNOWN_MEMBER, f"{who!r} is not a trading member")
    if reporter == counterparty:
        raise RuleViolation(SettlementCode.SELF_TRADE, f"{reporter} cannot trade with itself")
    if not isinstance(ref, str) or _REF_RE.fullmatch(ref) is None:
        raise RuleViolation(SettlementCode.INVALID_REF, f"bad reference {ref!r}")
    _check_terms(product, price, quantity)
    return OfflineTrade(
        offline_id, reporter, counterparty, product.symbol, Side(side), price, quantity, ref, at
    )


def _require_pending(trade: OfflineTrade) -> None:
    if trade.state is not OfflineState.PENDING:
        raise RuleViolation(
            SettlementCode.NOT_PENDING, f"offline trade {trade.offline_id} is {trade.state}"
        )


def confirm(
    trade: OfflineTrade,
    by: str,
    price: int,
    quantity: int,
    product: Product,
    *,
    at: int,
    sequence: int,
) -> tuple[OfflineTrade, TradeMessage]:
    """The counterparty confirms the terms it agreed; returns the confirmed report and the
    :class:`TradeMessage` ``OTC-<product>-<sequence>`` to settle."""
    _require_pending(trade)
    if by != trade.counterparty:
        raise RuleViolation(
            SettlementCode.NOT_COUNTERPARTY,
            f"only {trade.counterparty} confirms offline trade {trade.offline_id}, not {by}",
        )
    if (price, quantity) != (trade.price, trade.quantity):
        raise RuleViolation(
            SettlementCode.TERMS_MISMATCH,
            f"offline trade {trade.offline_id} was reported at {trade.price} x "
            f"{trade.quantity}, confirmed at {price} x {quantity}",
        )
    if product.symbol != trade.product:
        raise RuleViolation(
            SettlementCode.OFFLINE_RULE_VIOLATION,
            f"product {product.symbol} is not {trade.product}",
        )
    _check_terms(product, price, quantity)
    trade_id = otc_trade_id(trade.product, sequence)
    message = TradeMessage(
        trade_id=trade_id,
        product=trade.product,
        price=price,
        quantity=quantity,
        buyer=trade.buyer,
        seller=trade.seller,
        buy_order_id=0,  # no orders: agreed off the book
        sell_order_id=0,
        aggressor=(Side.SELL if trade.side is Side.BUY else Side.BUY).value,  # who accepted
        sequence=sequence,
        timestamp=at,
        currency=product.currency,
    )
    confirmed = replace(trade, state=OfflineState.CONFIRMED, trade_id=trade_id, closed_at=at)
    return confirmed, message


def decline(trade: OfflineTrade, by: str, *, at: int) -> OfflineTrade:
    """The counterparty says it did not agree this trade."""
    _require_pending(trade)
    if by != trade.counterparty:
        raise RuleViolation(
            SettlementCode.NOT_COUNTERPARTY,
            f"only {trade.counterparty} declines offline trade {trade.offline_id}",
        )
    return replace(trade, state=OfflineState.DECLINED, closed_at=at)


def cancel(trade: OfflineTrade, by: str, *, at: int) -> OfflineTrade:
    """The reporter withdraws its report before the counterparty confirms."""
    _require_pending(trade)
    if by != trade.reporter:
        raise RuleViolation(
            SettlementCode.NOT_REPORTER,
            f"only {trade.reporter} cancels offline trade {trade.offline_id}",
        )
    return replace(trade, state=OfflineState.CANCELLED, closed_at=at)
