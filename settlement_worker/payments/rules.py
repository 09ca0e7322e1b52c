"""The payment state machine: pure, no I/O, no clock (docs/internals/settlement/payments.md).

::

    NEW --tick--> SENT --PAID--> CONFIRMED
                   |  \\--REJECTED--> FAILED --tick (backoff)--> SENT ...
                   |
                   +--deadline passed--> UNKNOWN --tick--> query --PAID--> CONFIRMED
                                            ^                 \\--NOT_FOUND--> FAILED
                                            +--no answer / PENDING (query again, backoff)

    `max_attempts` failed sends on a bank: the next fallback bank (attempts reset to 0);
    none left: MANUAL_REVIEW --release(bank)--> NEW | --mark_paid_manually--> PAID_MANUALLY

    UNKNOWN too long (`unknown_review_after` or `unknown_review_after_queries`):
    UNKNOWN_REVIEW --resolve(paid)--> CONFIRMED | --resolve(failed)--> FAILED ...

The key rule: a payment is sent only from NEW or FAILED, and it becomes FAILED only when
its last send is known not to have paid (REJECTED, or a query answering NOT_FOUND after the
send's deadline). An UNKNOWN send is queried, never re-sent and never re-routed to another
bank, so no payment is paid twice; banks dedupe by payment id on top of that. A payment
unknown for too long stops being queried and waits for an operator in UNKNOWN_REVIEW, which
is not MANUAL_REVIEW: its last send may still have paid, so it cannot be released or marked
paid -- only resolved by what the bank says, `resolve(paid=...)`.

Every function takes `now` (integer ns) and returns a :class:`Step`: the new payment and the
actions for the driver to perform (after persisting the payment): :class:`SendPayment`,
:class:`QueryStatus`, :class:`Alert`. Backoff jitter is a hash of the payment id, so the
same inputs always give the same schedule.
"""

from __future__ import annotations

import dataclasses
import hashlib
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Final, NamedTuple

from rex.money import Money
from settlement_worker.payments.banks import BankOutcome, BankRequestKind, BankResult
from settlement_worker.plans.receipt_limits import PaymentKind
from settlement_worker.plans.rules import PaymentPlan

__all__ = [
    "ACTIVE_STATES",
    "SECOND",
    "Action",
    "Alert",
    "AlertKind",
    "Payment",
    "PaymentError",
    "PaymentEvent",
    "PaymentState",
    "QueryStatus",
    "RetryPolicy",
    "SendPayment",
    "Step",
    "backoff",
    "cash_payments",
    "hold_for_review",
    "mark_paid_manually",
    "new_payment",
    "on_result",
    "payment_id_for",
    "release",
    "resolve",
    "tick",
]

SECOND: Final = 1_000_000_000  # ns


class PaymentState(StrEnum):
    NEW = "new"
    SENT = "sent"
    UNKNOWN = "unknown"
    FAILED = "failed"
    CONFIRMED = "confirmed"
    MANUAL_REVIEW = "manual_review"
    PAID_MANUALLY = "paid_manually"
    # Unknown for too long: no longer queried; an operator asks the bank and resolves it.
    UNKNOWN_REVIEW = "unknown_review"


#: The states the payer drives (they have a `next_attempt_at`).
ACTIVE_STATES: Final = frozenset(
    {PaymentState.NEW, PaymentState.SENT, PaymentState.UNKNOWN, PaymentState.FAILED}
)
_PAID_STATES: Final = frozenset({PaymentState.CONFIRMED, PaymentState.PAID_MANUALLY})
#: A send went out and whether it paid is not known yet.
_IN_DOUBT: Final = frozenset({PaymentState.SENT, PaymentState.UNKNOWN, PaymentState.UNKNOWN_REVIEW})


class AlertKind(StrEnum):
    FALLBACK = "fallback"  # moved to the next bank
    MANUAL_REVIEW = "manual_review"  # every bank failed: an operator must act
    UNRESOLVED = "unresolved"  # many queries unanswered: the bank may be down
    UNKNOWN_REVIEW = "unknown_review"  # unknown too long: queries stopped, an operator must ask
    LATE_PAID = "late_paid"  # a bank reports PAID for an attempt no longer current
    DOUBLE_PAYMENT = "double_payment"  # paid, and a bank reports paying it (again)


class PaymentError(ValueError):
    """An operation not allowed in the payment's state."""


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Retry, timeout and query timing, in ns (docs/internals/settlement/payments.md has the
    defaults)."""

    max_attempts: int = 3  # sends per bank before moving on
    base_delay: int = 1 * SECOND  # backoff after the first failure
    max_delay: int = 60 * SECOND
    multiplier: int = 2
    jitter_percent: int = 20  # +- this much, deterministic per payment
    send_timeout: int = 5 * SECOND  # the send's deadline: sent_at + this
    query_grace: int = SECOND // 2  # after the deadline, before the first query
    query_base_delay: int = 1 * SECOND
    query_max_delay: int = 30 * SECOND
    alert_after_queries: int = 10
    # Querying stops and an operator takes over after this long past the send's deadline,
    # or this many unanswered queries, whichever comes first: a bank silent for half an
    # hour needs a person on the telephone, and an endless query loop hides that.
    unknown_review_after: int = 30 * 60 * SECOND
    unknown_review_after_queries: int = 60

    def __post_init__(self) -> None:
        if self.max_attempts < 1 or self.multiplier < 1:
            raise ValueError("max_attempts and multiplier must be at least 1")
        if self.unknown_review_after <= 0 or self.unknown_review_after_queries < 1:
            raise ValueError("the bounds on an unknown payment must be positive")
        if not 0 <= self.jitter_percent < 100:
            raise ValueError("jitter_percent must be in 0..99")
        if min(self.base_delay, self.send_timeout, self.query_base_delay) <= 0:
            raise ValueError("delays and timeouts must be positive")


@dataclass(frozen=True, slots=True)
class PaymentEvent:
    """One line of a payment's history."""

    at: int
    kind: str
    from_state: PaymentState | None
    to_state: PaymentState
    detail: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Payment:
    """One bank transfer; `payment_id` is its idempotency key at every bank.

    `attempts`: sends on the current `bank` (reset on a switch); `send_no`: sends on all
    banks, carried to the bank as `attempt` to recognise stale replies; `deadline`: the
    current send's; `queries`: status queries in the current UNKNOWN phase; `fallbacks`:
    the banks still to try after `bank`."""

    payment_id: str
    obligation_id: str
    payer: str
    payee: str
    amount: Money
    bank: str
    state: PaymentState = PaymentState.NEW
    attempts: int = 0
    next_attempt_at: int | None = None
    history: tuple[PaymentEvent, ...] = ()
    fallbacks: tuple[str, ...] = ()
    send_no: int = 0
    deadline: int | None = None
    queries: int = 0
    last_error: str = ""
    created_at: int = 0
    updated_at: int = 0


@dataclass(frozen=True, slots=True)
class SendPayment:
    payment_id: str
    bank: str
    attempt: int
    payer: str
    payee: str
    amount: Money
    deadline: int


@dataclass(frozen=True, slots=True)
class QueryStatus:
    payment_id: str
    bank: str
    attempt: int
    deadline: int


@dataclass(frozen=True, slots=True)
class Alert:
    payment_id: str
    kind: AlertKind
    text: str


Action = SendPayment | QueryStatus | Alert


class Step(NamedTuple):
    payment: Payment
    actions: tuple[Action, ...] = ()


def payment_id_for(obligation_id: str, part: int) -> str:
    """The idempotency key of part `part` of an obligation's plan."""
    return f"pay-{obligation_id}-{part}"


def new_payment(
    payment_id: str,
    obligation_id: str,
    payer: str,
    payee: str,
    amount: Money,
    bank: str,
    now: int,
    fallbacks: tuple[str, ...] = (),
) -> Payment:
    """A NEW payment, due at once."""
    if not isinstance(amount, Money) or amount.minor <= 0:
        raise PaymentError(f"{payment_id}: amount must be positive Money, got {amount!r}")
    if bank in fallbacks:
        raise PaymentError(f"{payment_id}: the fallback banks must differ from {bank}")
    created = PaymentEvent(
        now, "created", None, PaymentState.NEW, {"bank": bank, "fallbacks": list(fallbacks)}
    )
    return Payment(
        payment_id,
        obligation_id,
        payer,
        payee,
        amount,
        bank,
        next_attempt_at=now,
        history=(created,),
        fallbacks=fallbacks,
        created_at=now,
        updated_at=now,
    )


def cash_payments(
    plan: PaymentPlan, bank: str, now: int, fallbacks: tuple[str, ...] = ()
) -> list[Payment]:
    """A payment per cash part of `plan` (bills are issued, not transferred), keyed by the
    part's index in the plan."""
    return [
        new_payment(
            payment_id_for(plan.obligation_id, index),
            plan.obligation_id,
            plan.payer,
            plan.payee,
            part.amount,
            bank,
            now,
            fallbacks,
        )
        for index, part in enumerate(plan.parts)
        if part.kind is PaymentKind.CASH
    ]


def backoff(payment_id: str, n: int, base: int, cap: int, multiplier: int, jitter: int) -> int:
    """Delay (ns) before retry `n` (1, 2, ...): `base * multiplier**(n-1)`, jittered by
    +-`jitter` percent from a hash of the payment id and `n`, then capped at `cap`."""
    raw = base
    for _ in range(min(max(n - 1, 0), 64)):  # exponent bounded: the cap is reached anyway
        raw = min(cap, raw * multiplier)
    digest = hashlib.sha256(f"{payment_id}:{n}".encode()).digest()
    percent = int.from_bytes(digest[:4], "big") % (2 * jitter + 1) - jitter
    return min(cap, raw * (100 + percent) // 100)


def _move(p: Payment, now: int, kind: str, to: PaymentState, **changes: Any) -> Payment:
    """`p` in state `to` with `changes`, and an event for the history."""
    detail = {k: v for k, v in changes.pop("detail", {}).items() if v is not None}
    event = PaymentEvent(now, kind, p.state, to, detail)
    return dataclasses.replace(p, state=to, updated_at=now, history=(*p.history, event), **changes)


def tick(p: Payment, now: int, policy: RetryPolicy) -> Step:
    """Time passes: send a due NEW/FAILED payment, time out a SENT one, query an UNKNOWN one.
    Anything not due, or not active, is returned unchanged with no actions."""
    due = p.next_attempt_at is not None and now >= p.next_attempt_at
    if not due:
        return Step(p)
    if p.state in (PaymentState.NEW, PaymentState.FAILED):
        deadline = now + policy.send_timeout
        attempt = p.send_no + 1
        sent = _move(
            p,
            now,
            "sent",
            PaymentState.SENT,
            attempts=p.attempts + 1,
            send_no=attempt,
            deadline=deadline,
            queries=0,
            next_attempt_at=deadline,
            detail={"bank": p.bank, "attempt": attempt, "deadline": deadline},
        )
        send = SendPayment(p.payment_id, p.bank, attempt, p.payer, p.payee, p.amount, deadline)
        return Step(sent, (send,))
    if p.state is PaymentState.SENT:
        assert p.deadline is not None
        first_query = p.deadline + policy.query_grace
        unknown = _move(
            p,
            now,
            "timeout",
            PaymentState.UNKNOWN,
            queries=0,
            next_attempt_at=first_query,
            detail={"bank": p.bank, "attempt": p.send_no},
        )
        return tick(unknown, now, policy) if now >= first_query else Step(unknown)
    if p.state is PaymentState.UNKNOWN:
        assert p.deadline is not None
        if (
            p.queries >= policy.unknown_review_after_queries
            or now - p.deadline >= policy.unknown_review_after
        ):
            return _to_unknown_review(p, now)
        queries = p.queries + 1
        wait = backoff(
            p.payment_id,
            queries,
            policy.query_base_delay,
            policy.query_max_delay,
            policy.multiplier,
            policy.jitter_percent,
        )
        # No event for a query: it changes nothing but the schedule.
        queried = dataclasses.replace(
            p, queries=queries, next_attempt_at=now + wait, updated_at=now
        )
        actions: list[Action] = [QueryStatus(p.payment_id, p.bank, p.send_no, p.deadline)]
        if queries == policy.alert_after_queries:
            text = f"{queries} status queries to {p.bank} unanswered; the payment stays unknown"
            actions.append(Alert(p.payment_id, AlertKind.UNRESOLVED, text))
        return Step(queried, tuple(actions))
    return Step(p)


def _to_unknown_review(p: Payment, now: int) -> Step:
    assert p.deadline is not None
    text = (
        f"{p.queries} status queries to {p.bank} over {(now - p.deadline) // SECOND} s left"
        f" attempt {p.send_no} unknown; stopped querying: ask the bank, then"
        " `rex payments --resolve` it"
    )
    review = _move(
        p,
        now,
        "unknown_review",
        PaymentState.UNKNOWN_REVIEW,
        next_attempt_at=None,
        detail={"bank": p.bank, "attempt": p.send_no, "queries": p.queries},
    )
    return Step(review, (Alert(p.payment_id, AlertKind.UNKNOWN_REVIEW, text),))


def on_result(p: Payment, result: BankResult, now: int, policy: RetryPolicy) -> Step:
    """A bank's answer. Only an answer about the current send (same bank and attempt) moves
    an unpaid payment, except PAID, which is a fact wherever it comes from: the bank paid
    this payment id (by whichever attempt: it dedupes by id, so at most once)."""
    if result.payment_id != p.payment_id:
        raise PaymentError(f"result for {result.payment_id} applied to {p.payment_id}")
    current = result.bank == p.bank and result.attempt == p.send_no
    if result.outcome is BankOutcome.PAID:
        return _on_paid(p, result, now)
    if not current or p.state not in _IN_DOUBT:
        return Step(p)  # stale, or already resolved: nothing to learn
    if result.outcome is BankOutcome.PENDING:
        return Step(p)  # the bank's clock is before the deadline: not an answer yet
    if result.kind is BankRequestKind.QUERY and p.state is PaymentState.SENT:
        return Step(p)
    # A definite failure, also in UNKNOWN_REVIEW: the answer to a query sent before the
    # payer stopped querying resolves it as well as an operator would.
    reason = result.reason or str(result.outcome)
    return _fail(p, now, policy, reason)


def _on_paid(p: Payment, result: BankResult, now: int) -> Step:
    detail = {"bank": result.bank, "attempt": result.attempt, "via": str(result.kind)}
    if p.state in _PAID_STATES:
        if p.state is PaymentState.CONFIRMED and result.bank == p.bank:
            return Step(p)  # the same payment reported again (a reply after the query's)
        text = f"{result.bank} reports paying {p.payment_id}, which was already {p.state}"
        return Step(p, (Alert(p.payment_id, AlertKind.DOUBLE_PAYMENT, text),))
    confirmed = _move(
        p,
        now,
        "confirmed",
        PaymentState.CONFIRMED,
        bank=result.bank,
        next_attempt_at=None,
        detail=detail,
    )
    if result.bank == p.bank and p.state in _IN_DOUBT:
        # Paid at the bank the current send went to: by this attempt or, reported by a
        # stale reply, an earlier one -- either way once, as the bank dedupes by id.
        return Step(confirmed)
    text = (
        f"{result.bank} reports paying attempt {result.attempt} of {p.payment_id} while it "
        f"was {p.state} (attempt {p.send_no} on {p.bank}); confirmed, check for a double payment"
    )
    return Step(confirmed, (Alert(p.payment_id, AlertKind.LATE_PAID, text),))


def _fail(p: Payment, now: int, policy: RetryPolicy, reason: str) -> Step:
    """The current send is known not to have paid."""
    detail: dict[str, Any] = {"bank": p.bank, "attempt": p.send_no, "reason": reason}
    if p.attempts < policy.max_attempts:
        wait = backoff(
            p.payment_id,
            p.attempts,
            policy.base_delay,
            policy.max_delay,
            policy.multiplier,
            policy.jitter_percent,
        )
        failed = _move(
            p,
            now,
            "failed",
            PaymentState.FAILED,
            next_attempt_at=now + wait,
            last_error=reason,
            detail={**detail, "retry_at": now + wait},
        )
        return Step(failed)
    if p.fallbacks:
        bank, rest = p.fallbacks[0], p.fallbacks[1:]
        moved = _move(
            p,
            now,
            "fallback",
            PaymentState.FAILED,
            bank=bank,
            fallbacks=rest,
            attempts=0,
            next_attempt_at=now,
            last_error=reason,
            detail={**detail, "to_bank": bank},
        )
        text = f"{p.attempts} attempts failed at {p.bank} (last: {reason}); trying {bank}"
        return Step(moved, (Alert(p.payment_id, AlertKind.FALLBACK, text),))
    review = _move(
        p,
        now,
        "manual_review",
        PaymentState.MANUAL_REVIEW,
        next_attempt_at=None,
        last_error=reason,
        detail=detail,
    )
    text = f"{p.attempts} attempts failed at {p.bank} (last: {reason}); needs an operator"
    return Step(review, (Alert(p.payment_id, AlertKind.MANUAL_REVIEW, text),))


def resolve(
    p: Payment,
    paid: bool,
    actor: str,
    note: str,
    now: int,
    policy: RetryPolicy,
    reference: str = "",
) -> Step:
    """An operator settles a payment whose last send is unknown (UNKNOWN, or UNKNOWN_REVIEW
    once the payer stopped querying) with what the bank told them: ``paid`` -- the bank
    executed it (CONFIRMED, with the bank's ``reference``) -- or not, and the send can never
    be executed any more: a failed attempt, handled as a NOT_FOUND would be (retry,
    fallback or manual review)."""
    if p.state not in _IN_DOUBT or p.state is PaymentState.SENT:
        raise PaymentError(
            f"{p.payment_id} is {p.state}; only an unknown payment is resolved this way"
        )
    if not note.strip():
        raise PaymentError("resolving needs a note: what the bank said")
    detail = {"actor": actor, "note": note, "bank": p.bank, "attempt": p.send_no}
    if paid:
        if not reference:
            raise PaymentError("a payment resolved as paid needs the bank's reference")
        confirmed = _move(
            p,
            now,
            "resolved_paid",
            PaymentState.CONFIRMED,
            next_attempt_at=None,
            detail={**detail, "reference": reference},
        )
        return Step(confirmed)
    step = _fail(p, now, policy, f"resolved by {actor}: {note}")
    # The operator is the actor of the failure, whatever the policy made of it.
    last = step.payment.history[-1]
    marked = dataclasses.replace(last, detail={**last.detail, **detail})
    return Step(
        dataclasses.replace(step.payment, history=(*step.payment.history[:-1], marked)),
        step.actions,
    )


def hold_for_review(p: Payment, now: int, reason: str) -> Step:
    """Stop a payment that has nothing in flight (NEW or FAILED) and hand it to an operator,
    e.g. because its bank is not configured in this payer."""
    if p.state not in (PaymentState.NEW, PaymentState.FAILED):
        raise PaymentError(f"{p.payment_id} is {p.state}; only NEW or FAILED can be held")
    held = _move(
        p,
        now,
        "manual_review",
        PaymentState.MANUAL_REVIEW,
        next_attempt_at=None,
        last_error=reason,
        detail={"bank": p.bank, "reason": reason},
    )
    return Step(held, (Alert(p.payment_id, AlertKind.MANUAL_REVIEW, reason),))


def release(p: Payment, bank: str, actor: str, now: int, note: str = "") -> Step:
    """An operator sends a payment in manual review again, on `bank` (no further fallback).
    Safe: a payment reaches review only when no send of it can still pay."""
    if p.state is not PaymentState.MANUAL_REVIEW:
        raise PaymentError(f"{p.payment_id} is {p.state}; only a payment in review is released")
    released = _move(
        p,
        now,
        "released",
        PaymentState.NEW,
        bank=bank,
        fallbacks=(),
        attempts=0,
        next_attempt_at=now,
        detail={"actor": actor, "bank": bank, "note": note or None},
    )
    return Step(released)


def mark_paid_manually(p: Payment, actor: str, reference: str, now: int) -> Step:
    """An operator paid it outside the payer (e.g. at the bank's counter)."""
    if p.state is not PaymentState.MANUAL_REVIEW:
        raise PaymentError(f"{p.payment_id} is {p.state}; only a payment in review is marked")
    if not reference:
        raise PaymentError("a manual payment needs the bank's reference")
    paid = _move(
        p,
        now,
        "paid_manually",
        PaymentState.PAID_MANUALLY,
        next_attempt_at=None,
        detail={"actor": actor, "reference": reference},
    )
    return Step(paid)
