"""`rex payments`: the payments an operator must look at, and what an operator may do.

    rex payments                                  counts by state
    rex payments --review                         the manual-review queue, and payments
                                                  whose status a bank has not told yet
    rex payments --show PAYMENT_ID                one payment and its whole history
    rex payments --release PAYMENT_ID --bank B --note WHY
                                                  send a payment in review again, on bank B
    rex payments --mark-paid PAYMENT_ID --reference REF
                                                  it was paid outside REX (bank reference)
    rex payments --resolve PAYMENT_ID (--paid --reference REF | --failed) --note WHY
                                                  an unknown payment, settled with what
                                                  its bank said: it paid, or it did not
                                                  and never will (then it is retried)

--release, --resolve and --mark-paid are an operator's actions: each is sent to the
settlement worker as a settlement request (payment_release, payment_resolve,
payment_mark_paid) of the operator account of $REX_OPERATOR_URL (else $REX_BROKER_URL),
which needs the role settlement_ops; the worker records that login in the payment's
history, and never a name given here. The rest reads the settlement store (--database-url
or REX_DATABASE_URL, else SQLite under --data-dir or REX_DATA_DIR). A running payer picks
a released payment up on its next sweep. Times (the history, a send's deadline, a retry)
are shown in exchange (Beijing) time; `--json` prints JSON (the history's times as ISO 8601
strings, ``updated_at`` in epoch nanoseconds). Exit status: 0 done, 1 refused, 2 usage (for
the three actions also a login that is no operator account), 3 no answer from the worker,
4-7 the broker, 8 the store cannot be opened (docs/members/cli.md, "Exit status").
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from typing import Any

from rex.exchange_time import format_ns
from rex.operators import Action
from rex.settlement_protocol import SettlementAnswer
from settlement_worker.cli_support import (
    EXIT_OK,
    EXIT_REFUSED,
    as_operator,
    on_store,
    open_from_args,
    store_arguments,
    timeout_argument,
)
from settlement_worker.payments import rules as pm
from settlement_worker.payments.payer import review_queue
from settlement_worker.payments.sql import (
    counts_by_state,
    load_history,
    load_payment,
    payments_in_states,
)
from settlement_worker.plans.rules import format_minor
from settlement_worker.store import Store

PROG = "rex payments"

__all__ = ["build_parser", "main"]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG,
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    action = parser.add_mutually_exclusive_group()
    action.add_argument("--review", action="store_true", help="list payments needing an operator")
    action.add_argument("--show", metavar="PAYMENT_ID")
    action.add_argument("--release", metavar="PAYMENT_ID")
    action.add_argument("--mark-paid", metavar="PAYMENT_ID")
    action.add_argument("--resolve", metavar="PAYMENT_ID")
    outcome = parser.add_mutually_exclusive_group()
    outcome.add_argument("--paid", action="store_true", help="with --resolve: the bank paid it")
    outcome.add_argument(
        "--failed", action="store_true", help="with --resolve: the bank did not, and never will"
    )
    parser.add_argument("--bank", help="with --release: the bank to pay through")
    parser.add_argument(
        "--reference", help="with --mark-paid or --resolve --paid: the bank's reference"
    )
    parser.add_argument(
        "--note",
        default="",
        help="with --release: why; with --resolve: what the bank said; with --mark-paid: optional",
    )
    parser.add_argument(
        "--actor",
        default=None,
        help="refused: --release, --resolve and --mark-paid act as the login of $REX_OPERATOR_URL",
    )
    timeout_argument(parser)
    parser.add_argument("--json", action="store_true", help="print JSON")
    store_arguments(parser)
    return parser


def main(argv: Sequence[str] | None = None, store: Store | None = None) -> int:
    """Run `rex payments`; `store` for tests (default: the configured store)."""
    parser = build_parser()
    args = parser.parse_args(list(sys.argv[1:] if argv is None else argv))
    if args.release and not args.bank:
        parser.error("--release needs --bank")
    if args.mark_paid and not args.reference:
        parser.error("--mark-paid needs --reference")
    if args.resolve and not (args.paid or args.failed):
        parser.error("--resolve needs --paid or --failed")
    if args.resolve and not args.note.strip():
        parser.error("--resolve needs --note: what the bank said")
    if args.resolve and args.paid and not args.reference:
        parser.error("--resolve --paid needs --reference")
    if (args.paid or args.failed) and not args.resolve:
        parser.error("--paid and --failed go with --resolve")
    if args.release and not args.note.strip():
        parser.error("--release needs --note: why it is sent again (kept in its history)")
    if args.actor:
        parser.error(
            "--actor is refused: --release, --resolve and --mark-paid act as the operator "
            "account of $REX_OPERATOR_URL, which the settlement worker records"
        )
    if args.release or args.resolve or args.mark_paid:  # over AMQP, as the operator
        return _as_operator(args)
    own = store is None
    where = "the settlement store"
    if store is None:
        opened = open_from_args(args, PROG)
        if isinstance(opened, int):
            return opened
        store, where = opened
    try:
        return on_store(PROG, where, lambda: _run(args, store))
    except pm.PaymentError as error:
        print(f"{PROG}: {error}", file=sys.stderr)
        return EXIT_REFUSED
    finally:
        if own:
            store.close()


def _run(args: argparse.Namespace, store: Store) -> int:
    if args.show:
        with store.transaction() as tx:
            loaded = load_payment(tx, args.show)
            history = load_history(tx, args.show)
        if loaded is None:
            raise pm.PaymentError(f"no payment {args.show}")
        payment = loaded[0]
        events = [
            {
                "at": _time(e.at),
                "event": e.kind,
                "to": str(e.to_state),
                "actor": a,
                **{k: _time(v) if _is_time(k, v) else v for k, v in e.detail.items()},
            }
            for e, a in history
        ]
        lines = [_line(payment)] + [
            f"  {ev['at']}  {ev['event']:<14} -> {ev['to']:<14} {_detail(ev)}" for ev in events
        ]
        _out(args, "\n".join(lines), {**_as_dict(payment), "history": events})
    elif args.review:
        review = review_queue(store)
        with store.transaction() as tx:
            stuck = payments_in_states(tx, [pm.PaymentState.UNKNOWN_REVIEW])
            unknown = payments_in_states(tx, [pm.PaymentState.UNKNOWN])
        text = [f"manual review: {len(review)}"] + [_line(p) for p in review]
        text += [f"unknown, no longer queried (--resolve): {len(stuck)}"]
        text += [_line(p) for p in stuck]
        text += [f"unknown (being queried): {len(unknown)}"] + [_line(p) for p in unknown]
        data = {
            "manual_review": [_as_dict(p) for p in review],
            "unknown_review": [_as_dict(p) for p in stuck],
            "unknown": [_as_dict(p) for p in unknown],
        }
        _out(args, "\n".join(text), data)
    else:
        with store.transaction() as tx:
            counts = counts_by_state(tx)
        table = "\n".join(f"{state:<14} {n}" for state, n in sorted(counts.items()))
        _out(args, table or "no payments", counts)
    return EXIT_OK


def _as_operator(args: argparse.Namespace) -> int:
    """--release, --resolve or --mark-paid, as the settlement request of that kind."""
    body: dict[str, object]
    if args.mark_paid:
        kind = Action.PAYMENT_MARK_PAID
        # The desk keeps a reason with every request that changes something; the note is
        # optional here, so the reference stands in for it.
        note = args.note.strip() or f"paid outside REX, bank reference {args.reference}"
        body = {"payment_id": args.mark_paid, "reference": args.reference, "reason": note}
    elif args.release:
        kind = Action.PAYMENT_RELEASE
        body = {"payment_id": args.release, "bank": args.bank, "reason": args.note}
    else:
        kind = Action.PAYMENT_RESOLVE
        body = {"payment_id": args.resolve, "paid": args.paid, "reason": args.note}
        if args.paid:
            body["reference"] = args.reference

    def accepted(answer: SettlementAnswer) -> None:
        payment, state = answer.detail.get("payment_id"), answer.detail.get("state")
        if args.mark_paid:
            text = f"{payment} marked paid ({args.reference})"
        elif args.release:
            text = f"released {payment} on {args.bank}: now {state}"
        else:
            text = f"{payment} resolved: now {state}"
        _out(args, text, answer.detail)

    return as_operator(PROG, kind.value, body, args.timeout, accepted)


def _time(ns: int) -> str:
    return format_ns(ns)


def _is_time(key: str, value: Any) -> bool:
    """A payment event's times: ``deadline`` (a send's), ``*_at`` (``retry_at``), in ns."""
    return isinstance(value, int) and (key == "deadline" or key.endswith("_at"))


def _line(p: pm.Payment) -> str:
    amount = format_minor(p.amount.minor, p.amount.currency)
    return (
        f"{p.payment_id}  {p.state}  {amount}  {p.payer} -> {p.payee}  bank={p.bank}"
        f"  attempts={p.attempts}  queries={p.queries}  last_error={p.last_error or '-'}"
        f"  updated={_time(p.updated_at)}"
    )


def _detail(event: dict[str, Any]) -> str:
    skip = {"at", "event", "to"}
    return " ".join(f"{k}={v}" for k, v in event.items() if k not in skip)


def _as_dict(p: pm.Payment) -> dict[str, Any]:
    return {
        "payment_id": p.payment_id,
        "obligation_id": p.obligation_id,
        "payer": p.payer,
        "payee": p.payee,
        "amount": p.amount.minor,
        "currency": p.amount.currency,
        "bank": p.bank,
        "state": str(p.state),
        "attempts": p.attempts,
        "queries": p.queries,
        "last_error": p.last_error,
        "updated_at": p.updated_at,
    }


def _out(args: argparse.Namespace, text: str, data: Any) -> None:
    print(json.dumps(data, sort_keys=True) if args.json else text)


if __name__ == "__main__":
    raise SystemExit(main())
