"""Version 7: the outbox sets aside what it can never publish (settlement_worker.outbox).

``quarantined_at`` (ns) and ``quarantine_reason`` are set, once, on a row whose publish
raised an error that retrying cannot cure (an AMQP short string over 255 bytes, ...): the
drain skips it from then on, so the rows behind it go out, and ``rex reconcile`` lists it.
NULL on every other row.
"""

STATEMENTS = [
    "ALTER TABLE outbox ADD COLUMN quarantined_at BIGINT",
    "ALTER TABLE outbox ADD COLUMN quarantine_reason TEXT",
]
