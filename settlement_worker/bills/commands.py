"""Bills from the command line (``python -m settlement_worker.bills.commands``; ``rex bills``).

    ... list --member M [--all]                  # the member's bills (outstanding unless --all)
    ... show BILL --member M                      # the bill, its chain (parties only), its audit
    ... endorse BILL --member M --to N [--on D]   # the holder endorses the whole bill to N
    ... discount BILL --member M --bank K --rate 0.0135 [--on D]   # sells it to bank K
    ... mature --operator NAME [--on D]           # pay every bill due on or before D
    ... dishonour BILL --operator NAME [--on D] [--recourse-to P] [--reason TEXT]

Dates are business dates YYYY-MM-DD, by default today in Beijing; ``--rate`` is a fraction
(0.0135 is 1.35 %). Banks, members' banks and receipt limits come from the configuration
directory (``$REX_CONFIG_DIR``) as for the worker, the calendar from its ``holidays.toml``.
Like ``rex dispute`` the command writes the store directly, so whoever runs it has the
operator's access: ``--member`` says on whose behalf, it is not a login; the member's
requests over AMQP (``rex my-bills``, settlement_worker.bills.requests) reach the same
:class:`~settlement_worker.bills.operations.BillDesk` methods, dated today only.
Recourse payments a dishonour creates are sent by the running payer on its next sweep.

Times are shown in exchange (Beijing) time. Exit status: 0 done, 1 refused by a rule (the
message names its code), 2 usage (an unknown member among them), 8 the store cannot be
opened (docs/members/cli.md, "Exit status").
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
import time
from collections.abc import Sequence
from decimal import Decimal, InvalidOperation

from rex.config import ConfigError, ProcessConfig
from rex.exchange_time import format_ns
from rex.money import Money
from settlement_worker.bills.holidays import load_calendar
from settlement_worker.bills.operations import (
    BillDesk,
    DiscountParams,
    DishonourParams,
    EndorseParams,
    MatureParams,
)
from settlement_worker.bills.rules import Bill, is_live, roles, visible_chain
from settlement_worker.bills.sql import load_bill
from settlement_worker.cli_support import (
    EXIT_OK,
    EXIT_REFUSED,
    EXIT_USAGE,
    on_store,
    open_for_update,
    store_arguments,
)
from settlement_worker.codes import RuleViolation, SettlementCode
from settlement_worker.configuration import load_settlement
from settlement_worker.obligations.settle import trade_date
from settlement_worker.store import ConcurrentUpdate, Store

__all__ = ["main"]

PROG = "rex bills"


def _line(bill: Bill, member: str | None = None) -> str:
    role = f"  {'+'.join(roles(bill, member))}" if member else ""
    return (
        f"{bill.bill_id}  {bill.state:<11}{role}  {Money(bill.face.minor, bill.face.currency)}"
        f"  {bill.kind} by {bill.acceptor}  issued {bill.issue_date} due {bill.due_date}"
        f"  held by {bill.holder}"
    )


def _list(store: Store, desk: BillDesk, args: argparse.Namespace, now: int) -> int:
    with store.transaction() as tx:
        bills = desk.bills_of(tx, args.member)
    shown = [b for b in bills if args.all or is_live(b.state)]
    for bill in shown:
        print(_line(bill, args.member))
    print(f"{len(shown)} bill{'s' if len(shown) != 1 else ''}")
    return EXIT_OK


def _show(store: Store, desk: BillDesk, args: argparse.Namespace, now: int) -> int:
    with store.transaction() as tx:
        stored = load_bill(tx, args.bill_id)
        if stored is None:
            raise RuleViolation(SettlementCode.UNKNOWN_BILL, f"no bill {args.bill_id}")
        chain = visible_chain(stored.bill, args.member)  # parties only
        trail = tx.execute(
            "SELECT at, actor, action, detail FROM audit_log WHERE subject_type = 'bill'"
            " AND subject_id = ? ORDER BY seq",
            [args.bill_id],
        )
    print(_line(stored.bill, args.member))
    print(f"  drawer {stored.bill.drawer}, payee {stored.bill.payee}, for {stored.obligation_id}")
    for link in chain:
        print(f"  {link.sequence}. {link.date} {link.kind} {link.from_holder} -> {link.to_holder}")
    for at, actor, action, detail in trail:
        data = json.loads(detail) if isinstance(detail, str) else detail
        text = json.dumps(data, sort_keys=True, ensure_ascii=False)
        print(f"  {format_ns(int(at), 'seconds')}  {actor:<24} {action}  {text}")
    return EXIT_OK


def _endorse(store: Store, desk: BillDesk, args: argparse.Namespace, now: int) -> int:
    with store.transaction() as tx:
        done = desk.endorse(tx, args.member, EndorseParams(args.bill_id, args.to, args.on), now)
    print(f"endorsed {done.bill.bill_id} to {args.to}: {_line(done.bill)}")
    return EXIT_OK


def _discount(store: Store, desk: BillDesk, args: argparse.Namespace, now: int) -> int:
    params = DiscountParams(args.bill_id, args.bank, args.rate, args.on)
    with store.transaction() as tx:
        done = desk.discount(tx, args.member, params, now)
    r = done.result
    print(
        f"discounted {done.bill.bill_id} at {args.bank} on {r.discount_date}: {r.days} days at"
        f" {r.annual_rate}, interest {r.interest}, proceeds {r.proceeds}"
    )
    return EXIT_OK


def _mature(store: Store, desk: BillDesk, args: argparse.Namespace, now: int) -> int:
    with store.transaction() as tx:
        run = desk.mature(tx, args.operator, MatureParams(args.on), now)
    for bill in run.paid:
        print(f"paid {_line(bill)}")
    for bill_id in run.frozen:
        print(f"not paid: {bill_id} is frozen by an open dispute")
    print(f"{len(run.paid)} bill{'s' if len(run.paid) != 1 else ''} paid on {args.on}")
    return EXIT_OK


def _dishonour(store: Store, desk: BillDesk, args: argparse.Namespace, now: int) -> int:
    params = DishonourParams(args.bill_id, args.on, args.recourse_to, args.reason)
    with store.transaction() as tx:
        done = desk.dishonour(tx, args.operator, params, now)
    print(f"dishonoured {_line(done.bill)}")
    for claim in done.claims:
        print(
            f"  recourse {claim.recourse_id}: {claim.debtor} pays {claim.creditor}"
            f" {Money(claim.amount.minor, claim.amount.currency)} (payment {claim.payment_id})"
        )
    if not done.claims:
        print("  no recourse: the drawer holds its own bill")
    return EXIT_OK


def _date(text: str) -> dt.date:
    try:
        return dt.datetime.strptime(text, "%Y-%m-%d").date()
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a date YYYY-MM-DD: {text!r}") from None


def _rate(text: str) -> Decimal:
    try:
        return Decimal(text)
    except InvalidOperation:
        raise argparse.ArgumentTypeError(
            f"not a rate (a fraction, e.g. 0.0135): {text!r}"
        ) from None


def _parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    store_arguments(common)
    dated = argparse.ArgumentParser(add_help=False)
    dated.add_argument("--on", type=_date, default=None, help="business date (default: today)")
    parser = argparse.ArgumentParser(prog=PROG, description="Bills: list, endorse, discount, pay.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="ACTION")

    listing = commands.add_parser("list", parents=[common], help="a member's bills")
    listing.add_argument("--member", required=True)
    listing.add_argument("--all", action="store_true", help="paid, dishonoured, cancelled too")
    listing.set_defaults(run=_list)

    showing = commands.add_parser("show", parents=[common], help="a bill and its chain")
    showing.add_argument("bill_id")
    showing.add_argument("--member", required=True, help="a party to the bill")
    showing.set_defaults(run=_show)

    endorsing = commands.add_parser("endorse", parents=[common, dated], help="endorse a bill")
    endorsing.add_argument("bill_id")
    endorsing.add_argument("--member", required=True, help="the holder")
    endorsing.add_argument("--to", required=True, help="the member it is endorsed to")
    endorsing.set_defaults(run=_endorse)

    selling = commands.add_parser("discount", parents=[common, dated], help="sell to a bank")
    selling.add_argument("bill_id")
    selling.add_argument("--member", required=True, help="the holder")
    selling.add_argument("--bank", required=True, help="a bank of [[banks]]")
    selling.add_argument("--rate", required=True, type=_rate, help="annual rate, a fraction")
    selling.set_defaults(run=_discount)

    maturing = commands.add_parser("mature", parents=[common, dated], help="pay bills due")
    maturing.add_argument("--operator", required=True, help="the operator's name")
    maturing.set_defaults(run=_mature)

    refusing = commands.add_parser("dishonour", parents=[common, dated], help="not paid")
    refusing.add_argument("bill_id")
    refusing.add_argument("--operator", required=True, help="the operator's name")
    refusing.add_argument("--recourse-to", default=None, help="an earlier party (default: drawer)")
    refusing.add_argument("--reason", default="not paid at maturity", help="kept in the audit")
    refusing.set_defaults(run=_dishonour)
    return parser


def _desk(process_config: ProcessConfig) -> BillDesk:
    products = process_config.products()
    config = load_settlement(
        process_config.config_dir / "settlement.toml", products, process_config.members()
    )
    return BillDesk(config, load_calendar(process_config.config_dir / "holidays.toml"))


def _members(args: argparse.Namespace) -> tuple[str | None, ...]:
    """The member ids the command names: each must be a member of members.toml (an
    earlier party, --recourse-to, may be a bank)."""
    return getattr(args, "member", None), getattr(args, "to", None)


def main(argv: Sequence[str] | None = None) -> int:
    process_config = ProcessConfig.from_env()
    try:
        desk = _desk(process_config)
    except ConfigError as error:
        print(f"{PROG}: {error}", file=sys.stderr)
        return EXIT_USAGE
    started = open_for_update(_parser(), None if argv is None else list(argv), PROG, _members)
    if isinstance(started, int):
        return started
    args, store, where = started
    now = time.time_ns()
    if getattr(args, "on", None) is None:
        args.on = trade_date(now)  # today on the exchange's (Beijing) calendar

    try:
        return on_store(PROG, where, lambda: int(args.run(store, desk, args, now)))
    except RuleViolation as error:
        print(f"{PROG}: refused ({error.code}): {error}", file=sys.stderr)
        return EXIT_REFUSED
    except ConcurrentUpdate as error:
        # Another writer (the worker, or a member's request) moved the bill meanwhile;
        # nothing of this command was kept. Running it again reads the bill afresh.
        print(
            f"{PROG}: the bill changed while this ran, nothing done; try again: {error}",
            file=sys.stderr,
        )
        return EXIT_REFUSED
    finally:
        store.close()


if __name__ == "__main__":
    raise SystemExit(main())
