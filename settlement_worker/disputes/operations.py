"""Disputes in the settlement store: the rules of :mod:`settlement_worker.disputes.rules`, applied
inside the caller's transaction, with every change written to the audit log.

Each function takes a :class:`~settlement_worker.store.Transaction`, so opening a dispute
and its audit rows, or an uphold and its reversing entries, commit together or not at all.

Audit rows (actor ``member:<id>`` or ``operator:<name>``; ``detail["reason"]`` is the why):

=============  =================  ==============================================
subject        action             when
=============  =================  ==============================================
dispute        opened             a member opens it (detail: subject, reason)
trade / bill   frozen             ... its subject freezes
dispute        upheld / rejected  an operator resolves it (detail: note as reason)
trade / bill   reversed           upheld: the reversing entry ids
obligation     cancelled          upheld trade: the obligation's previous state
bill           cancelled          upheld bill
obligation     reopened           upheld bill: each obligation the bill had paid
trade / bill   unfrozen           rejected: settlement resumes
=============  =================  ==============================================

An upheld bill dispute also cancels the bill row and reopens what it paid
(:mod:`settlement_worker.disputes.bills`), here, so that no caller can reverse a bill's
entries and leave the bill live.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from settlement_worker.booking.operations import load_entries
from settlement_worker.codes import RuleViolation, SettlementCode
from settlement_worker.disputes.bills import bill_to_cancel, cancel_bill
from settlement_worker.disputes.rules import (
    Actor,
    Dispute,
    DisputeState,
    Subject,
    SubjectType,
    open_dispute,
    reject,
    reversal_entries,
    uphold,
)
from settlement_worker.ledger.rules import EXCHANGE, Ledger
from settlement_worker.ledger.sql import entry_row, from_ns
from settlement_worker.obligations.rules import ObligationState, obligation_id_for
from settlement_worker.obligations.settle import trade_date
from settlement_worker.store import AuditRow, Transaction
from settlement_worker.store.ids import take_number

__all__ = [
    "AuditRow",
    "Resolution",
    "get_dispute",
    "history",
    "list_disputes",
    "load_subject",
    "open_in_store",
    "resolve_in_store",
]

#: The id series of disputes: D-1, D-2, ... in order of opening.
DISPUTE_SERIES = "dispute"

_COLUMNS = (
    "dispute_id, subject_type, subject_id, opened_by, reason, opened_at, state,"
    " resolved_by, resolution_note, resolved_at"
)


@dataclass(frozen=True, slots=True)
class Resolution:
    dispute: Dispute
    reversals: tuple[str, ...]  # entry ids posted (upheld), none if rejected


def _dispute(row: Sequence[Any]) -> Dispute:
    return Dispute(
        dispute_id=row[0],
        subject_type=SubjectType(row[1]),
        subject_id=row[2],
        opened_by=row[3],
        reason=row[4],
        opened_at=int(row[5]),
        state=DisputeState(row[6]),
        resolved_by=row[7],
        resolution_note=row[8],
        resolved_at=None if row[9] is None else int(row[9]),
    )


def load_subject(tx: Transaction, subject_type: SubjectType, subject_id: str) -> Subject:
    """The disputed trade (parties: its obligation's payer and payee) or bill (parties: the
    members with postings about it, until bills have a table of their own)."""
    if subject_type is SubjectType.TRADE:
        rows = tx.execute("SELECT payer, payee FROM obligations WHERE trade_id = ?", [subject_id])
        if not rows:
            raise RuleViolation(SettlementCode.UNKNOWN_SUBJECT, f"no settled trade {subject_id}")
        return Subject.trade(subject_id, rows[0][0], rows[0][1])
    rows = tx.execute(
        "SELECT DISTINCT p.owner FROM postings p JOIN journal_entries e"
        " ON e.entry_id = p.entry_id WHERE e.reference = ? AND p.owner <> ?",
        [subject_id, EXCHANGE],
    )
    if not rows:
        raise RuleViolation(SettlementCode.UNKNOWN_SUBJECT, f"no bill {subject_id} in the ledger")
    return Subject(SubjectType.BILL, subject_id, frozenset(r[0] for r in rows))


def get_dispute(tx: Transaction, dispute_id: str) -> Dispute:
    rows = tx.execute(f"SELECT {_COLUMNS} FROM disputes WHERE dispute_id = ?", [dispute_id])
    if not rows:
        raise RuleViolation(SettlementCode.UNKNOWN_DISPUTE, f"no dispute {dispute_id}")
    return _dispute(rows[0])


def list_disputes(
    tx: Transaction,
    state: DisputeState | None = None,
    member: str | None = None,
    subject_id: str | None = None,
) -> list[Dispute]:
    """Disputes, oldest first; ``member`` matches the opener or a party to a disputed trade."""
    where, params = ["1 = 1"], []
    if state is not None:
        where.append("d.state = ?")
        params.append(state.value)
    if subject_id is not None:
        where.append("d.subject_id = ?")
        params.append(subject_id)
    if member is not None:
        where.append("(d.opened_by = ? OR o.payer = ? OR o.payee = ?)")
        params += [member, member, member]
    columns = ", ".join(f"d.{c.strip()}" for c in _COLUMNS.split(","))
    rows = tx.execute(
        f"SELECT {columns} FROM disputes d LEFT JOIN obligations o"
        " ON d.subject_type = 'trade' AND o.trade_id = d.subject_id"
        f" WHERE {' AND '.join(where)} ORDER BY d.opened_at, d.dispute_id",
        params,
    )
    return [_dispute(r) for r in rows]


def open_in_store(
    tx: Transaction,
    subject_type: SubjectType,
    subject_id: str,
    by: Actor,
    reason: str,
    at: int,
    *,
    actor: str | None = None,
) -> Dispute:
    """A party opens a dispute; the subject is frozen from this commit on. A refusal raises,
    and the caller's transaction rolls back (the dispute number with it). ``actor`` (audit):
    who acted, by default ``by``; an operator opening it for the party is
    ``operator:<name>`` (the dispute is still the party's: ``opened_by``)."""
    audited = actor or str(by)
    subject = load_subject(tx, subject_type, subject_id)
    # The number first: it locks the dispute series until commit, so a concurrent opener of
    # the same subject waits here and then reads this dispute below (already_disputed),
    # rather than failing on the database's one-open-dispute index.
    dispute_id = f"D-{take_number(tx, DISPUTE_SERIES)}"
    existing = [
        _dispute(r)
        for r in tx.execute(
            f"SELECT {_COLUMNS} FROM disputes WHERE subject_type = ? AND subject_id = ?",
            [subject_type.value, subject_id],
        )
    ]
    dispute = open_dispute(dispute_id, subject, by, reason, at, existing)
    tx.execute(
        f"INSERT INTO disputes ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, NULL, NULL, NULL)",
        [
            dispute.dispute_id,
            dispute.subject_type.value,
            dispute.subject_id,
            dispute.opened_by,
            dispute.reason,
            dispute.opened_at,
            dispute.state.value,
        ],
    )
    about = {"subject_type": subject_type.value, "subject_id": subject_id}
    tx.audit_many(
        [
            AuditRow(
                at, audited, "dispute", dispute.dispute_id, "opened", {**about, "reason": reason}
            ),
            AuditRow(
                at,
                audited,
                subject_type.value,
                subject_id,
                "frozen",
                {"dispute_id": dispute.dispute_id, "reason": reason},
            ),
        ]
    )
    return dispute


def resolve_in_store(
    tx: Transaction, dispute_id: str, by: Actor, upheld: bool, note: str, at: int
) -> Resolution:
    """An operator upholds (reverse and cancel) or rejects (unfreeze) an open dispute.

    Upholding a bill dispute cancels the bill too (and reopens the obligations it paid); a
    bill that is no longer outstanding is refused (``bill_not_cancellable``) before
    anything is written."""
    before = get_dispute(tx, dispute_id)
    after = (uphold if upheld else reject)(before, by, note, at)
    bill = None
    if upheld and after.subject_type is SubjectType.BILL:
        bill = bill_to_cancel(tx, after, at)
    changed = tx.execute(
        "UPDATE disputes SET state = ?, resolved_by = ?, resolution_note = ?, resolved_at = ?"
        " WHERE dispute_id = ? AND state = 'open' RETURNING dispute_id",
        [after.state.value, after.resolved_by, after.resolution_note, at, dispute_id],
    )
    if not changed:  # another operator got there first (PostgreSQL, read committed)
        raise RuleViolation(
            SettlementCode.ALREADY_RESOLVED, f"dispute {dispute_id} was resolved meanwhile"
        )
    kind, subject_id, why = after.subject_type.value, after.subject_id, after.resolution_note
    audits: list[AuditRow] = [
        AuditRow(at, str(by), "dispute", dispute_id, after.state.value, {"reason": why})
    ]
    reversed_ids: tuple[str, ...] = ()
    if upheld:
        ledger = Ledger.rebuild(load_entries(tx, subject_id))
        entries = reversal_entries(after, ledger, from_ns(at), trade_date(at))
        tx.append_entries([entry_row(e) for e in entries])
        reversed_ids = tuple(e.entry_id for e in entries)
        audits.append(
            AuditRow(
                at,
                str(by),
                kind,
                subject_id,
                "reversed",
                {"dispute_id": dispute_id, "entries": list(reversed_ids), "reason": why},
            )
        )
        if after.subject_type is SubjectType.TRADE:
            obligation_id = obligation_id_for(subject_id)
            previous = tx.execute(
                "SELECT state FROM obligations WHERE obligation_id = ?", [obligation_id]
            )
            tx.set_obligation_state(obligation_id, ObligationState.CANCELLED)
            audits.append(
                AuditRow(
                    at,
                    str(by),
                    "obligation",
                    obligation_id,
                    "cancelled",
                    {
                        "dispute_id": dispute_id,
                        "previous_state": previous[0][0] if previous else None,
                        "reason": why,
                    },
                )
            )
        else:
            audits.append(
                AuditRow(
                    at,
                    str(by),
                    "bill",
                    subject_id,
                    "cancelled",
                    {"dispute_id": dispute_id, "reason": why},
                )
            )
    else:
        audits.append(
            AuditRow(
                at, str(by), kind, subject_id, "unfrozen", {"dispute_id": dispute_id, "reason": why}
            )
        )
    tx.audit_many(audits)
    if bill is not None:
        cancel_bill(tx, bill, after, by, at)
    return Resolution(after, reversed_ids)


def history(tx: Transaction, dispute_id: str) -> list[AuditRow]:
    """The audit trail of a dispute and of its subject, oldest first."""
    dispute = get_dispute(tx, dispute_id)
    rows = tx.execute(
        "SELECT at, actor, subject_type, subject_id, action, detail FROM audit_log"
        " WHERE (subject_type = 'dispute' AND subject_id = ?)"
        " OR (subject_type = ? AND subject_id = ?) OR (subject_type = 'obligation'"
        " AND subject_id = ?) ORDER BY seq",
        [
            dispute_id,
            dispute.subject_type.value,
            dispute.subject_id,
            obligation_id_for(dispute.subject_id),
        ],
    )
    return [
        AuditRow(
            int(r[0]), r[1], r[2], r[3], r[4], r[5] if isinstance(r[5], dict) else json.loads(r[5])
        )
        for r in rows
    ]
