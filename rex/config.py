"""Typed, validated configuration for REX.

Two TOML files under the configuration directory describe the exchange:

* ``products.toml``: an array of ``[[products]]`` tables, one per listed product;
* ``members.toml``: an array of ``[[members]]`` tables, one per member firm.

Loading is strict: unknown keys, wrong types (a TOML ``true`` where an integer is
expected), off-tick prices and the like are rejected with a :class:`ConfigError` that names
the file, the entry and the field, so that a typo in exchange configuration never passes
silently.

The dataclasses validate themselves in ``__post_init__`` too, so a :class:`Product` or
:class:`Member` built in code obeys the same rules; there the error is a
:class:`FieldError` (a :class:`ValueError`), which the loaders turn into a
:class:`ConfigError` carrying the file and entry.

Money and prices are exact: integers, or :class:`~decimal.Decimal` for the band percentage.
Floats are never used in a computation.
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, TypeVar

from rex import identity
from rex.environment import (
    MEMBER_ID_RE,
    REX_BROKER_ADMIN_URL,
    REX_BROKER_URL,
    REX_DATA_DIR,
    REX_DEPLOYMENT,
    locate_config_dir,
)
from rex.errors import ConfigError
from rex.fields import (
    FieldError,
    check_keys,
    describe_value,
    did_you_mean,
    is_int,
    matching,
    positive_int,
    text,
)
from rex.price_band import band_around

if TYPE_CHECKING:
    from rex.operators import OperatorAccount

__all__ = [
    "CURRENCY_MINOR_UNITS",
    "DEFAULT_BROKER_ADMIN_URL",
    "DEFAULT_BROKER_URL",
    "ConfigError",
    "Member",
    "ProcessConfig",
    "Product",
    "TradingStatus",
    "load_members",
    "load_products",
]

#: Currencies REX accepts, with their ISO 4217 minor-unit exponent (CNY 2: fen; JPY 0).
CURRENCY_MINOR_UNITS: Final[Mapping[str, int]] = {
    "CNY": 2,
    "USD": 2,
    "EUR": 2,
    "JPY": 0,
    "HKD": 2,
    "GBP": 2,
    "AUD": 2,
    "CAD": 2,
    "CHF": 2,
    "SGD": 2,
    "KRW": 0,
}

DEFAULT_BROKER_URL: Final = REX_BROKER_URL.default
#: RabbitMQ's management HTTP API, used by ``rex provision``.
DEFAULT_BROKER_ADMIN_URL: Final = REX_BROKER_ADMIN_URL.default

_SYMBOL_RE: Final = re.compile(r"[A-Z0-9][A-Z0-9-]{0,15}")
_ENV_NAME_RE: Final = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_CURRENCY_RE: Final = re.compile(r"[A-Z]{3}")


class TradingStatus(StrEnum):
    """Trading status of a product."""

    OPEN = "open"
    HALTED = "halted"
    CLOSED = "closed"


class _Derived(int):
    """Marker default for a field whose default is derived from other fields."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "<derived>"


# Compared by identity, so an explicit 0 is still rejected as "not positive".
_DERIVED: Final = _Derived(0)


# --------------------------------------------------------------------------- checks


def _to_decimal(name: str, value: object) -> Decimal:
    """A TOML integer, a numeric string ("7.5") or a float (via its shortest repr)."""
    if isinstance(value, Decimal):
        return value
    if is_int(value):
        assert isinstance(value, int)
        return Decimal(value)
    if isinstance(value, float):
        return Decimal(str(value))
    if isinstance(value, str):
        try:
            return Decimal(value.strip())
        except InvalidOperation:
            pass
    raise FieldError(
        name, f'must be a number (integer or string like "7.5"), got {describe_value(value)}'
    )


def _to_status(name: str, value: object) -> TradingStatus:
    if isinstance(value, TradingStatus):
        return value
    if isinstance(value, str):
        try:
            return TradingStatus(value)
        except ValueError:
            pass
    allowed = ", ".join(repr(s.value) for s in TradingStatus)
    raise FieldError(name, f"must be one of {allowed}, got {describe_value(value)}")


# ------------------------------------------------------------------------- products


@dataclass(frozen=True, slots=True)
class Product:
    """A listed product.

    Prices are integers in whole ``currency`` units per ``price_unit`` (e.g. yuan per tonne),
    on a multiple of ``tick``. Quantities are integers in ``quantity_unit`` (e.g. kg), on a
    multiple of ``lot``. One price unit covers ``quantity_per_price_unit`` quantity units
    (1000 kg per tonne), so the value of a trade is
    ``price * quantity / quantity_per_price_unit`` currency units; validation guarantees
    this is a whole number of minor units (fen) for every on-tick price and on-lot quantity.

    ``band_low`` and ``band_high`` are the lowest and highest prices of the daily band
    around ``reference_price``; they are computed exactly at construction. They are the
    product's first band: an operator may set another (rex/price_band.py), which the engine
    then keeps as market state.

    ``max_quantity`` defaults to ``lot * 100_000``.
    """

    symbol: str
    name: str
    currency: str
    price_unit: str
    tick: int
    quantity_unit: str
    lot: int
    reference_price: int
    band_percent: Decimal
    max_quantity: int = _DERIVED
    quantity_per_price_unit: int = 1
    status: TradingStatus = TradingStatus.OPEN
    band_low: int = field(init=False)
    band_high: int = field(init=False)

    def __post_init__(self) -> None:
        matching(
            "symbol",
            self.symbol,
            _SYMBOL_RE,
            "1-16 upper-case letters, digits or '-', not starting with '-'",
        )
        text("name", self.name)
        currency = matching("currency", self.currency, _CURRENCY_RE, "an ISO 4217 code")
        if currency not in CURRENCY_MINOR_UNITS:
            known = ", ".join(CURRENCY_MINOR_UNITS)
            raise FieldError("currency", f"unsupported currency {currency!r} (known: {known})")
        price_unit = text("price_unit", self.price_unit)
        if not price_unit.startswith(currency + "/") or price_unit == currency + "/":
            raise FieldError(
                "price_unit",
                f"must be '{currency}/<unit>' to match currency {currency!r}, "
                f"got {describe_value(price_unit)}",
            )
        tick = positive_int("tick", self.tick)
        text("quantity_unit", self.quantity_unit)
        lot = positive_int("lot", self.lot)
        ref = positive_int("reference_price", self.reference_price)
        if ref % tick:
            raise FieldError("reference_price", f"must be a multiple of tick {tick}, got {ref}")

        band = self.band_percent
        if not isinstance(band, Decimal):
            raise FieldError("band_percent", f"must be a Decimal, got {describe_value(band)}")
        if not band.is_finite() or not 0 < band < 100:
            raise FieldError(
                "band_percent", f"must be greater than 0 and less than 100, got {band}"
            )

        if self.max_quantity is _DERIVED:
            object.__setattr__(self, "max_quantity", lot * 100_000)
        max_qty = self.max_quantity
        if not is_int(max_qty) or max_qty <= 0 or max_qty % lot:
            raise FieldError(
                "max_quantity",
                f"must be a positive multiple of lot {lot}, got {describe_value(max_qty)}",
            )
        per = positive_int("quantity_per_price_unit", self.quantity_per_price_unit)
        # One tick on one lot must be worth a whole number of minor units, so every trade
        # value price * quantity / per is exact in fen (cents, ...).
        minor = 10 ** CURRENCY_MINOR_UNITS[currency]
        if (tick * lot * minor) % per:
            raise FieldError(
                "quantity_per_price_unit",
                f"tick {tick} x lot {lot} / {per} is not a whole number of {currency} minor "
                "units; trade values would not be exact",
            )
        object.__setattr__(self, "status", _to_status("status", self.status))

        # Exact band: band = n/d percent, so the limits are ref * (100d +- n) / (100d).
        first = band_around(ref, band, tick)
        object.__setattr__(self, "band_high", first.high)
        object.__setattr__(self, "band_low", first.low)


_PRODUCT_REQUIRED: Final = (
    "symbol",
    "name",
    "currency",
    "price_unit",
    "tick",
    "quantity_unit",
    "lot",
    "reference_price",
    "band_percent",
)
_PRODUCT_OPTIONAL: Final = ("max_quantity", "quantity_per_price_unit", "status")
_PRODUCT_CONVERT: Final[Mapping[str, Callable[[str, object], object]]] = {
    "band_percent": _to_decimal,
    "status": _to_status,
}


def _product_from_table(table: Mapping[str, Any]) -> Product:
    kwargs = _fields_from_table(table, _PRODUCT_REQUIRED, _PRODUCT_OPTIONAL, _PRODUCT_CONVERT)
    return Product(**kwargs)


def load_products(path: Path) -> dict[str, Product]:
    """Load ``[[products]]`` from a TOML file, keyed by symbol in file order."""
    return _load_entries(path, "products", "product", "symbol", _product_from_table)


# -------------------------------------------------------------------------- members


@dataclass(frozen=True, slots=True)
class Member:
    """A member firm. ``id`` is also its RabbitMQ login (``<deployment>.<id>`` in a named
    deployment: rex.identity).

    Exactly one of ``password`` (plain text; for demos) and ``password_env`` (name of an
    environment variable holding the password) is given; :meth:`resolve_password` returns
    it. ``burst`` defaults to ``rate_limit``. ``source`` is the file the member was loaded
    from, used in error messages.
    """

    id: str
    name: str
    password: str | None = field(default=None, repr=False)
    password_env: str | None = None
    rate_limit: int = 1000
    burst: int = _DERIVED
    max_open_orders: int = 10_000
    enabled: bool = True
    source: Path | None = field(default=None, repr=False, compare=False, kw_only=True)

    def __post_init__(self) -> None:
        matching("id", self.id, MEMBER_ID_RE, "1-32 letters, digits, '_' or '-'")
        text("name", self.name)
        if self.password is not None and self.password_env is not None:
            raise FieldError(
                "password", "give exactly one of 'password' and 'password_env', not both"
            )
        if self.password is None and self.password_env is None:
            raise FieldError("password", "one of 'password' or 'password_env' is required")
        if self.password is not None and (not isinstance(self.password, str) or not self.password):
            # Never echo the value: it is a secret.
            raise FieldError("password", "must be a non-empty string")
        if self.password_env is not None:
            matching(
                "password_env",
                self.password_env,
                _ENV_NAME_RE,
                "an environment variable name ([A-Za-z_][A-Za-z0-9_]*)",
            )
        rate = positive_int("rate_limit", self.rate_limit)
        if self.burst is _DERIVED:
            object.__setattr__(self, "burst", rate)
        positive_int("burst", self.burst)
        positive_int("max_open_orders", self.max_open_orders)
        if not isinstance(self.enabled, bool):
            raise FieldError(
                "enabled", f"must be a boolean (true or false), got {describe_value(self.enabled)}"
            )

    def resolve_password(self, env: Mapping[str, str]) -> str:
        """The member's password: ``password``, or the value of ``password_env`` in ``env``.

        Raises :class:`ConfigError` naming the member and the variable if it is unset or
        empty.
        """
        if self.password is not None:
            return self.password
        assert self.password_env is not None
        return password_from_env(
            env, self.password_env, self.source, f"member {self.id!r}", "member's"
        )


_MEMBER_REQUIRED: Final = ("id", "name")
_MEMBER_OPTIONAL: Final = (
    "password",
    "password_env",
    "rate_limit",
    "burst",
    "max_open_orders",
    "enabled",
)


def load_members(path: Path) -> dict[str, Member]:
    """Load ``[[members]]`` from a TOML file, keyed by id in file order."""

    def build(table: Mapping[str, Any]) -> Member:
        kwargs = _fields_from_table(table, _MEMBER_REQUIRED, _MEMBER_OPTIONAL, {})
        return Member(**kwargs, source=path)

    return _load_entries(path, "members", "member", "id", build)


# -------------------------------------------------------------------------- loading

_T = TypeVar("_T")


def password_from_env(
    env: Mapping[str, str], variable: str, source: Any, entry: str, whose: str
) -> str:
    """The password in ``env[variable]`` (a person's: ``whose`` is "member's",
    "operator's"); a ConfigError naming the entry and the variable if it is unset or empty."""
    value = env.get(variable)
    if not value:
        state = "not set" if value is None else "empty"
        raise ConfigError(
            source,
            f"environment variable {variable!r} is {state}; set it to the {whose} RabbitMQ"
            " password",
            entry=entry,
            field="password_env",
        )
    return value


def read_toml(path: Path) -> dict[str, Any]:
    """Parse a TOML file; any failure is a ConfigError naming the file."""
    try:
        with open(path, "rb") as f:
            return tomllib.load(f)
    except FileNotFoundError:
        raise ConfigError(
            path,
            "file not found; create it (docs/operators/configuration.md describes it) or set "
            "REX_CONFIG_DIR to the directory that has it",
        ) from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(path, f"invalid TOML: {exc}") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(path, f"not valid UTF-8: {exc}") from None
    except OSError as exc:
        raise ConfigError(path, f"cannot read: {exc.strerror or exc}") from None


def _fields_from_table(
    table: Mapping[str, Any],
    required: tuple[str, ...],
    optional: tuple[str, ...],
    convert: Mapping[str, Callable[[str, object], object]],
) -> dict[str, Any]:
    allowed = required + optional
    check_keys(table, allowed)
    for key in required:
        if key not in table:
            raise FieldError(key, "required field is missing")
    return {
        key: convert[key](key, value) if key in convert else value for key, value in table.items()
    }


def _load_entries(
    path: Path,
    array: str,
    kind: str,
    key_field: str,
    build: Callable[[Mapping[str, Any]], _T],
) -> dict[str, _T]:
    doc = read_toml(path)
    for key in doc:
        if key != array:
            raise ConfigError(
                path, f"unknown top-level key {key!r} (expected only [[{array}]] tables)"
            )
    if array not in doc:
        raise ConfigError(path, f"no [[{array}]] entries")
    tables = doc[array]
    if not isinstance(tables, list):
        raise ConfigError(path, f"{array!r} must be an array of tables ([[{array}]])")

    result: dict[str, _T] = {}
    first_seen: dict[str, int] = {}
    for index, table in enumerate(tables, start=1):
        raw_key = table.get(key_field) if isinstance(table, dict) else None
        label = (
            f"{kind} {raw_key!r}" if isinstance(raw_key, str) and raw_key else f"{kind} #{index}"
        )
        if not isinstance(table, dict):
            raise ConfigError(path, f"must be a table, got {describe_value(table)}", entry=label)
        try:
            item = build(table)
        except FieldError as exc:
            raise ConfigError(path, exc.reason, entry=label, field=exc.field) from None
        assert isinstance(raw_key, str)
        if raw_key in result:
            raise ConfigError(
                path,
                f"duplicate {key_field} (entry #{index} repeats entry #{first_seen[raw_key]})",
                entry=label,
                field=key_field,
            )
        result[raw_key] = item
        first_seen[raw_key] = index
    return result


# ------------------------------------------------------------------------- process


@dataclass(frozen=True, slots=True)
class ProcessConfig:
    """What the environment (rex.environment) tells a process: where its configuration and
    data are, which broker, which deployment."""

    config_dir: Path
    data_dir: Path
    broker_url: str
    broker_admin_url: str = DEFAULT_BROKER_ADMIN_URL
    deployment: str = ""  # REX_DEPLOYMENT: members log in as <deployment>.<id> (rex.identity)

    def __post_init__(self) -> None:
        if problem := identity.check_deployment(self.deployment):
            raise ConfigError("REX_DEPLOYMENT", problem)

    @classmethod
    def from_env(
        cls, env: Mapping[str, str] = os.environ, *, config_dir: Path | None = None
    ) -> ProcessConfig:
        """Build from ``REX_CONFIG_DIR`` (unless ``config_dir``, a command's
        ``--config-dir``, is given), ``REX_DATA_DIR``, ``REX_BROKER_URL``,
        ``REX_BROKER_ADMIN_URL`` and ``REX_DEPLOYMENT``, with their defaults when unset or
        empty.

        Raises :class:`ConfigError` naming the variable if one does not parse, and naming
        every place looked if no configuration directory is found.
        """
        if config_dir is None:
            config_dir = locate_config_dir(env)[0]
        elif not config_dir.is_dir():
            raise ConfigError(
                "--config-dir",
                f"{str(config_dir)!r} is not a directory; give the directory holding "
                "products.toml and members.toml",
            )
        return cls(
            config_dir=config_dir,
            data_dir=REX_DATA_DIR.get(env),
            broker_url=REX_BROKER_URL.get(env),
            broker_admin_url=REX_BROKER_ADMIN_URL.get(env),
            deployment=REX_DEPLOYMENT.get(env),
        )

    @property
    def products_file(self) -> Path:
        return self.config_dir / "products.toml"

    @property
    def members_file(self) -> Path:
        return self.config_dir / "members.toml"

    @property
    def operators_file(self) -> Path:
        return self.config_dir / "operators.toml"

    @property
    def settlement_file(self) -> Path:
        return self.config_dir / "settlement.toml"

    @property
    def holidays_file(self) -> Path:
        return self.config_dir / "holidays.toml"

    def products(self) -> dict[str, Product]:
        """Load ``<config_dir>/products.toml``."""
        return load_products(self.products_file)

    def members(self) -> dict[str, Member]:
        """Load ``<config_dir>/members.toml``."""
        return load_members(self.members_file)

    def operators(self) -> dict[str, OperatorAccount]:
        """Load ``<config_dir>/operators.toml`` (rex.operators); no file: no accounts."""
        from rex.operators import load_operators  # it reads TOML with this module's reader

        return load_operators(self.operators_file)

    def check_members(self, *member_ids: str | None, also: Iterable[str] = ()) -> None:
        """Raise a ConfigError for the first of ``member_ids`` (None: not given) that is no
        member of members.toml (nor one of ``also``, e.g. ``exchange``), naming close ids.
        A member id given by hand with a typo must not read as a member with nothing."""
        given = [member_id for member_id in member_ids if member_id is not None]
        if not given:
            return
        known = [*self.members(), *also]
        for member_id in given:
            if member_id in known:
                continue
            close = did_you_mean(member_id, known)
            hint = f"{close} " if close else ""
            raise ConfigError(
                self.members_file,
                f"no member {member_id!r} ({hint}members are the [[members]] ids of this file)",
            )
