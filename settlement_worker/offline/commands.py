"""Offline (negotiated) trades from the command line (`rex offline`).

    ... report --member M --counterparty C --product P --side buy|sell --price X
               --quantity Q --ref R [--reason WHY]
    ... confirm OFF-1 --member C --price X --quantity Q     # books OTC-<product>-<n>
    ... decline OFF-1 --member C --reason TEXT             # or cancel, by the reporter
    ... list [--member M] [--state pending|confirmed|declined|cancelled]

``report``, ``confirm``, ``decline`` and ``cancel`` are the member's steps: each is sent to
the settlement worker as the member's settlement request (``report_offline_trade``,
``confirm_offline_trade``, ``decline_offline_trade``, ``cancel_offline_trade``; a member
may send them itself, docs/members/protocol.md) for ``--member``, by the operator account
of ``$REX_OPERATOR_URL`` (else ``$REX_BROKER_URL``), which needs the role settlement_ops.
The worker applies the rules with the products, members and fees it runs with and audits
the broker-verified login; ``--operator`` and ``--actor`` are refused. ``--member`` and
``--counterparty`` must be members of members.toml (``$REX_CONFIG_DIR``).

``list`` only reads the settlement store (``--database-url`` / ``$REX_DATABASE_URL``, else
SQLite in ``$REX_DATA_DIR``); it changes nothing. Exit status: 0 done, 1 refused (the
message names the rule), 2 usage (an unknown member among them; for the four steps also a
login that is no operator account), 3 no answer from the worker, 4-7 the broker (5: it
refused the login), 8 the store cannot be opened (list) (docs/members/cli.md, "Exit
status").
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Final

from rex.settlement_protocol import (
    CANCEL_OFFLINE_TRADE,
    CONFIRM_OFFLINE_TRADE,
    DECLINE_OFFLINE_TRADE,
    REPORT_OFFLINE_TRADE,
    SettlementAnswer,
)
from settlement_worker.cli_support import (
    EXIT_OK,
    EXIT_REFUSED,
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
from settlement_worker.codes import RuleViolation
from settlement_worker.offline.operations import list_offline
from settlement_worker.offline.rules import OfflineState, OfflineTrade
from settlement_worker.store import Store

__all__ = ["main"]

PROG = "rex offline"
#: The request kind each step sends.
_KINDS: Final = {
    "report": REPORT_OFFLINE_TRADE,
    "confirm": CONFIRM_OFFLINE_TRADE,
    "decline": DECLINE_OFFLINE_TRADE,
    "cancel": CANCEL_OFFLINE_TRADE,
}


def _line(t: OfflineTrade) -> str:
    booked = f" -> {t.trade_id}" if t.trade_id else ""
    return (
        f"{t.offline_id}  {t.state:<9}  {t.reporter} {t.side} {t.quantity} {t.product} "
        f"@ {t.price} with {t.counterparty} (ref {t.ref}){booked}"
    )


def _answer_line(t: Mapping[str, Any]) -> str:
    """An offline trade of an answer's detail, as :func:`_line` shows a stored one."""
    booked = f" -> {t.get('trade_id')}" if t.get("trade_id") else ""
    return (
        f"{t.get('offline_id')}  {t.get('state', ''):<9}  {t.get('reporter')} {t.get('side')} "
        f"{t.get('quantity')} {t.get('product')} @ {t.get('price')} with "
        f"{t.get('counterparty')} (ref {t.get('ref')}){booked}"
    )


def _body(args: argparse.Namespace) -> dict[str, object]:
    if args.command == "report":
        return {
            "member": args.member,
            "counterparty": args.counterparty,
            "product": args.product,
            "side": args.side,
            "price": args.price,
            "quantity": args.quantity,
            "ref": args.ref,
            "reason": args.reason,
        }
    body: dict[str, object] = {"member": args.member, "offline_id": args.offline_id}
    if args.command == "confirm":
        body.update(price=args.price, quantity=args.quantity, reason=args.reason)
    else:
        body["reason"] = args.reason
    return body


def _printer(args: argparse.Namespace) -> Callable[[SettlementAnswer], None]:
    def accepted(answer: SettlementAnswer) -> None:
        trade = answer.detail.get("offline_trade") or {}
        if args.command == "report":
            print(
                f"reported {_answer_line(trade)}; waiting for {trade.get('counterparty')} to "
                "confirm"
            )
        elif args.command == "confirm":
            owed = answer.detail.get("obligation") or {}
            print(
                f"confirmed {_answer_line(trade)}; booked: {owed.get('payer')} owes "
                f"{owed.get('payee')} {owed.get('text')}"
            )
        else:
            print(f"{trade.get('state')} {_answer_line(trade)}")

    return accepted


def _send(args: argparse.Namespace) -> int:
    refused = named_actor(PROG, args)
    if refused is None:
        refused = check_members(PROG, args.member, getattr(args, "counterparty", None))
    if refused is not None:
        return refused
    return as_operator(PROG, _KINDS[args.command], _body(args), args.timeout, _printer(args))


def _list(store: Store, args: argparse.Namespace) -> int:
    state = OfflineState(args.state) if args.state else None
    with store.transaction() as tx:
        trades = list_offline(tx, args.member, state)
    for trade in trades:
        print(_line(trade))
    print(f"{len(trades)} offline trade{'s' if len(trades) != 1 else ''}")
    return EXIT_OK


def _parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    store_arguments(common)
    acting = argparse.ArgumentParser(add_help=False)
    timeout_argument(acting)
    actor_arguments(acting)
    parser = argparse.ArgumentParser(
        prog=PROG, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="ACTION")
    report = commands.add_parser("report", parents=[acting], help="report an agreed trade")
    report.add_argument("--member", required=True, help="the reporting member, for whom")
    report.add_argument("--counterparty", required=True)
    report.add_argument("--product", required=True)
    report.add_argument("--side", required=True, choices=["buy", "sell"], help="your side")
    report.add_argument("--price", required=True, type=int)
    report.add_argument("--quantity", required=True, type=int)
    report.add_argument("--ref", required=True, help="your reference (idempotency key)")
    report.add_argument("--reason", default="agreed off the book", help="kept with the request")
    confirm = commands.add_parser("confirm", parents=[acting], help="counterparty confirms")
    confirm.add_argument("offline_id")
    confirm.add_argument("--member", required=True, help="the counterparty, for whom")
    confirm.add_argument("--price", required=True, type=int)
    confirm.add_argument("--quantity", required=True, type=int)
    confirm.add_argument(
        "--reason", default="confirmed by the counterparty", help="kept with the request"
    )
    for name, who in (("decline", "the counterparty"), ("cancel", "the reporter")):
        sub = commands.add_parser(name, parents=[acting], help=f"{who} withdraws it")
        sub.add_argument("offline_id")
        sub.add_argument("--member", required=True, help=f"{who}, for whom")
        sub.add_argument("--reason", required=True, help="kept in the audit")
    listing = commands.add_parser(
        "list", parents=[common], help="list offline trades (reads the store; changes nothing)"
    )
    listing.add_argument("--member", default=None)
    listing.add_argument("--state", default=None, choices=[s.value for s in OfflineState])
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    arguments = None if argv is None else list(argv)
    parsed = parse(_parser(), arguments)
    if isinstance(parsed, int):
        return parsed
    if parsed.command in _KINDS:  # over AMQP, as the operator: no store opened here
        return _send(parsed)
    started = open_for_update(_parser(), arguments, PROG, lambda a: [a.member])
    if isinstance(started, int):
        return started
    args, store, where = started
    try:
        return on_store(PROG, where, lambda: _list(store, args))
    except RuleViolation as error:
        print(f"{PROG}: refused ({error.code}): {error}", file=sys.stderr)
        return EXIT_REFUSED
    finally:
        store.close()


if __name__ == "__main__":
    raise SystemExit(main())
