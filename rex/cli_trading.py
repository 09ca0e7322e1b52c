"""`rex` commands for members (order, cancel, replace, mass-cancel, executions, book,
trades), for operators (halt, resume, close) and to run the services (gateway, engine)."""

from __future__ import annotations

import argparse
import os
import sys
import time
import uuid
from collections.abc import Callable

import pika

from rex import topology
from rex.client import Client, ClientError, report_line
from rex.config import ConfigError, Settings
from rex.identity import login_of
from rex.protocol import (
    CONTENT_TYPE,
    ENGINE_INPUT,
    EngineInput,
    ExecutionReport,
    InputKind,
    encode_inputs,
)

Handler = Callable[[argparse.Namespace], int]


def member_client(args: argparse.Namespace) -> Client:
    """Log in as --member (or $REX_MEMBER) with --password, $REX_PASSWORD, or the password
    members.toml gives for that member; the login is ``<REX_DEPLOYMENT>.<member>`` when
    REX_DEPLOYMENT is set (rex.identity)."""
    settings = Settings.from_env()
    member = args.member or os.environ.get("REX_MEMBER")
    if not member:
        raise ConfigError("(command line)", "give --member or set REX_MEMBER")
    password = args.password or os.environ.get("REX_PASSWORD")
    if not password:
        members = settings.members()
        if member not in members:
            raise ConfigError(str(settings.members_file), f"no member {member!r}")
        password = members[member].resolve_password(os.environ)
    return Client(
        member, password, settings.broker_url, login=login_of(member, settings.deployment)
    )


def _show(result: ExecutionReport | str) -> int:
    if isinstance(result, str):
        print(f"sent {result}")
        return 0
    print(report_line(result))
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
        )
    )


def _cancel(client: Client, args: argparse.Namespace) -> int:
    return _show(client.cancel(args.product, args.orig_client_order_id, wait=args.timeout))


def _replace(client: Client, args: argparse.Namespace) -> int:
    return _show(
        client.replace(
            args.product,
            args.orig_client_order_id,
            price=args.price,
            quantity=args.quantity,
            wait=args.timeout,
        )
    )


def _mass_cancel(client: Client, args: argparse.Namespace) -> int:
    return _show(client.mass_cancel(args.product, wait=args.timeout))


def _executions(client: Client, args: argparse.Namespace) -> int:
    for report in client.executions(timeout=args.timeout):
        print(report_line(report))
    return 0


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
        settings = Settings.from_env()
        products = settings.products()
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
    order.set_defaults(func=_run(_order))

    cancel = member_command("cancel", "cancel an order by its client order id")
    cancel.add_argument("product")
    cancel.add_argument("orig_client_order_id")
    cancel.set_defaults(func=_run(_cancel))

    replace = member_command("replace", "change an order's price and/or total quantity")
    replace.add_argument("product")
    replace.add_argument("orig_client_order_id")
    replace.add_argument("--price", type=int)
    replace.add_argument("--quantity", type=int)
    replace.set_defaults(func=_run(_replace))

    mass = member_command("mass-cancel", "cancel all your open orders in a product")
    mass.add_argument("product")
    mass.set_defaults(func=_run(_mass_cancel))

    execs = member_command("executions", "print your execution reports as they arrive")
    execs.set_defaults(func=_run(_executions))

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
