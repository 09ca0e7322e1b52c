"""Version 2: bank payments and their append-only history (settlement_worker.payments.rules)."""

STATEMENTS = [
    # One row per payment, updated in place by the payer; `version` is its optimistic lock
    # (the payer and an operator's `rex payments --release` may both write). `fallbacks`:
    # the banks still to try after `bank`, comma-separated. Times are ns since the epoch.
    """CREATE TABLE payments (
        payment_id TEXT PRIMARY KEY,
        obligation_id TEXT NOT NULL,
        payer TEXT NOT NULL,
        payee TEXT NOT NULL,
        amount BIGINT NOT NULL CHECK (amount > 0),
        currency TEXT NOT NULL,
        bank TEXT NOT NULL,
        state TEXT NOT NULL,
        attempts INTEGER NOT NULL,
        next_attempt_at BIGINT,
        updated_at BIGINT NOT NULL,
        fallbacks TEXT NOT NULL,
        send_no INTEGER NOT NULL,
        deadline BIGINT,
        queries INTEGER NOT NULL,
        last_error TEXT NOT NULL,
        created_at BIGINT NOT NULL,
        version INTEGER NOT NULL)""",
    "CREATE INDEX payments_due ON payments (state, next_attempt_at)",
    "CREATE INDEX payments_by_obligation ON payments (obligation_id)",
    # Every transition of every payment, never updated or deleted.
    """CREATE TABLE payment_events (
        seq {serial},
        payment_id TEXT NOT NULL REFERENCES payments (payment_id),
        at BIGINT NOT NULL,
        kind TEXT NOT NULL,
        from_state TEXT,
        to_state TEXT NOT NULL,
        actor TEXT NOT NULL,
        detail {json} NOT NULL)""",
    "CREATE INDEX payment_events_by_payment ON payment_events (payment_id)",
]
