"""`rex reconcile`: check the settlement store against itself and list every difference.

Read-only. It trusts nothing the code promises and asks the database instead:

* **trades**: every processed trade has exactly one obligation (and every obligation a
  processed trade); each has its entry ``trade-<id>`` moving exactly the obligation's amount
  (payee's receivables debited, payer's payables credited), and ``fees-<id>`` if present
  charges only the two parties and credits the exchange's fee income with the total; no
  ``trade-``/``fees-`` entry lacks its trade; an obligation is ``cancelled`` exactly when
  its entries are reversed.
* **entries**: every journal entry has two or more postings summing to zero per currency
  (computed by SQL over the posting rows); a ``reverse-<id>`` entry negates ``<id>`` exactly;
  no entry is fully reversed twice.
* **ledger**: all postings sum to zero per currency.
* **disputes**, **offline trades**, **audit**: an upheld dispute's subject is reversed; a
  confirmed offline trade is booked, an unconfirmed one is not; every obligation, dispute
  and offline trade has the audit rows of its state changes.
* **payments** (if the table exists): a payment confirmed by a bank (or paid manually) is
  booked exactly once -- one journal entry whose reference is the payment id -- and an
  unpaid one not at all; no payment is confirmed twice; none is paid on a cancelled
  obligation without a refund.
* **bills** (if the table exists; settlement_worker.reports.reconcile_bills): every bill is valid
  and its state and holder agree with its postings, per bill and per member's bills
  receivable / payable; every step of its life is booked and audited; every bill part of
  every plan has its bills; a dishonoured bill has its recourse claims and their payments.
  A recourse payment's obligation is its claim (``rec-<bill>-<n>``).
* **outbox**: no row is quarantined (set aside because it can never be published: members
  were not told what it reports), and none waits unpublished longer than
  ``--max-unpublished-age`` seconds (default :data:`MAX_UNPUBLISHED_AGE_S`), measured from
  the row's timestamp, the time it was written: a worker that publishes nothing while
  trades still book shows here. A worker catching up after a broker outage may show rows
  waiting for a moment; a second run tells a stall from a catch-up.

Exit status: 0 clean, 1 differences found, 2 usage error or no settlement tables.
"""

from __future__ import annotations

import argparse
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from rex.exchange_time import NS_PER_S, format_ns
from rex.money import Money, UnknownCurrency
from settlement_worker.cli_support import (
    EXIT_OK,
    EXIT_REFUSED,
    on_store,
    open_from_args,
    parse,
    store_arguments,
)
from settlement_worker.ledger.rules import EXCHANGE
from settlement_worker.obligations.rules import ObligationState
from settlement_worker.reports.reconcile_bills import check_bills
from settlement_worker.store import Store

__all__ = ["Difference", "Report", "format_report", "main", "reconcile"]

Account = tuple[str, str, str]  # owner, kind, currency

#: How long an outbox row may wait unpublished before `rex reconcile` reports it (seconds):
#: a healthy worker publishes within a second or two of the commit.
MAX_UNPUBLISHED_AGE_S = 60
#: Outbox rows listed one by one per finding; the rest are counted in one line.
_OUTBOX_LISTED = 20


@dataclass(frozen=True, slots=True)
class Difference:
    check: str
    subject: str
    message: str

    def __str__(self) -> str:
        return f"[{self.check}] {self.subject}: {self.message}"


@dataclass(slots=True)
class Report:
    summary: list[tuple[str, str]] = field(default_factory=list)  # (check, what was checked)
    not_checked: list[tuple[str, str]] = field(default_factory=list)  # (check, why not)
    differences: list[Difference] = field(default_factory=list)

    @property
    def clean(self) -> bool:
        return not self.differences


def _count(n: int, noun: str) -> str:
    plural = noun[:-1] + "ies" if noun.endswith("y") else noun + "s"
    return f"{n:,} {noun if n == 1 else plural}"


def _money(amount: int, currency: str) -> str:
    try:
        return str(Money(amount, currency))
    except UnknownCurrency:
        return f"{amount} (minor units of unknown currency {currency!r})"


def _accounts(lines: dict[Account, int]) -> str:
    if not lines:
        return "no postings"
    return ", ".join(
        f"{owner}:{kind} {_money(amount, ccy)}"
        for (owner, kind, ccy), amount in sorted(lines.items())
    )


@dataclass(slots=True)
class _Journal:
    reference: dict[str, str] = field(default_factory=dict)
    corrects: dict[str, str | None] = field(default_factory=dict)
    lines: dict[str, dict[Account, int]] = field(default_factory=lambda: defaultdict(dict))
    reversals: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))

    def negates(self, entry_id: str, original: str) -> bool:
        return self.lines.get(entry_id, {}) == {
            a: -v for a, v in self.lines.get(original, {}).items()
        }

    def full_reversals(self, original: str) -> list[str]:
        return [r for r in self.reversals.get(original, []) if self.negates(r, original)]


def _load_journal(store: Store) -> _Journal:
    journal = _Journal()
    for entry_id, reference, corrects in store.query(
        "SELECT entry_id, reference, corrects FROM journal_entries"
    ):
        journal.reference[entry_id] = reference
        journal.corrects[entry_id] = corrects
        if corrects is not None:
            journal.reversals[corrects].append(entry_id)
    for entry_id, owner, kind, ccy, amount in store.query(
        "SELECT entry_id, owner, account_kind, currency, SUM(amount) FROM postings"
        " GROUP BY entry_id, owner, account_kind, currency"
    ):
        journal.lines[entry_id][(owner, kind, ccy)] = int(amount)
    return journal


def _check_fees(
    report: Report, trade_id: str, payer: str, payee: str, ccy: str, lines: dict[Account, int]
) -> None:
    members = {a: v for a, v in lines.items() if a[0] != EXCHANGE}
    income = lines.get((EXCHANGE, "fee_income", ccy))
    allowed = {(payer, "fees", ccy), (payee, "fees", ccy)}
    wrong = [a for a in members if a not in allowed] + [
        a for a in lines if a[0] == EXCHANGE and a != (EXCHANGE, "fee_income", ccy)
    ]
    if wrong or any(v <= 0 for v in members.values()) or income != -sum(members.values()):
        report.differences.append(
            Difference(
                "trades",
                trade_id,
                f"entry fees-{trade_id} should debit fees of {payer}/{payee} and credit "
                f"exchange fee income with the total; it has {_accounts(lines)}",
            )
        )


def _check_trades(store: Store, journal: _Journal, report: Report) -> None:
    diff = report.differences
    for trade_id, marked, found in store.query(
        "SELECT p.trade_id, p.obligation_id, o.obligation_id FROM processed_trades p"
        " LEFT JOIN obligations o ON o.trade_id = p.trade_id"
    ):
        if found is None:
            diff.append(Difference("trades", trade_id, "processed, but it has no obligation"))
        elif found != marked:
            diff.append(
                Difference("trades", trade_id, f"processed as {marked}, obligation is {found}")
            )
    for trade_id, count in store.query(
        "SELECT trade_id, COUNT(*) FROM obligations GROUP BY trade_id HAVING COUNT(*) > 1"
    ):
        diff.append(Difference("trades", trade_id, f"has {count} obligations, not one"))
    obligations = store.query(
        "SELECT o.trade_id, o.obligation_id, o.payer, o.payee, o.currency, o.amount, o.state,"
        " p.trade_id FROM obligations o LEFT JOIN processed_trades p ON p.trade_id = o.trade_id"
    )
    known = set()
    for trade_id, obligation_id, payer, payee, ccy, amount, state, processed in obligations:
        known.add(trade_id)
        if processed is None:
            diff.append(
                Difference("trades", trade_id, f"obligation {obligation_id} has no processed trade")
            )
        trade_entry, fee_entry = f"trade-{trade_id}", f"fees-{trade_id}"
        if trade_entry not in journal.reference:
            diff.append(
                Difference(
                    "trades",
                    trade_id,
                    f"obligation {obligation_id} ({_money(int(amount), ccy)}) has no entry "
                    f"{trade_entry}",
                )
            )
            continue
        expected = {
            (payee, "receivables", ccy): int(amount),
            (payer, "payables", ccy): -int(amount),
        }
        lines = journal.lines.get(trade_entry, {})
        if lines != expected:
            diff.append(
                Difference(
                    "trades",
                    trade_id,
                    f"entry {trade_entry} should be {_accounts(expected)}; "
                    f"it is {_accounts(lines)}",
                )
            )
        for entry_id in (trade_entry, fee_entry):
            if entry_id in journal.reference and journal.reference[entry_id] != trade_id:
                diff.append(
                    Difference(
                        "trades",
                        trade_id,
                        f"entry {entry_id} has reference {journal.reference[entry_id]!r}",
                    )
                )
        if fee_entry in journal.reference:
            _check_fees(report, trade_id, payer, payee, ccy, journal.lines.get(fee_entry, {}))
        booked = [e for e in (trade_entry, fee_entry) if e in journal.reference]
        reversed_ = [e for e in booked if journal.full_reversals(e)]
        if state == ObligationState.CANCELLED and reversed_ != booked:
            missing = ", ".join(e for e in booked if e not in reversed_)
            diff.append(
                Difference(
                    "trades", trade_id, f"obligation is cancelled but {missing} not reversed"
                )
            )
        elif state != ObligationState.CANCELLED and reversed_:
            diff.append(
                Difference(
                    "trades",
                    trade_id,
                    f"{', '.join(reversed_)} reversed but the obligation is {state!r}, "
                    "not 'cancelled'",
                )
            )
    for entry_id, reference in journal.reference.items():
        for prefix in ("trade-", "fees-"):
            if entry_id.startswith(prefix) and entry_id[len(prefix) :] not in known:
                diff.append(
                    Difference("trades", entry_id, f"entry about {reference!r} has no obligation")
                )
    report.summary.append(("trades", _count(len(obligations), "obligation")))


def _check_entries(store: Store, journal: _Journal, report: Report) -> None:
    diff = report.differences
    for entry_id, count in store.query(
        "SELECT e.entry_id, COUNT(p.entry_id) FROM journal_entries e LEFT JOIN postings p"
        " ON p.entry_id = e.entry_id GROUP BY e.entry_id HAVING COUNT(p.entry_id) < 2"
    ):
        diff.append(Difference("entries", entry_id, f"has {count} posting(s); needs two or more"))
    for entry_id, ccy, total in store.query(
        "SELECT entry_id, currency, SUM(amount) FROM postings GROUP BY entry_id, currency"
        " HAVING SUM(amount) <> 0 ORDER BY entry_id, currency"
    ):
        diff.append(
            Difference(
                "entries",
                entry_id,
                f"{ccy} debits and credits differ by {_money(int(total), ccy)} (should be 0)",
            )
        )
    for entry_id, corrects in journal.corrects.items():
        if entry_id.startswith("reverse-"):
            original = entry_id[len("reverse-") :]
            if corrects != original or not journal.negates(entry_id, original):
                diff.append(
                    Difference("entries", entry_id, f"is not an exact reversal of {original}")
                )
    for original, reversals in journal.reversals.items():
        full = journal.full_reversals(original)
        if len(full) > 1:
            diff.append(
                Difference("entries", original, f"is reversed {len(full)} times: {', '.join(full)}")
            )
        if original not in journal.reference:
            diff.append(
                Difference("entries", ", ".join(reversals), f"corrects missing entry {original}")
            )
    report.summary.append(("entries", _count(len(journal.reference), "entry")))


def _check_ledger(store: Store, report: Report) -> None:
    totals = store.query("SELECT currency, SUM(amount) FROM postings GROUP BY currency")
    for ccy, total in sorted(totals):
        if int(total):
            report.differences.append(
                Difference("ledger", ccy, f"postings sum to {_money(int(total), ccy)}, not 0")
            )
    report.summary.append(("ledger", _count(len(totals), "currency")))


def _check_disputes(store: Store, journal: _Journal, report: Report) -> None:
    rows = store.query("SELECT dispute_id, subject_type, subject_id, state FROM disputes")
    for dispute_id, kind, subject_id, state in rows:
        if state != "upheld":
            continue
        if kind == "trade":
            originals = [f"trade-{subject_id}", f"fees-{subject_id}"]
        else:
            originals = [
                e
                for e, ref in journal.reference.items()
                if ref == subject_id and journal.corrects[e] is None
            ]
        for entry_id in originals:
            if entry_id in journal.reference and not journal.full_reversals(entry_id):
                report.differences.append(
                    Difference("disputes", dispute_id, f"upheld, but {entry_id} is not reversed")
                )
    report.summary.append(("disputes", _count(len(rows), "dispute")))


def _check_offline(store: Store, report: Report) -> None:
    rows = store.query(
        "SELECT f.offline_id, f.state, f.trade_id, p.trade_id FROM offline_trades f"
        " LEFT JOIN processed_trades p ON p.trade_id = f.trade_id"
    )
    for offline_id, state, trade_id, processed in rows:
        if state == "confirmed" and processed is None:
            report.differences.append(
                Difference("offline", offline_id, f"confirmed as {trade_id} but not booked")
            )
        if state != "confirmed" and trade_id is not None:
            report.differences.append(
                Difference("offline", offline_id, f"{state} but has trade id {trade_id}")
            )
    report.summary.append(("offline", _count(len(rows), "offline trade")))


def _missing_audit(
    store: Store, report: Report, table: str, key: str, subject: str, actions: str
) -> None:
    """Rows of ``table`` (by ``key``) lacking an audit row of ``subject`` with one of
    ``actions`` (an SQL list)."""
    for (row_id,) in store.query(
        f"SELECT t.{key} FROM {table} t WHERE NOT EXISTS (SELECT 1 FROM audit_log a"
        f" WHERE a.subject_type = '{subject}' AND a.subject_id = t.{key}"
        f" AND a.action IN ({actions}))"
    ):
        report.differences.append(
            Difference("audit", row_id, f"{subject} has no audit row for {actions}")
        )


def _check_audit(store: Store, report: Report, tables: set[str]) -> None:
    _missing_audit(store, report, "obligations", "obligation_id", "obligation", "'created'")
    if "disputes" in tables:
        _missing_audit(store, report, "disputes", "dispute_id", "dispute", "'opened'")
        for state in ("upheld", "rejected"):
            for (dispute_id,) in store.query(
                "SELECT d.dispute_id FROM disputes d WHERE d.state = ? AND NOT EXISTS"
                " (SELECT 1 FROM audit_log a WHERE a.subject_type = 'dispute'"
                " AND a.subject_id = d.dispute_id AND a.action = ?)",
                (state, state),
            ):
                report.differences.append(
                    Difference("audit", dispute_id, f"dispute is {state} without an audit row")
                )
    if "offline_trades" in tables:
        _missing_audit(store, report, "offline_trades", "offline_id", "offline_trade", "'reported'")
    checked = ["obligations"] + [
        name
        for name, table in (("disputes", "disputes"), ("offline trades", "offline_trades"))
        if table in tables
    ]
    report.summary.append(("audit", "audit rows of " + ", ".join(checked)))


#: Payment states in which the money has moved (docs of settlement_worker.payments.rules).
PAID_STATES = ("confirmed", "paid_manually")


def _check_payments(store: Store, journal: _Journal, report: Report) -> None:
    """A paid payment is booked once: one journal entry (not a correction, not reversed)
    whose reference is the payment id; an unpaid one is not booked; the bank confirmed it
    at most once; its obligation exists and was not cancelled by an upheld dispute."""
    booked: dict[str, list[str]] = defaultdict(list)
    for entry_id, reference in journal.reference.items():
        if journal.corrects[entry_id] is None and not journal.full_reversals(entry_id):
            booked[reference].append(entry_id)
    # A recourse payment (after a dishonour) pays a claim of bill_recourse, not a trade's
    # obligation: its claim counts as the obligation, never cancelled.
    recourse = (
        "(SELECT recourse_id AS obligation_id, 'recourse' AS state FROM bill_recourse)"
        if store.has_table("bill_recourse")
        else "(SELECT obligation_id, state FROM obligations WHERE 1 = 0)"
    )
    rows = store.query(
        "SELECT p.payment_id, p.obligation_id, p.state, p.amount, p.currency,"
        " COALESCE(o.state, r.state) FROM payments p"
        " LEFT JOIN obligations o ON o.obligation_id = p.obligation_id"
        f" LEFT JOIN {recourse} r ON r.obligation_id = p.obligation_id"
    )
    diff = report.differences
    for payment_id, obligation_id, state, amount, ccy, obligation_state in rows:
        entries = booked.get(payment_id, [])
        value = _money(int(amount), ccy)
        if obligation_state is None:
            diff.append(Difference("payments", payment_id, f"no obligation {obligation_id}"))
        if state in PAID_STATES and len(entries) != 1:
            diff.append(
                Difference(
                    "payments",
                    payment_id,
                    f"{state} ({value}) but booked {len(entries)} times, not once"
                    + (f": {', '.join(entries)}" if entries else ""),
                )
            )
        elif state not in PAID_STATES and entries:
            diff.append(
                Difference("payments", payment_id, f"{state} but booked: {', '.join(entries)}")
            )
        if state in PAID_STATES and obligation_state == ObligationState.CANCELLED:
            diff.append(
                Difference(
                    "payments",
                    payment_id,
                    f"{state} ({value}) for cancelled obligation {obligation_id}: refund due",
                )
            )
    for payment_id, count in store.query(
        "SELECT payment_id, COUNT(*) FROM payment_events WHERE to_state = 'confirmed'"
        " GROUP BY payment_id HAVING COUNT(*) > 1"
    ):
        diff.append(Difference("payments", payment_id, f"confirmed by the bank {count} times"))
    report.summary.append(("payments", _count(len(rows), "payment")))


def _short(text: str, limit: int = 80) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _check_outbox(store: Store, report: Report, now_ns: int, max_age_s: int | None) -> None:
    """Quarantined rows, and rows waiting unpublished longer than ``max_age_s`` (None: not
    aged)."""
    diff = report.differences
    ((total,),) = store.query("SELECT COUNT(*) FROM outbox")
    quarantined = store.query(
        "SELECT event_id, routing_key, quarantined_at, quarantine_reason FROM outbox"
        " WHERE quarantined_at IS NOT NULL ORDER BY seq"
    )
    for event_id, routing_key, at, reason in quarantined[:_OUTBOX_LISTED]:
        diff.append(
            Difference(
                "outbox",
                _short(event_id),
                f"quarantined at {format_ns(int(at))}, never published (to {_short(routing_key)}):"
                f" {reason}",
            )
        )
    if len(quarantined) > _OUTBOX_LISTED:
        more = len(quarantined) - _OUTBOX_LISTED
        diff.append(Difference("outbox", f"{more} more", "quarantined rows, as above"))
    summary = f"{_count(int(total), 'row')}, {len(quarantined):,} quarantined"
    if max_age_s is None:
        report.summary.append(("outbox", summary + ", waiting rows not aged"))
        return
    waiting = store.query(
        "SELECT event_id, routing_key, timestamp FROM outbox"
        " WHERE published = 0 AND quarantined_at IS NULL AND timestamp < ? ORDER BY seq",
        (now_ns - max_age_s * NS_PER_S,),
    )
    for event_id, routing_key, written in waiting[:_OUTBOX_LISTED]:
        age_s = (now_ns - int(written)) // NS_PER_S
        diff.append(
            Difference(
                "outbox",
                _short(event_id),
                f"unpublished for {age_s:,} s (written {format_ns(int(written))}, to"
                f" {_short(routing_key)}; the bound is {max_age_s} s): is the worker publishing?",
            )
        )
    if len(waiting) > _OUTBOX_LISTED:
        more = len(waiting) - _OUTBOX_LISTED
        diff.append(Difference("outbox", f"{more} more", f"rows unpublished over {max_age_s} s"))
    report.summary.append(("outbox", f"{summary}, {len(waiting):,} unpublished over {max_age_s} s"))


_OPTIONAL: dict[str, str] = {"payments": "payments", "bills": "bills"}


def _check_bills(store: Store, journal: _Journal, report: Report) -> None:
    def add(subject: str, message: str) -> None:
        report.differences.append(Difference("bills", subject, message))

    report.summary.append(("bills", check_bills(store, journal, add, _money)))


def reconcile(
    store: Store,
    *,
    now_ns: int | None = None,
    max_unpublished_age_s: int | None = MAX_UNPUBLISHED_AGE_S,
) -> Report:
    """Run every check on ``store``; the report lists each difference found. ``now_ns``:
    the time the outbox's waiting rows are aged at (default: the clock);
    ``max_unpublished_age_s`` None: their age is not checked (a store no worker publishes
    from, such as a copy), only quarantined rows are."""
    report = Report()
    tables = {
        t
        for t in ("disputes", "offline_trades", "payments", "bills", "journal_entries", "outbox")
        if store.has_table(t)
    }
    journal = _load_journal(store)
    _check_trades(store, journal, report)
    _check_entries(store, journal, report)
    _check_ledger(store, report)
    if "disputes" in tables:
        _check_disputes(store, journal, report)
    else:
        report.not_checked.append(("disputes", "no disputes table"))
    if "offline_trades" in tables:
        _check_offline(store, report)
    else:
        report.not_checked.append(("offline", "no offline_trades table"))
    _check_audit(store, report, tables)
    checks: dict[str, Callable[[Store, _Journal, Report], None]] = {
        "payments": _check_payments,
        "bills": _check_bills,
    }
    for name, table in _OPTIONAL.items():
        if table not in tables:
            report.not_checked.append((name, f"no {table} table"))
        elif name in checks:
            checks[name](store, journal, report)
        else:
            report.not_checked.append((name, f"{table} table present; no check written yet"))
    if "outbox" in tables:
        now = time.time_ns() if now_ns is None else now_ns
        _check_outbox(store, report, now, max_unpublished_age_s)
    else:
        report.not_checked.append(("outbox", "no outbox table"))
    return report


def format_report(report: Report, where: str) -> str:
    failed = {d.check for d in report.differences}
    lines = [f"rex reconcile: {where}"]
    for check, what in report.summary:
        lines.append(f"  {check:<10} {'DIFFERENCES' if check in failed else 'ok':<12} {what}")
    for check, why in report.not_checked:
        lines.append(f"  {check:<10} {'not checked':<12} {why}")
    if report.clean:
        lines.append("clean: no differences")
    else:
        count = len(report.differences)
        lines.append(f"{count} difference{'s' if count != 1 else ''}:")
        lines.extend(f"  {d}" for d in report.differences)
    return "\n".join(lines)


def _seconds(text: str) -> int:
    """A whole number of seconds, 1 or more (for argparse)."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a whole number of seconds, 1 or more (e.g. 60)"
        )
    return value


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="rex reconcile",
        description="Check the settlement store: trades, obligations, entries, ledger sums, "
        "disputes, offline trades, audit rows; payments and bills if their tables exist; "
        "the outbox (quarantined rows, rows unpublished too long). "
        "Exit 0 clean, 1 differences, 2 usage error, 8 the store cannot be opened.",
    )
    store_arguments(parser)
    parser.add_argument(
        "--max-unpublished-age",
        type=_seconds,
        default=MAX_UNPUBLISHED_AGE_S,
        metavar="SECONDS",
        help="report outbox rows waiting unpublished longer than this, from the time they "
        f"were written (default: {MAX_UNPUBLISHED_AGE_S})",
    )
    args = parse(parser, None if argv is None else list(argv))
    if isinstance(args, int):
        return args
    opened = open_from_args(args, "rex reconcile")
    if isinstance(opened, int):
        return opened
    store, where = opened

    def run() -> int:
        try:
            report = reconcile(store, max_unpublished_age_s=args.max_unpublished_age)
        finally:
            store.close()
        print(format_report(report, where))
        return EXIT_OK if report.clean else EXIT_REFUSED

    return on_store("rex reconcile", where, run)


if __name__ == "__main__":
    raise SystemExit(main())
