"""Version 3: disputes and offline (negotiated) trades.

Every change to these rows is also written to `audit_log` (who, when, why); the rows hold
the current state, the audit log the history.
"""

STATEMENTS = [
    """CREATE TABLE disputes (
        dispute_id TEXT PRIMARY KEY,
        subject_type TEXT NOT NULL CHECK (subject_type IN ('trade', 'bill')),
        subject_id TEXT NOT NULL,
        opened_by TEXT NOT NULL,
        reason TEXT NOT NULL,
        opened_at BIGINT NOT NULL,
        state TEXT NOT NULL CHECK (state IN ('open', 'upheld', 'rejected')),
        resolved_by TEXT,
        resolution_note TEXT,
        resolved_at BIGINT)""",
    "CREATE INDEX disputes_by_subject ON disputes (subject_type, subject_id)",
    # One open dispute per subject, enforced by the database too (a race of two openers).
    """CREATE UNIQUE INDEX disputes_one_open ON disputes (subject_type, subject_id)
        WHERE state = 'open'""",
    """CREATE TABLE offline_trades (
        offline_id TEXT PRIMARY KEY,
        reporter TEXT NOT NULL,
        counterparty TEXT NOT NULL,
        product TEXT NOT NULL,
        side TEXT NOT NULL CHECK (side IN ('buy', 'sell')),
        price BIGINT NOT NULL,
        quantity BIGINT NOT NULL,
        ref TEXT NOT NULL,
        reported_at BIGINT NOT NULL,
        state TEXT NOT NULL CHECK (state IN ('pending', 'confirmed', 'declined', 'cancelled')),
        trade_id TEXT UNIQUE,
        closed_at BIGINT,
        UNIQUE (reporter, ref))""",
]
