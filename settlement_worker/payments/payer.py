"""The payer: drives payments through the state machine against the banks.

Everything happens on the bus's loop. For each event -- a payment's timer, a bank's answer,
the periodic sweep -- the payer reads the payment from the store, applies the pure
transition (`settlement_worker.payments.rules`), writes the new row with its events and audit
rows, commits, and only then performs the actions (send, query, alert). So a crash between
the commit and the send leaves a SENT payment whose send may not have happened: it times
out, becomes UNKNOWN, and a query settles it; nothing is sent twice or forgotten.

Timers: after every step the payment's `next_attempt_at` gets a `call_later`; a sweep
every `sweep_interval` seconds also picks every due payment from the store, which covers
a restart and payments released by an operator from another process
(`rex payments --release`, which writes the store only).

Disputes freeze payments: a due NEW or FAILED payment whose obligation's trade has an open
dispute (`Transaction.frozen_among("trade", ...)`) is not sent; it stays due, untouched,
and the sweep looks at it again until the dispute is resolved. If the dispute is upheld
(the obligation is cancelled), the payment goes to manual review instead of being sent.
Committing a payment's state change also books it (`settlement_worker.payments.postings`): a paid
payment's journal entry and events are in the same commit as its new state.

Alerts are logged, kept (the latest thousand, `alerts`) and counted in the metric
`rex_settlement_payment_alerts_total{kind}`; every `count_every` sweeps the payer also sets
`rex_settlement_payments{state}` from the store, so manual review and unknown payments show
on a dashboard without anyone reading the log.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping

from rex import metrics
from rex.bus import Bus
from settlement_worker.obligations.rules import ObligationState
from settlement_worker.payments import rules as pm
from settlement_worker.payments.banks import BankAdapter, BankResult, SendRequest
from settlement_worker.payments.operations import move_payment
from settlement_worker.payments.sql import (
    counts_by_state,
    due_payment_ids,
    insert_payment,
    load_payment,
    payments_in_states,
)
from settlement_worker.store import ConcurrentUpdate, Store, Transaction

log = logging.getLogger("rex.settlement.payer")

__all__ = ["Payer", "mark_paid", "release_payment", "resolve_payment", "review_queue"]

_Transition = Callable[[pm.Payment, int], pm.Step]
_RETRIES = 5  # optimistic-lock conflicts in a row before giving up on one event


class Payer:
    def __init__(
        self,
        store: Store,
        bus: Bus,
        banks: Mapping[str, BankAdapter],
        policy: pm.RetryPolicy | None = None,
        clock: Callable[[], int] = time.time_ns,
        *,
        actor: str = "payer",
        sweep_interval: float = 1.0,
        on_alert: Callable[[pm.Alert], None] | None = None,
        count_every: int = 15,
    ) -> None:
        self.store = store
        self.bus = bus
        self.banks = dict(banks)
        self.policy = policy or pm.RetryPolicy()
        self.clock = clock
        self.actor = actor
        self.sweep_interval = sweep_interval
        self.on_alert = on_alert
        metrics.start_at_zero(metrics.PAYMENT_ALERTS, list(pm.AlertKind))  # 0 before the first
        self.alerts: deque[pm.Alert] = deque(maxlen=1000)  # the latest, for tests and ops
        self._timers: dict[str, int] = {}  # payment id -> earliest wake-up scheduled
        self.frozen_skips = 0  # sends skipped because the trade was frozen (tests, ops)
        # Payments are counted by state every `count_every` sweeps (a GROUP BY over the
        # table: cheap, but not every second).
        self.count_every = count_every
        self._sweeps = 0
        self._running = False
        self._generation = 0

    # --- lifecycle
    def start(self) -> None:
        """Start sweeping (the bus must be running or about to run)."""
        if not self._running:
            self._running = True
            self._generation += 1  # a sweep chain of an earlier start() ends itself
            generation = self._generation
            self.bus.call_soon(lambda: self._sweep(generation))

    def stop(self) -> None:
        self._running = False
        # Only the paying process reports payments by state: a stale count from a process
        # that lost the lock would add to the payer's on a dashboard.
        metrics.PAYMENTS.clear()

    # --- input
    def submit(self, payments: Iterable[pm.Payment]) -> int:
        """Store new payments (an id already stored is skipped); returns how many were new."""
        created = []
        with self.store.transaction() as tx:
            for payment in payments:
                if insert_payment(tx, payment, self.actor):
                    created.append(payment)
        for payment in created:
            self._schedule(payment)
        return len(created)

    def on_result(self, result: BankResult) -> None:
        """A bank's answer (the adapters' callback)."""
        policy = self.policy
        self._apply(result.payment_id, lambda p, now: pm.on_result(p, result, now, policy))

    def wake(self, payment_id: str) -> None:
        self._apply(payment_id, self._tick, gated=True)

    def schedule(self, payments: Iterable[pm.Payment]) -> None:
        """Set timers for payments stored by someone else (the worker's booking), so they
        go out at once rather than on the next sweep. Only while running."""
        if self._running:
            for payment in payments:
                self._schedule(payment)

    def counts(self) -> dict[str, int]:
        with self.store.transaction() as tx:
            return counts_by_state(tx)

    # --- the loop
    def _tick(self, p: pm.Payment, now: int) -> pm.Step:
        if p.state in (pm.PaymentState.NEW, pm.PaymentState.FAILED) and p.bank not in self.banks:
            due = p.next_attempt_at is not None and now >= p.next_attempt_at
            if due:
                return pm.hold_for_review(p, now, f"bank {p.bank} is not configured here")
        return pm.tick(p, now, self.policy)

    def _sweep(self, generation: int) -> None:
        if not self._running or generation != self._generation:
            return
        try:
            with self.store.transaction() as tx:
                due = due_payment_ids(tx, self.clock())
                if self._sweeps % self.count_every == 0:
                    _set_state_gauge(counts_by_state(tx))
            self._sweeps += 1
            for payment_id in due:
                self.wake(payment_id)
        finally:
            self.bus.call_later(self.sweep_interval, lambda: self._sweep(generation))

    def _hold(self, tx: Transaction, p: pm.Payment, now: int) -> pm.Step | None:
        """For a send about to happen: None to go ahead; ``Step(p)`` (unchanged) to leave it
        due while its trade is frozen; a hold for review if its obligation was cancelled."""
        if p.state not in (pm.PaymentState.NEW, pm.PaymentState.FAILED):
            return None
        if p.next_attempt_at is None or now < p.next_attempt_at:
            return None
        rows = tx.execute(
            "SELECT trade_id, state FROM obligations WHERE obligation_id = ?", (p.obligation_id,)
        )
        if not rows:
            return None
        trade_id, state = rows[0]
        if tx.frozen_among("trade", [trade_id]):
            return pm.Step(p)
        if state == ObligationState.CANCELLED:
            return pm.hold_for_review(p, now, f"obligation {p.obligation_id} is cancelled")
        return None

    def _apply(self, payment_id: str, transition: _Transition, gated: bool = False) -> None:
        for _ in range(_RETRIES):
            now = self.clock()
            try:
                with self.store.transaction() as tx:
                    loaded = load_payment(tx, payment_id)
                    if loaded is None:
                        log.warning("no such payment payment_id=%s", payment_id)
                        return
                    old, version = loaded
                    held = self._hold(tx, old, now) if gated else None
                    if held is not None and held.payment == old:
                        self.frozen_skips += 1
                        log.debug("payment frozen by a dispute payment_id=%s", payment_id)
                        return  # stays due: the next sweep looks again
                    step = held or transition(old, now)
                    if step.payment != old:
                        move_payment(tx, old, version, step.payment, self.actor)
            except ConcurrentUpdate:
                continue
            break
        else:
            raise ConcurrentUpdate(f"{payment_id}: gave up after {_RETRIES} conflicts")
        # Committed: now act.
        new = step.payment
        if new.state != old.state:
            log.info(
                "payment payment_id=%s %s->%s bank=%s attempt=%d",
                payment_id,
                old.state,
                new.state,
                new.bank,
                new.send_no,
            )
        self._schedule(new)
        for action in step.actions:
            self._perform(action)

    def _schedule(self, p: pm.Payment) -> None:
        when = p.next_attempt_at
        if when is None or p.state not in pm.ACTIVE_STATES:
            return
        pending = self._timers.get(p.payment_id)
        if pending is not None and pending <= when:
            return
        self._timers[p.payment_id] = when
        delay = max(0.0, (when - self.clock()) / pm.SECOND)

        def fire() -> None:
            if self._timers.get(p.payment_id) == when:
                del self._timers[p.payment_id]
            if self._running:
                self.wake(p.payment_id)

        self.bus.call_later(delay, fire)

    def _perform(self, action: pm.Action) -> None:
        if isinstance(action, pm.Alert):
            log.warning(
                "payment alert kind=%s payment_id=%s %s",
                action.kind,
                action.payment_id,
                action.text,
            )
            self.alerts.append(action)
            metrics.PAYMENT_ALERTS.labels(str(action.kind)).inc()
            if self.on_alert is not None:
                self.on_alert(action)
            return
        bank = self.banks.get(action.bank)
        if bank is None:  # a query for a bank no longer configured: stays unknown
            log.error("bank not configured bank=%s payment_id=%s", action.bank, action.payment_id)
            return
        if isinstance(action, pm.SendPayment):
            request = SendRequest(
                action.payment_id,
                action.attempt,
                action.payer,
                action.payee,
                action.amount.minor,
                action.amount.currency,
                action.deadline,
            )
            bank.send(request, self.on_result)
        else:
            bank.query(
                action.payment_id, self.on_result, attempt=action.attempt, deadline=action.deadline
            )


# --- operator actions: the store only, a running payer picks the result up on its sweep


def _set_state_gauge(counts: Mapping[str, int]) -> None:
    for state in pm.PaymentState:
        metrics.PAYMENTS.labels(str(state)).set(counts.get(str(state), 0))


def review_queue(store: Store) -> list[pm.Payment]:
    """Payments waiting for an operator to release or mark them paid (those unknown for
    too long wait in UNKNOWN_REVIEW, to be resolved instead)."""
    with store.transaction() as tx:
        return payments_in_states(tx, [pm.PaymentState.MANUAL_REVIEW])


def _operate(store: Store, payment_id: str, transition: _Transition, actor: str) -> pm.Payment:
    for _ in range(_RETRIES):
        try:
            with store.transaction() as tx:
                loaded = load_payment(tx, payment_id)
                if loaded is None:
                    raise pm.PaymentError(f"no payment {payment_id}")
                old, version = loaded
                step = transition(old, time.time_ns())
                move_payment(tx, old, version, step.payment, actor)
            return step.payment
        except ConcurrentUpdate:
            continue
    raise ConcurrentUpdate(f"{payment_id}: gave up after {_RETRIES} conflicts")


def release_payment(
    store: Store, payment_id: str, bank: str, actor: str, note: str = ""
) -> pm.Payment:
    """Send a payment in review again, on `bank`."""
    return _operate(store, payment_id, lambda p, now: pm.release(p, bank, actor, now, note), actor)


def resolve_payment(
    store: Store,
    payment_id: str,
    paid: bool,
    actor: str,
    note: str,
    reference: str = "",
    policy: pm.RetryPolicy | None = None,
) -> pm.Payment:
    """Settle an unknown payment with what the bank said: paid (its reference) or not."""
    rules = policy or pm.RetryPolicy()
    return _operate(
        store,
        payment_id,
        lambda p, now: pm.resolve(p, paid, actor, note, now, rules, reference),
        actor,
    )


def mark_paid(store: Store, payment_id: str, actor: str, reference: str) -> pm.Payment:
    """Record that an operator paid it outside the payer."""
    return _operate(
        store, payment_id, lambda p, now: pm.mark_paid_manually(p, actor, reference, now), actor
    )
