"""Bills from the command line (``python -m settlement_worker.bills.commands``; ``rex bills``).

    ... list --member M [--all]                  # the member's bills (outstanding unless --all)
    ... show BILL --member M                      # the bill, its chain (parties only), its audit
    ... endorse BILL --member M --to N [--reason WHY]   # for the holder M: the bill to N
    ... discount BILL --member M --bank K --rate 0.0135 [--reason WHY]   # sells it to bank K
    ... mature [--on D]                           # pay every bill due on or before D
    ... dishonour BILL [--on D] [--recourse-to P] [--reason TEXT]

``endorse``, ``discount``, ``mature`` and ``dishonour`` change bills: each is sent to the
settlement worker as a settlement request of the operator account of ``$REX_OPERATOR_URL``
(else ``$REX_BROKER_URL``), which needs the role settlement_ops. ``endorse`` and
``discount`` are the member's requests (``endorse_bill``, ``discount_bill``, as ``rex
my-bills`` sends them) sent for ``--member``, dated today only (``--on``, if given, must be
today); ``mature`` and ``dishonour`` are operator actions (``bill_mature``,
``bill_dishonour``), dated today or up to 31 days earlier. The worker records the login as
who acted, never a name given here: ``--operator`` and ``--actor`` are refused. Recourse
payments a dishonour creates are sent by the running payer on its next sweep.

``list`` and ``show`` only read the settlement store (``--database-url`` /
``$REX_DATABASE_URL``, else SQLite in ``$REX_DATA_DIR``); they change nothing.

Dates are business dates YYYY-MM-DD in Beijing; ``--rate`` is a fraction (0.0135 is 1.35 %),
sent as written. ``--member`` and ``--to`` must be members of members.toml
(``$REX_CONFIG_DIR``). Times are shown in exchange (Beijing) time. Exit status: 0 done, 1
refused (the reason and the bill rule are printed), 2 usage (an unknown member among them;
for the four changes also a login that is no operator account, or ``--operator``), 3 no
answer from the worker, 4-7 the broker (5: it refused the login), 8 the store cannot be
opened (list, show) (docs/members/cli.md, "Exit status").
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
from collections.abc import Sequence
from decimal import Decimal, InvalidOperation
from typing import Any, Final

from rex.config import ConfigError, ProcessConfig
from rex.exchange_time import format_ns
from rex.money import Money
from rex.operators import Action
from rex.settlement_protocol import DISCOUNT_BILL, ENDORSE_BILL, SettlementAnswer
from settlement_worker.bills.holidays import load_calendar
from settlement_worker.bills.operations import BillDesk
from settlement_worker.bills.operator_requests import MAX_DAYS_BACK
from settlement_worker.bills.rules import Bill, is_live, roles, visible_chain
from settlement_worker.bills.sql import load_bill
from settlement_worker.cli_support import (
    EXIT_OK,
    EXIT_REFUSED,
    EXIT_USAGE,
    actor_arguments,
    as_operator,
    check_members,
    named_actor,
    on_store,
    open_for_update,
    parse,
    store_arguments,
    timeout_argument,
)
from settlement_worker.codes import RuleViolation, SettlementCode
from settlement_worker.configuration import load_settlement
from settlement_worker.store import Store

__all__ = ["main"]

PROG = "rex bills"
#: The subcommands that only read the store.
_READING: Final = frozenset({"list", "show"})
#: The audit's why when an operator endorses or discounts for a member without --reason.
AT_REQUEST: Final = "at the member's request"


def _line(bill: Bill, member: str | None = None) -> str:
    role = f"  {'+'.join(roles(bill, member))}" if member else ""
    return (
        f"{bill.bill_id}  {bill.state:<11}{role}  {Money(bill.face.minor, bill.face.currency)}"
        f"  {bill.kind} by {bill.acceptor}  issued {bill.issue_date} due {bill.due_date}"
        f"  held by {bill.holder}"
    )


def _list(store: Store, desk: BillDesk, args: argparse.Namespace) -> int:
    with store.transaction() as tx:
        bills = desk.bills_of(tx, args.member)
    shown = [b for b in bills if args.all or is_live(b.state)]
    for bill in shown:
        print(_line(bill, args.member))
    print(f"{len(shown)} bill{'s' if len(shown) != 1 else ''}")
    return EXIT_OK


def _show(store: Store, desk: BillDesk, args: argparse.Namespace) -> int:
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


def _send(args: argparse.Namespace, kind: str, body: dict[str, object]) -> int:
    """``kind`` with ``body`` as the operator account of $REX_OPERATOR_URL; an accepted
    answer printed by the subcommand's printer."""
    if args.on is not None:
        body["on"] = args.on.isoformat()
    return as_operator(PROG, kind, body, args.timeout, lambda answer: args.printer(args, answer))


def _endorse(args: argparse.Namespace) -> int:
    body: dict[str, object] = {
        "member": args.member,
        "bill_id": args.bill_id,
        "to": args.to,
        "reason": args.reason,
    }
    return _send(args, ENDORSE_BILL, body)


def _discount(args: argparse.Namespace) -> int:
    body: dict[str, object] = {
        "member": args.member,
        "bill_id": args.bill_id,
        "bank": args.bank,
        "annual_rate": args.rate,
        "reason": args.reason,
    }
    return _send(args, DISCOUNT_BILL, body)


def _mature(args: argparse.Namespace) -> int:
    return _send(args, Action.BILL_MATURE.value, {"reason": args.reason})


def _dishonour(args: argparse.Namespace) -> int:
    body: dict[str, object] = {"bill_id": args.bill_id, "reason": args.reason}
    if args.recourse_to is not None:
        body["recourse_to"] = args.recourse_to
    return _send(args, Action.BILL_DISHONOUR.value, body)


def _print_endorsed(args: argparse.Namespace, answer: SettlementAnswer) -> None:
    bill = answer.detail.get("bill") or {}
    print(f"endorsed {bill.get('bill_id')} to {args.to}: {_answer_line(bill)}")


def _print_discounted(args: argparse.Namespace, answer: SettlementAnswer) -> None:
    bill, r = answer.detail.get("bill") or {}, answer.detail.get("discount") or {}
    print(
        f"discounted {bill.get('bill_id')} at {args.bank} on {r.get('on')}: {r.get('days')} days"
        f" at {r.get('annual_rate')}, interest {_money(r.get('interest'), r.get('currency'))},"
        f" proceeds {_money(r.get('proceeds'), r.get('currency'))}"
    )


def _print_matured(args: argparse.Namespace, answer: SettlementAnswer) -> None:
    d = answer.detail
    for bill in d.get("paid") or []:
        money = _money(bill.get("face"), bill.get("currency"))
        print(f"paid {bill.get('bill_id')}  {money}  to {bill.get('holder')}")
    for bill_id in d.get("frozen") or []:
        print(f"not paid: {bill_id} is frozen by an open dispute")
    paid = int(d.get("paid_count") or 0)
    listed = len(d.get("paid") or [])
    more = f" ({paid - listed} not listed)" if paid > listed else ""
    print(f"{paid} bill{'s' if paid != 1 else ''} paid on {d.get('on')}{more}")


def _print_dishonoured(args: argparse.Namespace, answer: SettlementAnswer) -> None:
    bill, claims = answer.detail.get("bill") or {}, answer.detail.get("claims") or []
    print(f"dishonoured {bill.get('bill_id')}: {_answer_line(bill)}")
    for claim in claims:
        print(
            f"  recourse {claim.get('recourse_id')}: {claim.get('debtor')} pays"
            f" {claim.get('creditor')} {_money(claim.get('amount'), claim.get('currency'))}"
            f" (payment {claim.get('payment_id')})"
        )
    if not claims:
        print("  no recourse: the drawer holds its own bill")


def _answer_line(bill: dict[str, Any]) -> str:
    """A bill of an answer's detail, as :func:`_line` shows a stored one."""
    face = _money(bill.get("face"), bill.get("currency"))
    return (
        f"{bill.get('bill_id')}  {bill.get('state')}  {face}"
        f"  {bill.get('kind')} by {bill.get('acceptor')}  issued {bill.get('issue_date')} due"
        f" {bill.get('due_date')}  held by {bill.get('holder')}"
    )


def _money(minor: object, currency: object) -> str:
    if not isinstance(minor, int) or not isinstance(currency, str):
        return "-"
    return str(Money(minor, currency))


def _date(text: str) -> dt.date:
    try:
        return dt.datetime.strptime(text, "%Y-%m-%d").date()
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a date YYYY-MM-DD: {text!r}") from None


def _rate(text: str) -> str:
    """The rate as written (sent as a decimal string: never a float)."""
    try:
        Decimal(text)
    except InvalidOperation:
        raise argparse.ArgumentTypeError(
            f"not a rate (a fraction, e.g. 0.0135): {text!r}"
        ) from None
    return text


def _parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    store_arguments(common)
    acting = argparse.ArgumentParser(add_help=False)
    timeout_argument(acting)
    actor_arguments(acting)
    parser = argparse.ArgumentParser(
        prog=PROG,
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="ACTION")

    listing = commands.add_parser(
        "list", parents=[common], help="a member's bills (reads the store; changes nothing)"
    )
    listing.add_argument("--member", required=True)
    listing.add_argument("--all", action="store_true", help="paid, dishonoured, cancelled too")
    listing.set_defaults(run=_list)

    showing = commands.add_parser(
        "show", parents=[common], help="a bill, its chain and audit (reads the store)"
    )
    showing.add_argument("bill_id")
    showing.add_argument("--member", required=True, help="a party to the bill")
    showing.set_defaults(run=_show)

    today = "the business date meant: refused unless it is today (default today)"
    endorsing = commands.add_parser(
        "endorse", parents=[acting], help="for the holder: endorse a bill to another member"
    )
    endorsing.add_argument("bill_id")
    endorsing.add_argument("--member", required=True, help="the holder, for whom")
    endorsing.add_argument("--to", required=True, help="the member it is endorsed to")
    endorsing.add_argument("--on", type=_date, default=None, help=today)
    endorsing.add_argument("--reason", default=AT_REQUEST, help="kept in the audit")
    endorsing.set_defaults(run=_endorse, printer=_print_endorsed)

    selling = commands.add_parser(
        "discount", parents=[acting], help="for the holder: sell a bill to a bank"
    )
    selling.add_argument("bill_id")
    selling.add_argument("--member", required=True, help="the holder, for whom")
    selling.add_argument("--bank", required=True, help="a bank of [[banks]]")
    selling.add_argument("--rate", required=True, type=_rate, help="annual rate, a fraction")
    selling.add_argument("--on", type=_date, default=None, help=today)
    selling.add_argument("--reason", default=AT_REQUEST, help="kept in the audit")
    selling.set_defaults(run=_discount, printer=_print_discounted)

    back = f"business date: today or up to {MAX_DAYS_BACK} days earlier (default today)"
    maturing = commands.add_parser("mature", parents=[acting], help="pay the bills due")
    maturing.add_argument("--on", type=_date, default=None, help=back)
    maturing.add_argument("--reason", default="maturity run", help="kept with the request")
    maturing.set_defaults(run=_mature, printer=_print_matured)

    refusing = commands.add_parser("dishonour", parents=[acting], help="not paid at maturity")
    refusing.add_argument("bill_id")
    refusing.add_argument("--on", type=_date, default=None, help=back)
    refusing.add_argument("--recourse-to", default=None, help="an earlier party (default: drawer)")
    refusing.add_argument("--reason", default="not paid at maturity", help="kept in the audit")
    refusing.set_defaults(run=_dishonour, printer=_print_dishonoured)
    return parser


def _desk(process_config: ProcessConfig) -> BillDesk:
    products = process_config.products()
    config = load_settlement(
        process_config.config_dir / "settlement.toml", products, process_config.members()
    )
    return BillDesk(config, load_calendar(process_config.config_dir / "holidays.toml"))


def main(argv: Sequence[str] | None = None) -> int:
    arguments = None if argv is None else list(argv)
    parsed = parse(_parser(), arguments)
    if isinstance(parsed, int):
        return parsed
    if parsed.command not in _READING:  # over AMQP, as the operator: no store opened here
        refused = named_actor(PROG, parsed)
        if refused is None:
            named = (getattr(parsed, "member", None), getattr(parsed, "to", None))
            refused = check_members(PROG, *named)
        if refused is not None:
            return refused
        return int(parsed.run(parsed))
    process_config = ProcessConfig.from_env()
    try:
        desk = _desk(process_config)
    except ConfigError as error:
        print(f"{PROG}: {error}", file=sys.stderr)
        return EXIT_USAGE
    started = open_for_update(_parser(), arguments, PROG, lambda a: [a.member])
    if isinstance(started, int):
        return started
    args, store, where = started
    try:
        return on_store(PROG, where, lambda: int(args.run(store, desk, args)))
    except RuleViolation as error:
        print(f"{PROG}: refused ({error.code}): {error}", file=sys.stderr)
        return EXIT_REFUSED
    finally:
        store.close()


if __name__ == "__main__":
    raise SystemExit(main())
