"""`rex` commands for members (order, cancel, replace, mass-cancel, executions, book,
trades), for operators (halt, resume, close) and to run the services (gateway, engine)."""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from zoneinfo import ZoneInfo

import pika

from rex import topology
from rex.client import Client, ClientError, LogEntry, entry_dict, entry_line, report_line
from rex.config import ConfigError, Settings
from rex.environment import REX_MEMBER, REX_PASSWORD
from rex.member_log import LogKind
from rex.protocol import (
    CONTENT_TYPE,
    ENGINE_INPUT,
    EngineInput,
    ExecutionReport,
    InputKind,
    encode,
    encode_inputs,
    unpack,
)

Handler = Callable[[argparse.Namespace], int]
EXCHANGE_ZONE = ZoneInfo("Asia/Shanghai")


def member_client(args: argparse.Namespace) -> Client:
    """Log in as --member (or $REX_MEMBER) with --password, $REX_PASSWORD, or the password
    members.toml gives for that member."""
    settings = Settings.from_env()
    member = args.member or REX_MEMBER.get()
    if not member:
        raise ConfigError("(command line)", "give --member or set REX_MEMBER")
    password = args.password or REX_PASSWORD.get()
    if not password:
        members = settings.members()
        if member not in members:
            raise ConfigError(str(settings.members_file), f"no member {member!r}")
        password = members[member].resolve_password(os.environ)
    return Client(member, password, settings.broker_url)


def _show(result: ExecutionReport | str, as_json: bool = False) -> int:
    if isinstance(result, str):
        print(json.dumps({"sent": result}) if as_json else f"sent {result}")
        return 0
    print(json.dumps(unpack(encode(result))) if as_json else report_line(result))
    return 1 if result.status == "rejected" else 0


def _run(body: Callable[[Client, argparse.Namespace], int]) -> Handler:
    """A member command: log in, run `body`, turn failures into an exit status."""

    def handler(args: argparse.Namespace) -> int:
        try:
            with member_client(args) as client:
                return body(client, args)
        except ConfigError as error:
            print(f"rex: {error}", file=sys.stderr)
            return 2
        except (ClientError, TimeoutError, pika.exceptions.AMQPError) as error:
            print(f"rex: {error or type(error).__name__}", file=sys.stderr)
            return 3

    return handler


def _order(client: Client, args: argparse.Namespace) -> int:
    return _show(
        client.place(
            args.product,
            args.side,
            args.quantity,
            args.price,
            time_in_force=args.tif,
            expire_time=args.expire_ms,
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
    return 0


def _in_sequence(entries: Iterator[LogEntry]) -> list[LogEntry]:
    """Kinds are read side by side: put them back in log order before printing."""
    return sorted(entries, key=lambda e: e.sequence or 0)


def _executions(client: Client, args: argparse.Namespace) -> int:
    return _read_log(client, args, (LogKind.EXECUTIONS,))


def _events(client: Client, args: argparse.Namespace) -> int:
    return _read_log(client, args, (LogKind.EVENTS, LogKind.ANSWERS))


def since_argument(text: str) -> int | dt.datetime:
    """A sequence number of the member's log, or an ISO 8601 time (without an offset: the
    exchange's time, Beijing)."""
    if text.isdigit():
        return int(text)
    try:
        moment = dt.datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected a sequence number or an ISO time such as 2026-12-03T09:30, got {text!r}"
        ) from None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=EXCHANGE_ZONE)


def _book(client: Client, args: argparse.Namespace) -> int:
    snapshot = client.book(args.product)
    if snapshot is None:
        print(f"{args.product}: no book published yet")
        return 0
    print(f"{snapshot.product}  sequence {snapshot.sequence}")
    print(f"{'bid qty':>12} {'bid':>10} | {'ask':<10} {'ask qty':<12}")
    for i in range(max(len(snapshot.bids), len(snapshot.asks))):
        bid = snapshot.bids[i] if i < len(snapshot.bids) else None
        ask = snapshot.asks[i] if i < len(snapshot.asks) else None
        left = f"{bid[1]:>12} {bid[0]:>10}" if bid else " " * 23
        right = f"{ask[0]:<10} {ask[1]:<12}" if ask else ""
        print(f"{left} | {right}")
    return 0


def _trades(client: Client, args: argparse.Namespace) -> int:
    tape = client.trades(args.product)
    for trade in tape[-args.limit :]:
        stamp = time.strftime("%H:%M:%S", time.gmtime(trade.timestamp / 1e9))
        print(
            f"{stamp}Z  {trade.trade_id:>14}  {trade.quantity:>8} @ {trade.price}  "
            f"{trade.aggressor}"
        )
    return 0


def _status(status: str) -> Handler:
    """Operators set a product's trading status by writing it into its input log."""

    def handler(args: argparse.Namespace) -> int:
        try:
            settings = Settings.from_env()
            products = settings.products()
        except ConfigError as error:
            print(f"rex: {error}", file=sys.stderr)
            return 2
        if args.product not in products:
            print(f"rex: unknown product {args.product!r}", file=sys.stderr)
            return 2
        entry = EngineInput(InputKind.STATUS, args.product, time.time_ns(), status=status)
        connection = pika.BlockingConnection(pika.URLParameters(settings.broker_url))
        try:
            channel = connection.channel()
            channel.confirm_delivery()
            channel.basic_publish(
                topology.ENGINE,
                args.product,
                encode_inputs([entry]),
                pika.BasicProperties(
                    content_type=CONTENT_TYPE,
                    delivery_mode=2,
                    type=ENGINE_INPUT,
                    message_id=f"status-{uuid.uuid4().hex}",
                    timestamp=int(time.time()),
                ),
                mandatory=True,
            )
        finally:
            connection.close()
        print(f"{args.product}: {status}")
        return 0

    return handler


def register(commands: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    def member_command(name: str, help: str) -> argparse.ArgumentParser:
        sub: argparse.ArgumentParser = commands.add_parser(name, help=help)
        sub.add_argument("--member", help="member id (default $REX_MEMBER)")
        sub.add_argument("--password", help="password (default $REX_PASSWORD or members.toml)")
        sub.add_argument("--timeout", type=float, default=10.0, help="seconds to wait")
        return sub

    def json_option(sub: argparse.ArgumentParser, what: str) -> None:
        sub.add_argument("--json", action="store_true", help=f"print {what} as JSON")

    order = member_command("order", "place an order and print its first answer")
    order.add_argument("product")
    order.add_argument("side", choices=["buy", "sell"])
    order.add_argument("quantity", type=int)
    order.add_argument("price", type=int, nargs="?", help="omit for a market order")
    order.add_argument("--tif", default="GTC", choices=["GTC", "IOC", "FOK", "GTD"])
    order.add_argument("--expire-ms", type=int, help="GTD expiry, epoch milliseconds")
    order.add_argument("--post-only", action="store_true")
    order.add_argument(
        "--stp", default="cancel_newest", choices=["cancel_newest", "cancel_oldest", "cancel_both"]
    )
    order.add_argument("--client-order-id")
    order.add_argument("--no-wait", action="store_true")
    json_option(order, "the answer as it travels (docs/protocol.md)")
    order.set_defaults(func=_run(_order))

    cancel = member_command("cancel", "cancel an order by its client order id")
    cancel.add_argument("product")
    cancel.add_argument("orig_client_order_id")
    json_option(cancel, "the answer as it travels")
    cancel.set_defaults(func=_run(_cancel))

    replace = member_command("replace", "change an order's price and/or total quantity")
    replace.add_argument("product")
    replace.add_argument("orig_client_order_id")
    replace.add_argument("--price", type=int)
    replace.add_argument("--quantity", type=int)
    json_option(replace, "the answer as it travels")
    replace.set_defaults(func=_run(_replace))

    mass = member_command("mass-cancel", "cancel all your open orders in a product")
    mass.add_argument("product")
    json_option(mass, "the answer as it travels")
    mass.set_defaults(func=_run(_mass_cancel))

    for name, text, handler in (
        ("executions", "print your execution reports not read before", _executions),
        ("events", "print your settlement events and answers not read before", _events),
    ):
        reading = member_command(name, text)
        reading.add_argument(
            "--since",
            type=since_argument,
            metavar="SEQ|TIME",
            help="print everything from this sequence number or ISO time again (kept "
            f"{topology.MEMBER_LOG_MAX_AGE}); the read position stays where it is",
        )
        reading.add_argument("--follow", action="store_true", help="keep waiting for more")
        json_option(reading, "one object per entry: sequence, type, message")
        reading.set_defaults(func=_run(handler), timeout=2.0)

    book = member_command("book", "print a product's order book (top 10 levels)")
    book.add_argument("product")
    book.set_defaults(func=_run(_book))

    trades = member_command("trades", "print a product's public trade tape")
    trades.add_argument("product")
    trades.add_argument("--limit", type=int, default=20)
    trades.set_defaults(func=_run(_trades))

    for name, status in (("halt", "halted"), ("resume", "open"), ("close", "closed")):
        sub = commands.add_parser(name, help=f"operator: set a product's status to {status}")
        sub.add_argument("product")
        sub.set_defaults(func=_status(status))

    # Listed for --help; `rex.cli.main` hands their arguments straight to the module.
    for name, text in (
        ("demo", "play a scripted trading session ([--broker URL]; make demo)"),
        ("loadtest", "size the exchange: simulated members against real services"),
        ("gateway", "run the gateway service (python -m gateway)"),
        ("engine", "run an engine service (python -m engine)"),
        ("settlement", "run the settlement worker (python -m settlement_worker)"),
    ):
        commands.add_parser(name, help=text, add_help=False)
