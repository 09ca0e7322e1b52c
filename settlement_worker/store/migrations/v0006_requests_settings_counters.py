"""Version 6: settlement requests, members' settings changed at run time, id counters.

* ``settlement_requests``: every request the worker answered, keyed by sender and AMQP
  message id, so a redelivered request is recognised and not applied (or answered) twice.
* ``member_settings``: a member's receipt limits and payment method as changed at run time
  over ``config/settlement.toml`` (settlement_worker.member_settings.operations); ``version`` counts
  the changes. ``member_settings_history`` keeps every version: who, when, why, and the
  settings it set (JSON text, so what was stored reads back exactly on both backends).
* ``id_counters``: the last number given out per id series (``dispute``, ``offline``,
  ``otc:<product>``). Taking a number updates the row, which PostgreSQL locks until the
  transaction ends, so two processes can never take the same one; a rolled-back
  transaction gives its number back, so the series have no gaps. Seeded here from the ids
  already used.
"""

STATEMENTS = [
    """CREATE TABLE settlement_requests (
        sender TEXT NOT NULL,
        message_id TEXT NOT NULL,
        kind TEXT NOT NULL,
        member TEXT,
        status TEXT NOT NULL CHECK (status IN ('accepted', 'rejected')),
        reason TEXT,
        received_at BIGINT NOT NULL,
        PRIMARY KEY (sender, message_id))""",
    """CREATE TABLE member_settings (
        member TEXT PRIMARY KEY,
        receives TEXT NOT NULL,
        pays TEXT,
        version INTEGER NOT NULL CHECK (version > 0),
        changed_at BIGINT NOT NULL,
        changed_by TEXT NOT NULL)""",
    """CREATE TABLE member_settings_history (
        seq {serial},
        member TEXT NOT NULL,
        version INTEGER NOT NULL,
        at BIGINT NOT NULL,
        actor TEXT NOT NULL,
        request_id TEXT NOT NULL,
        reason TEXT NOT NULL,
        receives TEXT NOT NULL,
        pays TEXT,
        UNIQUE (member, version))""",
    """CREATE TABLE id_counters (
        name TEXT PRIMARY KEY,
        last BIGINT NOT NULL CHECK (last >= 0))""",
    """INSERT INTO id_counters (name, last)
        SELECT 'dispute', COALESCE(MAX(CAST(SUBSTR(dispute_id, 3) AS BIGINT)), 0)
        FROM disputes""",
    """INSERT INTO id_counters (name, last)
        SELECT 'offline', COALESCE(MAX(CAST(SUBSTR(offline_id, 5) AS BIGINT)), 0)
        FROM offline_trades""",
    # OTC-<product>-<n>: n starts after 'OTC-', the product and '-'.
    """INSERT INTO id_counters (name, last)
        SELECT 'otc:' || product, MAX(CAST(SUBSTR(trade_id, LENGTH(product) + 6) AS BIGINT))
        FROM offline_trades WHERE trade_id IS NOT NULL GROUP BY product""",
]
