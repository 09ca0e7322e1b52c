"""Every rule of the payment state machine (settlement_worker.payments.rules), one test each."""

from __future__ import annotations

import dataclasses

import pytest

from rex.money import Money
from settlement_worker.payments import rules as pm
from settlement_worker.payments.banks import BankOutcome, BankRequestKind, BankResult
from settlement_worker.payments.rules import (
    SECOND,
    Alert,
    AlertKind,
    Payment,
    PaymentError,
    PaymentState,
    QueryStatus,
    RetryPolicy,
    SendPayment,
)

POLICY = RetryPolicy()
T0 = 1_800_000_000 * SECOND


def payment(fallbacks: tuple[str, ...] = ("boc-ganzhou",)) -> Payment:
    return pm.new_payment(
        pm.payment_id_for("obl-PRND-OX-1", 0),
        "obl-PRND-OX-1",
        "ganzhou-magnet",
        "baotou-metals",
        Money(41_500_000, "CNY"),
        "icbc-baotou",
        T0,
        fallbacks,
    )


def sent(p: Payment | None = None, now: int | None = None) -> Payment:
    """p (default: a new payment) sent when due (or at `now`)."""
    p = p or payment()
    step = pm.tick(p, p.next_attempt_at if now is None else now, POLICY)  # type: ignore[arg-type]
    assert step.payment.state is PaymentState.SENT
    return step.payment


def send_result(p: Payment, outcome: BankOutcome, reason: str = "") -> BankResult:
    return BankResult(BankRequestKind.SEND, p.payment_id, p.bank, p.send_no, outcome, reason)


def query_result(p: Payment, outcome: BankOutcome, reason: str = "") -> BankResult:
    return BankResult(BankRequestKind.QUERY, p.payment_id, p.bank, p.send_no, outcome, reason)


def unknown(p: Payment | None = None) -> Payment:
    s = sent(p)
    assert s.deadline is not None
    step = pm.tick(s, s.deadline, POLICY)
    assert step.payment.state is PaymentState.UNKNOWN
    return step.payment


def fail_once(p: Payment) -> Payment:
    """Send p (when due) and have the bank reject it."""
    assert p.next_attempt_at is not None
    s = pm.tick(p, p.next_attempt_at, POLICY).payment
    return pm.on_result(s, send_result(s, BankOutcome.REJECTED, "declined"), s.updated_at, POLICY)[
        0
    ]


def test_idempotency_key_is_derived_from_obligation_and_part() -> None:
    assert pm.payment_id_for("obl-PRND-OX-7", 2) == "pay-obl-PRND-OX-7-2"


def test_a_new_payment_is_due_at_once() -> None:
    p = payment()
    assert p.state is PaymentState.NEW
    assert p.next_attempt_at == T0
    assert [e.kind for e in p.history] == ["created"]


def test_a_payment_needs_a_positive_amount_and_distinct_fallbacks() -> None:
    with pytest.raises(PaymentError):
        pm.new_payment("p", "o", "a", "b", Money(0, "CNY"), "x", T0)
    with pytest.raises(PaymentError):
        pm.new_payment("p", "o", "a", "b", Money(1, "CNY"), "x", T0, ("x",))


def test_nothing_happens_before_a_payment_is_due() -> None:
    p = payment()
    assert pm.tick(p, T0 - 1, POLICY) == (p, ())


def test_a_due_payment_is_sent_with_a_deadline() -> None:
    step = pm.tick(payment(), T0, POLICY)
    p = step.payment
    assert p.state is PaymentState.SENT
    assert p.attempts == 1 and p.send_no == 1
    assert p.deadline == T0 + POLICY.send_timeout == p.next_attempt_at
    assert step.actions == (
        SendPayment(
            p.payment_id,
            "icbc-baotou",
            1,
            "ganzhou-magnet",
            "baotou-metals",
            Money(41_500_000, "CNY"),
            p.deadline,
        ),
    )


def test_paid_confirms() -> None:
    s = sent()
    step = pm.on_result(s, send_result(s, BankOutcome.PAID), T0 + 1, POLICY)
    assert step.payment.state is PaymentState.CONFIRMED
    assert step.payment.next_attempt_at is None
    assert step.actions == ()


def test_rejected_retries_after_backoff_on_the_same_bank() -> None:
    s = sent()
    step = pm.on_result(s, send_result(s, BankOutcome.REJECTED, "declined"), T0 + 5, POLICY)
    p = step.payment
    assert p.state is PaymentState.FAILED and p.bank == "icbc-baotou"
    assert p.last_error == "declined"
    wait = pm.backoff(p.payment_id, 1, POLICY.base_delay, POLICY.max_delay, 2, 20)
    assert p.next_attempt_at == T0 + 5 + wait
    assert pm.tick(p, T0 + 5 + wait - 1, POLICY).actions == ()
    again = pm.tick(p, T0 + 5 + wait, POLICY)
    assert again.payment.state is PaymentState.SENT and again.payment.send_no == 2
    assert isinstance(again.actions[0], SendPayment) and again.actions[0].attempt == 2


def test_timeout_moves_a_sent_payment_to_unknown() -> None:
    s = sent()
    assert s.deadline is not None
    assert pm.tick(s, s.deadline - 1, POLICY).payment is s
    step = pm.tick(s, s.deadline, POLICY)
    assert step.payment.state is PaymentState.UNKNOWN
    assert step.payment.next_attempt_at == s.deadline + POLICY.query_grace
    assert step.actions == ()


def test_an_unknown_payment_is_queried_never_resent() -> None:
    u = unknown()
    assert u.next_attempt_at is not None and u.deadline is not None
    now = u.next_attempt_at
    for _ in range(30):  # however long it stays unknown
        step = pm.tick(u, now, POLICY)
        assert not any(isinstance(a, SendPayment) for a in step.actions)
        assert QueryStatus(u.payment_id, u.bank, u.send_no, u.deadline) in step.actions
        u = step.payment
        assert u.state is PaymentState.UNKNOWN and u.send_no == 1
        assert u.next_attempt_at is not None
        now = u.next_attempt_at


def test_a_timeout_well_after_the_deadline_queries_at_once() -> None:
    s = sent()
    assert s.deadline is not None
    step = pm.tick(s, s.deadline + 10 * SECOND, POLICY)
    assert step.payment.state is PaymentState.UNKNOWN
    assert [type(a) for a in step.actions] == [QueryStatus]


def test_queries_back_off_to_a_cap_and_alert_once() -> None:
    u = unknown()
    waits = []
    alerts = []
    assert u.next_attempt_at is not None
    now = u.next_attempt_at
    for _ in range(20):
        step = pm.tick(u, now, POLICY)
        u = step.payment
        assert u.next_attempt_at is not None
        waits.append(u.next_attempt_at - now)
        alerts += [a for a in step.actions if isinstance(a, Alert)]
        now = u.next_attempt_at
    assert waits[1] > waits[0]
    assert max(waits) <= POLICY.query_max_delay
    assert waits[-1] > POLICY.query_max_delay * 7 // 10  # at the cap (less jitter)
    assert [a.kind for a in alerts] == [AlertKind.UNRESOLVED]


def test_a_query_answering_paid_confirms() -> None:
    u = unknown()
    step = pm.on_result(u, query_result(u, BankOutcome.PAID), T0 + 6 * SECOND, POLICY)
    assert step.payment.state is PaymentState.CONFIRMED


def test_a_query_answering_not_found_counts_as_a_failed_attempt() -> None:
    u = unknown()
    step = pm.on_result(u, query_result(u, BankOutcome.NOT_FOUND), T0 + 6 * SECOND, POLICY)
    assert step.payment.state is PaymentState.FAILED
    assert step.payment.attempts == 1


def test_a_query_answering_pending_is_not_an_answer() -> None:
    u = unknown()
    assert (
        pm.on_result(u, query_result(u, BankOutcome.PENDING), T0 + 6 * SECOND, POLICY).payment is u
    )


def test_a_send_reply_after_the_timeout_still_resolves() -> None:
    u = unknown()
    step = pm.on_result(u, send_result(u, BankOutcome.PAID), T0 + 6 * SECOND, POLICY)
    assert step.payment.state is PaymentState.CONFIRMED
    u = unknown()
    step = pm.on_result(
        u, send_result(u, BankOutcome.REJECTED, "declined"), T0 + 6 * SECOND, POLICY
    )
    assert step.payment.state is PaymentState.FAILED


def test_a_query_reply_for_a_sent_payment_is_ignored() -> None:
    s = sent()
    assert pm.on_result(s, query_result(s, BankOutcome.NOT_FOUND), T0 + 1, POLICY).payment is s


def test_max_attempts_on_the_primary_switch_to_the_fallback_and_reset_attempts() -> None:
    p = payment()
    for _ in range(POLICY.max_attempts - 1):
        p = fail_once(p)
        assert p.state is PaymentState.FAILED and p.bank == "icbc-baotou"
    assert p.next_attempt_at is not None
    s = pm.tick(p, p.next_attempt_at, POLICY).payment
    step = pm.on_result(s, send_result(s, BankOutcome.REJECTED, "declined"), s.updated_at, POLICY)
    p = step.payment
    assert p.state is PaymentState.FAILED
    assert p.bank == "boc-ganzhou" and p.fallbacks == () and p.attempts == 0
    assert p.next_attempt_at == s.updated_at  # at once, on the new bank
    assert [a.kind for a in step.actions if isinstance(a, Alert)] == [AlertKind.FALLBACK]
    nxt = pm.tick(p, p.next_attempt_at, POLICY)
    assert isinstance(nxt.actions[0], SendPayment)
    assert nxt.actions[0].bank == "boc-ganzhou" and nxt.actions[0].attempt == 4


def test_max_attempts_on_the_fallback_go_to_manual_review() -> None:
    p = payment()
    for _ in range(2 * POLICY.max_attempts - 1):
        p = fail_once(p)
    assert p.next_attempt_at is not None
    s = pm.tick(p, p.next_attempt_at, POLICY).payment
    step = pm.on_result(s, send_result(s, BankOutcome.REJECTED, "declined"), s.updated_at, POLICY)
    assert step.payment.state is PaymentState.MANUAL_REVIEW
    assert step.payment.next_attempt_at is None
    assert [a.kind for a in step.actions if isinstance(a, Alert)] == [AlertKind.MANUAL_REVIEW]
    assert pm.tick(step.payment, T0 + 10**15, POLICY).payment is step.payment


def test_without_a_fallback_max_attempts_go_to_manual_review() -> None:
    p = payment(fallbacks=())
    for _ in range(POLICY.max_attempts):
        p = fail_once(p)
    assert p.state is PaymentState.MANUAL_REVIEW and p.bank == "icbc-baotou"


def test_an_unknown_payment_never_switches_bank() -> None:
    """Even after all attempts, a payment whose last send is unknown stays on its bank."""
    p = payment()
    for _ in range(POLICY.max_attempts - 1):
        p = fail_once(p)
    u = unknown(p)
    assert u.attempts == POLICY.max_attempts
    for _ in range(50):
        assert u.next_attempt_at is not None
        step = pm.tick(u, u.next_attempt_at, POLICY)
        u = step.payment
        assert u.bank == "icbc-baotou" and u.state is PaymentState.UNKNOWN
        assert all(not isinstance(a, SendPayment) for a in step.actions)


def test_a_stale_reply_is_ignored() -> None:
    p = fail_once(payment())
    s = sent(p)  # attempt 2 in flight
    old = BankResult(
        BankRequestKind.SEND, s.payment_id, s.bank, 1, BankOutcome.REJECTED, "declined"
    )
    assert pm.on_result(s, old, s.updated_at + 1, POLICY).payment is s
    other = dataclasses.replace(old, attempt=2, bank="ccb-ningbo")
    assert pm.on_result(s, other, s.updated_at + 1, POLICY).payment is s


def test_paid_from_the_current_bank_confirms_whichever_attempt_it_names() -> None:
    """A stale query's PAID still means the bank paid this id, once (it dedupes)."""
    p = fail_once(payment())
    s = sent(p)
    old = BankResult(BankRequestKind.QUERY, s.payment_id, s.bank, 1, BankOutcome.PAID)
    step = pm.on_result(s, old, s.updated_at + 1, POLICY)
    assert step.payment.state is PaymentState.CONFIRMED
    assert step.actions == ()


def test_paid_from_a_bank_not_being_paid_through_confirms_and_alerts() -> None:
    p = fail_once(payment())  # FAILED: nothing in flight, yet the bank says paid
    old = BankResult(BankRequestKind.SEND, p.payment_id, p.bank, 1, BankOutcome.PAID)
    step = pm.on_result(p, old, p.updated_at + 1, POLICY)
    assert step.payment.state is PaymentState.CONFIRMED
    assert [a.kind for a in step.actions if isinstance(a, Alert)] == [AlertKind.LATE_PAID]
    s = sent(p)
    other = BankResult(BankRequestKind.SEND, s.payment_id, "boc-ganzhou", 1, BankOutcome.PAID)
    step = pm.on_result(s, other, s.updated_at + 1, POLICY)
    assert step.payment.state is PaymentState.CONFIRMED
    assert step.payment.bank == "boc-ganzhou"
    assert [a.kind for a in step.actions if isinstance(a, Alert)] == [AlertKind.LATE_PAID]


def test_paid_reported_again_by_the_same_bank_changes_nothing() -> None:
    s = sent()
    c = pm.on_result(s, send_result(s, BankOutcome.PAID), T0 + 1, POLICY).payment
    assert pm.on_result(c, query_result(s, BankOutcome.PAID), T0 + 2, POLICY) == (c, ())


def test_paid_by_another_bank_after_confirmation_alerts_double_payment() -> None:
    s = sent()
    c = pm.on_result(s, send_result(s, BankOutcome.PAID), T0 + 1, POLICY).payment
    other = dataclasses.replace(send_result(s, BankOutcome.PAID), bank="boc-ganzhou")
    step = pm.on_result(c, other, T0 + 2, POLICY)
    assert step.payment is c
    assert [a.kind for a in step.actions if isinstance(a, Alert)] == [AlertKind.DOUBLE_PAYMENT]


def test_a_result_for_another_payment_is_refused() -> None:
    s = sent()
    wrong = dataclasses.replace(send_result(s, BankOutcome.PAID), payment_id="pay-other")
    with pytest.raises(PaymentError):
        pm.on_result(s, wrong, T0, POLICY)


def review() -> Payment:
    p = payment(fallbacks=())
    for _ in range(POLICY.max_attempts):
        p = fail_once(p)
    assert p.state is PaymentState.MANUAL_REVIEW
    return p


def test_release_puts_a_payment_in_review_back_to_new_on_the_chosen_bank() -> None:
    p = review()
    step = pm.release(p, "abc-hohhot", "ops-li", T0 + 100 * SECOND, "line restored")
    r = step.payment
    assert r.state is PaymentState.NEW and r.bank == "abc-hohhot"
    assert r.attempts == 0 and r.fallbacks == ()
    assert r.next_attempt_at == T0 + 100 * SECOND
    assert r.history[-1].detail == {
        "actor": "ops-li",
        "bank": "abc-hohhot",
        "note": "line restored",
    }
    nxt = pm.tick(r, T0 + 100 * SECOND, POLICY)
    assert isinstance(nxt.actions[0], SendPayment) and nxt.actions[0].bank == "abc-hohhot"


def test_release_only_from_manual_review() -> None:
    for p in (payment(), sent(), unknown()):
        with pytest.raises(PaymentError):
            pm.release(p, "abc-hohhot", "ops-li", T0)


def test_mark_paid_manually_from_manual_review_only_with_a_reference() -> None:
    p = review()
    with pytest.raises(PaymentError):
        pm.mark_paid_manually(p, "ops-li", "", T0)
    paid = pm.mark_paid_manually(p, "ops-li", "ICBC-2026-0001", T0).payment
    assert paid.state is PaymentState.PAID_MANUALLY and paid.next_attempt_at is None
    with pytest.raises(PaymentError):
        pm.mark_paid_manually(sent(), "ops-li", "ref", T0)


def test_hold_for_review_only_without_a_send_in_flight() -> None:
    held = pm.hold_for_review(payment(), T0, "bank not configured")
    assert held.payment.state is PaymentState.MANUAL_REVIEW
    with pytest.raises(PaymentError):
        pm.hold_for_review(sent(), T0, "no")
    with pytest.raises(PaymentError):
        pm.hold_for_review(unknown(), T0, "no")


def test_terminal_states_ignore_time_and_non_paid_answers() -> None:
    s = sent()
    c = pm.on_result(s, send_result(s, BankOutcome.PAID), T0, POLICY).payment
    for outcome in (BankOutcome.REJECTED, BankOutcome.NOT_FOUND, BankOutcome.PENDING):
        assert pm.on_result(c, send_result(s, outcome), T0, POLICY).payment is c
    assert pm.tick(c, T0 + 10**15, POLICY).payment is c


def test_backoff_is_exponential_capped_and_deterministic() -> None:
    raw = [pm.backoff("p", n, SECOND, 60 * SECOND, 2, 0) for n in range(1, 10)]
    assert raw == [SECOND * 2**k for k in range(6)] + [60 * SECOND] * 3
    jittered = [pm.backoff("p", n, SECOND, 60 * SECOND, 2, 20) for n in range(1, 10)]
    assert jittered == [pm.backoff("p", n, SECOND, 60 * SECOND, 2, 20) for n in range(1, 10)]
    for value, base in zip(jittered, raw, strict=True):
        assert base * 80 // 100 <= value <= min(base * 120 // 100, 60 * SECOND)


def test_jitter_differs_between_payments() -> None:
    delays = {pm.backoff(f"pay-{i}", 3, SECOND, 60 * SECOND, 2, 20) for i in range(50)}
    assert len(delays) > 10


def test_every_transition_is_in_the_history() -> None:
    p = payment(fallbacks=())
    p = fail_once(p)
    u = unknown(p)
    c = pm.on_result(u, query_result(u, BankOutcome.PAID), u.updated_at, POLICY).payment
    assert [(e.kind, e.from_state, e.to_state) for e in c.history] == [
        ("created", None, PaymentState.NEW),
        ("sent", PaymentState.NEW, PaymentState.SENT),
        ("failed", PaymentState.SENT, PaymentState.FAILED),
        ("sent", PaymentState.FAILED, PaymentState.SENT),
        ("timeout", PaymentState.SENT, PaymentState.UNKNOWN),
        ("confirmed", PaymentState.UNKNOWN, PaymentState.CONFIRMED),
    ]


def test_cash_payments_are_made_for_the_cash_parts_of_a_plan() -> None:
    import datetime as dt

    from settlement_worker.plans.receipt_limits import PaymentKind
    from settlement_worker.plans.rules import PaymentPlan, PlannedPayment

    plan = PaymentPlan(
        "obl-1",
        "ganzhou-magnet",
        "baotou-metals",
        Money(300, "CNY"),
        dt.date(2026, 3, 2),
        (
            PlannedPayment(PaymentKind.BANK_ACCEPTANCE, Money(200, "CNY"), "icbc-baotou", 90),
            PlannedPayment(PaymentKind.CASH, Money(100, "CNY")),
        ),
    )
    made = pm.cash_payments(plan, "icbc-baotou", T0, ("boc-ganzhou",))
    assert [(p.payment_id, p.amount.minor, p.fallbacks) for p in made] == [
        ("pay-obl-1-1", 100, ("boc-ganzhou",))
    ]
