"""``config/settlement.toml``: fees, banks, and each member's payment settings.

Top-level tables (the file's comments document every key)::

    [fees]                  default = {buyer_bps, seller_bps, minimum_minor}
    [[fees.products]]       symbol = "TB-OX", and any of the three to override
    [[banks]]               id, name, city: the acceptor banks
    [payment.pays]          the default payment method (default: cash)
    [payment.receives]      the default receipt limits (default: refuse bills)
    [payment]               bank, fallback_bank: where members pay from by default
    [[members]]             id, and optional pays / receives tables, bank, fallback_bank

Members are those of ``members.toml`` (``rex.config.load_members``), whose ``Member``
rejects unknown keys; so settlement's per-member settings live here, keyed by member id,
and every id must be a member. A member without an entry gets the defaults.

A member's ``pays`` table replaces the default method whole (a bank acceptance names its
bank and tenor together; mixing one firm's bank with the default's tenor makes no sense).
Its ``receives`` table is applied key by key over ``[payment.receives]`` with
:func:`~settlement_worker.plans.receipt_limits.update_limits`, the very function that
applies a run-time change request, so a limit is validated the same way wherever it comes from.

Loading is strict like ``rex.config``: unknown keys, wrong types and unknown products,
banks or members raise :class:`rex.config.ConfigError` naming the file, the entry and the
field, e.g. ``config/settlement.toml: member 'xinyu-pvc': field 'receives.max_tenor_days':
must be an integer from 1 to 183, got 200``.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any, Final, NoReturn

from rex.config import ConfigError, Member, Product, read_toml
from rex.fields import FieldError, check_keys, describe_value
from settlement_worker.obligations.fees import ANY_PRODUCT, FeeRule, FeeSchedule
from settlement_worker.plans.receipt_limits import (
    PaymentMethod,
    ReceiptLimits,
    parse_payment_method,
    update_limits,
)

__all__ = ["UNASSIGNED_BANK", "Bank", "SettlementConfig", "load_settlement"]

_TOP_KEYS: Final = ("fees", "banks", "payment", "members")
_FEE_KEYS: Final = ("buyer_bps", "seller_bps", "minimum_minor")
_ID_RE: Final = re.compile(r"[A-Za-z0-9_-]{1,32}")
#: The bank of a member when the file configures no bank at all: no payer has an adapter
#: for it, so its payments go to manual review instead of being paid from nowhere.
UNASSIGNED_BANK: Final = "unassigned"


@dataclass(frozen=True, slots=True)
class Bank:
    """An acceptor bank. ``city`` matters later: discount rates differ by place."""

    id: str
    name: str
    city: str

    def __post_init__(self) -> None:
        if not isinstance(self.id, str) or _ID_RE.fullmatch(self.id) is None:
            raise FieldError(
                "id", f"must be 1-32 letters, digits, '_' or '-', got {describe_value(self.id)}"
            )
        for name in ("name", "city"):
            value = getattr(self, name)
            if not isinstance(value, str) or not value.strip():
                raise FieldError(name, f"must be a non-empty string, got {describe_value(value)}")


@dataclass(frozen=True, slots=True)
class SettlementConfig:
    """Validated settlement configuration. ``methods`` and ``limits`` hold an entry for
    every member of ``members.toml`` (the defaults where it has none)."""

    fees: FeeSchedule
    banks: Mapping[str, Bank]
    default_method: PaymentMethod
    default_limits: ReceiptLimits
    methods: Mapping[str, PaymentMethod]
    limits: Mapping[str, ReceiptLimits]
    source: Path | None = field(default=None, repr=False, compare=False)
    #: Where a member pays from: (primary bank, fallback banks), every member; a member
    #: missing here (or a non-member) gets ``default_banks``.
    payment_banks: Mapping[str, tuple[str, tuple[str, ...]]] = field(
        default_factory=lambda: MappingProxyType({})
    )
    default_banks: tuple[str, tuple[str, ...]] = (UNASSIGNED_BANK, ())

    def method_for(self, member: str) -> PaymentMethod:
        """How ``member`` pays as buyer. KeyError for a non-member."""
        return self.methods[member]

    def limits_for(self, member: str) -> ReceiptLimits:
        """What ``member`` accepts as payee (as loaded; run-time changes are the worker's)."""
        return self.limits[member]

    def banks_for(self, member: str) -> tuple[str, tuple[str, ...]]:
        """The bank ``member`` pays from and the fallbacks to try after it."""
        return self.payment_banks.get(member, self.default_banks)

    def method_or_default(self, member: str) -> PaymentMethod:
        return self.methods.get(member, self.default_method)

    def limits_or_default(self, member: str) -> ReceiptLimits:
        return self.limits.get(member, self.default_limits)

    @property
    def known_acceptors(self) -> frozenset[str]:
        """Ids a payee may list in ``accepted_acceptors``: banks, and members (for their
        commercial acceptance bills). Pass to ``update_limits`` for run-time changes."""
        return frozenset(self.banks) | frozenset(self.methods)


# --------------------------------------------------------------------------- helpers


def _fail(
    path: Path, reason: str, *, entry: str | None = None, field: str | None = None
) -> NoReturn:
    raise ConfigError(path, reason, entry=entry, field=field)


def _check_keys(
    path: Path, table: Mapping[str, Any], allowed: tuple[str, ...], entry: str, prefix: str = ""
) -> None:
    try:
        check_keys(table, allowed, prefix=prefix)
    except FieldError as error:
        _fail(path, error.reason, entry=entry, field=error.field)


def _table(path: Path, value: object, entry: str, field: str | None = None) -> Mapping[str, Any]:
    if not isinstance(value, dict):
        _fail(path, f"must be a table, got {describe_value(value)}", entry=entry, field=field)
    return value


def _array(path: Path, doc: Mapping[str, Any], key: str, entry: str) -> list[Any]:
    value = doc.get(key, [])
    if not isinstance(value, list):
        _fail(
            path,
            f"must be an array of tables ([[{entry}]]), got {describe_value(value)}",
            entry=entry,
        )
    return value


def _label(kind: str, table: object, key: str, index: int) -> str:
    raw = table.get(key) if isinstance(table, dict) else None
    return f"{kind} {raw!r}" if isinstance(raw, str) and raw else f"{kind} #{index}"


def _known(names: Mapping[str, object]) -> str:
    return ", ".join(names) or "none"


# ------------------------------------------------------------------------------ fees


def _fee_rule(
    path: Path, table: Mapping[str, Any], entry: str, base: FeeRule | None, product: str
) -> FeeRule:
    values: dict[str, Any] = {}
    for key in _FEE_KEYS:
        if key in table:
            values[key] = table[key]
        elif base is not None:
            values[key] = getattr(base, key)
        elif key != "minimum_minor":
            _fail(path, "required field is missing", entry=entry, field=key)
    try:
        return FeeRule(product, **values)
    except FieldError as exc:
        _fail(path, exc.reason, entry=entry, field=exc.field)


def _load_fees(path: Path, doc: Mapping[str, Any], products: Mapping[str, Product]) -> FeeSchedule:
    if "fees" not in doc:
        _fail(path, "no [fees] table")
    fees = _table(path, doc["fees"], "fees")
    _check_keys(path, fees, ("default", "products"), "fees")
    if "default" not in fees:
        _fail(path, "required field is missing", entry="fees", field="default")
    default_table = _table(path, fees["default"], "fees", "default")
    _check_keys(path, default_table, _FEE_KEYS, "fees.default")
    default = _fee_rule(path, default_table, "fees.default", None, ANY_PRODUCT)

    overrides: list[FeeRule] = []
    seen: dict[str, int] = {}
    for index, table in enumerate(_array(path, fees, "products", "fees.products"), start=1):
        entry = _label("fees.products", table, "symbol", index)
        table = _table(path, table, entry)
        _check_keys(path, table, ("symbol", *_FEE_KEYS), entry)
        symbol = table.get("symbol")
        if symbol is None:
            _fail(path, "required field is missing", entry=entry, field="symbol")
        if symbol not in products:
            _fail(
                path,
                f"unknown product {symbol!r} (known: {_known(products)})",
                entry=entry,
                field="symbol",
            )
        if symbol in seen:
            _fail(
                path,
                f"duplicate symbol (entry #{index} repeats entry #{seen[symbol]})",
                entry=entry,
                field="symbol",
            )
        seen[symbol] = index
        overrides.append(_fee_rule(path, table, entry, default, symbol))
    return FeeSchedule(default, tuple(overrides))


# ----------------------------------------------------------------------------- banks


def _load_banks(
    path: Path, doc: Mapping[str, Any], members: Mapping[str, Member]
) -> dict[str, Bank]:
    banks: dict[str, Bank] = {}
    seen: dict[str, int] = {}
    for index, table in enumerate(_array(path, doc, "banks", "banks"), start=1):
        entry = _label("bank", table, "id", index)
        table = _table(path, table, entry)
        _check_keys(path, table, ("id", "name", "city"), entry)
        for key in ("id", "name", "city"):
            if key not in table:
                _fail(path, "required field is missing", entry=entry, field=key)
        try:
            bank = Bank(table["id"], table["name"], table["city"])
        except FieldError as exc:
            _fail(path, exc.reason, entry=entry, field=exc.field)
        if bank.id in seen:
            _fail(
                path,
                f"duplicate id (entry #{index} repeats entry #{seen[bank.id]})",
                entry=entry,
                field="id",
            )
        if bank.id in members:
            # accepted_acceptors lists banks and members together; an id must say which.
            _fail(path, "a bank id must not be a member id too", entry=entry, field="id")
        seen[bank.id] = index
        banks[bank.id] = bank
    return banks


# --------------------------------------------------------------------------- payment


def _method(path: Path, value: object, entry: str, banks: Mapping[str, Bank]) -> PaymentMethod:
    table = _table(path, value, entry, "pays")
    try:
        return parse_payment_method(table, known_banks=banks.keys())
    except FieldError as exc:
        _fail(path, exc.reason, entry=entry, field=f"pays.{exc.field}")


def _limits(
    path: Path, value: object, entry: str, base: ReceiptLimits, known: frozenset[str]
) -> ReceiptLimits:
    table = _table(path, value, entry, "receives")
    try:
        return update_limits(base, table, known_acceptors=known)
    except FieldError as exc:
        _fail(path, exc.reason, entry=entry, field=f"receives.{exc.field}")


def _bank_ref(
    path: Path, table: Mapping[str, Any], key: str, entry: str, banks: Mapping[str, Bank]
) -> str | None:
    if key not in table:
        return None
    value = table[key]
    if not isinstance(value, str) or value not in banks:
        shown = repr(value) if isinstance(value, str) else describe_value(value)
        _fail(
            path,
            f"unknown bank {shown} (known: {_known(banks)})",
            entry=entry,
            field=key,
        )
    return value


def _paying_banks(
    path: Path,
    table: Mapping[str, Any],
    entry: str,
    banks: Mapping[str, Bank],
    base: tuple[str, tuple[str, ...]],
) -> tuple[str, tuple[str, ...]]:
    """``bank`` and ``fallback_bank`` of ``table`` over ``base``. A member naming only its
    ``bank`` keeps the default fallback unless that is the same bank."""
    primary = _bank_ref(path, table, "bank", entry, banks)
    fallback = _bank_ref(path, table, "fallback_bank", entry, banks)
    bank = primary or base[0]
    if fallback is not None:
        if fallback == bank:
            _fail(path, f"must differ from the bank {bank!r}", entry=entry, field="fallback_bank")
        return bank, (fallback,)
    return bank, tuple(b for b in base[1] if b != bank)


def load_settlement(
    path: Path, products: Mapping[str, Product], members: Mapping[str, Member]
) -> SettlementConfig:
    """Load and validate ``path`` against the loaded ``products`` and ``members``."""
    path = Path(os.fspath(path))
    doc = read_toml(path)
    for key in doc:
        if key not in _TOP_KEYS:
            _fail(path, f"unknown top-level key {key!r} (allowed: {', '.join(_TOP_KEYS)})")
    fees = _load_fees(path, doc, products)
    banks = _load_banks(path, doc, members)
    known = frozenset(banks) | frozenset(members)

    payment = _table(path, doc.get("payment", {}), "payment")
    _check_keys(path, payment, ("pays", "receives", "bank", "fallback_bank"), "payment")
    default_method = _method(path, payment.get("pays", {"method": "cash"}), "payment", banks)
    default_limits = _limits(path, payment.get("receives", {}), "payment", ReceiptLimits(), known)

    first = next(iter(banks), UNASSIGNED_BANK)
    default_banks = _paying_banks(path, payment, "payment", banks, (first, ()))

    methods = dict.fromkeys(members, default_method)
    paying = dict.fromkeys(members, default_banks)
    limits = dict.fromkeys(members, default_limits)
    seen: dict[str, int] = {}
    for index, table in enumerate(_array(path, doc, "members", "members"), start=1):
        entry = _label("member", table, "id", index)
        table = _table(path, table, entry)
        _check_keys(path, table, ("id", "pays", "receives", "bank", "fallback_bank"), entry)
        member = table.get("id")
        if member is None:
            _fail(path, "required field is missing", entry=entry, field="id")
        if member not in members:
            _fail(
                path,
                f"no such member in members.toml (known: {_known(members)})",
                entry=entry,
                field="id",
            )
        if member in seen:
            _fail(
                path,
                f"duplicate id (entry #{index} repeats entry #{seen[member]})",
                entry=entry,
                field="id",
            )
        seen[member] = index
        if "pays" in table:
            methods[member] = _method(path, table["pays"], entry, banks)
        if "receives" in table:
            limits[member] = _limits(path, table["receives"], entry, default_limits, known)
        paying[member] = _paying_banks(path, table, entry, banks, default_banks)

    return SettlementConfig(
        fees=fees,
        banks=MappingProxyType(banks),
        default_method=default_method,
        default_limits=default_limits,
        methods=MappingProxyType(methods),
        limits=MappingProxyType(limits),
        source=path,
        payment_banks=MappingProxyType(paying),
        default_banks=default_banks,
    )
