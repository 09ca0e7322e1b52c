"""`rex reconcile`'s bill check: bills' rows, chains and states against the journal.

What must hold (each failure is one difference, ``[bills] <subject>: <what>``):

* **Valid bills.** Every row and its chain load through the ``Bill`` constructor: a
  continuous chain numbered 1..n ending at the holder, a state consistent with it.
* **States agree with postings.** Per bill, the net of its entries (reference = bill id) on
  bills receivable and bills payable is: for an outstanding bill, the drawer's bills
  payable credited with the face and the holder's bills receivable debited with it (no
  member's, when a bank holds it after a discount); for a paid, dishonoured or cancelled
  bill, nothing. Per member, the bills receivable balance is the faces of the outstanding
  bills it holds, and the bills payable balance minus the faces of those it drew; no entry
  about anything but a bill moves those accounts. (Banks are outside the ledger.)
* **Every step booked.** ``issue-B``; ``endorse-B-n`` for each transfer link;
  ``discount-B`` for a discount; ``maturity-B`` for a paid bill, ``dishonour-B`` for a
  dishonoured one. A cancelled bill's entries are all reversed; no other bill has a
  reversed entry.
* **Every bill part has its bills.** For each obligation whose plan (the ``created``
  audit row's ``bill_minor``) has a bill part, the bills issued for it plus the held bills
  endorsed to pay it add up to that part exactly; no bill names a missing obligation.
* **Recourse.** A dishonoured bill has the claims a dishonour makes (none when its
  holder is its drawer): the holder's on the debtor and, if the debtor is not the drawer,
  the debtor's on the drawer; its ``dishonour-B`` entry posts exactly what bill_entries
  books for that debtor; every claim has its payment: debtor to creditor, the face, on the
  claim's id.
* **Audit.** Every bill has its ``issued`` audit row, a paid, dishonoured or cancelled
  one its ``paid``, ``dishonoured`` or ``cancelled`` row, and every link its ``endorsed``
  or ``discounted`` row.
"""

from __future__ import annotations

import datetime as dt
import json
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from typing import Protocol

from settlement_worker.bills.postings import dishonour_entry, held_by_bank
from settlement_worker.bills.rules import Bill, BillState, EndorsementKind, is_live
from settlement_worker.bills.sql import COLUMNS, StoredBill, bill_from_row, load_chains
from settlement_worker.codes import RuleViolation
from settlement_worker.store import Store

__all__ = ["check_bills"]

Account = tuple[str, str, str]  # owner, kind, currency
_BILL_KINDS = ("bills_receivable", "bills_payable")
_ANY_TIME = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
_CLOSING_ACTION = {
    BillState.PAID: "paid",
    BillState.DISHONOURED: "dishonoured",
    BillState.CANCELLED: "cancelled",
}


class Journal(Protocol):
    """What the check reads of reconcile's journal: entry -> reference, entry -> the entry
    it corrects, per-entry sums per account, and an entry's full reversals."""

    reference: dict[str, str]
    corrects: dict[str, str | None]
    lines: dict[str, dict[Account, int]]

    def full_reversals(self, original: str) -> list[str]: ...


Add = Callable[[str, str], None]  # (subject, message): record a difference
Format = Callable[[int, str], str]  # (minor units, currency): money as text


def check_bills(
    store: Store,
    journal: Journal,
    add: Add,
    money: Format,
) -> str:
    """Run the checks; ``add(subject, message)`` records a difference. Returns the summary."""
    bills = _load(store, add)
    by_reference: dict[str, list[str]] = defaultdict(list)
    for entry_id, reference in journal.reference.items():
        by_reference[reference].append(entry_id)
    for stored in bills:
        _check_postings(stored.bill, journal, by_reference.get(stored.bill.bill_id, []), add, money)
        _check_steps(stored.bill, journal, by_reference.get(stored.bill.bill_id, []), add)
    _check_balances(store, [s.bill for s in bills], journal, add, money)
    _check_plans(store, add, money)
    _check_recourse(store, [s.bill for s in bills], journal, add, money)
    _check_audit(store, [s.bill for s in bills], add)
    live = sum(1 for s in bills if is_live(s.bill.state))
    return f"{len(bills):,} bill{'s' if len(bills) != 1 else ''}, {live:,} outstanding"


def _load(store: Store, add: Add) -> list[StoredBill]:
    with store.transaction() as tx:
        rows = tx.execute(f"SELECT {COLUMNS} FROM bills ORDER BY bill_id")
        chains = load_chains(tx, [r[0] for r in rows])
    loaded = []
    for row in rows:
        try:
            loaded.append(bill_from_row(row, chains.get(row[0], ())))
        except RuleViolation as error:
            add(row[0], f"invalid bill ({error.code}): {error}")
    return loaded


def _expected_lines(bill: Bill) -> dict[Account, int]:
    if not is_live(bill.state):
        return {}
    face, ccy = bill.face.minor, bill.face.currency
    expected = {(bill.drawer, "bills_payable", ccy): -face}
    if not held_by_bank(bill):
        expected[(bill.holder, "bills_receivable", ccy)] = face
    return expected


def _net(journal: Journal, entry_ids: Sequence[str]) -> dict[Account, int]:
    net: dict[Account, int] = defaultdict(int)
    for entry_id in entry_ids:
        for account, amount in journal.lines.get(entry_id, {}).items():
            if account[1] in _BILL_KINDS:
                net[account] += amount
    return {a: v for a, v in net.items() if v}


def _describe(lines: Mapping[Account, int], money: Format) -> str:
    if not lines:
        return "nothing"
    return ", ".join(f"{o}:{k} {money(v, c)}" for (o, k, c), v in sorted(lines.items()))


def _check_postings(
    bill: Bill,
    journal: Journal,
    entry_ids: Sequence[str],
    add: Add,
    money: Format,
) -> None:
    expected, actual = _expected_lines(bill), _net(journal, entry_ids)
    if expected != actual:
        add(
            bill.bill_id,
            f"{bill.state}, held by {bill.holder}: its bill postings should net to "
            f"{_describe(expected, money)}; they net to {_describe(actual, money)}",
        )


def _step_entries(bill: Bill) -> list[str]:
    steps = [f"issue-{bill.bill_id}"]
    for link in bill.endorsements:
        if link.kind is EndorsementKind.DISCOUNT:
            steps.append(f"discount-{bill.bill_id}")
        else:
            steps.append(f"endorse-{bill.bill_id}-{link.sequence}")
    if bill.state is BillState.PAID:
        steps.append(f"maturity-{bill.bill_id}")
    if bill.state is BillState.DISHONOURED:
        steps.append(f"dishonour-{bill.bill_id}")
    return steps


def _check_steps(bill: Bill, journal: Journal, entry_ids: Sequence[str], add: Add) -> None:
    missing = [e for e in _step_entries(bill) if e not in journal.reference]
    if missing:
        add(bill.bill_id, f"{bill.state} but has no entry {', '.join(missing)}")
    originals = [e for e in entry_ids if journal.corrects.get(e) is None]
    reversed_ = [e for e in originals if journal.full_reversals(e)]
    if bill.state is BillState.CANCELLED and reversed_ != originals:
        standing = ", ".join(e for e in originals if e not in reversed_)
        add(bill.bill_id, f"cancelled but {standing} not reversed")
    elif bill.state is not BillState.CANCELLED and reversed_:
        add(bill.bill_id, f"{', '.join(reversed_)} reversed but the bill is {bill.state}")


def _check_balances(
    store: Store,
    bills: Sequence[Bill],
    journal: Journal,
    add: Add,
    money: Format,
) -> None:
    """Per member: bills receivable = faces held, bills payable = minus faces drawn; and
    only entries about bills move those accounts."""
    expected: dict[Account, int] = defaultdict(int)
    for bill in bills:
        for account, amount in _expected_lines(bill).items():
            expected[account] += amount
    marks = ", ".join("?" for _ in _BILL_KINDS)
    actual = {
        (owner, kind, ccy): int(total)
        for owner, kind, ccy, total in store.query(
            "SELECT owner, account_kind, currency, SUM(amount) FROM postings"
            f" WHERE account_kind IN ({marks}) GROUP BY owner, account_kind, currency",
            _BILL_KINDS,
        )
    }
    for account in sorted(set(expected) | set(actual)):
        want, have = expected.get(account, 0), actual.get(account, 0)
        if want != have:
            owner, kind, ccy = account
            add(
                f"{owner}:{kind}",
                f"balance {money(have, ccy)}; the outstanding bills say {money(want, ccy)}",
            )
    known = {b.bill_id for b in bills}
    for entry_id, reference in sorted(journal.reference.items()):
        kinds = sorted({a[1] for a in journal.lines.get(entry_id, {}) if a[1] in _BILL_KINDS})
        if kinds and reference not in known:  # a reversal keeps its original's reference
            add(entry_id, f"moves {', '.join(kinds)} but is about {reference!r}, not a bill")


def _check_plans(store: Store, add: Add, money: Format) -> None:
    """Every obligation's bill part is met by the bills issued or endorsed for it."""
    planned: dict[str, int] = {}
    for subject_id, detail in store.query(
        "SELECT subject_id, detail FROM audit_log"
        " WHERE subject_type = 'obligation' AND action = 'created'"
    ):
        data = json.loads(detail) if isinstance(detail, str) else dict(detail)
        planned[subject_id] = int(data.get("bill_minor") or 0)
    booked = dict(store.query("SELECT obligation_id, currency FROM obligations"))
    met: dict[str, int] = defaultdict(int)
    currency = dict(booked)
    for obligation_id, face, ccy in store.query(
        "SELECT obligation_id, face, currency FROM bills UNION ALL SELECT e.obligation_id,"
        " b.face, b.currency FROM bill_endorsements e JOIN bills b ON b.bill_id = e.bill_id"
        " WHERE e.obligation_id IS NOT NULL"
    ):
        met[obligation_id] += int(face)
        currency.setdefault(obligation_id, ccy)
    for obligation_id in sorted(set(planned) | set(met)):
        want, have = planned.get(obligation_id, 0), met.get(obligation_id, 0)
        ccy = str(currency.get(obligation_id, "CNY"))
        if obligation_id not in booked:
            add(obligation_id, f"bills pay {money(have, ccy)} of an obligation not booked")
        elif want != have:
            add(
                obligation_id,
                f"its plan pays {money(want, ccy)} by bill; bills issued or endorsed for it "
                f"come to {money(have, ccy)}",
            )


def _check_recourse(
    store: Store, bills: Sequence[Bill], journal: Journal, add: Add, money: Format
) -> None:
    """A dishonour's claims are the holder's on its debtor and, if the debtor is not the
    drawer, the debtor's on the drawer; its entry is what bill_entries books for that
    debtor; every claim has its payment, debtor to creditor, the face."""
    payments = (
        "payments"
        if store.has_table("payments")
        else "(SELECT '' AS payment_id, '' AS payer, '' AS payee, 0 AS amount,"
        " '' AS obligation_id WHERE 1 = 0)"
    )
    claims = store.query(
        "SELECT r.recourse_id, r.bill_id, r.creditor, r.debtor, r.amount, r.currency,"
        " p.payer, p.payee, p.amount, p.obligation_id FROM bill_recourse r"
        f" LEFT JOIN {payments} p ON p.payment_id = r.payment_id ORDER BY r.recourse_id"
    )
    by_bill: dict[str, list[tuple[str, str]]] = defaultdict(list)
    for _, bill_id, creditor, debtor, *_rest in claims:
        by_bill[bill_id].append((creditor, debtor))
    for bill in bills:
        if bill.state is BillState.DISHONOURED:
            _check_claims(bill, by_bill.get(bill.bill_id, []), journal, add)
    for recourse_id, _, creditor, debtor, amount, ccy, payer, payee, paid, obligation in claims:
        expected = (debtor, creditor, int(amount), recourse_id)
        if payer is None:
            add(recourse_id, "recourse claim without its payment")
        elif (payer, payee, int(paid), obligation) != expected:
            add(
                recourse_id,
                f"its payment should be {debtor} to {creditor}, {money(int(amount), ccy)};"
                f" it is {payer} to {payee}, {money(int(paid), ccy)}",
            )


def _check_claims(
    bill: Bill, claims: Sequence[tuple[str, str]], journal: Journal, add: Add
) -> None:
    debtor = claims[0][1] if claims else None
    expected = [] if debtor is None else [(bill.holder, debtor)]
    if debtor is not None and debtor != bill.drawer:
        expected.append((debtor, bill.drawer))
    if bill.holder != bill.drawer and not claims:
        add(bill.bill_id, f"dishonoured, but {bill.holder} has no recourse claim")
    elif claims != expected:
        add(bill.bill_id, f"recourse claims {claims}; a dishonour makes {expected}")
    entry_id = f"dishonour-{bill.bill_id}"
    if entry_id not in journal.lines:
        return  # reported by the step check
    booked = dishonour_entry(bill, debtor, _ANY_TIME)  # only its postings are compared
    wanted = {
        (p.account.owner, p.account.kind.value, p.account.currency): p.amount
        for p in booked.postings
    }
    if journal.lines[entry_id] != wanted:
        add(bill.bill_id, f"{entry_id} does not book the dishonour with recourse to {debtor}")


def _check_audit(store: Store, bills: Sequence[Bill], add: Add) -> None:
    actions: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for subject_id, action, count in store.query(
        "SELECT subject_id, action, COUNT(*) FROM audit_log WHERE subject_type = 'bill'"
        " GROUP BY subject_id, action"
    ):
        actions[subject_id][action] = int(count)
    for bill in bills:
        done = actions.get(bill.bill_id, {})
        wanted = ["issued"]
        if bill.state in _CLOSING_ACTION:
            wanted.append(_CLOSING_ACTION[bill.state])
        for action in wanted:
            if not done.get(action):
                add(bill.bill_id, f"{bill.state} bill has no {action!r} audit row")
        links = done.get("endorsed", 0) + done.get("discounted", 0)
        if links < len(bill.endorsements):
            add(
                bill.bill_id,
                f"{len(bill.endorsements)} links but {links} endorsed/discounted audit rows",
            )
