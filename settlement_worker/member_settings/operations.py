"""Members' payment methods and receipt limits as changed at run time, over the file.

``config/settlement.toml`` gives every member a payment method (as payer) and receipt limits
(as payee). A member, or an operator for it, may change them at run time by a settlement
request (settlement_worker.member_settings.requests); the change is kept in the store (table
``member_settings``, migration v0006), never in the file:

* ``receives``: the receipt-limit fields set at run time, applied over the file's limits
  with :func:`~settlement_worker.plans.receipt_limits.update_limits` (the loader's own
  function). A field never set at run time keeps following the file.
* ``pays``: the payment method set at run time, replacing the file's whole (as a member's
  ``pays`` table replaces the default).

Every change is a new ``version`` of the member's row, kept in ``member_settings_history``
with who, when, why and the request, and written to ``audit_log`` in the same commit.

Booking reads the settings in force through :func:`current_config`: the file's
:class:`SettlementConfig` with the store's changes applied, an immutable value like the
file's. :func:`settings_mark` (the latest change's sequence number) tells a process whether
another one changed something since it last looked, for one cheap query per batch.
"""

from __future__ import annotations

import dataclasses
import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Final

from settlement_worker.configuration import SettlementConfig
from settlement_worker.plans.receipt_limits import (
    ANY_ACCEPTOR,
    NO_FACE_LIMIT,
    LimitsError,
    PaymentMethod,
    ReceiptLimits,
    parse_payment_method,
    update_limits,
)
from settlement_worker.store import ConcurrentUpdate, Transaction

__all__ = [
    "SETTINGS_SUBJECT",
    "StoredSettings",
    "current_config",
    "effective",
    "limits_to_wire",
    "load_settings",
    "load_stored",
    "method_to_wire",
    "save_settings",
    "settings_mark",
]

log = logging.getLogger("rex.settlement.settings")

#: ``audit_log.subject_type`` of settings changes (subject id: the member).
SETTINGS_SUBJECT: Final = "member_settings"


@dataclass(frozen=True, slots=True)
class StoredSettings:
    """A member's run-time changes as stored (``receives`` and ``pays`` in wire form)."""

    member: str
    receives: dict[str, Any]
    pays: dict[str, Any] | None
    version: int
    changed_at: int
    changed_by: str


def limits_to_wire(limits: ReceiptLimits) -> dict[str, Any]:
    """Every receipt limit as a request carries it and the store keeps it (msgpack- and
    JSON-safe): no limit is ``"unlimited"`` / ``"any"``, acceptors a sorted list."""
    return {
        "accept_bills": limits.accept_bills,
        "max_bill_face_minor": (
            NO_FACE_LIMIT if limits.max_bill_face_minor is None else limits.max_bill_face_minor
        ),
        "max_tenor_days": limits.max_tenor_days,
        "accepted_acceptors": (
            ANY_ACCEPTOR if limits.accepted_acceptors is None else sorted(limits.accepted_acceptors)
        ),
        "accept_commercial": limits.accept_commercial,
        "max_bill_share_bps": limits.max_bill_share_bps,
    }


def method_to_wire(method: PaymentMethod) -> dict[str, Any]:
    """A payment method as a ``pays`` table: ``method`` and the fields it has."""
    wire: dict[str, Any] = {"method": str(method.kind)}
    for name in ("acceptor", "tenor_days", "min_tenor_days"):
        value = getattr(method, name)
        if value is not None:
            wire[name] = value
    return wire


def _json(text: Any) -> Any:
    return json.loads(text) if isinstance(text, str) else text


def _stored(row: tuple[Any, ...]) -> StoredSettings:
    member, receives, pays, version, changed_at, changed_by = row
    return StoredSettings(
        member,
        dict(_json(receives)),
        None if pays is None else dict(_json(pays)),
        int(version),
        int(changed_at),
        str(changed_by),
    )


_COLUMNS = "member, receives, pays, version, changed_at, changed_by"


def load_stored(tx: Transaction, member: str) -> StoredSettings | None:
    rows = tx.execute(f"SELECT {_COLUMNS} FROM member_settings WHERE member = ?", [member])
    return _stored(rows[0]) if rows else None


def load_settings(tx: Transaction) -> dict[str, StoredSettings]:
    rows = tx.execute(f"SELECT {_COLUMNS} FROM member_settings")
    return {s.member: s for s in map(_stored, rows)}


def settings_mark(tx: Transaction) -> int:
    """The sequence number of the latest change (0: none). It only grows, so a process
    that saw the same number has the settings in force."""
    return int(tx.execute("SELECT COALESCE(MAX(seq), 0) FROM member_settings_history")[0][0])


def effective(
    config: SettlementConfig, member: str, stored: StoredSettings | None
) -> tuple[PaymentMethod, ReceiptLimits]:
    """The member's payment method and receipt limits in force: the file's, with the
    stored changes applied. Raises LimitsError if the file no longer admits them."""
    method = config.method_or_default(member)
    limits = config.limits_or_default(member)
    if stored is None:
        return method, limits
    if stored.pays is not None:
        method = parse_payment_method(stored.pays, known_banks=config.banks.keys())
    limits = update_limits(limits, stored.receives, known_acceptors=config.known_acceptors)
    return method, limits


def current_config(tx: Transaction, config: SettlementConfig) -> SettlementConfig:
    """``config`` (the file's) with every member's run-time changes applied.

    A stored change the file no longer admits (say a bank removed from ``[[banks]]`` since)
    is logged and that member keeps the file's settings: the worker must go on booking, and
    the file is what an operator last declared."""
    stored = load_settings(tx)
    if not stored:
        return config
    methods = dict(config.methods)
    limits = dict(config.limits)
    for member, settings in stored.items():
        try:
            methods[member], limits[member] = effective(config, member, settings)
        except LimitsError as error:
            log.error(
                "settings of member=%s version=%d no longer valid (%s: %s); using the file's",
                member,
                settings.version,
                error.field,
                error.reason,
            )
    return dataclasses.replace(
        config, methods=MappingProxyType(methods), limits=MappingProxyType(limits)
    )


def save_settings(
    tx: Transaction,
    before: StoredSettings | None,
    member: str,
    *,
    receives: Mapping[str, Any],
    pays: Mapping[str, Any] | None,
    action: str,
    detail: Mapping[str, Any],
    at: int,
    actor: str,
    request_id: str,
    reason: str,
) -> int:
    """Store the member's next version over ``before`` (as read in this transaction), its
    history row and its audit row; the new version. Raises ConcurrentUpdate if the
    row moved on since ``before`` was read."""
    version = 1 if before is None else before.version + 1
    receives_text = json.dumps(dict(receives), sort_keys=True)
    pays_text = None if pays is None else json.dumps(dict(pays), sort_keys=True)
    values = [receives_text, pays_text, version, at, actor]
    if before is None:
        written = tx.execute(
            f"INSERT INTO member_settings ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?)"
            " ON CONFLICT (member) DO NOTHING RETURNING member",
            [member, *values],
        )
    else:
        written = tx.execute(
            "UPDATE member_settings SET receives = ?, pays = ?, version = ?, changed_at = ?,"
            " changed_by = ? WHERE member = ? AND version = ? RETURNING member",
            [*values, member, before.version],
        )
    if not written:
        raise ConcurrentUpdate(f"settings of {member} changed meanwhile")
    tx.execute(
        "INSERT INTO member_settings_history (member, version, at, actor, request_id, reason,"
        " receives, pays) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        [member, version, at, actor, request_id, reason, receives_text, pays_text],
    )
    tx.audit(
        at,
        actor,
        SETTINGS_SUBJECT,
        member,
        action,
        {**detail, "version": version, "request_id": request_id, "reason": reason},
    )
    return version
