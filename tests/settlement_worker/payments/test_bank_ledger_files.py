"""A bank simulator's ledger is its owner's alone: the directory 0700, the file and its -wal
and -shm 0600, whatever the umask."""

from __future__ import annotations

from pathlib import Path

from settlement_worker.payments import bank_sim
from settlement_worker.payments.bank_sim import ledger_path
from settlement_worker.payments.banks.core import SqliteBankLedger
from tests.file_modes import modes, private, typical_umask


def test_a_bank_simulators_ledger_is_owner_only(tmp_path: Path) -> None:
    with typical_umask():
        ledger = SqliteBankLedger(ledger_path(tmp_path / "data", "icbc-baotou"))
        found, expected = modes(tmp_path), private(tmp_path)
        ledger.close()
    assert {"data/bank-icbc-baotou.sqlite3-wal", "data/bank-icbc-baotou.sqlite3-shm"} <= set(
        found
    ), found
    assert found == expected


def test_the_simulators_command_creates_its_ledger_owner_only(tmp_path: Path) -> None:
    with typical_umask():
        data = tmp_path / "banks"
        assert bank_sim.main(["--bank", "b1", "--data-dir", str(data), "--report"]) == 0
    assert modes(tmp_path) == {"banks": 0o700, "banks/bank-b1.sqlite3": 0o600}
