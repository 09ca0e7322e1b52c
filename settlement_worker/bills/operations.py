"""Operations on bills after booking: a member endorses or discounts a bill it holds; an
operator pays bills at maturity or records a dishonour, with recourse.

Each operation is a method of :class:`BillDesk` called as ``(tx, who, params, now)``: the
caller's store transaction, the member (or operator) acting, the request's parameters and
the time in ns. It loads the bill, applies the pure rule of :mod:`settlement_worker.bills.rules`,
saves the bill (optimistic lock) and writes the entry, audit rows and events
(:class:`~settlement_worker.bills.records.BillRecords`), all in ``tx``; it returns what it
did, or raises a :class:`~settlement_worker.codes.RuleViolation` whose ``code`` names
the rule, and writes nothing (the caller rolls back). A member-request dispatcher and the
``cli_bills`` command call the same methods.

Besides the bill rules:

* ``unknown_bill``; ``bill_frozen``: a bill with an open dispute is not moved (nor paid at
  maturity: the maturity run skips it and says so).
* ``unknown_member``: bills are endorsed to members only (a bank gets a bill by discount).
* ``receipt_limits``: the endorsee's receipt limits in force must take the bill (bills at
  all, this acceptor, this face, the tenor left), as for a bill paid to it at booking.
* ``unknown_bank``: a discounting bank is one of ``[[banks]]`` (its city counts).
* ``not_recourse_party``: a dishonoured holder claims only from a party before it on the
  chain (``bills.recourse_parties``).

**Recourse.** A dishonour converts the bill into ordinary debts paid in cash by the
payments machinery: by default the holder claims from the **drawer**, who owes it in the
end anyway, so one payment settles it; an operator may name another earlier party instead
(e.g. the member who endorsed it to the holder), who then pays the holder and has its own
claim on the drawer (a second payment). Payment ids are ``pay-rec-<bill id>-<n>-0`` on the
debtor's configured bank; the payer sends them like any other payment. A bank holder (it
discounted the bill) is paid through BANK_SETTLEMENT.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal

from settlement_worker.bills.booking import can_endorse_to
from settlement_worker.bills.discount import DiscountResult, HolidayCalendar
from settlement_worker.bills.postings import held_by_bank
from settlement_worker.bills.records import BillRecords
from settlement_worker.bills.rules import (
    Bill,
    Endorsement,
    discount,
    dishonour,
    endorse,
    pay_at_maturity,
    visible_chain,
)
from settlement_worker.bills.sql import (
    Recourse,
    StoredBill,
    due_bills,
    insert_recourse,
    load_bill,
    member_bills,
    save_bill,
)
from settlement_worker.codes import RuleViolation, SettlementCode
from settlement_worker.configuration import SettlementConfig
from settlement_worker.member_settings.operations import current_config
from settlement_worker.payments.rules import Payment, new_payment, payment_id_for
from settlement_worker.payments.sql import insert_payments
from settlement_worker.store import Transaction

__all__ = [
    "BillDesk",
    "BillDone",
    "DiscountDone",
    "DiscountParams",
    "DishonourDone",
    "DishonourParams",
    "EndorseParams",
    "MatureParams",
    "MaturityRun",
    "recourse_id_for",
]


def recourse_id_for(bill_id: str, number: int) -> str:
    """The id of the ``number``-th claim (from 1) a dishonour of ``bill_id`` created; it is
    the obligation id of the claim's payment."""
    return f"rec-{bill_id}-{number}"


# ---------------------------------------------------------------------- parameters


@dataclass(frozen=True, slots=True)
class EndorseParams:
    bill_id: str
    to: str  # the endorsee, a member
    on: dt.date
    reason: str | None = None  # why, for the audit row (a member's request gives one)


@dataclass(frozen=True, slots=True)
class DiscountParams:
    bill_id: str
    bank: str  # a bank of [[banks]]
    annual_rate: Decimal  # a fraction: Decimal("0.0135") is 1.35 %
    on: dt.date
    reason: str | None = None  # why, for the audit row


@dataclass(frozen=True, slots=True)
class MatureParams:
    on: dt.date  # pay every outstanding bill due on or before this date


@dataclass(frozen=True, slots=True)
class DishonourParams:
    bill_id: str
    on: dt.date
    recourse_to: str | None = None  # default: the drawer
    reason: str = "not paid at maturity"


# ------------------------------------------------------------------------- results


@dataclass(frozen=True, slots=True)
class BillDone:
    bill: Bill  # after the operation


@dataclass(frozen=True, slots=True)
class DiscountDone:
    bill: Bill
    result: DiscountResult  # days, interest, proceeds


@dataclass(frozen=True, slots=True)
class MaturityRun:
    paid: tuple[Bill, ...]
    frozen: tuple[str, ...]  # due, but left alone while a dispute is open


@dataclass(frozen=True, slots=True)
class DishonourDone:
    bill: Bill
    claims: tuple[Recourse, ...]
    payments: tuple[Payment, ...]


# ---------------------------------------------------------------------------- desk


class BillDesk:
    """Bill operations against the settlement configuration (banks, members' banks and
    receipt limits) and the business-day calendar (discount days)."""

    def __init__(self, config: SettlementConfig, calendar: HolidayCalendar) -> None:
        self.config = config
        self.calendar = calendar

    # --- reading

    def bills_of(self, tx: Transaction, member: str) -> list[Bill]:
        """Every bill ``member`` is a party to, earliest due first."""
        return [s.bill for s in member_bills(tx, member)]

    def chain(self, tx: Transaction, member: str, bill_id: str) -> tuple[Endorsement, ...]:
        """The bill's endorsement chain, for a party to it only (``not_a_party``)."""
        return visible_chain(self._load(tx, bill_id).bill, member)

    # --- a member's requests

    def endorse(
        self,
        tx: Transaction,
        member: str,
        params: EndorseParams,
        now: int,
        *,
        actor: str | None = None,
    ) -> BillDone:
        """``member``, the holder, endorses the whole bill to the member ``params.to``.
        ``actor`` (audit): who acted, by default ``member:<member>``; an operator acting
        for the member is ``operator:<name>``."""
        stored = self._unfrozen(tx, params.bill_id)
        after = endorse(stored.bill, member, params.to, params.on)
        config = current_config(tx, self.config)
        if params.to not in config.limits or params.to in config.banks:
            raise RuleViolation(SettlementCode.UNKNOWN_MEMBER, f"{params.to!r} is not a member")
        if not can_endorse_to(stored.bill, params.to, config.limits[params.to], params.on):
            raise RuleViolation(
                SettlementCode.RECEIPT_LIMITS,
                f"{params.to}'s receipt limits do not take bill {params.bill_id}",
            )
        save_bill(tx, stored, after, now)
        records = BillRecords(now, actor or f"member:{member}")
        records.endorsed(after, after.endorsements[-1], None, params.reason)
        records.write(tx)
        return BillDone(after)

    def discount(
        self,
        tx: Transaction,
        member: str,
        params: DiscountParams,
        now: int,
        *,
        actor: str | None = None,
    ) -> DiscountDone:
        """``member``, the holder, sells the bill to ``params.bank`` (``actor`` as for
        :meth:`endorse`)."""
        stored = self._unfrozen(tx, params.bill_id)
        bank = self.config.banks.get(params.bank)
        if bank is None:
            known = ", ".join(sorted(self.config.banks))
            raise RuleViolation(
                SettlementCode.UNKNOWN_BANK, f"unknown bank {params.bank!r} (known: {known})"
            )
        after, result = discount(
            stored.bill,
            member,
            bank.id,
            params.on,
            params.annual_rate,
            self.calendar,
            bank_city=bank.city,
        )
        save_bill(tx, stored, after, now)
        records = BillRecords(now, actor or f"member:{member}")
        records.discounted(after, member, result, params.reason)
        records.write(tx)
        return DiscountDone(after, result)

    # --- an operator's

    def mature(self, tx: Transaction, operator: str, params: MatureParams, now: int) -> MaturityRun:
        """Pay every outstanding bill due on or before ``params.on`` (on that date), except
        those frozen by an open dispute."""
        due = due_bills(tx, params.on)
        frozen = tx.frozen_among("bill", [s.bill.bill_id for s in due])
        records = BillRecords(now, f"operator:{operator}")
        paid = []
        for stored in due:
            if stored.bill.bill_id in frozen:
                continue
            after = pay_at_maturity(stored.bill, params.on)
            save_bill(tx, stored, after, now)
            records.paid(after)
            paid.append(after)
        records.write(tx)
        return MaturityRun(tuple(paid), tuple(sorted(frozen)))

    def dishonour(
        self, tx: Transaction, operator: str, params: DishonourParams, now: int
    ) -> DishonourDone:
        """Record that the bill was not paid at maturity, and move the holder's claim back
        along the chain (see the module's docstring)."""
        stored = self._unfrozen(tx, params.bill_id)
        after, parties = dishonour(stored.bill, params.on)
        claims = self._claims(after, self._debtor(after, parties, params.recourse_to), now)
        payments = [self._payment(claim, now) for claim in claims]
        save_bill(tx, stored, after, now)
        insert_recourse(tx, claims)
        insert_payments(tx, payments, f"operator:{operator}")
        records = BillRecords(now, f"operator:{operator}")
        records.dishonoured(after, claims, params.reason)
        records.write(tx)
        return DishonourDone(after, tuple(claims), tuple(payments))

    # --- helpers

    @staticmethod
    def _load(tx: Transaction, bill_id: str) -> StoredBill:
        stored = load_bill(tx, bill_id)
        if stored is None:
            raise RuleViolation(SettlementCode.UNKNOWN_BILL, f"no bill {bill_id}")
        return stored

    def _unfrozen(self, tx: Transaction, bill_id: str) -> StoredBill:
        stored = self._load(tx, bill_id)
        if tx.is_frozen("bill", bill_id):
            raise RuleViolation(
                SettlementCode.BILL_FROZEN, f"bill {bill_id} is frozen by an open dispute"
            )
        return stored

    @staticmethod
    def _debtor(bill: Bill, parties: Sequence[str], chosen: str | None) -> str | None:
        """Who the holder claims from: ``chosen`` if it is a recourse party, by default the
        drawer; None when the holder is the drawer (nobody to claim from)."""
        if not parties:
            return None
        if chosen is None:
            return bill.drawer
        if chosen not in parties:
            raise RuleViolation(
                SettlementCode.NOT_RECOURSE_PARTY,
                f"{chosen!r} is not before the holder {bill.holder} on bill {bill.bill_id}"
                f" (recourse parties: {', '.join(parties)})",
            )
        return chosen

    @staticmethod
    def _claims(bill: Bill, debtor: str | None, now: int) -> list[Recourse]:
        if debtor is None:
            return []

        def claim(number: int, creditor: str, owed_by: str, to_bank: bool) -> Recourse:
            recourse_id = recourse_id_for(bill.bill_id, number)
            return Recourse(
                recourse_id,
                bill.bill_id,
                creditor,
                owed_by,
                bill.face,
                to_bank,
                payment_id_for(recourse_id, 0),
                now,
            )

        claims = [claim(1, bill.holder, debtor, held_by_bank(bill))]
        if debtor != bill.drawer:  # the debtor pays, then claims from the drawer
            claims.append(claim(2, debtor, bill.drawer, False))
        return claims

    def _payment(self, claim: Recourse, now: int) -> Payment:
        bank, fallbacks = self.config.banks_for(claim.debtor)
        return new_payment(
            claim.payment_id,
            claim.recourse_id,
            claim.debtor,
            claim.creditor,
            claim.amount,
            bank,
            now,
            fallbacks,
        )
