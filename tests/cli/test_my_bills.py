"""`rex my-bills` output: answers as a member reads them, amounts exact from minor units."""

from __future__ import annotations

from typing import Any

import pytest

from cli.my_bills import _print
from rex.settlement_protocol import SettlementAnswer

BILL: dict[str, Any] = {
    "bill_id": "bill-obl-PRND-OX-1-0",
    "kind": "bank_acceptance",
    "drawer": "ganzhou-magnet",
    "payee": "baotou-metals",
    "acceptor": "boc-ganzhou",
    "face": 41_500_000,
    "currency": "CNY",
    "issue_date": "2026-11-18",
    "due_date": "2027-05-17",
    "holder": "icbc-baotou",
    "state": "discounted",
    "roles": ["endorser", "payee"],
    "chain": [
        {"sequence": 1, "from": "baotou-metals", "to": "icbc-baotou", "kind": "discount",
         "on": "2026-12-01"},
    ],
}  # fmt: skip


def answer(request: str, **fields: Any) -> SettlementAnswer:
    return SettlementAnswer("a", "r", request, "baotou-metals", "baotou-metals", **fields)


def test_a_discount_prints_the_bill_and_the_working(capsys: pytest.CaptureFixture[str]) -> None:
    working = {"days": 170, "annual_rate": "0.0135", "interest": 264_563,
               "proceeds": 41_235_437, "currency": "CNY"}  # fmt: skip
    done = answer("discount_bill", status="accepted", timestamp=0,
                  detail={"bill": BILL, "discount": working})  # fmt: skip
    assert _print(done, as_json=False) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("discounted bill-obl-PRND-OX-1-0  discounted  endorser+payee")
    assert "415,000.00 CNY" in out[0]
    assert out[1] == "  1. 2026-12-01 discount baotou-metals -> icbc-baotou"
    assert out[2] == "  170 days at 0.0135: interest 2,645.63 CNY, proceeds 412,354.37 CNY"


def test_a_refusal_prints_the_rule(capsys: pytest.CaptureFixture[str]) -> None:
    refused = answer("endorse_bill", status="rejected", timestamp=0, reason="bill_rule",
                     text="bill fell due", detail={"rule": "overdue"})  # fmt: skip
    assert _print(refused, as_json=False) == 1
    assert capsys.readouterr().out == "rejected: bill_rule (overdue): bill fell due\n"
