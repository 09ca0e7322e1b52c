"""config/settlement.toml: the shipped file, and errors that name file, entry and field."""

from __future__ import annotations

from pathlib import Path

import pytest

from rex.config import ConfigError, Member, Product, load_members, load_products
from settlement_worker.configuration import SettlementConfig, load_settlement
from settlement_worker.obligations.fees import FeeRule
from settlement_worker.plans.receipt_limits import PaymentKind, PaymentMethod, ReceiptLimits

from .factories import CONFIG

PRODUCTS = load_products(CONFIG / "products.toml")
MEMBERS = load_members(CONFIG / "members.toml")


def _load(
    path: Path, products: dict[str, Product] = PRODUCTS, members: dict[str, Member] = MEMBERS
) -> SettlementConfig:
    return load_settlement(path, products, members)


@pytest.fixture(scope="module")
def shipped() -> SettlementConfig:
    return _load(CONFIG / "settlement.toml")


def test_shipped_fees_default_and_one_override(shipped: SettlementConfig) -> None:
    assert shipped.fees.default == FeeRule("*", 2, 2, 0)
    assert shipped.fees.rule_for("TB-OX") == FeeRule("TB-OX", 3, 3, 0)
    assert shipped.fees.rule_for("RE-STAB") is shipped.fees.default


def test_shipped_banks_have_cities(shipped: SettlementConfig) -> None:
    assert {b.id: b.city for b in shipped.banks.values()} == {
        "icbc-baotou": "Baotou",
        "boc-ganzhou": "Ganzhou",
        "ccb-ningbo": "Ningbo",
        "abc-hohhot": "Hohhot",
    }


def test_shipped_members_show_variety(shipped: SettlementConfig) -> None:
    assert set(shipped.methods) == set(shipped.limits) == set(MEMBERS)
    assert shipped.limits_for("ganzhou-magnet").accept_bills is False
    assert shipped.limits_for("baotou-metals").max_bill_face_minor == 50_000_000  # 500,000 CNY
    assert shipped.limits_for("ningbo-alloy").accepted_acceptors == frozenset(
        {"icbc-baotou", "ccb-ningbo"}
    )
    assert shipped.limits_for("inner-mongolia-trading").max_bill_share_bps == 5_000
    assert shipped.limits_for("xinyu-pvc") == ReceiptLimits(
        accept_bills=True, accept_commercial=True
    )
    assert shipped.method_for("baotou-metals") == PaymentMethod.bank_acceptance("icbc-baotou", 90)
    assert shipped.method_for("ganzhou-magnet").min_tenor_days == 90
    assert shipped.method_for("ningbo-alloy").kind is PaymentKind.COMMERCIAL_ACCEPTANCE
    assert shipped.method_for("xinyu-pvc") == PaymentMethod.cash()
    assert shipped.known_acceptors == set(MEMBERS) | set(shipped.banks)


MINIMAL = """
[fees]
default = { buyer_bps = 2, seller_bps = 2 }
"""


def test_minimal_file_gives_every_member_cash_and_no_bills(tmp_path: Path) -> None:
    path = tmp_path / "settlement.toml"
    path.write_text(MINIMAL)
    config = _load(path)
    assert all(m == PaymentMethod.cash() for m in config.methods.values())
    assert all(limits == ReceiptLimits() for limits in config.limits.values())


def test_a_member_entry_changes_only_the_limits_it_names(tmp_path: Path) -> None:
    path = tmp_path / "settlement.toml"
    path.write_text(
        MINIMAL
        + """
[payment.receives]
accept_bills = true
max_tenor_days = 90
[[members]]
id = "xinyu-pvc"
receives = { max_bill_share_bps = 2500 }
"""
    )
    config = _load(path)
    assert config.limits_for("xinyu-pvc") == ReceiptLimits(
        accept_bills=True, max_tenor_days=90, max_bill_share_bps=2_500
    )
    assert config.limits_for("baotou-metals") == ReceiptLimits(accept_bills=True, max_tenor_days=90)


def test_a_fee_override_inherits_what_it_leaves_out(tmp_path: Path) -> None:
    path = tmp_path / "settlement.toml"
    path.write_text(
        """
[fees]
default = { buyer_bps = 2, seller_bps = 4, minimum_minor = 100 }
[[fees.products]]
symbol = "TB-OX"
buyer_bps = 3
"""
    )
    assert _load(path).fees.rule_for("TB-OX") == FeeRule("TB-OX", 3, 4, 100)


BANK = '\n[[banks]]\nid = "icbc-baotou"\nname = "ICBC Baotou"\ncity = "Baotou"\n'


@pytest.mark.parametrize(
    ("text", "entry", "field", "fragment"),
    [
        (
            MINIMAL + '[[fees.products]]\nsymbol = "XX-OX"\nbuyer_bps = 3\n',
            "fees.products 'XX-OX'",
            "symbol",
            "unknown product",
        ),
        (
            "[fees]\ndefault = { buyer_bps = -1, seller_bps = 2 }\n",
            "fees.default",
            "buyer_bps",
            "from 0 to 10000",
        ),
        (
            "[fees]\ndefault = { buyer_bps = true, seller_bps = 2 }\n",
            "fees.default",
            "buyer_bps",
            "boolean true",
        ),
        ("[fees]\ndefault = { buyer_bps = 2 }\n", "fees.default", "seller_bps", "required"),
        (
            "[fees]\ndefault = { buyer_bps = 2, seller_bps = 2, min = 1 }\n",
            "fees.default",
            "min",
            "unknown key",
        ),
        (
            MINIMAL + '[[fees.products]]\nsymbol = "TB-OX"\n[[fees.products]]\nsymbol = "TB-OX"\n',
            "fees.products 'TB-OX'",
            "symbol",
            "duplicate",
        ),
        (MINIMAL + BANK + BANK, "bank 'icbc-baotou'", "id", "duplicate"),
        (
            MINIMAL + '[[banks]]\nid = "xinyu-pvc"\nname = "X"\ncity = "Xinyu"\n',
            "bank 'xinyu-pvc'",
            "id",
            "must not be a member id",
        ),
        (
            MINIMAL + '[[banks]]\nid = "abc-hohhot"\nname = "ABC"\n',
            "bank 'abc-hohhot'",
            "city",
            "required",
        ),
        (MINIMAL + '[[members]]\nid = "nobody"\n', "member 'nobody'", "id", "no such member"),
        (
            MINIMAL + '[[members]]\nid = "xinyu-pvc"\n[members.receives]\nmax_bill_face = 5\n',
            "member 'xinyu-pvc'",
            "receives.max_bill_face",
            "did you mean 'max_bill_face_minor'",
        ),
        (
            MINIMAL + '[[members]]\nid = "xinyu-pvc"\nreceives = { max_tenor_days = 200 }\n',
            "member 'xinyu-pvc'",
            "receives.max_tenor_days",
            "from 1 to 183",
        ),
        (
            MINIMAL
            + BANK
            + '[[members]]\nid = "xinyu-pvc"\nreceives = { accepted_acceptors = ["ccb-ningbo"] }\n',
            "member 'xinyu-pvc'",
            "receives.accepted_acceptors",
            "unknown acceptor 'ccb-ningbo'",
        ),
        (
            MINIMAL
            + BANK
            + '[[members]]\nid = "xinyu-pvc"\n'
            + 'pays = { method = "bank_acceptance", acceptor = "boc-ganzhou", tenor_days = 90 }\n',
            "member 'xinyu-pvc'",
            "pays.acceptor",
            "unknown bank 'boc-ganzhou'",
        ),
        (
            MINIMAL + '[payment.pays]\nmethod = "cheque"\n',
            "payment",
            "pays.method",
            "must be one of",
        ),
        (
            MINIMAL + "[payment.receives]\nmax_bill_share_bps = 20000\n",
            "payment",
            "receives.max_bill_share_bps",
            "0 to 10000",
        ),
        (MINIMAL + "[payment]\nreceipts = {}\n", "payment", "receipts", "did you mean 'receives'"),
    ],
)
def test_config_errors_name_file_entry_and_field(
    tmp_path: Path, text: str, entry: str, field: str, fragment: str
) -> None:
    path = tmp_path / "settlement.toml"
    path.write_text(text)
    with pytest.raises(ConfigError) as info:
        _load(path)
    error = info.value
    assert (error.file, error.entry, error.field) == (str(path), entry, field)
    assert fragment in error.reason
    assert str(error).startswith(f"{path}: {entry}: field {field!r}: ")


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("", r"no \[fees\] table"),
        (MINIMAL + "[extra]\n", "unknown top-level key 'extra'"),
        ("[fees\n", "invalid TOML"),
    ],
)
def test_file_level_errors_name_the_file(tmp_path: Path, text: str, fragment: str) -> None:
    path = tmp_path / "settlement.toml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=fragment) as info:
        _load(path)
    assert info.value.file == str(path)


def test_missing_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="file not found"):
        _load(tmp_path / "absent.toml")


def test_each_member_pays_from_its_bank_or_the_payment_default(tmp_path: Path) -> None:
    path = tmp_path / "settlement.toml"
    path.write_text(
        MINIMAL
        + BANK
        + '[[banks]]\nid = "boc-ganzhou"\nname = "BOC"\ncity = "Ganzhou"\n'
        + '[payment]\nbank = "boc-ganzhou"\nfallback_bank = "icbc-baotou"\n'
        + '[[members]]\nid = "baotou-metals"\nbank = "icbc-baotou"\n'
    )
    config = _load(path)
    # Naming only its bank keeps the default fallback, unless that is the same bank.
    assert config.banks_for("baotou-metals") == ("icbc-baotou", ())
    assert config.banks_for("xinyu-pvc") == ("boc-ganzhou", ("icbc-baotou",))


@pytest.mark.parametrize(
    ("extra", "entry", "field", "fragment"),
    [
        ('[payment]\nbank = "icbc"\n', "payment", "bank", "unknown bank 'icbc'"),
        (
            '[[members]]\nid = "xinyu-pvc"\nfallback_bank = "icbc-baotou"\n',
            "member 'xinyu-pvc'",
            "fallback_bank",
            "must differ from the bank",
        ),
        ('[[members]]\nid = "xinyu-pvc"\nbank = 3\n', "member 'xinyu-pvc'", "bank", "unknown"),
    ],
)
def test_a_bad_bank_names_the_file_entry_and_field(
    tmp_path: Path, extra: str, entry: str, field: str, fragment: str
) -> None:
    path = tmp_path / "settlement.toml"
    path.write_text(MINIMAL + BANK + extra)
    with pytest.raises(ConfigError) as caught:
        _load(path)
    message = str(caught.value)
    assert "settlement.toml" in message and entry in message
    assert f"field '{field}'" in message and fragment in message
