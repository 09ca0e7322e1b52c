"""Offline (negotiated) trades from the command line (`rex offline`).

    ... report --member M --counterparty C --product P --side buy|sell --price X
               --quantity Q --ref R
    ... confirm OFF-1 --member C --price X --quantity Q     # books OTC-<product>-<n>
    ... decline OFF-1 --member C --reason TEXT             # or cancel, by the reporter
    ... list [--member M] [--state pending|confirmed|declined|cancelled]

Products, members and fees come from the configuration directory (``$REX_CONFIG_DIR``), as
for the worker. Like ``rex dispute`` it writes to the store directly, and ``--member`` says
on whose behalf, it is not a login; it must be a member of members.toml, as must the
counterparty. Exit status: 0 done, 1 refused by a rule, 2 usage (an unknown member among
them), 8 the store cannot be opened (docs/members/cli.md, "Exit status").
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence

from rex.config import ProcessConfig
from rex.money import Money
from rex.vocabulary import Side
from settlement_worker.cli_support import (
    EXIT_OK,
    EXIT_REFUSED,
    on_store,
    open_for_update,
    store_arguments,
)
from settlement_worker.codes import RuleViolation, SettlementCode
from settlement_worker.configuration import load_settlement
from settlement_worker.obligations.rules import ObligationError
from settlement_worker.offline.operations import (
    confirm_in_store,
    list_offline,
    report_in_store,
    withdraw_in_store,
)
from settlement_worker.offline.rules import OfflineState, OfflineTrade
from settlement_worker.store import Store

__all__ = ["main"]

PROG = "rex offline"


def _line(t: OfflineTrade) -> str:
    booked = f" -> {t.trade_id}" if t.trade_id else ""
    return (
        f"{t.offline_id}  {t.state:<9}  {t.reporter} {t.side} {t.quantity} {t.product} "
        f"@ {t.price} with {t.counterparty} (ref {t.ref}){booked}"
    )


def _run(store: Store, args: argparse.Namespace, process_config: ProcessConfig) -> int:
    now = time.time_ns()
    products = process_config.products()
    with store.transaction() as tx:
        if args.command == "report":
            members = {m.id for m in process_config.members().values() if m.enabled}
            if args.product not in products:
                raise RuleViolation(
                    SettlementCode.UNKNOWN_PRODUCT, f"unknown product {args.product}"
                )
            trade = report_in_store(
                tx,
                args.member,
                args.counterparty,
                products[args.product],
                Side(args.side),
                args.price,
                args.quantity,
                args.ref,
                at=now,
                members=members,
            )
            print(f"reported {_line(trade)}; waiting for {trade.counterparty} to confirm")
        elif args.command == "confirm":
            config = load_settlement(
                process_config.config_dir / "settlement.toml", products, process_config.members()
            )
            trade, message = confirm_in_store(
                tx,
                args.offline_id,
                args.member,
                args.price,
                args.quantity,
                products=products,
                config=config,
                at=now,
            )
            rows = tx.execute(
                "SELECT amount, currency FROM obligations WHERE trade_id = ?", [message.trade_id]
            )
            value = str(Money(int(rows[0][0]), rows[0][1]))
            print(
                f"confirmed {_line(trade)}; booked: {message.buyer} owes {message.seller} {value}"
            )
        elif args.command in ("decline", "cancel"):
            trade = withdraw_in_store(
                tx,
                args.offline_id,
                args.member,
                args.reason,
                at=now,
                cancelling=args.command == "cancel",
            )
            print(f"{trade.state} {_line(trade)}")
        else:
            state = OfflineState(args.state) if args.state else None
            trades = list_offline(tx, args.member, state)
            for trade in trades:
                print(_line(trade))
            print(f"{len(trades)} offline trade{'s' if len(trades) != 1 else ''}")
    return EXIT_OK


def _parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    store_arguments(common)
    parser = argparse.ArgumentParser(prog=PROG, description="Offline (negotiated) trades.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="ACTION")
    report = commands.add_parser("report", parents=[common], help="report an agreed trade")
    report.add_argument("--member", required=True, help="the reporting member")
    report.add_argument("--counterparty", required=True)
    report.add_argument("--product", required=True)
    report.add_argument("--side", required=True, choices=["buy", "sell"], help="your side")
    report.add_argument("--price", required=True, type=int)
    report.add_argument("--quantity", required=True, type=int)
    report.add_argument("--ref", required=True, help="your reference (idempotency key)")
    confirm = commands.add_parser("confirm", parents=[common], help="counterparty confirms")
    confirm.add_argument("offline_id")
    confirm.add_argument("--member", required=True, help="the counterparty")
    confirm.add_argument("--price", required=True, type=int)
    confirm.add_argument("--quantity", required=True, type=int)
    for name, who in (("decline", "the counterparty"), ("cancel", "the reporter")):
        sub = commands.add_parser(name, parents=[common], help=f"{who} withdraws it")
        sub.add_argument("offline_id")
        sub.add_argument("--member", required=True, help=who)
        sub.add_argument("--reason", required=True)
    listing = commands.add_parser("list", parents=[common], help="list offline trades")
    listing.add_argument("--member", default=None)
    listing.add_argument("--state", default=None, choices=[s.value for s in OfflineState])
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    started = open_for_update(
        _parser(),
        None if argv is None else list(argv),
        PROG,
        lambda a: [a.member, getattr(a, "counterparty", None)],
    )
    if isinstance(started, int):
        return started
    args, store, where = started
    try:
        return on_store(PROG, where, lambda: _run(store, args, ProcessConfig.from_env()))
    except (RuleViolation, ObligationError) as error:
        print(f"{PROG}: refused ({getattr(error, 'code', 'invalid')}): {error}", file=sys.stderr)
        return EXIT_REFUSED
    finally:
        store.close()


if __name__ == "__main__":
    raise SystemExit(main())
