"""A payment unknown for too long stops being queried and waits in UNKNOWN_REVIEW for an
operator, who resolves it with what the bank said (`pm.resolve`, `rex payments --resolve`);
the payer counts its alerts and the payments by state in Prometheus metrics."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest

from rex.bus.memory import MemoryBroker, MemoryBus
from rex.metrics import SETTLEMENT_REGISTRY
from settlement_worker.payments import commands as cli_payments
from settlement_worker.payments import rules as pm
from settlement_worker.payments.banks import BankOutcome
from settlement_worker.payments.banks.fake import FakeBank
from settlement_worker.payments.payer import Payer, resolve_payment
from settlement_worker.payments.rules import SECOND, AlertKind, PaymentError, PaymentState
from settlement_worker.payments.sql import insert_payment, load_history, load_payment
from settlement_worker.store import Store

from .conftest import make_payments
from .test_rules import POLICY, fail_once, payment, query_result, send_result, unknown

T0_LATER = 1_800_000_000 * SECOND + 3_600 * SECOND  # an hour after the payments' T0
SHORT = pm.RetryPolicy(unknown_review_after=60 * SECOND, unknown_review_after_queries=1000)


def queried_until_review(
    p: pm.Payment, policy: pm.RetryPolicy
) -> tuple[pm.Payment, list[pm.Action]]:
    """Tick an UNKNOWN payment whenever due until it leaves UNKNOWN."""
    actions: list[pm.Action] = []
    while p.state is PaymentState.UNKNOWN:
        assert p.next_attempt_at is not None
        step = pm.tick(p, p.next_attempt_at, policy)
        p = step.payment
        actions += step.actions
    return p, actions


def test_after_so_many_unanswered_queries_the_payment_goes_to_unknown_review() -> None:
    policy = pm.RetryPolicy(unknown_review_after_queries=12)
    review, actions = queried_until_review(unknown(), policy)
    assert review.state is PaymentState.UNKNOWN_REVIEW
    assert review.next_attempt_at is None  # the payer leaves it alone
    assert review.queries == 12
    queries = [a for a in actions if isinstance(a, pm.QueryStatus)]
    alerts = [a.kind for a in actions if isinstance(a, pm.Alert)]
    assert len(queries) == 12  # none after the bound
    assert alerts == [AlertKind.UNRESOLVED, AlertKind.UNKNOWN_REVIEW]
    assert not any(isinstance(a, pm.SendPayment) for a in actions)
    assert review.bank == "icbc-baotou" and review.send_no == 1  # never re-routed
    assert review.history[-1].kind == "unknown_review"


def test_after_so_long_past_the_deadline_the_payment_goes_to_unknown_review() -> None:
    review, actions = queried_until_review(unknown(), SHORT)
    assert review.state is PaymentState.UNKNOWN_REVIEW
    assert review.deadline is not None
    assert review.updated_at - review.deadline >= 60 * SECOND
    assert review.queries < 10  # the clock bound came first
    assert [a.kind for a in actions if isinstance(a, pm.Alert)] == [AlertKind.UNKNOWN_REVIEW]


def in_review() -> pm.Payment:
    return queried_until_review(unknown(), SHORT)[0]


def test_an_operator_resolves_it_as_paid_with_the_banks_reference() -> None:
    p = in_review()
    step = pm.resolve(p, True, "ops-li", "bank confirms by phone", T0_LATER, POLICY, "ICBC-778")
    assert step.payment.state is PaymentState.CONFIRMED
    assert step.payment.bank == "icbc-baotou"
    event = step.payment.history[-1]
    assert event.kind == "resolved_paid"
    assert event.detail["actor"] == "ops-li" and event.detail["reference"] == "ICBC-778"


def test_an_operator_resolves_it_as_failed_and_it_is_retried_as_after_not_found() -> None:
    p = in_review()
    step = pm.resolve(p, False, "ops-li", "bank has no such transfer", T0_LATER, POLICY)
    assert step.payment.state is PaymentState.FAILED
    assert step.payment.attempts == 1 and step.payment.next_attempt_at is not None
    event = step.payment.history[-1]
    assert event.detail["actor"] == "ops-li" and "no such transfer" in event.detail["note"]


def test_a_failed_resolution_of_the_last_attempt_moves_to_the_fallback_bank() -> None:
    p = fail_once(fail_once(payment()))  # two failed sends on the primary
    p, _ = queried_until_review(unknown(p), SHORT)
    step = pm.resolve(p, False, "ops-li", "not executed", T0_LATER, POLICY)
    assert step.payment.state is PaymentState.FAILED and step.payment.bank == "boc-ganzhou"
    assert [a.kind for a in step.actions if isinstance(a, pm.Alert)] == [AlertKind.FALLBACK]


@pytest.mark.parametrize(
    ("paid", "note", "reference", "message"),
    [
        (True, "", "REF", "note"),
        (True, "paid", "", "reference"),
        (False, "   ", "", "note"),
    ],
)
def test_resolving_needs_a_note_and_for_paid_a_reference(
    paid: bool, note: str, reference: str, message: str
) -> None:
    with pytest.raises(PaymentError, match=message):
        pm.resolve(in_review(), paid, "ops-li", note, T0_LATER, POLICY, reference)


def test_only_an_unknown_payment_is_resolved() -> None:
    for p in (payment(), fail_once(payment())):
        with pytest.raises(PaymentError, match="only an unknown payment"):
            pm.resolve(p, True, "ops-li", "note", T0_LATER, POLICY, "REF")
    # An UNKNOWN one may be resolved before the bound too: the operator asked the bank.
    assert pm.resolve(unknown(), True, "ops", "asked", T0_LATER, POLICY, "R").payment.state is (
        PaymentState.CONFIRMED
    )


def test_unknown_review_cannot_be_released_or_marked_paid() -> None:
    """Its last send may still pay: only the bank's word (resolve) settles it."""
    p = in_review()
    with pytest.raises(PaymentError):
        pm.release(p, "abc-hohhot", "ops", T0_LATER)
    with pytest.raises(PaymentError):
        pm.mark_paid_manually(p, "ops", "REF", T0_LATER)


def test_a_late_bank_answer_still_resolves_unknown_review() -> None:
    p = in_review()
    paid = pm.on_result(p, send_result(p, BankOutcome.PAID), T0_LATER, POLICY)
    assert paid.payment.state is PaymentState.CONFIRMED and paid.actions == ()  # no late_paid
    failed = pm.on_result(p, query_result(p, BankOutcome.NOT_FOUND), T0_LATER, POLICY)
    assert failed.payment.state is PaymentState.FAILED
    pending = pm.on_result(p, query_result(p, BankOutcome.PENDING), T0_LATER, POLICY)
    assert pending.payment is p


def test_a_policy_refuses_a_non_positive_bound() -> None:
    with pytest.raises(ValueError):
        pm.RetryPolicy(unknown_review_after=0)
    with pytest.raises(ValueError):
        pm.RetryPolicy(unknown_review_after_queries=0)


# ----------------------------------------------------------------- the payer and the CLI


def alert_count(kind: AlertKind) -> float:
    value = SETTLEMENT_REGISTRY.get_sample_value(
        "rex_settlement_payment_alerts_total", {"kind": str(kind)}
    )
    return value or 0.0


def gauge(state: PaymentState) -> float | None:
    return SETTLEMENT_REGISTRY.get_sample_value("rex_settlement_payments", {"state": str(state)})


def test_a_silent_bank_ends_in_unknown_review_counted_in_the_metrics(
    bus: MemoryBus, broker: MemoryBroker, store: Store, clock: Callable[[], int]
) -> None:
    bank = FakeBank(bus, "icbc-baotou", clock)
    bank.down = True
    before = alert_count(AlertKind.UNKNOWN_REVIEW)
    payer = Payer(store, bus, {"icbc-baotou": bank}, SHORT, clock=clock, count_every=1)
    payer.start()
    payer.submit(make_payments(3, clock(), fallbacks=()))
    broker.run_until_idle(max_time=600)
    with store.transaction() as tx:
        states = {load_payment(tx, f"pay-obl-PRND-OX-{i}-0")[0].state for i in range(3)}  # type: ignore[index]
    assert states == {PaymentState.UNKNOWN_REVIEW}
    assert [a.kind for a in payer.alerts] == [AlertKind.UNKNOWN_REVIEW] * 3
    assert alert_count(AlertKind.UNKNOWN_REVIEW) == before + 3
    assert gauge(PaymentState.UNKNOWN_REVIEW) == 3
    assert gauge(PaymentState.CONFIRMED) == 0  # every state is reported, 0 included
    requests = bank.requests
    broker.run_until_idle(max_time=600)
    assert bank.requests == requests  # no longer queried


def test_cli_resolve_paid_books_it_once_with_the_operator_on_record(
    store: Store, capsys: pytest.CaptureFixture[str]
) -> None:
    p = in_review()
    with store.transaction() as tx:
        insert_payment(tx, p)
    code = cli_payments.main(["--review", "--json"], store=store)
    data = json.loads(capsys.readouterr().out)
    assert code == 0 and [x["payment_id"] for x in data["unknown_review"]] == [p.payment_id]
    # As the worker applies `rex payments --resolve`'s request (payments/requests.py).
    resolved = resolve_payment(store, p.payment_id, True, "ops-li", "bank confirms", "ICBC-778")
    assert resolved.state is PaymentState.CONFIRMED
    entries = store.query(
        "SELECT entry_id FROM journal_entries WHERE reference = ?", [p.payment_id]
    )
    assert entries == [(f"paid-{p.payment_id}",)]
    with store.transaction() as tx:
        history = load_history(tx, p.payment_id)
    assert (history[-1][0].kind, history[-1][1]) == ("resolved_paid", "ops-li")
    audit = store.query(
        "SELECT actor, action FROM audit_log WHERE subject_id = ? ORDER BY seq DESC LIMIT 1",
        [p.payment_id],
    )
    assert audit == [("ops-li", "resolved_paid")]
    # Resolved once: a second resolution is refused, nothing booked twice.
    with pytest.raises(PaymentError, match="only an unknown payment"):
        resolve_payment(store, p.payment_id, False, "ops-li", "oops")


def test_cli_resolve_failed_makes_it_due_again(
    store: Store, capsys: pytest.CaptureFixture[str]
) -> None:
    p = in_review()
    with store.transaction() as tx:
        insert_payment(tx, p)
    resolve_payment(store, p.payment_id, False, "ops-li", "no such transfer at the bank")
    with store.transaction() as tx:
        loaded = load_payment(tx, p.payment_id)
    assert loaded is not None and loaded[0].state is PaymentState.FAILED
    assert loaded[0].next_attempt_at is not None  # the payer's sweep sends it again


@pytest.mark.parametrize(
    "argv",
    [
        ["--resolve", "pay-x", "--note", "n"],  # neither --paid nor --failed
        ["--resolve", "pay-x", "--failed"],  # no note
        ["--resolve", "pay-x", "--paid", "--note", "n"],  # paid without reference
        ["--paid"],  # without --resolve
        # Who acts is the login of $REX_OPERATOR_URL, never a name on the command line.
        ["--resolve", "pay-x", "--failed", "--note", "n", "--actor", "ops-li"],
        ["--release", "pay-x", "--bank", "icbc-baotou", "--note", "n", "--actor", "ops-li"],
        ["--release", "pay-x", "--bank", "icbc-baotou"],  # no note: its history says why
    ],
)
def test_cli_resolve_usage_errors(store: Store, argv: list[str]) -> None:
    with pytest.raises(SystemExit) as stop:
        cli_payments.main(argv, store=store)
    assert stop.value.code == 2
