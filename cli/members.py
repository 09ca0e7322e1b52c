"""`rex` commands for members: order, cancel, replace, mass-cancel, executions, events,
book, trades (and, in cli/limits.py and cli/my_bills.py, their settlement settings and
bills). Each ``configure_*`` function gives a command's parser its arguments and handler;
cli/main.py lists the commands."""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
from collections.abc import Callable, Iterator

from rex import topology
from rex.cli_errors import MEMBER_LOGIN, ExitStatus, Reaching, guard
from rex.client import Client, LogEntry, entry_dict, entry_line, report_line
from rex.config import ConfigError, ProcessConfig
from rex.environment import REX_MEMBER, REX_PASSWORD
from rex.exchange_time import format_ns, parse_time_ns
from rex.identity import login_of
from rex.member_log import LogKind
from rex.protocol import (
    ExecutionReport,
    encode,
    unpack,
)

Handler = Callable[[argparse.Namespace], int]

#: What answers a member's orders: NO_ANSWER says to check it.
ORDERS_ANSWERED_BY = "check that the exchange's gateway and engine run (ask the operator)"


def member_id(args: argparse.Namespace) -> str | None:
    """--member, else $REX_MEMBER."""
    member: str | None = args.member or REX_MEMBER.get()
    return member


def member_reaching(args: argparse.Namespace, no_answer: str = ORDERS_ANSWERED_BY) -> Reaching:
    """What a member command reaches: the broker of $REX_BROKER_URL, as the member."""
    url = ProcessConfig.from_env().broker_url
    return Reaching(url, user=member_id(args), login=MEMBER_LOGIN, no_answer=no_answer)


def member_client(args: argparse.Namespace) -> Client:
    """Log in as --member (or $REX_MEMBER) with --password, $REX_PASSWORD, or the password
    members.toml gives for that member. Where members.toml is at hand, a member id it does
    not list is refused before anything is sent. The login is ``<REX_DEPLOYMENT>.<member>``
    when REX_DEPLOYMENT is set (rex.identity)."""
    process_config = ProcessConfig.from_env()
    member = member_id(args)
    if not member:
        raise ConfigError("(command line)", "give --member or set REX_MEMBER")
    password = args.password or REX_PASSWORD.get()
    if not password or process_config.members_file.exists():
        process_config.check_members(member)
    if not password:
        password = process_config.members()[member].resolve_password(os.environ)
    return Client(
        member,
        password,
        process_config.broker_url,
        login=login_of(member, process_config.deployment),
    )


def _show(result: ExecutionReport | str, as_json: bool = False) -> int:
    if isinstance(result, str):
        print(json.dumps({"sent": result}) if as_json else f"sent {result}")
        return ExitStatus.OK
    print(json.dumps(unpack(encode(result))) if as_json else report_line(result))
    return ExitStatus.REFUSED if result.status == "rejected" else ExitStatus.OK


def _run(prog: str, body: Callable[[Client, argparse.Namespace], int]) -> Handler:
    """A member command: log in, run `body`; failures by the table of rex.cli_errors."""

    def handler(args: argparse.Namespace) -> int:
        def run() -> int:
            with member_client(args) as client:
                return body(client, args)

        return guard(prog, member_reaching(args), run)

    return handler


def _order(client: Client, args: argparse.Namespace) -> int:
    expire_ms = args.expire_ms if args.expire is None else args.expire // 1_000_000
    tif = args.tif or ("GTD" if expire_ms is not None else "GTC")
    return _show(
        client.place(
            args.product,
            args.side,
            args.quantity,
            args.price,
            time_in_force=tif,
            expire_time=expire_ms,
            post_only=args.post_only,
            stp=args.stp,
            client_order_id=args.client_order_id,
            wait=None if args.no_wait else args.timeout,
        ),
        args.json,
    )


def _cancel(client: Client, args: argparse.Namespace) -> int:
    return _show(
        client.cancel(args.product, args.orig_client_order_id, wait=args.timeout), args.json
    )


def _replace(client: Client, args: argparse.Namespace) -> int:
    return _show(
        client.replace(
            args.product,
            args.orig_client_order_id,
            price=args.price,
            quantity=args.quantity,
            wait=args.timeout,
        ),
        args.json,
    )


def _mass_cancel(client: Client, args: argparse.Namespace) -> int:
    return _show(client.mass_cancel(args.product, wait=args.timeout), args.json)


def _read_log(client: Client, args: argparse.Namespace, kinds: tuple[LogKind, ...]) -> int:
    """Print what the member's log holds: unread (moving the read position), or with
    --since everything from there (moving nothing)."""
    quiet = None if args.follow else args.timeout
    if args.since is not None:
        entries = client.history(args.since, kinds, timeout=quiet or 0)
    else:
        entries = client.entries(kinds, timeout=quiet)
    for entry in entries if args.follow else _in_sequence(entries):
        print(json.dumps(entry_dict(entry)) if args.json else entry_line(entry), flush=True)
    return ExitStatus.OK


def _in_sequence(entries: Iterator[LogEntry]) -> list[LogEntry]:
    """Kinds are read side by side: put them back in log order before printing."""
    return sorted(entries, key=lambda e: e.sequence or 0)


def _executions(client: Client, args: argparse.Namespace) -> int:
    return _read_log(client, args, (LogKind.EXECUTIONS,))


def _events(client: Client, args: argparse.Namespace) -> int:
    return _read_log(client, args, (LogKind.EVENTS, LogKind.ANSWERS))


def since_argument(text: str) -> int | dt.datetime:
    """A sequence number of the member's log, or an ISO 8601 time (without an offset:
    exchange time, as everywhere)."""
    if text.isdigit():
        return int(text)
    try:
        ns = parse_time_ns(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(f"a sequence number, or {error}") from None
    seconds, rest = divmod(ns, 1_000_000_000)
    return dt.datetime.fromtimestamp(seconds, dt.UTC).replace(microsecond=rest // 1000)


def _book(client: Client, args: argparse.Namespace) -> int:
    snapshot = client.book(args.product)
    if snapshot is None:
        print(f"{args.product}: no book published yet")
        return ExitStatus.OK
    print(f"{snapshot.product}  sequence {snapshot.sequence}")
    print(f"{'bid qty':>12} {'bid':>10} | {'ask':<10} {'ask qty':<12}")
    for i in range(max(len(snapshot.bids), len(snapshot.asks))):
        bid = snapshot.bids[i] if i < len(snapshot.bids) else None
        ask = snapshot.asks[i] if i < len(snapshot.asks) else None
        left = f"{bid[1]:>12} {bid[0]:>10}" if bid else " " * 23
        right = f"{ask[0]:<10} {ask[1]:<12}" if ask else ""
        print(f"{left} | {right}")
    return ExitStatus.OK


def _trades(client: Client, args: argparse.Namespace) -> int:
    tape = client.trades(args.product)
    for trade in tape[-args.limit :]:
        print(
            f"{format_ns(trade.timestamp)}  {trade.trade_id:>14}  {trade.quantity:>8} @ "
            f"{trade.price}  {trade.aggressor}"
        )
    return ExitStatus.OK


def _expire_time(text: str) -> int:
    try:
        return parse_time_ns(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def _member_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--member", help="member id (default $REX_MEMBER)")
    parser.add_argument("--password", help="password (default $REX_PASSWORD or members.toml)")
    parser.add_argument("--timeout", type=float, default=10.0, help="seconds to wait")


def _json_option(parser: argparse.ArgumentParser, what: str) -> None:
    parser.add_argument("--json", action="store_true", help=f"print {what} as JSON")


def configure_order(order: argparse.ArgumentParser) -> None:
    _member_options(order)
    order.add_argument("product")
    order.add_argument("side", choices=["buy", "sell"])
    order.add_argument("quantity", type=int)
    order.add_argument("price", type=int, nargs="?", help="omit for a market order")
    order.add_argument(
        "--tif",
        default=None,
        choices=["GTC", "IOC", "FOK", "GTD"],
        help="time in force (default GTC; GTD when an expiry is given)",
    )
    expiry = order.add_mutually_exclusive_group()
    expiry.add_argument(
        "--expire",
        type=_expire_time,
        metavar="TIME",
        help="GTD expiry, ISO 8601: 2026-12-03T15:00 is exchange time (Beijing, UTC+8); "
        "or with an offset, 2026-12-03T07:00Z",
    )
    expiry.add_argument("--expire-ms", type=int, metavar="MS", help="GTD expiry, epoch ms")
    order.add_argument("--post-only", action="store_true")
    order.add_argument(
        "--stp", default="cancel_newest", choices=["cancel_newest", "cancel_oldest", "cancel_both"]
    )
    order.add_argument("--client-order-id")
    order.add_argument("--no-wait", action="store_true")
    _json_option(order, "the answer as it travels (docs/members/protocol.md)")
    order.set_defaults(func=_run(order.prog, _order))


def configure_cancel(cancel: argparse.ArgumentParser) -> None:
    _member_options(cancel)
    cancel.add_argument("product")
    cancel.add_argument("orig_client_order_id")
    _json_option(cancel, "the answer as it travels")
    cancel.set_defaults(func=_run(cancel.prog, _cancel))


def configure_replace(replace: argparse.ArgumentParser) -> None:
    _member_options(replace)
    replace.add_argument("product")
    replace.add_argument("orig_client_order_id")
    replace.add_argument("--price", type=int)
    replace.add_argument("--quantity", type=int)
    _json_option(replace, "the answer as it travels")
    replace.set_defaults(func=_run(replace.prog, _replace))


def configure_mass_cancel(mass: argparse.ArgumentParser) -> None:
    _member_options(mass)
    mass.add_argument("product")
    _json_option(mass, "the answer as it travels")
    mass.set_defaults(func=_run(mass.prog, _mass_cancel))


def _log_options(reading: argparse.ArgumentParser) -> None:
    _member_options(reading)
    reading.add_argument(
        "--since",
        type=since_argument,
        metavar="SEQ|TIME",
        help="print everything from this sequence number or ISO time again (kept "
        f"{topology.MEMBER_LOG_MAX_AGE}); the read position stays where it is",
    )
    reading.add_argument("--follow", action="store_true", help="keep waiting for more")
    _json_option(reading, "one object per entry: sequence, type, message")
    reading.set_defaults(timeout=2.0)


def configure_executions(execs: argparse.ArgumentParser) -> None:
    _log_options(execs)
    execs.set_defaults(func=_run(execs.prog, _executions))


def configure_events(events: argparse.ArgumentParser) -> None:
    _log_options(events)
    events.set_defaults(func=_run(events.prog, _events))


def configure_book(book: argparse.ArgumentParser) -> None:
    _member_options(book)
    book.add_argument("product")
    book.set_defaults(func=_run(book.prog, _book))


def configure_trades(trades: argparse.ArgumentParser) -> None:
    _member_options(trades)
    trades.add_argument("product")
    trades.add_argument("--limit", type=int, default=20)
    trades.set_defaults(func=_run(trades.prog, _trades))
