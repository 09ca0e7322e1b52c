"""Version 5: bills, their append-only endorsement chains, and recourse after dishonour.

* ``bills``: one row per electronic acceptance bill (settlement_worker.bills.rules.Bill), updated
  in place as it moves (state, holder, dates); ``version`` is its optimistic lock, since
  the worker's booking and an operator's or member's bill operation may both move it.
  ``obligation_id`` is the obligation it was issued to pay. Dates are ISO text, money
  integer minor units, ``transferable`` 0 or 1 (portable on both backends).
* ``bill_endorsements``: the chain, one row per link (``seq`` 1..n), only ever inserted:
  the store has no update or delete for it, so a transfer cannot be rewritten.
  ``obligation_id`` names the obligation a link paid when the booking endorsed a held bill
  to the payee instead of drawing a new one; NULL for a member's own endorsement or a
  discount.
* ``bill_recourse``: the claims a dishonour moves back along the chain: ``debtor`` owes
  ``creditor`` the face, paid by the payment ``payment_id`` (whose ``obligation_id`` is
  this ``recourse_id``). ``creditor_is_bank``: the holder was the bank that discounted it,
  so the money leaves through BANK_SETTLEMENT.
"""

STATEMENTS = [
    """CREATE TABLE bills (
        bill_id TEXT PRIMARY KEY,
        kind TEXT NOT NULL CHECK (kind IN ('bank_acceptance', 'commercial_acceptance')),
        drawer TEXT NOT NULL,
        payee TEXT NOT NULL,
        acceptor TEXT NOT NULL,
        acceptor_city TEXT NOT NULL,
        face BIGINT NOT NULL CHECK (face > 0),
        currency TEXT NOT NULL,
        issue_date TEXT NOT NULL,
        due_date TEXT NOT NULL,
        transferable INTEGER NOT NULL CHECK (transferable IN (0, 1)),
        state TEXT NOT NULL CHECK (state IN ('issued', 'accepted', 'endorsed', 'discounted',
            'paid', 'dishonoured', 'cancelled')),
        holder TEXT NOT NULL,
        accepted_on TEXT,
        closed_on TEXT,
        obligation_id TEXT NOT NULL,
        created_at BIGINT NOT NULL,
        updated_at BIGINT NOT NULL,
        version INTEGER NOT NULL)""",
    "CREATE INDEX bills_by_holder ON bills (holder, state)",
    "CREATE INDEX bills_by_drawer ON bills (drawer)",
    "CREATE INDEX bills_by_due_date ON bills (state, due_date)",
    "CREATE INDEX bills_by_obligation ON bills (obligation_id)",
    """CREATE TABLE bill_endorsements (
        bill_id TEXT NOT NULL REFERENCES bills (bill_id),
        seq INTEGER NOT NULL CHECK (seq > 0),
        from_holder TEXT NOT NULL,
        to_holder TEXT NOT NULL,
        kind TEXT NOT NULL CHECK (kind IN ('transfer', 'discount')),
        endorsed_on TEXT NOT NULL,
        obligation_id TEXT,
        at BIGINT NOT NULL,
        PRIMARY KEY (bill_id, seq))""",
    "CREATE INDEX bill_endorsements_by_holder ON bill_endorsements (to_holder)",
    "CREATE INDEX bill_endorsements_by_obligation ON bill_endorsements (obligation_id)",
    """CREATE TABLE bill_recourse (
        recourse_id TEXT PRIMARY KEY,
        bill_id TEXT NOT NULL REFERENCES bills (bill_id),
        creditor TEXT NOT NULL,
        debtor TEXT NOT NULL,
        amount BIGINT NOT NULL CHECK (amount > 0),
        currency TEXT NOT NULL,
        creditor_is_bank INTEGER NOT NULL CHECK (creditor_is_bank IN (0, 1)),
        payment_id TEXT NOT NULL UNIQUE,
        created_at BIGINT NOT NULL)""",
    "CREATE INDEX bill_recourse_by_bill ON bill_recourse (bill_id)",
]
