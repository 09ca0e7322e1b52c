"""The audit search's one query: rows of ``audit_log`` in ``seq`` order, a page at a time."""

from __future__ import annotations

import json
from typing import Any

from settlement_worker.audit.rules import AuditQuery
from settlement_worker.store import Transaction

__all__ = ["search_audit_log"]


def search_audit_log(tx: Transaction, query: AuditQuery) -> list[dict[str, Any]]:
    """Up to ``query.limit + 1`` rows after ``query.after_seq`` matching the query (the extra
    row tells the caller another page follows)."""
    where: list[str] = ["seq > ?"]
    args: list[int | str] = [query.after_seq]
    for column, value in (
        ("actor", query.actor),
        ("subject_type", query.subject_type),
        ("subject_id", query.subject_id),
    ):
        if value is not None:
            where.append(f"{column} = ?")
            args.append(value)
    if query.since_ns is not None:
        where.append("at >= ?")
        args.append(query.since_ns)
    if query.until_ns is not None:
        where.append("at < ?")
        args.append(query.until_ns)
    rows = tx.execute(
        "SELECT seq, at, actor, subject_type, subject_id, action, detail FROM audit_log"
        f" WHERE {' AND '.join(where)} ORDER BY seq LIMIT ?",
        [*args, query.limit + 1],
    )
    return [
        {
            "seq": int(r[0]),
            "at": int(r[1]),
            "actor": r[2],
            "subject_type": r[3],
            "subject_id": r[4],
            "action": r[5],
            "detail": r[6] if isinstance(r[6], dict) else json.loads(r[6]),
        }
        for r in rows
    ]
