"""`rex halt|resume|close PRODUCT` and `rex band PRODUCT ...`: an operator's request to the
gateway's operator desk.

The command logs in as the operator (``REX_OPERATOR_URL``, else ``REX_BROKER_URL``), starts
reading its own answer stream, publishes the request with confirms to
``rex.operator.requests`` and waits for the answer (rex/operator_requests.py). The desk,
not this command, decides: a login without the role is refused there, whatever this command
was given. What is checked here first (the product, the login's being an account) only
makes the common mistakes say so at once.
"""

from __future__ import annotations

import argparse
import sys
import uuid
from collections.abc import Callable
from decimal import Decimal, InvalidOperation
from typing import Any

from rex import topology
from rex.cli_errors import ExitStatus, guard
from rex.config import ConfigError, ProcessConfig, Product, TradingStatus
from rex.fields import did_you_mean
from rex.operator_login import DEFAULT_TIMEOUT_S, OPERATOR_ACCOUNT_LOGIN, OperatorLogin, ask
from rex.operator_requests import (
    ANSWER_TYPE,
    REQUEST_TYPE,
    OperatorAnswer,
    OperatorRequest,
    Verdict,
    decode_answer,
    encode_request,
)
from rex.operators import Action
from rex.price_band import PriceBand, band_around

__all__ = [
    "DEFAULT_TIMEOUT_S",
    "OPERATOR_ACCOUNT_LOGIN",
    "configure_band",
    "configure_status",
    "send",
]

#: The trading status each action leaves the product in, as the command prints it.
STATUS_AFTER = {
    Action.HALT: TradingStatus.HALTED,
    Action.RESUME: TradingStatus.OPEN,
    Action.CLOSE: TradingStatus.CLOSED,
}


def send(
    url: str,
    login: str,
    operator: str | None,
    request: OperatorRequest,
    *,
    timeout_s: float = DEFAULT_TIMEOUT_S,
    not_an_account: Exception | None = None,
) -> OperatorAnswer:
    """Publish ``request`` as ``login`` (operator account ``operator``) and wait for its
    answer (rex.operator_login.ask); TimeoutError if none comes in ``timeout_s``."""
    request_id = f"{request.action}-{uuid.uuid4().hex}"

    def answer_of(props: Any, raw: bytes) -> OperatorAnswer | None:
        if props.type != ANSWER_TYPE or props.message_id != f"op-{request_id}":
            return None
        return decode_answer(raw)

    return ask(
        url,
        login,
        operator,
        exchange=topology.OPERATOR_REQUESTS,
        routing_key=topology.operator_request_key(operator or "", request.action),
        body=encode_request(request),
        kind=REQUEST_TYPE,
        request_id=request_id,
        answer_of=answer_of,
        timeout_s=timeout_s,
        what=f"{request.action} {request.product}",
        not_an_account=not_an_account,
    )


#: What a market command asks for, from its arguments and the product; and what it prints
#: when the desk did it.
RequestOf = Callable[[argparse.Namespace, Product], OperatorRequest]
DoneLine = Callable[[OperatorRequest, Product], str]


def _market_command(
    prog: str, request_of: RequestOf, done_line: DoneLine
) -> Callable[[argparse.Namespace], int]:
    def handler(args: argparse.Namespace) -> int:
        process_config = ProcessConfig.from_env()
        login = OperatorLogin.from_env(process_config)

        def run() -> int:
            products = process_config.products()
            product = products.get(args.product)
            if product is None:
                close = did_you_mean(args.product, products)
                hint = f" ({close})" if close else ""
                raise ConfigError(
                    process_config.products_file, f"no product {args.product!r}{hint}"
                )
            request = request_of(args, product)
            answer = send(
                login.url,
                login.login,
                login.operator,
                request,
                timeout_s=args.timeout,
                not_an_account=login.not_an_account(prog),
            )
            if answer.verdict is Verdict.DONE:
                print(done_line(request, product))
                return ExitStatus.OK
            print(f"{prog}: refused ({answer.reason}): {answer.text}", file=sys.stderr)
            return ExitStatus.REFUSED

        reaching = login.reaching("check that the gateway runs: it serves operator requests")
        return guard(prog, reaching, run)

    return handler


def _status(prog: str, action: Action) -> Callable[[argparse.Namespace], int]:
    return _market_command(
        prog,
        lambda args, _product: OperatorRequest(action, args.product),
        lambda request, _product: f"{request.product}: {STATUS_AFTER[action]}",
    )


def _add_timeout(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--timeout",
        type=float,
        default=DEFAULT_TIMEOUT_S,
        metavar="SECONDS",
        help=f"how long to wait for the answer (default {DEFAULT_TIMEOUT_S:g})",
    )


def configure_status(action: Action) -> Callable[[argparse.ArgumentParser], None]:
    """`rex halt|resume|close PRODUCT`."""

    def configure(parser: argparse.ArgumentParser) -> None:
        parser.description = (
            f"{(parser.description or '').rstrip('.')}. Logs in as an operator account with "
            "the role market_ops ($REX_OPERATOR_URL, else $REX_BROKER_URL) and asks the gateway's "
            "operator desk, which checks the role, appends the status to the product's input "
            "log and audits it (docs/operators/accounts.md). Exit status 0 done, 1 refused, "
            "2 not an operator account or no such product, 3 no answer."
        ).strip()
        parser.add_argument("product")
        _add_timeout(parser)
        parser.set_defaults(func=_status(parser.prog, action))

    return configure


def _percent(value: str) -> Decimal:
    """A --percent: a decimal, 0 < percent < 100 (as products.toml's band_percent)."""
    try:
        percent = Decimal(value)
    except InvalidOperation:
        percent = Decimal("NaN")
    if not percent.is_finite() or not 0 < percent < 100:
        raise argparse.ArgumentTypeError(
            f"must be a number greater than 0 and less than 100, e.g. 7.5; got {value!r}"
        )
    return percent


def _band_of(args: argparse.Namespace, product: Product) -> OperatorRequest:
    if args.reference is not None:
        percent = product.band_percent if args.percent is None else args.percent
        band = band_around(args.reference, percent, product.tick)
    else:
        band = PriceBand(args.low, args.high)
    return OperatorRequest(Action.SET_BAND, product.symbol, band)


def _band_done(request: OperatorRequest, product: Product) -> str:
    return f"{request.product}: band {request.band} {product.price_unit}"


def configure_band(parser: argparse.ArgumentParser) -> None:
    """`rex band PRODUCT --low L --high H` or `rex band PRODUCT --reference R [--percent P]`."""
    parser.description = (
        "Set a product's price band: new orders and replaces must have a price inside it "
        "(both limits included); orders resting outside it stay. Give the limits "
        "(--low, --high) or a reference price and a percentage either side (--reference, "
        "--percent; the percentage defaults to products.toml's band_percent), in the "
        "product's price units, multiples of its tick. Logs in as an operator account with "
        "the role market_ops ($REX_OPERATOR_URL, else $REX_BROKER_URL) and asks the gateway's "
        "operator desk, which checks the role and the band, appends it to the product's input "
        "log and audits it; members see it on rex.marketdata (docs/operators/accounts.md). "
        "Exit status 0 done, 1 refused, 2 not an operator account, no such product or a "
        "wrong command line, 3 no answer."
    )
    parser.add_argument("product")
    given = parser.add_mutually_exclusive_group(required=True)
    given.add_argument("--low", type=int, metavar="PRICE", help="the lowest price (with --high)")
    given.add_argument(
        "--reference", type=int, metavar="PRICE", help="the price the band is centred on"
    )
    parser.add_argument("--high", type=int, metavar="PRICE", help="the highest price")
    parser.add_argument(
        "--percent",
        type=_percent,
        metavar="P",
        help="with --reference: the band's width either side, in percent (default: "
        "products.toml's band_percent); the high limit is rounded down to a tick, the low up",
    )
    _add_timeout(parser)

    def handler(args: argparse.Namespace) -> int:
        if args.low is not None and (args.high is None or args.percent is not None):
            parser.error("--low needs --high, and no --percent")
        if args.reference is not None and args.high is not None:
            parser.error("--high goes with --low, not with --reference")
        return _market_command(parser.prog, _band_of, _band_done)(args)

    parser.set_defaults(func=handler)
