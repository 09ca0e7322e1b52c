"""Tests for rex.config: products, members, settings, and where the configuration is found."""

from __future__ import annotations

import dataclasses
import json
import os
import pickle
import subprocess
import sys
from decimal import Decimal
from fractions import Fraction
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cli.main import main
from rex import environment
from rex.config import (
    ConfigError,
    Member,
    ProcessConfig,
    Product,
    TradingStatus,
    load_members,
    load_products,
)
from rex.fields import FieldError

REPO = Path(__file__).resolve().parents[2]
SHIPPED = REPO / "config"

ND_OX: dict[str, Any] = {
    "symbol": "ND-OX",
    "name": "Neodymium oxide",
    "currency": "CNY",
    "price_unit": "CNY/t",
    "tick": 50,
    "quantity_unit": "kg",
    "lot": 100,
    "quantity_per_price_unit": 1000,
    "reference_price": 420000,
    "band_percent": 10,
}
MEMBER: dict[str, Any] = {"id": "ningbo-alloy", "name": "Ningbo Alloy", "password": "pw"}


# ------------------------------------------------------------------------- helpers


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)  # a JSON string is a valid TOML basic string
    raise TypeError(value)


def write_toml(path: Path, array: str, entries: list[dict[str, Any]]) -> Path:
    lines: list[str] = []
    for entry in entries:
        lines.append(f"[[{array}]]")
        lines += [f"{key} = {_toml_value(value)}" for key, value in entry.items()]
        lines.append("")
    path.write_text("\n".join(lines), encoding="utf-8")
    return path


def product_error(tmp_path: Path, *entries: dict[str, Any]) -> ConfigError:
    path = write_toml(tmp_path / "products.toml", "products", list(entries))
    with pytest.raises(ConfigError) as info:
        load_products(path)
    return info.value


def member_error(tmp_path: Path, *entries: dict[str, Any]) -> ConfigError:
    path = write_toml(tmp_path / "members.toml", "members", list(entries))
    with pytest.raises(ConfigError) as info:
        load_members(path)
    return info.value


def product(**changes: Any) -> dict[str, Any]:
    return {**ND_OX, **changes}


def without(entry: dict[str, Any], key: str) -> dict[str, Any]:
    return {k: v for k, v in entry.items() if k != key}


def make_product(**changes: Any) -> Product:
    kwargs = {**ND_OX, "band_percent": Decimal(10), **changes}
    return Product(**kwargs)


# ------------------------------------------------------------------ shipped config


def test_shipped_products_load() -> None:
    products = load_products(SHIPPED / "products.toml")
    assert list(products) == [
        "PRND-OX",
        "ND-OX",
        "DY-OX",
        "TB-OX",
        "LA-OX",
        "CE-OX",
        "RE-STAB",
        "RE-FR",
        "PRND-OX-USD",
    ]
    for p in products.values():
        assert p.reference_price % p.tick == 0
        assert p.band_low <= p.reference_price <= p.band_high
        assert p.quantity_unit == "kg"
        assert p.quantity_per_price_unit == 1000
        assert p.status is TradingStatus.OPEN
    assert {p.currency for p in products.values()} == {"CNY", "USD"}
    assert products["PRND-OX-USD"].price_unit == "USD/t"
    assert products["RE-FR"].band_percent == Decimal("7.5")


def test_shipped_members_load() -> None:
    members = load_members(SHIPPED / "members.toml")
    assert 4 <= len(members) <= 6
    assert "baotou-metals" in members
    with_env = [m for m in members.values() if m.password_env is not None]
    assert len(with_env) >= 1
    assert all(m.resolve_password({m.password_env or "": "s3cret"}) for m in members.values())


def test_shipped_config_loads_through_settings() -> None:
    process_config = ProcessConfig.from_env({"REX_CONFIG_DIR": str(SHIPPED)})
    assert len(process_config.products()) == 9
    assert len(process_config.members()) == len(load_members(SHIPPED / "members.toml"))


# ------------------------------------------------- product errors name file/entry/field


def test_tick_zero_is_rejected_naming_file_entry_and_field(tmp_path: Path) -> None:
    err = product_error(tmp_path, product(tick=0))
    assert str(err) == (
        f"{tmp_path / 'products.toml'}: product 'ND-OX': field 'tick': "
        "must be a positive integer, got 0"
    )
    assert (err.entry, err.field) == ("product 'ND-OX'", "tick")


def test_negative_tick_is_rejected(tmp_path: Path) -> None:
    err = product_error(tmp_path, product(tick=-5))
    assert str(err).endswith("product 'ND-OX': field 'tick': must be a positive integer, got -5")


@pytest.mark.parametrize(
    "key", ["tick", "lot", "reference_price", "max_quantity", "quantity_per_price_unit"]
)
def test_bool_is_not_accepted_as_int(tmp_path: Path, key: str) -> None:
    err = product_error(tmp_path, product(**{key: True}))
    assert err.field == key
    assert "got boolean true" in str(err)
    assert str(err).startswith(f"{tmp_path / 'products.toml'}: product 'ND-OX': field {key!r}")


def test_string_is_not_accepted_as_int(tmp_path: Path) -> None:
    err = product_error(tmp_path, product(lot="100"))
    assert err.field == "lot"
    assert "got string '100'" in str(err)


def test_reference_price_off_tick_is_rejected(tmp_path: Path) -> None:
    err = product_error(tmp_path, product(reference_price=420025))
    assert err.field == "reference_price"
    assert "multiple of tick 50" in str(err)
    assert "420025" in str(err)


@pytest.mark.parametrize("band", [0, 100, 150, -1, "0", "100.0", "NaN", "Infinity"])
def test_band_percent_out_of_range_is_rejected(tmp_path: Path, band: object) -> None:
    err = product_error(tmp_path, product(band_percent=band))
    assert (err.entry, err.field) == ("product 'ND-OX'", "band_percent")
    assert "greater than 0 and less than 100" in str(err)


@pytest.mark.parametrize("band", [True, "seven", ""])
def test_band_percent_not_a_number_is_rejected(tmp_path: Path, band: object) -> None:
    err = product_error(tmp_path, product(band_percent=band))
    assert err.field == "band_percent"
    assert "must be a number" in str(err)


@pytest.mark.parametrize(
    ("band", "expected"), [(10, Decimal(10)), ("7.5", Decimal("7.5")), (7.5, Decimal("7.5"))]
)
def test_band_percent_accepts_integer_string_and_float(
    tmp_path: Path, band: object, expected: Decimal
) -> None:
    path = write_toml(tmp_path / "products.toml", "products", [product(band_percent=band)])
    p = load_products(path)["ND-OX"]
    assert isinstance(p.band_percent, Decimal)
    assert p.band_percent == expected


def test_band_percent_float_is_converted_via_its_repr(tmp_path: Path) -> None:
    # Decimal(0.1) would be 0.1000000000000000055511151231257827...
    path = write_toml(tmp_path / "products.toml", "products", [product(band_percent=0.1)])
    assert str(load_products(path)["ND-OX"].band_percent) == "0.1"


def test_unknown_key_is_rejected_naming_the_key(tmp_path: Path) -> None:
    err = product_error(tmp_path, {**without(ND_OX, "tick"), "tikc": 50})
    assert err.field == "tikc"
    assert str(err).startswith(f"{tmp_path / 'products.toml'}: product 'ND-OX': field 'tikc'")
    assert "unknown key" in str(err)
    assert "did you mean 'tick'" in str(err)


@pytest.mark.parametrize("currency", ["RMB", "usd", "XAU", "US", 840])
def test_bad_currency_is_rejected(tmp_path: Path, currency: object) -> None:
    err = product_error(tmp_path, product(currency=currency, price_unit=f"{currency}/t"))
    assert (err.entry, err.field) == ("product 'ND-OX'", "currency")


def test_price_unit_must_match_currency(tmp_path: Path) -> None:
    err = product_error(tmp_path, product(currency="USD"))
    assert err.field == "price_unit"
    assert "'USD/<unit>'" in str(err)


@pytest.mark.parametrize(
    "symbol", ["nd-ox", "-NDOX", "ND OX", "ND_OX", "A234567890ABCDEFG", "ND-OX\n"]
)
def test_bad_symbol_is_rejected(tmp_path: Path, symbol: str) -> None:
    err = product_error(tmp_path, product(symbol=symbol))
    assert err.field == "symbol"
    assert err.entry == f"product {symbol!r}"
    assert str(err).startswith(str(tmp_path / "products.toml"))


def test_symbol_of_wrong_type_is_named_by_index(tmp_path: Path) -> None:
    err = product_error(tmp_path, product(symbol="LA-OX"), product(symbol=7))
    assert (err.entry, err.field) == ("product #2", "symbol")


def test_duplicate_symbol_is_rejected(tmp_path: Path) -> None:
    err = product_error(tmp_path, product(), product(symbol="LA-OX"), product())
    assert (err.entry, err.field) == ("product 'ND-OX'", "symbol")
    assert "duplicate symbol" in str(err)
    assert "#3 repeats entry #1" in str(err)


@pytest.mark.parametrize("key", ["name", "currency", "tick", "lot", "band_percent"])
def test_missing_required_field_is_rejected(tmp_path: Path, key: str) -> None:
    err = product_error(tmp_path, without(ND_OX, key))
    assert str(err) == (
        f"{tmp_path / 'products.toml'}: product 'ND-OX': field {key!r}: required field is missing"
    )


def test_missing_symbol_names_the_entry_by_index(tmp_path: Path) -> None:
    err = product_error(tmp_path, product(symbol="LA-OX"), without(ND_OX, "symbol"))
    assert str(err) == (
        f"{tmp_path / 'products.toml'}: product #2: field 'symbol': required field is missing"
    )


def test_empty_name_is_rejected(tmp_path: Path) -> None:
    assert product_error(tmp_path, product(name="  ")).field == "name"


def test_max_quantity_defaults_to_lot_times_100000(tmp_path: Path) -> None:
    path = write_toml(tmp_path / "products.toml", "products", [product(lot=1000)])
    assert load_products(path)["ND-OX"].max_quantity == 100_000_000
    assert make_product().max_quantity == 10_000_000


@pytest.mark.parametrize("max_quantity", [0, -100, 150])
def test_max_quantity_must_be_positive_multiple_of_lot(tmp_path: Path, max_quantity: int) -> None:
    err = product_error(tmp_path, product(max_quantity=max_quantity))
    assert err.field == "max_quantity"
    assert "positive multiple of lot 100" in str(err)


def test_trade_value_must_be_exact_in_minor_units(tmp_path: Path) -> None:
    # 1 yuan/t on 1 kg is 0.1 fen: not representable.
    err = product_error(tmp_path, product(tick=1, lot=1, reference_price=420000))
    assert err.field == "quantity_per_price_unit"
    # JPY has no minor unit: 10 yen/t on 100 kg is 1 yen; fine.
    make_product(currency="JPY", price_unit="JPY/t", tick=10, reference_price=420000)


def test_status_defaults_to_open_and_parses(tmp_path: Path) -> None:
    assert make_product().status is TradingStatus.OPEN
    path = write_toml(tmp_path / "products.toml", "products", [product(status="halted")])
    assert load_products(path)["ND-OX"].status is TradingStatus.HALTED


def test_bad_status_is_rejected(tmp_path: Path) -> None:
    err = product_error(tmp_path, product(status="suspended"))
    assert err.field == "status"
    assert "'open', 'halted', 'closed'" in str(err)


def test_product_built_in_code_raises_field_error() -> None:
    with pytest.raises(FieldError, match="field 'tick': must be a positive integer, got -5"):
        make_product(tick=-5)
    with pytest.raises(FieldError, match="band_percent"):
        make_product(band_percent=10)  # an int, not a Decimal: only the loader converts


def test_product_is_frozen() -> None:
    p = make_product()
    with pytest.raises(dataclasses.FrozenInstanceError):
        p.tick = 1  # type: ignore[misc]


# ------------------------------------------------------------------- band limits


def test_band_limits_exact_for_reference_500000_tick_50_band_7_5() -> None:
    p = make_product(reference_price=500_000, tick=50, band_percent=Decimal("7.5"))
    assert (p.band_low, p.band_high) == (462_500, 537_500)


def test_band_limits_round_inwards_to_tick_when_not_exact() -> None:
    # 123450 * 1.075 = 132708.75 -> down to 132700; 123450 * 0.925 = 114191.25 -> up to 114200
    p = make_product(reference_price=123_450, tick=50, band_percent=Decimal("7.5"))
    assert (p.band_low, p.band_high) == (114_200, 132_700)


def test_band_limits_exact_where_floats_would_err() -> None:
    # 3 * 1.1 == 3.3000000000000003 in floats; exactly 3.3 here.
    p = make_product(reference_price=3000, tick=1, band_percent=Decimal(10), lot=1000)
    assert (p.band_low, p.band_high) == (2700, 3300)
    q = make_product(reference_price=999_950, tick=50, band_percent=Decimal("33.333"))
    # 999950 * 1.33333 = 1333261.33... -> 1333250; 999950 * 0.66667 = 666638.66... -> 666650
    assert (q.band_low, q.band_high) == (666_650, 1_333_250)


def test_band_narrower_than_a_tick_collapses_to_reference() -> None:
    p = make_product(reference_price=1000, tick=100, lot=1000, band_percent=Decimal(1))
    assert (p.band_low, p.band_high) == (1000, 1000)


@given(
    ticks=st.integers(1, 10_000),
    tick=st.sampled_from([1, 5, 10, 50, 100, 500, 1000]),
    band=st.decimals(
        min_value=Decimal("0.001"), max_value=Decimal("99.999"), places=3, allow_nan=False
    ),
)
def test_band_limits_match_exact_rational_definition(ticks: int, tick: int, band: Decimal) -> None:
    ref = ticks * tick
    p = make_product(reference_price=ref, tick=tick, lot=1000, band_percent=band)
    b = Fraction(band)
    high, low = ref * (1 + b / 100), ref * (1 - b / 100)
    assert p.band_high % tick == 0 and p.band_low % tick == 0
    assert p.band_high <= high < p.band_high + tick
    assert p.band_low - tick < low <= p.band_low
    assert tick <= p.band_low <= ref <= p.band_high


# ------------------------------------------------------------------------ members


def test_member_defaults(tmp_path: Path) -> None:
    path = write_toml(tmp_path / "members.toml", "members", [MEMBER])
    m = load_members(path)["ningbo-alloy"]
    assert (m.rate_limit, m.burst, m.max_open_orders, m.enabled) == (1000, 1000, 10_000, True)
    assert Member(id="a", name="A", password="x", rate_limit=50).burst == 50


@pytest.mark.parametrize("member_id", ["has space", "ünïcode", "x" * 33, "a.b", ""])
def test_bad_member_id_is_rejected(tmp_path: Path, member_id: str) -> None:
    err = member_error(tmp_path, {**MEMBER, "id": member_id})
    assert err.field == "id"
    assert str(err).startswith(f"{tmp_path / 'members.toml'}: member ")


def test_duplicate_member_id_is_rejected(tmp_path: Path) -> None:
    err = member_error(tmp_path, MEMBER, MEMBER)
    assert (err.entry, err.field) == ("member 'ningbo-alloy'", "id")
    assert "duplicate id" in str(err)


def test_both_password_and_password_env_is_rejected(tmp_path: Path) -> None:
    err = member_error(tmp_path, {**MEMBER, "password_env": "REX_PW"})
    assert (err.entry, err.field) == ("member 'ningbo-alloy'", "password")
    assert "not both" in str(err)


def test_neither_password_nor_password_env_is_rejected(tmp_path: Path) -> None:
    err = member_error(tmp_path, without(MEMBER, "password"))
    assert str(err) == (
        f"{tmp_path / 'members.toml'}: member 'ningbo-alloy': field 'password': "
        "one of 'password' or 'password_env' is required"
    )


def test_password_env_unset_is_reported_naming_member_and_variable(tmp_path: Path) -> None:
    path = write_toml(
        tmp_path / "members.toml",
        "members",
        [{**without(MEMBER, "password"), "password_env": "REX_PW_NINGBO"}],
    )
    m = load_members(path)["ningbo-alloy"]
    assert m.resolve_password({"REX_PW_NINGBO": "s3cret"}) == "s3cret"
    with pytest.raises(ConfigError) as info:
        m.resolve_password({})
    assert str(info.value) == (
        f"{path}: member 'ningbo-alloy': field 'password_env': "
        "environment variable 'REX_PW_NINGBO' is not set; set it to the member's RabbitMQ "
        "password"
    )
    with pytest.raises(ConfigError, match="is empty"):
        m.resolve_password({"REX_PW_NINGBO": ""})


def test_plain_password_resolves_and_is_not_in_repr() -> None:
    m = Member(id="a", name="A", password="hunter2")
    assert m.resolve_password({}) == "hunter2"
    assert "hunter2" not in repr(m)


def test_bad_password_env_name_is_rejected(tmp_path: Path) -> None:
    err = member_error(tmp_path, {**without(MEMBER, "password"), "password_env": "1-BAD"})
    assert err.field == "password_env"


@pytest.mark.parametrize(
    ("key", "value"),
    [("rate_limit", 0), ("rate_limit", True), ("burst", 0), ("max_open_orders", -1)],
)
def test_member_limits_must_be_positive_integers(tmp_path: Path, key: str, value: object) -> None:
    err = member_error(tmp_path, {**MEMBER, key: value})
    assert (err.entry, err.field) == ("member 'ningbo-alloy'", key)


def test_enabled_must_be_boolean(tmp_path: Path) -> None:
    err = member_error(tmp_path, {**MEMBER, "enabled": 1})
    assert err.field == "enabled"


def test_member_unknown_key_is_rejected(tmp_path: Path) -> None:
    err = member_error(tmp_path, {**MEMBER, "ratelimit": 5})
    assert err.field == "ratelimit"
    assert "did you mean 'rate_limit'" in str(err)


# --------------------------------------------------------------- file-level errors


def test_missing_file_is_reported(tmp_path: Path) -> None:
    path = tmp_path / "nope.toml"
    with pytest.raises(ConfigError, match=r"nope\.toml: file not found"):
        load_products(path)


def test_toml_syntax_error_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "products.toml"
    path.write_text('[[products]]\nsymbol = "ND-OX\n', encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_products(path)
    assert str(info.value).startswith(f"{path}: invalid TOML")


def test_directory_instead_of_file_is_reported(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        load_members(tmp_path)


def test_wrong_array_name_is_rejected(tmp_path: Path) -> None:
    path = write_toml(tmp_path / "products.toml", "product", [ND_OX])
    with pytest.raises(ConfigError, match="unknown top-level key 'product'"):
        load_products(path)


def test_file_without_entries_is_rejected(tmp_path: Path) -> None:
    path = tmp_path / "members.toml"
    path.write_text("# nothing yet\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"no \[\[members\]\] entries"):
        load_members(path)


def test_config_error_survives_pickling() -> None:
    err = ConfigError("f.toml", "bad", entry="product 'X'", field="tick")
    copy = pickle.loads(pickle.dumps(err))
    assert str(copy) == str(err) == "f.toml: product 'X': field 'tick': bad"
    assert (copy.file, copy.entry, copy.field, copy.reason) == (
        "f.toml",
        "product 'X'",
        "tick",
        "bad",
    )


# ----------------------------------------------------------------------- settings


def test_settings_from_env_defaults() -> None:
    s = ProcessConfig.from_env({})
    assert s == ProcessConfig(
        config_dir=SHIPPED,
        data_dir=Path("data"),
        broker_url="amqp://guest:guest@127.0.0.1:5672/%2F",
    )


def test_settings_from_env_overrides(tmp_path: Path) -> None:
    (tmp_path / "cfg").mkdir()
    env = {
        "REX_CONFIG_DIR": str(tmp_path / "cfg"),
        "REX_DATA_DIR": "/var/lib/rex",
        "REX_BROKER_URL": "amqp://rex:pw@broker:5672/rex",
    }
    s = ProcessConfig.from_env(env)
    assert s.config_dir == tmp_path / "cfg"
    assert s.data_dir == Path("/var/lib/rex")
    assert s.broker_url == "amqp://rex:pw@broker:5672/rex"


def test_settings_empty_variable_means_default() -> None:
    assert ProcessConfig.from_env({"REX_CONFIG_DIR": ""}).config_dir == SHIPPED
    assert ProcessConfig.from_env({"REX_DATA_DIR": " "}).data_dir == Path("data")


def test_settings_loads_files_from_config_dir(tmp_path: Path) -> None:
    write_toml(tmp_path / "products.toml", "products", [ND_OX])
    write_toml(tmp_path / "members.toml", "members", [MEMBER])
    s = ProcessConfig.from_env({"REX_CONFIG_DIR": str(tmp_path)})
    assert list(s.products()) == ["ND-OX"]
    assert list(s.members()) == ["ningbo-alloy"]


def test_rex_config_dir_pointing_nowhere_is_an_error_naming_it(tmp_path: Path) -> None:
    nowhere = tmp_path / "nowhere"
    with pytest.raises(ConfigError) as info:
        ProcessConfig.from_env({"REX_CONFIG_DIR": str(nowhere)})
    assert str(info.value) == (
        f"REX_CONFIG_DIR: {str(nowhere)!r} does not exist; set it to the directory holding "
        "products.toml and members.toml, or unset it to use the configuration shipped with "
        f"REX, {SHIPPED}"
    )


def test_rex_config_dir_naming_a_file_is_an_error(tmp_path: Path) -> None:
    file = write_toml(tmp_path / "products.toml", "products", [ND_OX])
    with pytest.raises(ConfigError, match=r"^REX_CONFIG_DIR: '.*products\.toml' is not a dir"):
        ProcessConfig.from_env({"REX_CONFIG_DIR": str(file)})


def test_without_any_configuration_the_error_names_each_place_looked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(environment, "SHIPPED_CONFIG_DIR", tmp_path / "defaults")
    with pytest.raises(ConfigError) as info:
        ProcessConfig.from_env({})
    assert str(info.value) == (
        f"no configuration found: REX_CONFIG_DIR is not set, and {tmp_path / 'defaults'} "
        "(the configuration shipped with REX) has no products.toml; set REX_CONFIG_DIR to "
        "the directory holding products.toml and members.toml"
    )


def test_a_config_dir_option_that_is_no_directory_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"^--config-dir: '.*nope' is not a directory; give"):
        ProcessConfig.from_env({}, config_dir=tmp_path / "nope")


def test_the_shipped_configuration_is_the_repositorys_config_dir() -> None:
    # rex/defaults links to config/: the installed package ships the same files.
    assert environment.SHIPPED_CONFIG_DIR == SHIPPED
    assert (REPO / "rex" / "defaults").is_symlink()


def _run_rex(cwd: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("REX_")}
    return subprocess.run(
        [sys.executable, "-m", "cli", *args],
        cwd=cwd,
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_rex_finds_the_shipped_configuration_from_any_directory(tmp_path: Path) -> None:
    done = _run_rex(
        tmp_path,
        "config",
        "check",
        REX_PW_BAOTOU_METALS="s3cret",
        REX_PW_OPERATOR_LI_WEI="s3cret",
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(f"configuration: {SHIPPED} (shipped with REX)\n")
    assert "ok: 9 products, 5 members (5 enabled)" in done.stdout


def test_rex_from_another_directory_with_rex_config_dir_nowhere_says_so(tmp_path: Path) -> None:
    done = _run_rex(tmp_path, "config", "check", REX_CONFIG_DIR="missing")
    assert done.returncode == 2
    assert "rex config check: REX_CONFIG_DIR: 'missing' does not exist; set it to" in done.stderr
    assert "Traceback" not in done.stderr


# ---------------------------------------------------------------------------- CLI


def test_cli_without_command_prints_help_and_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == 2
    assert "config" in capsys.readouterr().err
