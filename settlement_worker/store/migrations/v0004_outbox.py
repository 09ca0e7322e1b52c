"""Version 4: the settlement events outbox (settlement_worker.outbox)."""

STATEMENTS = [
    # Written in the same transaction as the booking an event reports; published afterwards
    # with confirms, then marked published. Never deleted (a record of what members were told).
    """CREATE TABLE outbox (
        seq {serial},
        event_id TEXT NOT NULL UNIQUE,
        exchange TEXT NOT NULL,
        routing_key TEXT NOT NULL,
        type TEXT NOT NULL,
        body {blob} NOT NULL,
        timestamp BIGINT NOT NULL,
        published INTEGER NOT NULL DEFAULT 0)""",
    "CREATE INDEX outbox_unpublished ON outbox (published, seq)",
]
