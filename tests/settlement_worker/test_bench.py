"""The settlement benchmark runs on both backends and both ways of paying (its figures
are in docs/internals/benchmarks.md; here only that it settles everything, balanced, and that the
bill run really pays by bills)."""

from __future__ import annotations

import json

import pytest

from settlement_worker import bench
from tests.settlement_worker.helpers import BACKENDS, DATABASE_URL


@pytest.mark.parametrize("store", BACKENDS)
@pytest.mark.parametrize("pay_by", ["cash", "bills"])
def test_the_bench_settles_every_trade(
    store: str, pay_by: str, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["--store", store, "--trades", "300", "--batch", "100", "--pay-by", pay_by]
    assert bench.main([*argv, "--database-url", DATABASE_URL]) == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert (result["trades"], result["pay_by"]) == (300, pay_by)
    if pay_by == "cash":
        assert result["bills"] == 0
    else:
        assert result["bills"] >= 300 // 2 and result["endorsements"] > 0
