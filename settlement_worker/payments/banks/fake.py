"""An in-process bank for unit tests: the simulator's rules without a broker or a process.

Requests are answered after `latency` seconds of the bus's loop (`call_later`), so on the
memory bus time is simulated and a test of minutes runs in milliseconds. Everything is
deterministic: failures and lost replies are decided by a hash of `seed`, the payment id
and the attempt. During an outage window (in the clock's ns) requests are dropped: no
answer, nothing executed. `executions` lists every payment the bank executed, so a test
asserts exactly-once by checking no id appears twice.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from rex.bus import Bus
from settlement_worker.payments.banks import (
    BankAdapter,
    BankOutcome,
    BankRequestKind,
    BankResult,
    ResultCallback,
    SendRequest,
)
from settlement_worker.payments.banks.core import BankRules, MemoryBankLedger, chance


class FakeBank(BankAdapter):
    def __init__(
        self,
        bus: Bus,
        bank_id: str,
        clock: Callable[[], int],
        *,
        failure_rate: float = 0.0,
        seed: int = 0,
        latency: float = 0.02,
        outages: Sequence[tuple[int, int]] = (),
        reply_loss_rate: float = 0.0,
    ) -> None:
        self.bus = bus
        self.bank_id = bank_id
        self.clock = clock
        self.rules = BankRules(bank_id, failure_rate, seed)
        self.latency = latency
        self.outages = list(outages)
        self.reply_loss_rate = reply_loss_rate
        self.seed = seed
        self.ledger = MemoryBankLedger()
        self.down = False  # a test may switch the bank off and on
        self.requests = 0
        self.dropped = 0
        self.lost_replies = 0

    # --- what tests assert on
    @property
    def executions(self) -> list[str]:
        return self.ledger.executions()

    @property
    def paid_ids(self) -> set[str]:
        return set(self.ledger.paid)

    # --- the adapter
    def send(self, request: SendRequest, on_result: ResultCallback) -> None:
        def answer() -> tuple[BankOutcome, str]:
            return self.rules.send(self.ledger, request, self.clock())

        self._handle(BankRequestKind.SEND, request.payment_id, request.attempt, answer, on_result)

    def query(
        self, payment_id: str, on_result: ResultCallback, *, attempt: int, deadline: int
    ) -> None:
        def answer() -> tuple[BankOutcome, str]:
            return self.rules.query(self.ledger, payment_id, attempt, deadline, self.clock())

        self._handle(BankRequestKind.QUERY, payment_id, attempt, answer, on_result)

    def in_outage(self, now: int) -> bool:
        return self.down or any(start <= now < end for start, end in self.outages)

    def _handle(
        self,
        kind: BankRequestKind,
        payment_id: str,
        attempt: int,
        answer: Callable[[], tuple[BankOutcome, str]],
        on_result: ResultCallback,
    ) -> None:
        self.requests += 1
        if self.in_outage(self.clock()):
            self.dropped += 1
            return
        number = self.requests

        def process() -> None:
            outcome, reason = answer()
            if chance(self.seed, "lost", payment_id, attempt, number) < self.reply_loss_rate:
                self.lost_replies += 1
                return
            result = BankResult(kind, payment_id, self.bank_id, attempt, outcome, reason)
            self.bus.call_later(self.latency, lambda: on_result(result))

        self.bus.call_later(self.latency, process)
