"""Reports on the store: reconciliation and members' statements."""
