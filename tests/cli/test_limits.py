"""`rex limits`: its options as a member types them, what it sends, and how the answer
prints (the request itself goes through RabbitMQ in tests/system/test_settlement_requests.py)."""

from __future__ import annotations

import argparse
import json
from typing import Any

import pytest

from cli import limits
from cli.settlement_requests import acting_for, answer_dict
from rex.config import ConfigError
from rex.settlement_protocol import SettlementAnswer


def parse(*words: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="rex limits")
    limits.configure(parser)
    return parser.parse_args(list(words))


class Recording:
    """Stands in for the client: remembers what a command sent, answers accepted."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, dict[str, Any], dict[str, Any]]] = []

    def set_receipt_limits(self, changes: dict[str, Any], **how: Any) -> SettlementAnswer:
        self.sent.append(("set_receipt_limits", dict(changes), how))
        return answer("accepted")

    def set_payment_method(self, pays: dict[str, Any], **how: Any) -> SettlementAnswer:
        self.sent.append(("set_payment_method", dict(pays), how))
        return answer("accepted")


def answer(status: str, **fields: Any) -> SettlementAnswer:
    return SettlementAnswer(
        "a-1", "r-1", "set_receipt_limits", "baotou-metals", "baotou-metals", status, 0, **fields
    )


def test_limits_are_typed_as_a_member_writes_them() -> None:
    args = parse(
        "set", "--member", "baotou-metals", "--reason", "bank line cut",
        "--accept-bills", "No", "--max-bill-face-minor", "unlimited",
        "--accepted-acceptors", "icbc-baotou, boc-ganzhou,", "--max-tenor-days", "90",
    )  # fmt: skip
    assert args.accept_bills is False
    assert args.max_bill_face_minor == "unlimited"
    assert args.accepted_acceptors == ["icbc-baotou", "boc-ganzhou"]
    assert args.max_tenor_days == 90 and args.accept_commercial is None
    assert parse("set", "--reason", "r", "--accepted-acceptors", "any").accepted_acceptors == "any"
    assert parse("set", "--reason", "r", "--max-bill-face-minor", "500").max_bill_face_minor == 500


@pytest.mark.parametrize(
    ("option", "value", "expected"),
    [
        ("--accept-bills", "maybe", "expected true or false, got 'maybe'"),
        ("--max-bill-face-minor", "lots", "expected an integer or 'unlimited'"),
        ("--max-tenor-days", "ninety", "invalid int value"),
    ],
)
def test_a_mistyped_limit_is_a_usage_error_naming_it(
    option: str, value: str, expected: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        parse("set", "--reason", "r", option, value)
    assert exited.value.code == 2
    err = capsys.readouterr().err
    assert option in err and expected in err


def test_set_sends_only_the_limits_named_and_refuses_none() -> None:
    client = Recording()
    args = parse("set", "--member", "m", "--reason", "why", "--max-tenor-days", "30")
    limits._set(client, args)  # type: ignore[arg-type]
    assert client.sent == [
        ("set_receipt_limits", {"max_tenor_days": 30},
         {"reason": "why", "member": None, "if_version": None, "wait": 10.0}),
    ]  # fmt: skip
    with pytest.raises(ConfigError, match="name at least one limit to change"):
        limits._set(client, parse("set", "--reason", "why"))  # type: ignore[arg-type]


def test_an_operator_acts_for_the_member_named() -> None:
    client = Recording()
    args = parse(
        "set-method", "--operator", "--member", "xinyu-pvc", "--reason", "asked by phone",
        "--method", "bank_acceptance", "--acceptor", "icbc-baotou", "--tenor-days", "90",
        "--if-version", "3",
    )  # fmt: skip
    assert acting_for(args) == "xinyu-pvc"
    assert acting_for(parse("show", "--member", "xinyu-pvc")) is None
    limits._set_method(client, args)  # type: ignore[arg-type]
    assert client.sent == [
        ("set_payment_method",
         {"method": "bank_acceptance", "acceptor": "icbc-baotou", "tenor_days": 90},
         {"reason": "asked by phone", "member": "xinyu-pvc", "if_version": 3, "wait": 10.0}),
    ]  # fmt: skip


def test_an_accepted_answer_prints_the_settings_and_exits_0(
    capsys: pytest.CaptureFixture[str],
) -> None:
    detail = {
        "member": "baotou-metals",
        "version": 4,
        "pays": {"method": "cash"},
        "receives": {"accept_bills": True, "accepted_acceptors": ["icbc-baotou"],
                     "max_bill_face_minor": "unlimited"},
    }  # fmt: skip
    assert limits._print(answer("accepted", detail=detail), False) == 0
    assert capsys.readouterr().out.splitlines() == [
        "baotou-metals  version 4",
        "  pays      method=cash",
        "  receives  accept_bills=true accepted_acceptors=icbc-baotou"
        " max_bill_face_minor=unlimited",
    ]


def test_a_rejected_answer_prints_its_code_field_and_text_and_exits_1(
    capsys: pytest.CaptureFixture[str],
) -> None:
    rejected = answer(
        "rejected", reason="invalid_limits", field="max_tenor_days", text="at most 183 days"
    )
    assert limits._print(rejected, False) == 1
    assert capsys.readouterr().out == (
        "rejected: invalid_limits (field max_tenor_days): at most 183 days\n"
    )
    assert limits._print(rejected, True) == 1
    printed = json.loads(capsys.readouterr().out)
    assert printed == answer_dict(rejected)
    assert printed["status"] == "rejected" and printed["field"] == "max_tenor_days"
