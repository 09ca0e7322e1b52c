"""Disputes as a pure state machine: a party contests a trade or a bill, an operator decides.

Life cycle::

    OPEN ──uphold (operator)──▶ UPHELD     the subject's entries are reversed; a trade's
      │                                    obligation and a bill are cancelled
      └───reject (operator)───▶ REJECTED   settlement of the subject resumes

While a dispute is OPEN its subject is **frozen**: the worker, the payer and anything else
that moves the subject's money asks :func:`is_frozen` (or the store's ``Transaction.is_frozen``)
first and leaves it alone.

Rules (each refusal is a :class:`~settlement_worker.codes.RuleViolation` whose ``code``
names the rule):

* ``not_a_party``: only a member who is a party to the subject opens a dispute on it (the
  buyer or seller of a trade; a party to a bill as :func:`settlement_worker.bills.rules.parties`
  defines it).
* ``reason_required`` / ``note_required``: opening needs a reason and resolving needs a
  note; both are kept in the audit log (the *why* of every change).
* ``already_disputed``: one open dispute per subject at a time.
* ``already_upheld``: a subject whose dispute was upheld is reversed; there is nothing left
  to dispute.
* ``not_operator``: only an operator resolves, never a member (not even the other party).
* ``already_resolved``: a dispute is resolved once.
* ``backdated``: a dispute is not resolved before it was opened.

Pure: no I/O and no clock; times are arguments (``at`` in ns since the epoch).
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable
from dataclasses import dataclass, replace
from enum import StrEnum
from typing import Final

from settlement_worker.bills.rules import Bill, is_live, void
from settlement_worker.bills.rules import parties as bill_parties
from settlement_worker.codes import RuleViolation, SettlementCode
from settlement_worker.ledger.rules import JournalEntry, Ledger

__all__ = [
    "REVERSAL_PREFIX",
    "REVERSAL_REASON",
    "Actor",
    "Dispute",
    "DisputeState",
    "Role",
    "Subject",
    "SubjectType",
    "cancel_disputed_bill",
    "is_frozen",
    "open_dispute",
    "reject",
    "reversal_entries",
    "reversal_id",
    "subject_entry_ids",
    "uphold",
]

#: Reversals of a disputed subject's entries are named ``reverse-<original id>``.
REVERSAL_PREFIX: Final = "reverse-"
#: The ``reason`` (kind) of those reversals in the journal.
REVERSAL_REASON: Final = "dispute_reversal"
#: Longest reason or note kept (characters).
MAX_TEXT: Final = 2000

_NAME_RE: Final = re.compile(r"[A-Za-z0-9_.@-]{1,64}")


# --------------------------------------------------------------------------- errors


# ---------------------------------------------------------------------------- values


class Role(StrEnum):
    MEMBER = "member"
    OPERATOR = "operator"


@dataclass(frozen=True, slots=True)
class Actor:
    """Who acts: a member (by member id) or an exchange operator (by name).

    ``str(actor)`` (``"member:ganzhou-magnet"``, ``"operator:li"``) is what the audit log
    records as the actor.
    """

    role: Role
    name: str

    def __post_init__(self) -> None:
        if not isinstance(self.role, Role):
            raise RuleViolation(
                SettlementCode.INVALID_DISPUTE, f"role must be a Role, got {self.role!r}"
            )
        if not isinstance(self.name, str) or _NAME_RE.fullmatch(self.name) is None:
            raise RuleViolation(
                SettlementCode.INVALID_DISPUTE,
                f"actor name must be 1-64 letters, digits or '_.@-', got {self.name!r}",
            )

    @classmethod
    def member(cls, name: str) -> Actor:
        return cls(Role.MEMBER, name)

    @classmethod
    def operator(cls, name: str) -> Actor:
        return cls(Role.OPERATOR, name)

    def __str__(self) -> str:
        return f"{self.role}:{self.name}"


class SubjectType(StrEnum):
    TRADE = "trade"
    BILL = "bill"


@dataclass(frozen=True, slots=True)
class Subject:
    """What is disputed, and the members who are party to it."""

    type: SubjectType
    id: str
    parties: frozenset[str]

    def __post_init__(self) -> None:
        if not isinstance(self.type, SubjectType):
            raise RuleViolation(
                SettlementCode.INVALID_DISPUTE,
                f"subject type must be trade or bill, got {self.type!r}",
            )
        if not isinstance(self.id, str) or not self.id.strip():
            raise RuleViolation(
                SettlementCode.INVALID_DISPUTE,
                f"subject id must be a non-empty string, got {self.id!r}",
            )
        object.__setattr__(self, "parties", frozenset(self.parties))

    @classmethod
    def trade(cls, trade_id: str, buyer: str, seller: str) -> Subject:
        return cls(SubjectType.TRADE, trade_id, frozenset({buyer, seller}))

    @classmethod
    def bill(cls, bill: Bill) -> Subject:
        return cls(SubjectType.BILL, bill.bill_id, bill_parties(bill))


class DisputeState(StrEnum):
    OPEN = "open"
    UPHELD = "upheld"
    REJECTED = "rejected"


def _text(name: str, value: object, code: SettlementCode) -> str:
    if not isinstance(value, str) or not value.strip():
        raise RuleViolation(code, f"{name} must be a non-empty text")
    if len(value) > MAX_TEXT:
        raise RuleViolation(code, f"{name} is longer than {MAX_TEXT} characters")
    return value.strip()


@dataclass(frozen=True, slots=True)
class Dispute:
    """One dispute, validated on construction (so one loaded from storage obeys the rules).

    ``opened_by`` is a member id; ``resolved_by`` an operator's name; times are ns.
    """

    dispute_id: str
    subject_type: SubjectType
    subject_id: str
    opened_by: str
    reason: str
    opened_at: int
    state: DisputeState = DisputeState.OPEN
    resolved_by: str | None = None
    resolution_note: str | None = None
    resolved_at: int | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.dispute_id, str) or not self.dispute_id.strip():
            raise RuleViolation(
                SettlementCode.INVALID_DISPUTE,
                f"dispute_id must be a non-empty string, got {self.dispute_id!r}",
            )
        if not isinstance(self.subject_type, SubjectType):
            raise RuleViolation(
                SettlementCode.INVALID_DISPUTE,
                f"subject_type must be a SubjectType, got {self.subject_type!r}",
            )
        if not isinstance(self.state, DisputeState):
            raise RuleViolation(
                SettlementCode.INVALID_DISPUTE, f"state must be a DisputeState, got {self.state!r}"
            )
        _text("reason", self.reason, SettlementCode.REASON_REQUIRED)
        resolved = (self.resolved_by, self.resolution_note, self.resolved_at)
        if self.state is DisputeState.OPEN:
            if any(v is not None for v in resolved):
                raise RuleViolation(
                    SettlementCode.INVALID_DISPUTE,
                    f"open dispute {self.dispute_id} has a resolution",
                )
        else:
            if self.resolved_by is None or self.resolved_at is None:
                raise RuleViolation(
                    SettlementCode.INVALID_DISPUTE,
                    f"{self.state} dispute {self.dispute_id} has no resolver",
                )
            _text("resolution note", self.resolution_note, SettlementCode.NOTE_REQUIRED)
            if self.resolved_at < self.opened_at:
                raise RuleViolation(
                    SettlementCode.BACKDATED,
                    f"dispute {self.dispute_id} resolved before it was opened",
                )

    @property
    def subject_key(self) -> tuple[SubjectType, str]:
        return (self.subject_type, self.subject_id)


# ------------------------------------------------------------------------ operations


def open_dispute(
    dispute_id: str,
    subject: Subject,
    by: Actor,
    reason: str,
    at: int,
    existing: Iterable[Dispute] = (),
) -> Dispute:
    """A party to ``subject`` contests it; ``existing`` is every dispute on that subject."""
    reason = _text("reason", reason, SettlementCode.REASON_REQUIRED)
    if by.role is not Role.MEMBER or by.name not in subject.parties:
        raise RuleViolation(
            SettlementCode.NOT_A_PARTY, f"{by} is not a party to {subject.type} {subject.id}"
        )
    for other in existing:
        if other.subject_key != (subject.type, subject.id):
            continue
        if other.state is DisputeState.OPEN:
            raise RuleViolation(
                SettlementCode.ALREADY_DISPUTED,
                f"{subject.type} {subject.id} already has open dispute {other.dispute_id}",
            )
        if other.state is DisputeState.UPHELD:
            raise RuleViolation(
                SettlementCode.ALREADY_UPHELD,
                f"{subject.type} {subject.id} was reversed by dispute {other.dispute_id}",
            )
    return Dispute(dispute_id, subject.type, subject.id, by.name, reason, at)


def _resolve(dispute: Dispute, by: Actor, note: str, at: int, to: DisputeState) -> Dispute:
    if by.role is not Role.OPERATOR:
        raise RuleViolation(
            SettlementCode.NOT_OPERATOR,
            f"{by} may not resolve dispute {dispute.dispute_id}: operators only",
        )
    if dispute.state is not DisputeState.OPEN:
        raise RuleViolation(
            SettlementCode.ALREADY_RESOLVED,
            f"dispute {dispute.dispute_id} is already {dispute.state}",
        )
    note = _text("resolution note", note, SettlementCode.NOTE_REQUIRED)
    if at < dispute.opened_at:
        raise RuleViolation(
            SettlementCode.BACKDATED,
            f"dispute {dispute.dispute_id} cannot be resolved before it was opened",
        )
    return replace(dispute, state=to, resolved_by=by.name, resolution_note=note, resolved_at=at)


def uphold(dispute: Dispute, by: Actor, note: str, at: int) -> Dispute:
    """The operator agrees with the member: the subject is reversed (see
    :func:`reversal_entries`) and cancelled."""
    return _resolve(dispute, by, note, at, DisputeState.UPHELD)


def reject(dispute: Dispute, by: Actor, note: str, at: int) -> Dispute:
    """The operator disagrees: the subject unfreezes and settles as if never disputed."""
    return _resolve(dispute, by, note, at, DisputeState.REJECTED)


def is_frozen(subject_type: SubjectType, subject_id: str, disputes: Iterable[Dispute]) -> bool:
    """True while ``subject`` has an open dispute: do not settle, pay or transfer it."""
    return any(
        d.state is DisputeState.OPEN and d.subject_key == (subject_type, subject_id)
        for d in disputes
    )


# ------------------------------------------------------------------------- reversals


def reversal_id(entry_id: str) -> str:
    return REVERSAL_PREFIX + entry_id


def subject_entry_ids(subject_type: SubjectType, subject_id: str, ledger: Ledger) -> list[str]:
    """The entries an upheld dispute reverses, in journal order.

    A trade: ``trade-<id>`` and, if fees were charged, ``fees-<id>``. A bill: every entry
    whose reference is the bill id and that is not itself a correction. Entries already
    reversed are included (reversing them again is refused by the ledger, or is an
    idempotent rebuild of the same reversal).
    """
    if subject_type is SubjectType.TRADE:
        wanted = [f"trade-{subject_id}", f"fees-{subject_id}"]
        return [entry_id for entry_id in wanted if entry_id in ledger]
    return [
        e.entry_id for e in ledger.entries() if e.reference == subject_id and e.corrects is None
    ]


def reversal_entries(
    dispute: Dispute, ledger: Ledger, created_at: dt.datetime, effective: dt.date
) -> tuple[JournalEntry, ...]:
    """The entries that undo an upheld dispute's subject: ``reverse-<id>`` for each of
    :func:`subject_entry_ids`, every posting negated, ``corrects`` naming the original.

    ``ledger`` must hold the subject's entries (and any earlier reversal of them). Built,
    not posted. Raises :class:`~settlement_worker.ledger.rules.AlreadyReversed` if some other
    entry already reversed one of them.
    """
    if dispute.state is not DisputeState.UPHELD:
        raise RuleViolation(
            SettlementCode.INVALID_DISPUTE,
            f"dispute {dispute.dispute_id} is {dispute.state}, not upheld",
        )
    return tuple(
        ledger.reverse(entry_id, reversal_id(entry_id), created_at, REVERSAL_REASON, effective)
        for entry_id in subject_entry_ids(dispute.subject_type, dispute.subject_id, ledger)
    )


def cancel_disputed_bill(bill: Bill, dispute: Dispute, on: dt.date) -> Bill:
    """The bill an upheld dispute cancels (:func:`settlement_worker.bills.rules.void`).

    Any outstanding bill can be cancelled this way -- issued, accepted, endorsed or
    discounted -- with its chain kept; a bill already paid, dishonoured or cancelled is
    history, and cancelling it raises ``bill_not_cancellable``.
    """
    if dispute.state is not DisputeState.UPHELD or dispute.subject_id != bill.bill_id:
        raise RuleViolation(
            SettlementCode.INVALID_DISPUTE,
            f"dispute {dispute.dispute_id} does not uphold bill {bill.bill_id}",
        )
    if not is_live(bill.state):
        raise RuleViolation(
            SettlementCode.BILL_NOT_CANCELLABLE,
            f"bill {bill.bill_id} is {bill.state}: only an outstanding bill can be cancelled",
        )
    return void(bill, on)
