"""`rex my-bills list|endorse|discount`: a member's own bills, listed, endorsed and
discounted through settlement requests over AMQP (docs/members/protocol.md), logged in as the
member, as `rex limits` is.

    rex my-bills list --member M [--all] [--bill ID]     outstanding bills (--all: closed
                                                         too), each with its chain
    rex my-bills endorse BILL --to N --member M --reason WHY [--on YYYY-MM-DD]
    rex my-bills discount BILL --bank K --rate 0.0135 --member M --reason WHY [--on D]

`rex bills` is the operator's command on the store itself (maturity, dishonour, and steps
on any date); this one is the member's, and the broker vouches for who sends it. With
``--operator`` it logs in as the operator user of ``$REX_BROKER_URL`` and acts for
``--member``. ``--rate`` is a fraction, kept as written (no float). Exit status: 0
accepted, 1 rejected (the reason and the bill rule are printed), else as rex.cli_errors
says (docs/members/cli.md).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import re
from typing import Any

from cli.settlement_requests import acting_for, action_adder, answer_dict, run
from rex.client import Client
from rex.config import CURRENCY_MINOR_UNITS
from rex.settlement_protocol import SettlementAnswer

PROG = "rex my-bills"
_RATE_RE = re.compile(r"[0-9]{1,3}(\.[0-9]{1,12})?|\.[0-9]{1,12}")


def _amount(minor: int, currency: str) -> str:
    """``41500000, "CNY"`` as ``415,000.00 CNY``: exact, from integer minor units."""
    places = CURRENCY_MINOR_UNITS.get(currency, 2)
    whole, fraction = divmod(abs(minor), 10**places)
    text = f"{'-' if minor < 0 else ''}{whole:,}"
    return f"{text}.{fraction:0{places}d} {currency}" if places else f"{text} {currency}"


def _bill_lines(bill: dict[str, Any]) -> list[str]:
    roles = "+".join(bill.get("roles") or []) or "-"
    lines = [
        f"{bill['bill_id']}  {bill['state']:<11} {roles}  "
        f"{_amount(bill['face'], bill['currency'])}  {bill['kind']} by {bill['acceptor']}"
        f"  issued {bill['issue_date']} due {bill['due_date']}  held by {bill['holder']}"
    ]
    lines += [
        f"  {link['sequence']}. {link['on']} {link['kind']} {link['from']} -> {link['to']}"
        for link in bill.get("chain") or []
    ]
    return lines


def _print(answer: SettlementAnswer, as_json: bool) -> int:
    if as_json:
        print(json.dumps(answer_dict(answer), sort_keys=True))
    elif not answer.accepted:
        rule = answer.detail.get("rule")
        print(f"rejected: {answer.reason}{f' ({rule})' if rule else ''}: {answer.text}")
    else:
        detail = answer.detail
        bills = detail.get("bills")
        if bills is None:  # an endorsement or a discount: the bill after it
            lines = _bill_lines(detail["bill"])
            done = {"endorse_bill": "endorsed", "discount_bill": "discounted"}
            print(f"{done.get(answer.request, answer.request)} {lines[0]}")
            for line in lines[1:]:
                print(line)
            working = detail.get("discount")
            if working:
                print(
                    f"  {working['days']} days at {working['annual_rate']}: interest "
                    f"{_amount(working['interest'], working['currency'])}, proceeds "
                    f"{_amount(working['proceeds'], working['currency'])}"
                )
        else:
            for bill in bills:
                for line in _bill_lines(bill):
                    print(line)
            more = " (more not shown: ask for one with --bill)" if detail.get("truncated") else ""
            print(f"{len(bills)} bill{'s' if len(bills) != 1 else ''}{more}")
    return 0 if answer.accepted else 1


def _date(text: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a date YYYY-MM-DD: {text!r}") from None


def _rate(text: str) -> str:
    if _RATE_RE.fullmatch(text) is None:
        raise argparse.ArgumentTypeError(f"not a rate (a fraction, e.g. 0.0135): {text!r}")
    return text


def _list(client: Client, args: argparse.Namespace) -> SettlementAnswer:
    return client.bills(
        include_closed=args.all, bill_id=args.bill, member=acting_for(args), wait=args.timeout
    )


def _endorse(client: Client, args: argparse.Namespace) -> SettlementAnswer:
    answer = client.endorse_bill(
        args.bill_id,
        args.to,
        reason=args.reason,
        on=args.on,
        member=acting_for(args),
        wait=args.timeout,
    )
    assert isinstance(answer, SettlementAnswer)
    return answer


def _discount(client: Client, args: argparse.Namespace) -> SettlementAnswer:
    answer = client.discount_bill(
        args.bill_id,
        args.bank,
        args.rate,
        reason=args.reason,
        on=args.on,
        member=acting_for(args),
        wait=args.timeout,
    )
    assert isinstance(answer, SettlementAnswer)
    return answer


def configure(bills: argparse.ArgumentParser) -> None:
    """`rex my-bills list|endorse|discount`."""
    actions = bills.add_subparsers(dest="action", required=True, metavar="ACTION")

    action = action_adder(actions)

    listing = action("list", "the member's bills, each with its chain")
    listing.add_argument("--all", action="store_true", help="paid, dishonoured, cancelled too")
    listing.add_argument("--bill", default=None, metavar="ID", help="only this bill")
    listing.set_defaults(func=run(PROG, _list, _print))

    endorsing = action("endorse", "endorse a bill the member holds to another member")
    endorsing.add_argument("bill_id")
    endorsing.add_argument("--to", required=True, help="the member it is endorsed to")
    endorsing.add_argument("--reason", required=True, help="why (kept in the audit log)")
    endorsing.add_argument("--on", type=_date, help="the date meant (refused unless today)")
    endorsing.set_defaults(func=run(PROG, _endorse, _print))

    selling = action("discount", "sell a bill the member holds to a bank")
    selling.add_argument("bill_id")
    selling.add_argument("--bank", required=True, help="a bank of [[banks]]")
    selling.add_argument("--rate", required=True, type=_rate, help="annual rate, a fraction")
    selling.add_argument("--reason", required=True, help="why (kept in the audit log)")
    selling.add_argument("--on", type=_date, help="the date meant (refused unless today)")
    selling.set_defaults(func=run(PROG, _discount, _print))
