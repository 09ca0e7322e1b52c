"""What an audit search may ask, checked before any SQL runs (pure).

An auditor's search names any of: the actor (``operator:li-wei``, ``member:xinyu-pvc``,
``system``...), the subject (its type and/or id: ``bill``/``B-...``), a time window
(``since_ns`` inclusive, ``until_ns`` exclusive, ns since the epoch) and where the last page
ended (``after_seq``); at most :data:`MAX_LIMIT` rows come back per page, oldest first. Every
field is bounded, so no search can make the store scan without limit or the answer outgrow
a message.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

__all__ = [
    "DEFAULT_LIMIT",
    "FIELDS",
    "MAX_ANSWER_BYTES",
    "MAX_LIMIT",
    "AuditQuery",
    "QueryError",
    "parse_query",
]

DEFAULT_LIMIT: Final = 50
MAX_LIMIT: Final = 200
#: A page stops early, with ``next_after_seq``, once its rows' JSON passes this size.
MAX_ANSWER_BYTES: Final = 256 * 1024
_MAX_TEXT: Final = {"actor": 80, "subject_type": 32, "subject_id": 80}
_MAX_NS: Final = 2**63 - 1
FIELDS: Final = (
    "actor",
    "subject_type",
    "subject_id",
    "since_ns",
    "until_ns",
    "after_seq",
    "limit",
)


@dataclass(frozen=True, slots=True)
class AuditQuery:
    actor: str | None = None
    subject_type: str | None = None
    subject_id: str | None = None
    since_ns: int | None = None
    until_ns: int | None = None
    after_seq: int = 0
    limit: int = DEFAULT_LIMIT


class QueryError(ValueError):
    """A search field out of bounds: ``field`` names it."""

    def __init__(self, field: str, text: str) -> None:
        self.field = field
        super().__init__(text)


def parse_query(params: Mapping[str, Any]) -> AuditQuery:
    """The search ``params`` ask for, or :class:`QueryError` for the first bad field."""
    unknown = sorted(str(k)[:32] for k in params if k not in FIELDS)
    if unknown:
        raise QueryError(unknown[0], f"unknown fields {unknown[:5]} (known: {', '.join(FIELDS)})")
    texts = {name: _text(params, name, longest) for name, longest in _MAX_TEXT.items()}
    since, until = _int(params, "since_ns", 0, _MAX_NS), _int(params, "until_ns", 0, _MAX_NS)
    if since is not None and until is not None and until <= since:
        raise QueryError("until_ns", "until_ns must be after since_ns")
    after = _int(params, "after_seq", 0, _MAX_NS)
    limit = _int(params, "limit", 1, MAX_LIMIT)
    return AuditQuery(
        texts["actor"],
        texts["subject_type"],
        texts["subject_id"],
        since,
        until,
        0 if after is None else after,
        DEFAULT_LIMIT if limit is None else limit,
    )


def _text(params: Mapping[str, Any], name: str, longest: int) -> str | None:
    value = params.get(name)
    if value is None:
        return None
    if not isinstance(value, str) or not 0 < len(value) <= longest or not value.isprintable():
        raise QueryError(name, f"{name} must be 1-{longest} printable characters")
    return value


def _int(params: Mapping[str, Any], name: str, lowest: int, highest: int) -> int | None:
    value = params.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not lowest <= value <= highest:
        raise QueryError(name, f"{name} must be an integer from {lowest} to {highest}")
    return value
