"""Version 1: processed trades, obligations, the journal and its postings, the audit log."""

STATEMENTS = [
    # Every trade settles once: the trade id is the idempotency key.
    """CREATE TABLE processed_trades (
        trade_id TEXT PRIMARY KEY,
        obligation_id TEXT NOT NULL,
        processed_at BIGINT NOT NULL)""",
    """CREATE TABLE obligations (
        obligation_id TEXT PRIMARY KEY,
        trade_id TEXT NOT NULL UNIQUE,
        product TEXT NOT NULL,
        payer TEXT NOT NULL,
        payee TEXT NOT NULL,
        currency TEXT NOT NULL,
        amount BIGINT NOT NULL CHECK (amount > 0),
        state TEXT NOT NULL,
        trade_date TEXT NOT NULL,
        created_at BIGINT NOT NULL)""",
    # The journal: append-only; corrections are new entries that name what they correct.
    """CREATE TABLE journal_entries (
        entry_id TEXT PRIMARY KEY,
        kind TEXT NOT NULL,
        reference TEXT NOT NULL,
        effective_date TEXT NOT NULL,
        created_at BIGINT NOT NULL,
        corrects TEXT REFERENCES journal_entries (entry_id))""",
    """CREATE TABLE postings (
        entry_id TEXT NOT NULL REFERENCES journal_entries (entry_id),
        line INTEGER NOT NULL,
        owner TEXT NOT NULL,
        account_kind TEXT NOT NULL,
        currency TEXT NOT NULL,
        amount BIGINT NOT NULL CHECK (amount <> 0),
        PRIMARY KEY (entry_id, line))""",
    "CREATE INDEX postings_by_account ON postings (owner, account_kind, currency)",
    # Who did what, when and why, for every state change.
    """CREATE TABLE audit_log (
        seq {serial},
        at BIGINT NOT NULL,
        actor TEXT NOT NULL,
        subject_type TEXT NOT NULL,
        subject_id TEXT NOT NULL,
        action TEXT NOT NULL,
        detail {json} NOT NULL)""",
    "CREATE INDEX audit_by_subject ON audit_log (subject_type, subject_id)",
]
