"""Exactly once, against an adversarial network: the state machine talks to banks that keep
their rules (dedupe by id, deadlines), while Hypothesis delays, reorders, duplicates and
drops requests and replies and moves the clock. However it goes, at the end the payment is
CONFIRMED and paid by exactly one bank -- the one it names -- or in MANUAL_REVIEW and paid
by none."""

from __future__ import annotations

from dataclasses import dataclass, field

from hypothesis import given, note, settings
from hypothesis import strategies as st

from rex.money import Money
from settlement_worker.payments import rules as pm
from settlement_worker.payments.banks import BankRequestKind, BankResult, SendRequest
from settlement_worker.payments.banks.core import BankRules, MemoryBankLedger
from settlement_worker.payments.rules import SECOND, AlertKind, PaymentState, RetryPolicy

POLICIES = [RetryPolicy(max_attempts=n, send_timeout=2 * SECOND) for n in (1, 1, 2)]
BANKS = ("icbc-baotou", "boc-ganzhou")


@dataclass
class World:
    rules: dict[str, BankRules]
    skew: int  # the banks' clock minus the payer's
    ledgers: dict[str, MemoryBankLedger] = field(
        default_factory=lambda: {b: MemoryBankLedger() for b in BANKS}
    )
    now: int = 0
    requests: list[pm.SendPayment | pm.QueryStatus] = field(default_factory=list)
    replies: list[BankResult] = field(default_factory=list)
    alerts: list[pm.Alert] = field(default_factory=list)

    def act(self, step: pm.Step) -> pm.Payment:
        for action in step.actions:
            if isinstance(action, pm.Alert):
                self.alerts.append(action)
            else:
                self.requests.append(action)
        return step.payment

    def bank_handles(self, request: pm.SendPayment | pm.QueryStatus) -> None:
        rules, ledger = self.rules[request.bank], self.ledgers[request.bank]
        if isinstance(request, pm.SendPayment):
            send = SendRequest(
                request.payment_id,
                request.attempt,
                request.payer,
                request.payee,
                request.amount.minor,
                request.amount.currency,
                request.deadline,
            )
            outcome, reason = rules.send(ledger, send, self.now + self.skew)
            kind = BankRequestKind.SEND
        else:
            outcome, reason = rules.query(
                ledger, request.payment_id, request.attempt, request.deadline, self.now + self.skew
            )
            kind = BankRequestKind.QUERY
        self.replies.append(
            BankResult(kind, request.payment_id, request.bank, request.attempt, outcome, reason)
        )


ADVANCE, WAIT, DELIVER, REDELIVER, DROP, ANSWER, DUPLICATE, LOSE = range(8)


def ops(world: World) -> list[int]:
    """What can happen next, weighted towards progress."""
    choices = [ADVANCE, ADVANCE, WAIT]
    if world.requests:
        choices += [DELIVER, DELIVER, REDELIVER, DROP]
    if world.replies:
        choices += [ANSWER, ANSWER, DUPLICATE, LOSE]
    return choices


@settings(max_examples=1000, deadline=None)
@given(
    data=st.data(),
    rates=st.tuples(st.sampled_from([0.0, 0.5, 0.9, 1.0]), st.sampled_from([0.0, 0.5, 1.0])),
    seed=st.integers(0, 1000),
    skew=st.sampled_from([-3 * SECOND, -3 * SECOND, -SECOND, 0, SECOND]),
    policy=st.sampled_from(POLICIES),
)
def test_paid_exactly_once_or_in_manual_review(
    data: st.DataObject, rates: tuple[float, float], seed: int, skew: int, policy: RetryPolicy
) -> None:
    rules = {b: BankRules(b, r, seed) for b, r in zip(BANKS, rates, strict=True)}
    world = World(rules, skew)
    p = pm.new_payment("pay-obl-1-0", "obl-1", "a", "b", Money(100, "CNY"), BANKS[0], 0, BANKS[1:])
    for _ in range(data.draw(st.integers(0, 40))):
        op = data.draw(st.sampled_from(ops(world)))
        note(f"t={world.now} {p.state} attempt={p.send_no}@{p.bank} op={op}")
        if op == ADVANCE:  # to the payment's next wake-up, and tick
            if p.next_attempt_at is not None:
                world.now = max(world.now, p.next_attempt_at)
            p = world.act(pm.tick(p, world.now, policy))
        elif op == WAIT:
            world.now += data.draw(st.integers(0, 3 * SECOND))
            p = world.act(pm.tick(p, world.now, policy))
        elif op in (DELIVER, REDELIVER, DROP):
            index = data.draw(st.integers(0, len(world.requests) - 1))
            request = world.requests[index]
            if op != REDELIVER:
                del world.requests[index]
            if op != DROP:
                world.bank_handles(request)
                note(f"  bank got {request} -> {world.replies[-1]}")
        else:
            index = data.draw(st.integers(0, len(world.replies) - 1))
            reply = world.replies[index]
            if op != DUPLICATE:
                del world.replies[index]
            if op != LOSE:
                p = world.act(pm.on_result(p, reply, world.now, policy))
                note(f"  payer got {reply} -> {p.state}")
    # Then the network heals: everything in flight arrives, time goes on.
    for _ in range(200):
        if p.state not in pm.ACTIVE_STATES:
            break
        while world.requests:
            world.bank_handles(world.requests.pop(0))
        while world.replies:
            p = world.act(pm.on_result(p, world.replies.pop(0), world.now, policy))
        if p.next_attempt_at is not None:
            world.now = max(world.now, p.next_attempt_at)
        p = world.act(pm.tick(p, world.now, policy))
    executions = {b: world.ledgers[b].executions() for b in BANKS}
    paid = [(b, i) for b, ids in executions.items() for i in ids]
    if p.state is PaymentState.CONFIRMED:
        assert paid == [(p.bank, p.payment_id)]
    else:
        assert p.state is PaymentState.MANUAL_REVIEW, p
        assert paid == []
    assert not [
        a for a in world.alerts if a.kind in (AlertKind.LATE_PAID, AlertKind.DOUBLE_PAYMENT)
    ]
