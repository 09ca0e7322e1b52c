"""Settlement requests about a member's own settings: its receipt limits (as payee) and its
payment method (as payer), changed at run time, and reading them back.

=============================  ===========================================================
kind                           body (besides ``member`` and ``reason``)
=============================  ===========================================================
``set_receipt_limits``         ``changes``: ReceiptLimits fields to new values (as in the
                               ``receives`` tables of config/settlement.toml);
                               ``if_version`` (optional)
``set_payment_method``         ``pays``: a whole payment method (as a ``pays`` table);
                               ``if_version`` (optional)
``show_settlement_settings``   nothing
=============================  ===========================================================

Each is answered with ``detail`` = ``{"member", "version", "receives", "pays"}``: the
settings in force after the request (``version`` 0: never changed at run time). A change is
validated by the functions that validate the file (``update_limits``,
``parse_payment_method``), so a limit the file would refuse is refused here too, with the
field named; a change that changes nothing is refused (``nothing_to_change``), and so is
one whose ``if_version`` is not the current version (``version_mismatch``: someone else
changed the settings since the sender read them).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import partial
from typing import Any

from rex.settlement_protocol import SET_PAYMENT_METHOD, SET_RECEIPT_LIMITS, SHOW_SETTLEMENT_SETTINGS
from settlement_worker.codes import SettlementCode
from settlement_worker.configuration import SettlementConfig
from settlement_worker.member_settings.operations import (
    StoredSettings,
    effective,
    limits_to_wire,
    load_stored,
    method_to_wire,
    save_settings,
)
from settlement_worker.plans.receipt_limits import (
    LimitsError,
    PaymentMethod,
    ReceiptLimits,
    parse_payment_method,
    update_limits,
)
from settlement_worker.requests.desk import (
    RequestConflict,
    RequestKind,
    RequestRefused,
    SettlementRequest,
)
from settlement_worker.store import ConcurrentUpdate, Transaction

__all__ = ["settings_request_kinds"]


def settings_request_kinds(config: SettlementConfig) -> dict[str, RequestKind]:
    """The settings requests, validated against ``config`` (the file's settings)."""
    return {
        SET_RECEIPT_LIMITS: RequestKind(SET_RECEIPT_LIMITS, partial(_set_limits, config)),
        SET_PAYMENT_METHOD: RequestKind(SET_PAYMENT_METHOD, partial(_set_method, config)),
        SHOW_SETTLEMENT_SETTINGS: RequestKind(
            SHOW_SETTLEMENT_SETTINGS, partial(_show, config), changes=False
        ),
    }


def _fields(params: Mapping[str, Any], required: str | None) -> None:
    allowed = {"if_version"} | ({required} if required else set())
    extra = sorted(str(k) for k in params if k not in allowed)
    if extra:
        raise RequestRefused(SettlementCode.MALFORMED, f"unknown field {extra[0]!r}")
    if required is not None and required not in params:
        raise RequestRefused(SettlementCode.MALFORMED, f"{required!r} is required")
    version = params.get("if_version")
    if version is not None and (isinstance(version, bool) or not isinstance(version, int)):
        raise RequestRefused(SettlementCode.MALFORMED, "if_version must be an integer")


def _table(params: Mapping[str, Any], name: str) -> Mapping[str, Any]:
    value = params[name]
    if not isinstance(value, dict) or not all(isinstance(k, str) for k in value):
        raise RequestRefused(SettlementCode.MALFORMED, f"{name!r} must be a map of field names")
    return value


@dataclass(frozen=True, slots=True)
class _InForce:
    """A member's settings as a request finds them."""

    stored: StoredSettings | None  # its row, to write the next version over
    receives: dict[str, Any]  # the run-time changes still in force (wire form)
    pays: dict[str, Any] | None
    method: PaymentMethod  # what booking uses now
    limits: ReceiptLimits


def _current(config: SettlementConfig, tx: Transaction, request: SettlementRequest) -> _InForce:
    """The member's settings in force, after checking ``if_version``. Stored changes the
    file no longer admits are not in force (booking ignores them), so a change starts
    afresh from the file's."""
    stored = load_stored(tx, request.member)
    version = 0 if stored is None else stored.version
    wanted = request.params.get("if_version")
    if wanted is not None and wanted != version:
        raise RequestRefused(
            SettlementCode.VERSION_MISMATCH,
            f"the settings of {request.member} are at version {version}, not {wanted}",
        )
    try:
        method, limits = effective(config, request.member, stored)
    except LimitsError:
        # Stored settings the file no longer admits: booking uses the file's (see
        # member_settings.current_config), and so does a change made now.
        method = config.method_or_default(request.member)
        limits = config.limits_or_default(request.member)
        return _InForce(stored, {}, None, method, limits)
    if stored is None:
        return _InForce(None, {}, None, method, limits)
    return _InForce(stored, stored.receives, stored.pays, method, limits)


def _detail(
    member: str, version: int, method: PaymentMethod, limits: ReceiptLimits
) -> dict[str, Any]:
    return {
        "member": member,
        "version": version,
        "receives": limits_to_wire(limits),
        "pays": method_to_wire(method),
    }


def _save(
    tx: Transaction,
    request: SettlementRequest,
    stored: StoredSettings | None,
    *,
    receives: Mapping[str, Any],
    pays: Mapping[str, Any] | None,
    action: str,
    before: Mapping[str, Any],
    after: Mapping[str, Any],
) -> int:
    assert request.reason is not None  # the desk requires one for a change
    try:
        return save_settings(
            tx,
            stored,
            request.member,
            receives=receives,
            pays=pays,
            action=action,
            detail={"before": dict(before), "after": dict(after)},
            at=request.at,
            actor=request.actor,
            request_id=request.request_id,
            reason=request.reason,
        )
    except ConcurrentUpdate as error:
        raise RequestConflict(str(error)) from error


def _set_limits(
    config: SettlementConfig, tx: Transaction, request: SettlementRequest
) -> dict[str, Any]:
    _fields(request.params, "changes")
    changes = _table(request.params, "changes")
    if not changes:
        raise RequestRefused(SettlementCode.NOTHING_TO_CHANGE, "'changes' is empty")
    now = _current(config, tx, request)
    try:
        new = update_limits(now.limits, changes, known_acceptors=config.known_acceptors)
    except LimitsError as error:
        raise RequestRefused(
            SettlementCode.INVALID_LIMITS, f"{error.field}: {error.reason}", error.field
        ) from None
    if new == now.limits:
        raise RequestRefused(SettlementCode.NOTHING_TO_CHANGE)
    wire = limits_to_wire(new)
    version = _save(
        tx,
        request,
        now.stored,
        # Every field ever set at run time, in its latest value; the rest follows the file.
        receives={**now.receives, **{k: wire[k] for k in changes}},
        pays=now.pays,
        action="receipt_limits_changed",
        before=limits_to_wire(now.limits),
        after=wire,
    )
    return _detail(request.member, version, now.method, new)


def _set_method(
    config: SettlementConfig, tx: Transaction, request: SettlementRequest
) -> dict[str, Any]:
    _fields(request.params, "pays")
    pays = _table(request.params, "pays")
    now = _current(config, tx, request)
    try:
        new = parse_payment_method(pays, known_banks=config.banks.keys())
    except LimitsError as error:
        raise RequestRefused(
            SettlementCode.INVALID_PAYMENT_METHOD, f"{error.field}: {error.reason}", error.field
        ) from None
    if new == now.method:
        raise RequestRefused(SettlementCode.NOTHING_TO_CHANGE)
    version = _save(
        tx,
        request,
        now.stored,
        receives=now.receives,
        pays=method_to_wire(new),
        action="payment_method_changed",
        before=method_to_wire(now.method),
        after=method_to_wire(new),
    )
    return _detail(request.member, version, new, now.limits)


def _show(config: SettlementConfig, tx: Transaction, request: SettlementRequest) -> dict[str, Any]:
    _fields(request.params, None)
    now = _current(config, tx, request)
    version = 0 if now.stored is None else now.stored.version
    return _detail(request.member, version, now.method, now.limits)
