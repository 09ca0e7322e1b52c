"""The bank adapter interface: how the payer asks a bank to move money, and what it hears.

A bank is told to `send` a payment (identified by its idempotency key, the payment id) and
answers PAID or REJECTED(reason); it can be asked (`query`) what became of a payment, and
answers PAID, NOT_FOUND (not paid, and a send with that deadline can no longer be) or
PENDING (its clock has not passed the send's deadline yet: ask again). No answer at all is
a timeout, which is the caller's business (its own timer): an adapter never invents one.

Two rules every bank (the in-process fake, the simulator, a real bank's adapter) keeps:

* **dedupe by payment id**: a send of an id it has already paid answers PAID and pays
  nothing;
* **deadlines**: every send carries a `deadline` (ns since the epoch); a send arriving
  after it is refused (REJECTED "expired"), so once a query has answered NOT_FOUND after
  the deadline, that send can never be executed late (docs/internals/settlement/payments.md).

`attempt` is the payer's send number for the payment; replies echo it, so a late reply to
an old attempt is recognised as stale.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum

__all__ = [
    "BankAdapter",
    "BankOutcome",
    "BankRequestKind",
    "BankResult",
    "ResultCallback",
    "SendRequest",
]


class BankRequestKind(StrEnum):
    SEND = "send"
    QUERY = "query"


class BankOutcome(StrEnum):
    PAID = "paid"  # the money moved (now or earlier: a duplicate send answers PAID too)
    REJECTED = "rejected"  # this attempt was refused; nothing moved
    NOT_FOUND = "not_found"  # query: not paid, and the queried send can no longer execute
    PENDING = "pending"  # query: the send's deadline has not passed at the bank yet


@dataclass(frozen=True, slots=True)
class BankResult:
    """A bank's answer to one send or query."""

    kind: BankRequestKind
    payment_id: str
    bank: str
    attempt: int
    outcome: BankOutcome
    reason: str = ""


ResultCallback = Callable[[BankResult], None]


@dataclass(frozen=True, slots=True)
class SendRequest:
    """What the payer asks a bank to pay: attempt `attempt` of `payment_id`, due by
    `deadline` (ns since the epoch). Amount and currency as the bank's wire carries them."""

    payment_id: str
    attempt: int
    payer: str
    payee: str
    amount_minor: int
    currency: str
    deadline: int


class BankAdapter(ABC):
    """One bank. Callbacks run on the bus's loop; a request may never be answered."""

    bank_id: str

    @abstractmethod
    def send(self, request: SendRequest, on_result: ResultCallback) -> None:
        """Ask the bank to pay; `on_result` runs at most once per answer that arrives."""

    @abstractmethod
    def query(
        self, payment_id: str, on_result: ResultCallback, *, attempt: int, deadline: int
    ) -> None:
        """Ask what became of `payment_id` (send number `attempt`, due by `deadline`)."""
