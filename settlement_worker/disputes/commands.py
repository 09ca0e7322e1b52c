"""`rex dispute open|resolve|list|show`: disputes on trades and bills.

    rex dispute open --member M (--trade T | --bill B) --reason TEXT [--timeout S]
    rex dispute resolve D-1 (--uphold | --reject) --note TEXT [--timeout S]
    rex dispute list [--state open|upheld|rejected] [--member M] [--subject ID]
    rex dispute show D-1                  # the dispute and its audit trail

``open`` and ``resolve`` change the store, and never from here: each is sent to the
settlement worker as a settlement request of the operator account of ``$REX_OPERATOR_URL``
(else ``$REX_BROKER_URL``), which needs the role settlement_ops. ``open`` is the member's
request ``open_dispute``, sent for ``--member`` (a party to the subject, a member of
members.toml, ``$REX_CONFIG_DIR``; a member may send it itself); ``resolve`` is the
operator's decision ``dispute_resolve``. The worker audits the broker-verified login
(docs/operators/accounts.md); ``--operator`` and ``--actor`` are refused.

``list`` and ``show`` only read the settlement store (``--database-url`` /
``$REX_DATABASE_URL``, else SQLite in ``$REX_DATA_DIR``); they change nothing. Times are
shown in exchange (Beijing) time. Exit status: 0 done, 1 refused (the message names the
rule), 2 usage (an unknown member among them; for open and resolve also a login that is no
operator account), 3 no answer from the worker, 4-7 the broker (5: it refused the login),
8 the store cannot be opened (list, show) (docs/members/cli.md, "Exit status").
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence

from rex.exchange_time import format_ns
from rex.operators import Action
from rex.settlement_protocol import OPEN_DISPUTE, SettlementAnswer
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
from settlement_worker.disputes.operations import get_dispute, history, list_disputes
from settlement_worker.disputes.rules import Dispute, DisputeState
from settlement_worker.store import Store

__all__ = ["main"]

PROG = "rex dispute"


def _when(ns: int | None) -> str:
    return "-" if ns is None else format_ns(ns, "seconds")


def _line(d: Dispute) -> str:
    resolved = "" if d.resolved_by is None else f" by operator:{d.resolved_by}: {d.resolution_note}"
    return (
        f"{d.dispute_id}  {d.state:<8}  {d.subject_type} {d.subject_id}  opened by "
        f"member:{d.opened_by} {_when(d.opened_at)}: {d.reason}{resolved}"
    )


def _open(args: argparse.Namespace) -> int:
    """For the member, the settlement request ``open_dispute``."""
    field, subject = ("trade_id", args.trade) if args.trade else ("bill_id", args.bill)
    body = {"member": args.member, field: subject, "reason": args.reason}

    def accepted(answer: SettlementAnswer) -> None:
        d = answer.detail
        print(
            f"opened {d.get('dispute_id')}: {d.get('subject_type')} {d.get('subject_id')} is "
            "frozen until an operator resolves it"
        )

    return as_operator(PROG, OPEN_DISPUTE, body, args.timeout, accepted)


def _resolve(args: argparse.Namespace) -> int:
    """The operator's decision, as the settlement request ``dispute_resolve``."""
    body = {"dispute_id": args.dispute_id, "uphold": args.uphold, "reason": args.note}

    def accepted(answer: SettlementAnswer) -> None:
        d = answer.detail
        if d.get("state") == DisputeState.UPHELD:
            posted = ", ".join(d.get("reversed_entries") or []) or "no entries to reverse"
            print(f"{args.dispute_id} upheld: its subject is cancelled; posted {posted}")
        else:
            print(f"{args.dispute_id} rejected: its subject settles again")

    return as_operator(PROG, Action.DISPUTE_RESOLVE.value, body, args.timeout, accepted)


def _list(store: Store, args: argparse.Namespace) -> int:
    state = None if args.state == "all" else DisputeState(args.state)
    with store.transaction() as tx:
        disputes = list_disputes(tx, state, args.member, args.subject)
    for d in disputes:
        print(_line(d))
    print(f"{len(disputes)} dispute{'s' if len(disputes) != 1 else ''}")
    return EXIT_OK


def _show(store: Store, args: argparse.Namespace) -> int:
    with store.transaction() as tx:
        dispute = get_dispute(tx, args.dispute_id)
        trail = history(tx, args.dispute_id)
    print(_line(dispute))
    for row in trail:
        detail = json.dumps(row.detail, sort_keys=True, ensure_ascii=False)
        print(
            f"  {_when(row.at)}  {row.actor:<24} {row.subject_type} {row.subject_id} "
            f"{row.action}  {detail}"
        )
    return EXIT_OK


def _parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    store_arguments(common)
    parser = argparse.ArgumentParser(prog=PROG, description="Disputes on trades and bills.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="ACTION")

    opening = commands.add_parser(
        "open",
        help="for a party: dispute a subject, as the operator account of $REX_OPERATOR_URL",
    )
    opening.add_argument("--member", required=True, help="the member opening it (a party)")
    subject = opening.add_mutually_exclusive_group(required=True)
    subject.add_argument("--trade", help="trade id")
    subject.add_argument("--bill", help="bill id")
    opening.add_argument("--reason", required=True, help="why (kept in the audit log)")
    timeout_argument(opening)
    actor_arguments(opening)
    opening.set_defaults(run=None)

    resolving = commands.add_parser(
        "resolve",
        help="an operator decides, as the operator account of $REX_OPERATOR_URL (role "
        "settlement_ops); the settlement worker applies and audits it",
    )
    resolving.add_argument("dispute_id")
    verdict = resolving.add_mutually_exclusive_group(required=True)
    verdict.add_argument("--uphold", action="store_true", help="reverse and cancel the subject")
    verdict.add_argument("--reject", action="store_true", help="settlement resumes")
    resolving.add_argument("--note", required=True, help="why (kept in the audit log)")
    timeout_argument(resolving)
    resolving.set_defaults(run=None)

    listing = commands.add_parser(
        "list", parents=[common], help="list disputes (reads the store; changes nothing)"
    )
    listing.add_argument("--state", choices=["open", "upheld", "rejected", "all"], default="all")
    listing.add_argument("--member", default=None, help="opened by, or party to, this member")
    listing.add_argument("--subject", default=None, help="a trade or bill id")
    listing.set_defaults(run=_list)

    showing = commands.add_parser(
        "show", parents=[common], help="a dispute and its audit trail (reads the store)"
    )
    showing.add_argument("dispute_id")
    showing.set_defaults(run=_show)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    arguments = None if argv is None else list(argv)
    parsed = parse(_parser(), arguments)
    if isinstance(parsed, int):
        return parsed
    if parsed.command == "resolve":  # over AMQP, as the operator: no store opened here
        return _resolve(parsed)
    if parsed.command == "open":
        refused = named_actor(PROG, parsed)
        if refused is None:
            refused = check_members(PROG, parsed.member)
        return _open(parsed) if refused is None else refused
    started = open_for_update(
        _parser(),
        arguments,
        PROG,
        lambda a: [getattr(a, "member", None)],
    )
    if isinstance(started, int):
        return started
    args, store, where = started

    try:
        return on_store(PROG, where, lambda: int(args.run(store, args)))
    except RuleViolation as error:
        code = getattr(error, "code", type(error).__name__)
        print(f"{PROG}: refused ({code}): {error}", file=sys.stderr)
        return EXIT_REFUSED
    finally:
        store.close()


if __name__ == "__main__":
    raise SystemExit(main())
