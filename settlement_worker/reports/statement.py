"""`rex statement`: one member's accounts over a period, from the journal.

For each of the member's accounts (kind and currency): the **opening balance** (every
posting with an effective date before ``--from``), every posting dated ``--from`` to
``--to`` inclusive (date, entry, kind, reference, account, debit or credit, and the
account's running balance), and the **closing balance** (opening plus the period). Dates
are the entries' effective (business) dates. A balance is debits minus credits, as in the
ledger: a payable shows as a negative (credit) balance.

Printed with exact money formatting (``1,234.56 CNY``); ``--csv FILE`` writes the same rows
(section ``opening``, ``posting``, ``closing``, ``payment``) with plain decimal amounts
(``1234.56``). The payments section (when the ``payments`` table exists) lists the member's
payments created in the period (Beijing dates), in and out, with their state; in the CSV an
incoming payment's amount is in ``debit``, an outgoing one's in ``credit``. The bills
section (when the ``bills`` table exists) lists every bill the member is a party to that
was outstanding at some time in the period (issued by ``--to``, not closed before
``--from``): its role (holder, drawer, endorser, payee, acceptor), face, due date, state
and holder; in the CSV (section ``bill``: date = issue date, entry_id = bill id, kind =
state, reference = role, account = due date) an outstanding bill it holds has its face
under ``debit``, one it drew under ``credit``.

Exit status: 0 printed, 2 usage error (bad dates, unknown currency, a member members.toml
does not list), 8 the store cannot be opened (docs/members/cli.md, "Exit status").
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from rex.config import ConfigError, ProcessConfig
from rex.exchange_time import EXCHANGE_TIME
from rex.money import Money, UnknownCurrency, minor_units
from settlement_worker.bills.rules import is_live, roles
from settlement_worker.bills.sql import member_bills
from settlement_worker.booking.operations import to_ns
from settlement_worker.cli_support import (
    EXIT_OK,
    EXIT_USAGE,
    on_store,
    open_from_args,
    parse,
    store_arguments,
)
from settlement_worker.ledger.rules import EXCHANGE
from settlement_worker.obligations.settle import trade_date
from settlement_worker.store import Store

__all__ = [
    "BillLine",
    "Line",
    "PaymentLine",
    "Statement",
    "build_statement",
    "format_statement",
    "main",
    "write_csv",
]

PROG = "rex statement"
Account = tuple[str, str]  # account kind, currency


@dataclass(frozen=True, slots=True)
class Line:
    date: str
    entry_id: str
    kind: str
    reference: str
    account_kind: str
    currency: str
    amount: int  # debit positive, credit negative
    balance: int  # the account's balance after this line


@dataclass(frozen=True, slots=True)
class PaymentLine:
    date: str  # exchange (Beijing) date the payment was created
    payment_id: str
    obligation_id: str
    counterparty: str
    incoming: bool  # the member is the payee
    amount: int
    currency: str
    state: str
    bank: str


@dataclass(frozen=True, slots=True)
class BillLine:
    issue_date: str
    bill_id: str
    role: str  # the member's part: holder, drawer, endorser, payee, acceptor ("+"-joined)
    face: int
    currency: str
    due_date: str
    state: str
    holder: str
    held: bool  # outstanding and held by the member: its asset
    owed: bool  # outstanding and drawn by the member: its debt


@dataclass(slots=True)
class Statement:
    member: str
    start: dt.date
    end: dt.date
    currency: str | None
    opening: dict[Account, int] = field(default_factory=dict)
    lines: list[Line] = field(default_factory=list)
    closing: dict[Account, int] = field(default_factory=dict)
    payments: list[PaymentLine] | None = None  # None: no payments table
    bills: list[BillLine] | None = None  # None: no bills table
    notes: list[str] = field(default_factory=list)  # sections not shown, and why


def build_statement(
    store: Store, member: str, start: dt.date, end: dt.date, currency: str | None = None
) -> Statement:
    statement = Statement(member, start, end, currency)
    only = " AND p.currency = ?" if currency else ""
    extra = [currency] if currency else []
    for kind, ccy, total in store.query(
        "SELECT p.account_kind, p.currency, SUM(p.amount) FROM postings p JOIN journal_entries e"
        f" ON e.entry_id = p.entry_id WHERE p.owner = ? AND e.effective_date < ?{only}"
        " GROUP BY p.account_kind, p.currency",
        [member, start.isoformat(), *extra],
    ):
        statement.opening[(kind, ccy)] = int(total)
    balances = dict(statement.opening)
    for day, entry_id, kind, reference, account_kind, ccy, amount in store.query(
        "SELECT e.effective_date, e.entry_id, e.kind, e.reference, p.account_kind, p.currency,"
        " p.amount FROM postings p JOIN journal_entries e ON e.entry_id = p.entry_id"
        f" WHERE p.owner = ? AND e.effective_date >= ? AND e.effective_date <= ?{only}"
        " ORDER BY e.effective_date, e.created_at, e.entry_id, p.line",
        [member, start.isoformat(), end.isoformat(), *extra],
    ):
        account = (account_kind, ccy)
        balances[account] = balances.get(account, 0) + int(amount)
        statement.lines.append(
            Line(day, entry_id, kind, reference, account_kind, ccy, int(amount), balances[account])
        )
    statement.closing = dict(sorted(balances.items()))
    statement.opening = {a: statement.opening.get(a, 0) for a in statement.closing}
    if store.has_table("payments"):
        statement.payments = _payments(store, member, start, end, currency)
    else:
        statement.notes.append("payments: not shown (no payments table)")
    if store.has_table("bills"):
        statement.bills = _bills(store, member, start, end, currency)
    else:
        statement.notes.append("bills: not shown (no bills table)")
    return statement


def _bills(
    store: Store, member: str, start: dt.date, end: dt.date, currency: str | None
) -> list[BillLine]:
    """The member's bills outstanding at some time from ``start`` to ``end``."""
    with store.transaction() as tx:
        stored = member_bills(tx, member)
    lines = []
    for bill in (s.bill for s in stored):
        if bill.issue_date > end or (bill.closed_on is not None and bill.closed_on < start):
            continue
        if currency is not None and bill.face.currency != currency:
            continue
        live = is_live(bill.state)
        lines.append(
            BillLine(
                bill.issue_date.isoformat(),
                bill.bill_id,
                "+".join(roles(bill, member)),
                bill.face.minor,
                bill.face.currency,
                bill.due_date.isoformat(),
                bill.state.value,
                bill.holder,
                live and bill.holder == member,
                live and bill.drawer == member,
            )
        )
    return sorted(lines, key=lambda b: (b.issue_date, b.bill_id))


def _ns(day: dt.date) -> int:
    start = dt.datetime.combine(day, dt.time(), EXCHANGE_TIME)
    return to_ns(start.astimezone(dt.UTC))


def _payments(
    store: Store, member: str, start: dt.date, end: dt.date, currency: str | None
) -> list[PaymentLine]:
    """The member's payments (in or out) created in the period, by exchange date."""
    only = " AND currency = ?" if currency else ""
    until = _ns(end + dt.timedelta(days=1))
    rows = store.query(
        "SELECT created_at, payment_id, obligation_id, payer, payee, amount, currency, state,"
        " bank FROM payments WHERE (payer = ? OR payee = ?) AND created_at >= ?"
        f" AND created_at < ?{only} ORDER BY created_at, payment_id",
        [member, member, _ns(start), until, *([currency] if currency else [])],
    )
    return [
        PaymentLine(
            trade_date(int(created)).isoformat(),
            payment_id,
            obligation_id,
            payer if payee == member else payee,
            payee == member,
            int(amount),
            ccy,
            state,
            bank,
        )
        for created, payment_id, obligation_id, payer, payee, amount, ccy, state, bank in rows
    ]


def _money(amount: int, currency: str) -> str:
    return str(Money(amount, currency))


def _decimal(amount: int, currency: str) -> str:
    return str(Money(amount, currency).to_decimal())


def _table(rows: list[list[str]], right: set[int]) -> list[str]:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return [
        "  "
        + "  ".join(
            cell.rjust(widths[i]) if i in right else cell.ljust(widths[i])
            for i, cell in enumerate(row)
        ).rstrip()
        for row in rows
    ]


def format_statement(statement: Statement) -> str:
    s = statement
    scope = s.currency or "all currencies"
    out = [
        f"Statement of {s.member}, {s.start} to {s.end} ({scope})",
        "Balances are debits minus credits: a credit balance is negative.",
        "",
        f"Opening balances (before {s.start})",
    ]
    balances = [[k, c, _money(v, c)] for (k, c), v in s.opening.items()]
    out += _table(balances, {2}) if balances else ["  (no accounts)"]
    out += ["", f"Postings {s.start} to {s.end}"]
    if s.lines:
        header = ["date", "entry", "kind", "reference", "account", "debit", "credit", "balance"]
        rows = [header] + [
            [
                line.date,
                line.entry_id,
                line.kind,
                line.reference,
                f"{line.account_kind} {line.currency}",
                _money(line.amount, line.currency) if line.amount > 0 else "",
                _money(-line.amount, line.currency) if line.amount < 0 else "",
                _money(line.balance, line.currency),
            ]
            for line in s.lines
        ]
        out += _table(rows, {5, 6, 7})
    else:
        out.append("  (no postings)")
    out += ["", f"Closing balances (end of {s.end})"]
    balances = [[k, c, _money(v, c)] for (k, c), v in s.closing.items()]
    out += _table(balances, {2}) if balances else ["  (no accounts)"]
    if s.payments is not None:
        out += ["", f"Payments created {s.start} to {s.end}"]
        if s.payments:
            header = ["date", "payment", "obligation", "direction", "amount", "state", "bank"]
            out += _table(
                [header]
                + [
                    [
                        p.date,
                        p.payment_id,
                        p.obligation_id,
                        f"from {p.counterparty}" if p.incoming else f"to {p.counterparty}",
                        _money(p.amount, p.currency),
                        p.state,
                        p.bank,
                    ]
                    for p in s.payments
                ],
                {4},
            )
        else:
            out.append("  (no payments)")
    if s.bills is not None:
        out += ["", f"Bills outstanding {s.start} to {s.end}"]
        if s.bills:
            header = ["issued", "bill", "role", "face", "due", "state", "holder"]
            out += _table(
                [header]
                + [
                    [
                        b.issue_date,
                        b.bill_id,
                        b.role,
                        _money(b.face, b.currency),
                        b.due_date,
                        b.state,
                        b.holder,
                    ]
                    for b in s.bills
                ],
                {3},
            )
        else:
            out.append("  (no bills)")
    if s.notes:
        out += ["", *s.notes]
    return "\n".join(out)


CSV_HEADER = (
    "section",
    "date",
    "entry_id",
    "kind",
    "reference",
    "account",
    "currency",
    "debit",
    "credit",
    "balance",
)


def write_csv(statement: Statement, path: Path) -> None:
    s = statement
    with path.open("w", newline="", encoding="utf-8") as file:
        out = csv.writer(file)
        out.writerow(CSV_HEADER)
        for (kind, ccy), value in s.opening.items():
            out.writerow(["opening", s.start, "", "", "", kind, ccy, "", "", _decimal(value, ccy)])
        for line in s.lines:
            ccy = line.currency
            out.writerow(
                [
                    "posting",
                    line.date,
                    line.entry_id,
                    line.kind,
                    line.reference,
                    line.account_kind,
                    ccy,
                    _decimal(line.amount, ccy) if line.amount > 0 else "",
                    _decimal(-line.amount, ccy) if line.amount < 0 else "",
                    _decimal(line.balance, ccy),
                ]
            )
        for (kind, ccy), value in s.closing.items():
            out.writerow(["closing", s.end, "", "", "", kind, ccy, "", "", _decimal(value, ccy)])
        for p in s.payments or []:
            amount = _decimal(p.amount, p.currency)
            direction = f"from {p.counterparty}" if p.incoming else f"to {p.counterparty}"
            out.writerow(
                [
                    "payment",
                    p.date,
                    p.payment_id,
                    p.state,
                    p.obligation_id,
                    direction,
                    p.currency,
                    amount if p.incoming else "",
                    "" if p.incoming else amount,
                    "",
                ]
            )
        for b in s.bills or []:
            face = _decimal(b.face, b.currency)
            out.writerow(
                [
                    "bill",
                    b.issue_date,
                    b.bill_id,
                    b.state,
                    b.role,
                    f"due {b.due_date}",
                    b.currency,
                    face if b.held else "",
                    face if b.owed else "",
                    "",
                ]
            )


def _date(text: str) -> dt.date:
    try:
        return dt.datetime.strptime(text, "%Y-%m-%d").date()
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a date YYYY-MM-DD: {text!r}") from None


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="A member's opening balances, postings and closing balances over a "
        "period (effective dates, inclusive), printed and optionally written as CSV.",
    )
    parser.add_argument("--member", required=True, help="member id (or 'exchange')")
    parser.add_argument("--from", dest="start", required=True, type=_date, metavar="YYYY-MM-DD")
    parser.add_argument("--to", dest="end", required=True, type=_date, metavar="YYYY-MM-DD")
    parser.add_argument("--csv", type=Path, default=None, metavar="FILE", help="also write CSV")
    parser.add_argument("--currency", default=None, help="only accounts in this currency")
    store_arguments(parser)
    args = parse(parser, None if argv is None else list(argv))
    if isinstance(args, int):
        return args
    if args.start > args.end:
        print(f"{PROG}: --from {args.start} is after --to {args.end}", file=sys.stderr)
        return EXIT_USAGE
    if args.currency is not None:
        try:
            minor_units(args.currency)
        except UnknownCurrency as error:
            print(f"{PROG}: {error}", file=sys.stderr)
            return EXIT_USAGE
    try:
        ProcessConfig.from_env().check_members(args.member, also=[EXCHANGE])
    except ConfigError as error:
        print(f"{PROG}: {error}", file=sys.stderr)
        return EXIT_USAGE
    opened = open_from_args(args, PROG)
    if isinstance(opened, int):
        return opened
    store, where = opened

    def run() -> int:
        try:
            statement = build_statement(store, args.member, args.start, args.end, args.currency)
        finally:
            store.close()
        print(format_statement(statement))
        if args.csv is not None:
            write_csv(statement, args.csv)
            print(f"\nwrote {args.csv}")
        return EXIT_OK

    return on_store(PROG, where, run)


if __name__ == "__main__":
    raise SystemExit(main())
