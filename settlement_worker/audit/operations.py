"""An audit search, paged: the rows of one page and where the next begins."""

from __future__ import annotations

import json
from typing import Any

from settlement_worker.audit.rules import MAX_ANSWER_BYTES, AuditQuery
from settlement_worker.audit.sql import search_audit_log
from settlement_worker.store import Transaction

__all__ = ["search_page"]


def search_page(tx: Transaction, query: AuditQuery) -> dict[str, Any]:
    """``{"entries": [...], "next_after_seq": n or None}``: at most ``query.limit`` rows and
    about :data:`MAX_ANSWER_BYTES` of them; ``next_after_seq`` is where the next page starts,
    None when there is none."""
    rows = search_audit_log(tx, query)
    entries: list[dict[str, Any]] = []
    size = 0
    for row in rows[: query.limit]:
        size += len(json.dumps(row, ensure_ascii=False))
        if entries and size > MAX_ANSWER_BYTES:
            break
        entries.append(row)
    more = len(entries) < len(rows)
    return {"entries": entries, "next_after_seq": entries[-1]["seq"] if more else None}
