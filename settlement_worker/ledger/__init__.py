"""The double-entry ledger: accounts, balanced journal entries (pure), and how they are kept."""
