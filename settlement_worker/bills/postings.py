"""What each bill operation posts to the ledger: pure, no I/O, no clock.

Every entry's ``reference`` is the bill id, so an upheld dispute on a bill reverses exactly
these (disputes.subject_entry_ids) and ``rex reconcile`` can total a bill's postings. ``F``
is the face; H the holder; D the drawer; R the party a dishonoured holder claims from.

=====================  =========================================================  =======
operation              postings (debit +, credit -)                               entry id
=====================  =========================================================  =======
issue (pays part of    D payables +F, D bills_payable -F,                         issue-B
an obligation)         payee bills_receivable +F, payee receivables -F
endorse H -> E         H bills_receivable -F, E bills_receivable +F               endorse-B-n
... paying H's debt    ... and H payables +F, E receivables -F
discount at a bank     H bills_receivable -F, H discount_interest +I,             discount-B
                       exchange bank_settlement +proceeds
paid at maturity       H bills_receivable -F (a bank holder: bank_settlement -F),  maturity-B
                       D bills_payable +F
dishonour              H bills_receivable -F, H receivables +F (a bank holder:    dishonour-B
                       neither), R payables -F, D bills_payable +F; if R is not
                       D: R receivables +F, D payables -F
=====================  =========================================================  =======

Why these:

* **Issue** replaces the trade debt by the bill: the payer's payable becomes a bill
  payable, the payee's receivable a bill receivable; the obligation's part is settled.
* **Members' cash is not on the ledger** (a cash payment of an obligation, ``paid-<id>``,
  settles payables against receivables: the money moves between the members' own bank
  accounts). The same holds for bills: at maturity the drawer (or for a bank bill, the
  acceptor it funds) pays the holder, which settles the holder's bill receivable against
  the drawer's bill payable.
* **BANK_SETTLEMENT is the banks' side**: money a bank advances to a member or a member
  pays to a bank. A discount brings the proceeds in (debit); the interest is the holder's
  expense; the bill leaves the members. At maturity or in recourse the discounting bank is
  paid the face (credit). After a discounted bill is paid, bank_settlement is minus the
  interest: exactly what the bank earned from the members.
* **Dishonour** turns the bill into ordinary debts, paid through the payments machinery:
  the holder's bill receivable becomes a receivable on R, the drawer's bill payable a
  payable (to the holder, or to R who pays the holder and claims from the drawer).
"""

from __future__ import annotations

import datetime as dt
from typing import Final

from settlement_worker.bills.discount import DiscountResult
from settlement_worker.bills.rules import Bill, Endorsement, EndorsementKind
from settlement_worker.ledger.rules import EXCHANGE, AccountId, AccountKind, JournalEntry, Posting

__all__ = [
    "BILL_ENTRY_KINDS",
    "discount_entry",
    "dishonour_entry",
    "endorse_entry",
    "held_by_bank",
    "issue_entry",
    "maturity_entry",
]

ISSUE: Final = "bill_issue"
ENDORSEMENT: Final = "bill_endorsement"
DISCOUNT: Final = "bill_discount"
MATURITY: Final = "bill_maturity"
DISHONOUR: Final = "bill_dishonour"
#: The journal ``kind`` of every bill entry.
BILL_ENTRY_KINDS: Final = (ISSUE, ENDORSEMENT, DISCOUNT, MATURITY, DISHONOUR)


def held_by_bank(bill: Bill) -> bool:
    """Whether a bank holds (or held, at the end) the bill: a bill reaches a bank only by
    discount, which ends the chain."""
    return bool(bill.endorsements) and bill.endorsements[-1].kind is EndorsementKind.DISCOUNT


def _account(owner: str, kind: AccountKind, bill: Bill) -> AccountId:
    return AccountId(owner, kind, bill.face.currency)


def _entry(
    entry_id: str,
    kind: str,
    bill: Bill,
    on: dt.date,
    created_at: dt.datetime,
    lines: list[tuple[str, AccountKind, int]],
) -> JournalEntry:
    return JournalEntry(
        entry_id=entry_id,
        postings=tuple(Posting(_account(o, k, bill), amount) for o, k, amount in lines),
        reason=kind,
        reference=bill.bill_id,
        effective=on,
        created_at=created_at,
    )


def issue_entry(bill: Bill, created_at: dt.datetime) -> JournalEntry:
    """The bill pays ``bill.face`` of the drawer's obligation to the payee."""
    face = bill.face.minor
    return _entry(
        f"issue-{bill.bill_id}",
        ISSUE,
        bill,
        bill.issue_date,
        created_at,
        [
            (bill.drawer, AccountKind.PAYABLES, face),
            (bill.drawer, AccountKind.BILLS_PAYABLE, -face),
            (bill.payee, AccountKind.BILLS_RECEIVABLE, face),
            (bill.payee, AccountKind.RECEIVABLES, -face),
        ],
    )


def endorse_entry(
    bill: Bill, link: Endorsement, created_at: dt.datetime, *, pays_obligation: bool
) -> JournalEntry:
    """``link`` moves the bill between members; with ``pays_obligation`` it settles that much
    of the endorser's obligation to the endorsee (booking endorses held bills that way)."""
    face = bill.face.minor
    lines = [
        (link.from_holder, AccountKind.BILLS_RECEIVABLE, -face),
        (link.to_holder, AccountKind.BILLS_RECEIVABLE, face),
    ]
    if pays_obligation:
        lines += [
            (link.from_holder, AccountKind.PAYABLES, face),
            (link.to_holder, AccountKind.RECEIVABLES, -face),
        ]
    return _entry(
        f"endorse-{bill.bill_id}-{link.sequence}", ENDORSEMENT, bill, link.date, created_at, lines
    )


def discount_entry(
    bill: Bill, seller: str, result: DiscountResult, created_at: dt.datetime
) -> JournalEntry:
    """``seller`` sold the bill to a bank for ``result.proceeds``, paying the interest."""
    lines = [
        (seller, AccountKind.BILLS_RECEIVABLE, -bill.face.minor),
        (EXCHANGE, AccountKind.BANK_SETTLEMENT, result.proceeds.minor),
    ]
    if result.interest.minor:  # none on the due date itself: no zero posting
        lines.append((seller, AccountKind.DISCOUNT_INTEREST, result.interest.minor))
    return _entry(
        f"discount-{bill.bill_id}", DISCOUNT, bill, result.discount_date, created_at, lines
    )


def _holder_side(bill: Bill, kind: AccountKind, amount: int) -> tuple[str, AccountKind, int]:
    if held_by_bank(bill):
        return (EXCHANGE, AccountKind.BANK_SETTLEMENT, amount)
    return (bill.holder, kind, amount)


def maturity_entry(paid: Bill, created_at: dt.datetime) -> JournalEntry:
    """The bill was paid at maturity (``paid.closed_on``): the holder's claim and the
    drawer's debt both end."""
    assert paid.closed_on is not None
    face = paid.face.minor
    return _entry(
        f"maturity-{paid.bill_id}",
        MATURITY,
        paid,
        paid.closed_on,
        created_at,
        [
            _holder_side(paid, AccountKind.BILLS_RECEIVABLE, -face),
            (paid.drawer, AccountKind.BILLS_PAYABLE, face),
        ],
    )


def dishonour_entry(dishonoured: Bill, debtor: str | None, created_at: dt.datetime) -> JournalEntry:
    """The bill was not paid; the holder claims the face from ``debtor`` (None: the holder
    is the drawer itself, with nobody to claim from)."""
    assert dishonoured.closed_on is not None
    face = dishonoured.face.minor
    drawer = dishonoured.drawer
    bank = held_by_bank(dishonoured)
    lines = [(drawer, AccountKind.BILLS_PAYABLE, face)]
    if not bank:
        lines.append((dishonoured.holder, AccountKind.BILLS_RECEIVABLE, -face))
    if debtor is not None:
        if not bank:
            lines.append((dishonoured.holder, AccountKind.RECEIVABLES, face))
        lines.append((debtor, AccountKind.PAYABLES, -face))
        if debtor != drawer:  # the debtor pays the holder, and claims it from the drawer
            lines += [
                (debtor, AccountKind.RECEIVABLES, face),
                (drawer, AccountKind.PAYABLES, -face),
            ]
    return _entry(
        f"dishonour-{dishonoured.bill_id}",
        DISHONOUR,
        dishonoured,
        dishonoured.closed_on,
        created_at,
        lines,
    )
