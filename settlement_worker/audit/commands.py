"""`rex audit`: search the settlement audit log, as an auditor.

    rex audit [--actor operator:li-wei] [--subject-type bill] [--subject B-...]
              [--since 2026-12-03T09:00] [--until 2026-12-04T09:00] [--after SEQ]
              [--limit N] [--json] [--timeout S]

Sent to the settlement worker as the settlement request ``audit_search`` of the operator
account of ``$REX_OPERATOR_URL`` (else ``$REX_BROKER_URL``); the worker checks the role
``audit`` (docs/operators/accounts.md). It reads the store through the worker only, so an
auditor needs no database credentials and every search is itself recorded with the login
(``settlement_requests``). One page per call, oldest first: when more follow, the last line
says which ``--after`` fetches the next. Times are exchange (Beijing) time unless they carry
an offset. Exit status: 0 printed, 1 refused (the reason is printed), 2 usage or not an
operator account, 3 no answer from the worker, 4-7 the broker (docs/members/cli.md).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from typing import Any

from rex.exchange_time import format_ns, parse_time_ns
from rex.operators import Action
from rex.settlement_protocol import SettlementAnswer
from settlement_worker.audit.rules import DEFAULT_LIMIT, MAX_LIMIT
from settlement_worker.cli_support import EXIT_USAGE, as_operator, parse, timeout_argument

__all__ = ["main"]

PROG = "rex audit"


def _time(text: str) -> int:
    try:
        return parse_time_ns(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def _limit(text: str) -> int:
    if not text.isdigit() or not 1 <= int(text) <= MAX_LIMIT:
        raise argparse.ArgumentTypeError(f"{text!r}: give a whole number from 1 to {MAX_LIMIT}")
    return int(text)


def _seq(text: str) -> int:
    if not text.isdigit():
        raise argparse.ArgumentTypeError(f"{text!r}: give the seq a previous page ended at")
    return int(text)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Search the settlement audit log (who changed what, when and why) as the "
        "operator account of $REX_OPERATOR_URL, which needs the role audit.",
    )
    parser.add_argument("--actor", help="who acted: operator:NAME, member:ID, system, ...")
    parser.add_argument("--subject-type", help="what kind of thing: bill, dispute, payment, ...")
    parser.add_argument("--subject", help="the thing's id, e.g. a bill or dispute id")
    parser.add_argument("--since", type=_time, help="from this time on (ISO 8601)")
    parser.add_argument("--until", type=_time, help="before this time (ISO 8601)")
    parser.add_argument("--after", type=_seq, default=0, help="the page after this seq")
    parser.add_argument(
        "--limit", type=_limit, default=DEFAULT_LIMIT, help=f"rows per page (1-{MAX_LIMIT})"
    )
    parser.add_argument("--json", action="store_true", help="print the answer as JSON")
    timeout_argument(parser)
    return parser


def _body(args: argparse.Namespace) -> dict[str, Any]:
    fields = {
        "actor": args.actor,
        "subject_type": args.subject_type,
        "subject_id": args.subject,
        "since_ns": args.since,
        "until_ns": args.until,
        "after_seq": args.after or None,
        "limit": args.limit,
    }
    return {k: v for k, v in fields.items() if v is not None}


def _line(entry: dict[str, Any]) -> str:
    # json.dumps escapes control characters, so member text cannot rewrite the terminal.
    detail = json.dumps(entry.get("detail"), sort_keys=True, ensure_ascii=False)
    return (
        f"{entry['seq']}  {format_ns(int(entry['at']), 'seconds')}  {entry['actor']}  "
        f"{entry['subject_type']} {entry['subject_id']}  {entry['action']}  {detail}"
    )


def main(argv: Sequence[str] | None = None) -> int:
    args = parse(_parser(), None if argv is None else list(argv))
    if isinstance(args, int):
        return args
    if args.since is not None and args.until is not None and args.until <= args.since:
        print(f"{PROG}: --until must be after --since", file=sys.stderr)
        return EXIT_USAGE

    def accepted(answer: SettlementAnswer) -> None:
        if args.json:
            print(json.dumps(answer.detail, sort_keys=True, ensure_ascii=False))
            return
        entries = answer.detail.get("entries") or []
        for entry in entries:
            print(_line(entry))
        print(f"{len(entries)} entr{'y' if len(entries) == 1 else 'ies'}")
        following = answer.detail.get("next_after_seq")
        if following is not None:
            print(f"more follow: add --after {following}")

    return as_operator(PROG, Action.AUDIT_SEARCH.value, _body(args), args.timeout, accepted)


if __name__ == "__main__":
    raise SystemExit(main())
