"""`rex limits show|set|set-method`: a member's receipt limits and payment method, read and
changed at run time through settlement requests over AMQP (docs/members/protocol.md).

    rex limits show --member M                       as member M (its password as for
                                                     `rex order`)
    rex limits set --member M --reason WHY [--accept-bills true|false]
        [--max-bill-face-minor FEN|unlimited] [--max-tenor-days N]
        [--accepted-acceptors ID,ID|any] [--accept-commercial true|false]
        [--max-bill-share-bps BPS] [--if-version N]
    rex limits set-method --member M --reason WHY --method cash|bank_acceptance|
        commercial_acceptance [--acceptor BANK] [--tenor-days N] [--min-tenor-days N]

With ``--operator`` the command logs in as the operator user of ``$REX_BROKER_URL`` and
acts for ``--member``. Exit status: 0 accepted, 1 rejected (the reason code is printed),
else as rex.cli_errors says (2 usage or configuration, 3 no answer in time, 4-7 the
broker; docs/members/cli.md).
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from typing import Any

from cli.settlement_requests import acting_for, action_adder, answer_dict, run
from rex.client import Client
from rex.config import ConfigError
from rex.settlement_protocol import SettlementAnswer

PROG = "rex limits"

_FLAGS = {"true": True, "yes": True, "false": False, "no": False}


def _flag(text: str) -> bool:
    try:
        return _FLAGS[text.lower()]
    except KeyError:
        raise argparse.ArgumentTypeError(f"expected true or false, got {text!r}") from None


def _int_or(word: str) -> Callable[[str], int | str]:
    """An integer, or the word that lifts the limit (``unlimited``, ``any``)."""

    def parse(text: str) -> int | str:
        if text == word:
            return text
        try:
            return int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer or {word!r}") from None

    return parse


def _acceptors(text: str) -> list[str] | str:
    return "any" if text == "any" else [a.strip() for a in text.split(",") if a.strip()]


_LIMIT_OPTIONS: dict[str, tuple[Callable[[str], Any], str]] = {
    "accept_bills": (_flag, "take bills at all"),
    "max_bill_face_minor": (_int_or("unlimited"), "largest face of one bill, fen"),
    "max_tenor_days": (int, "longest tenor, 1..183 days"),
    "accepted_acceptors": (_acceptors, "bank or member ids, comma-separated, or 'any'"),
    "accept_commercial": (_flag, "take commercial acceptance bills from any buyer"),
    "max_bill_share_bps": (int, "largest share of an obligation paid by bill, 0..10000"),
}


def _print(answer: SettlementAnswer, as_json: bool) -> int:
    if as_json:
        print(json.dumps(answer_dict(answer), sort_keys=True))
    elif not answer.accepted:
        where = f" (field {answer.field})" if answer.field else ""
        print(f"rejected: {answer.reason}{where}: {answer.text}")
    else:
        detail = answer.detail
        print(f"{detail.get('member', answer.member)}  version {detail.get('version')}")
        for name in ("pays", "receives"):
            values = detail.get(name) or {}
            shown = " ".join(f"{k}={_word(v)}" for k, v in values.items())
            print(f"  {name:<9} {shown}")
    return 0 if answer.accepted else 1


def _word(value: Any) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, list):
        return ",".join(str(v) for v in value) or "-"
    return str(value)


def _show(client: Client, args: argparse.Namespace) -> SettlementAnswer:
    return client.settlement_settings(args.member if args.operator else None, args.timeout)


def _set(client: Client, args: argparse.Namespace) -> SettlementAnswer:
    changes = {k: getattr(args, k) for k in _LIMIT_OPTIONS if getattr(args, k) is not None}
    if not changes:
        raise ConfigError("(command line)", "name at least one limit to change")
    answer = client.set_receipt_limits(
        changes,
        reason=args.reason,
        member=acting_for(args),
        if_version=args.if_version,
        wait=args.timeout,
    )
    assert isinstance(answer, SettlementAnswer)
    return answer


def _set_method(client: Client, args: argparse.Namespace) -> SettlementAnswer:
    pays: dict[str, Any] = {"method": args.method}
    for name in ("acceptor", "tenor_days", "min_tenor_days"):
        if getattr(args, name) is not None:
            pays[name] = getattr(args, name)
    answer = client.set_payment_method(
        pays,
        reason=args.reason,
        member=acting_for(args),
        if_version=args.if_version,
        wait=args.timeout,
    )
    assert isinstance(answer, SettlementAnswer)
    return answer


def configure(limits: argparse.ArgumentParser) -> None:
    """`rex limits show|set|set-method`."""
    actions = limits.add_subparsers(dest="action", required=True, metavar="ACTION")

    action = action_adder(actions)

    show = action("show", "print the payment method and receipt limits in force")
    show.set_defaults(func=run(PROG, _show, _print))

    change = action("set", "change receipt limits (the ones not named keep their values)")
    for name, (kind, text) in _LIMIT_OPTIONS.items():
        change.add_argument("--" + name.replace("_", "-"), dest=name, type=kind, help=text)
    change.add_argument("--reason", required=True, help="why (kept in the audit log)")
    change.add_argument("--if-version", type=int, help="only if still at this version")
    change.set_defaults(func=run(PROG, _set, _print))

    method = action("set-method", "replace the payment method (as payer)")
    method.add_argument(
        "--method", required=True, choices=["cash", "bank_acceptance", "commercial_acceptance"]
    )
    method.add_argument("--acceptor", help="bank acceptance: the accepting bank's id")
    method.add_argument("--tenor-days", type=int, help="bills: days to maturity, 1..183")
    method.add_argument("--min-tenor-days", type=int, help="bills: shortest tenor still issued")
    method.add_argument("--reason", required=True, help="why (kept in the audit log)")
    method.add_argument("--if-version", type=int, help="only if still at this version")
    method.set_defaults(func=run(PROG, _set_method, _print))
