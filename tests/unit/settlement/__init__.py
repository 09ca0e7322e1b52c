"""Unit and property tests for the pure settlement cores (money, ledger, bills, discounting)."""
