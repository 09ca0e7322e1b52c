"""Property: whatever a sender puts in a settlement request -- any kind, any body, any
values -- the desk answers it (or dead-letters it when it has no user_id) without raising,
a rejected request changes no settings, and the settings stored are always ones the file's
own validation accepts, so booking can always use them."""

from __future__ import annotations

import itertools
import tempfile
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rex.bus import Delivery
from rex.operators import OperatorAccount, Role
from rex.protocol import pack
from settlement_worker.member_settings.operations import effective, load_settings
from settlement_worker.member_settings.requests import settings_request_kinds
from settlement_worker.requests.desk import Outcome, RequestDesk
from settlement_worker.store.sqlite import SqliteStore
from tests.settlement_worker.helpers import CONFIG, MEMBERS

# The test runs a @given function of its own, which tests/conftest.py cannot see.
pytestmark = pytest.mark.property

OPERATOR = "rex-operator"
ACCOUNTS = {OPERATOR: OperatorAccount(OPERATOR, "Ops", frozenset({Role.SETTLEMENT_OPS}), "PW")}
LIMIT_FIELDS = [
    "accept_bills",
    "max_bill_face_minor",
    "max_tenor_days",
    "accepted_acceptors",
    "accept_commercial",
    "max_bill_share_bps",
]
IDS = ["icbc-baotou", "boc-ganzhou", "hsbc-hk", *sorted(MEMBERS)]


class StubDelivery(Delivery):
    def __init__(self, kind: str, body: bytes, user_id: str | None, message_id: str) -> None:
        self.body = body
        self.type = kind
        self.message_id = message_id
        self.user_id = user_id
        self.routing_key = f"{user_id}.{kind}"
        self.exchange = "rex.settlement.requests"
        self.timestamp = 1_795_000_000
        self.headers = {}
        self.redelivered = False

    def ack(self, multiple: bool = False) -> None:
        pass

    def reject(self, requeue: bool = False) -> None:
        pass


scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**63), max_value=2**64 - 1),
    st.floats(allow_nan=False),
    st.text(max_size=20),
    st.binary(max_size=8),
    st.sampled_from(["unlimited", "any", "cash", "bank_acceptance", *IDS]),
)
values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=10,
)
plausible = st.one_of(
    st.booleans(),
    st.integers(min_value=-5, max_value=300),
    st.integers(min_value=1, max_value=10**10),
    st.sampled_from(["unlimited", "any"]),
    st.lists(st.sampled_from(IDS), max_size=3),
    values,
)
changes = st.dictionaries(st.sampled_from([*LIMIT_FIELDS, "colour"]), plausible, max_size=3)
pays = st.fixed_dictionaries(
    {
        "method": st.one_of(
            st.sampled_from(["cash", "bank_acceptance", "commercial_acceptance"]), values
        )
    },
    optional={
        "acceptor": st.one_of(st.sampled_from(IDS), values),
        "tenor_days": plausible,
        "min_tenor_days": plausible,
        "colour": values,
    },
)
SENDERS = [*sorted(MEMBERS)[:3], OPERATOR]


@st.composite
def well_formed(draw: st.DrawFn) -> tuple[str, bytes, str | None]:
    """Requests that get past the envelope checks, so the handlers' own rules are reached."""
    kind = draw(st.sampled_from(["set_receipt_limits", "set_payment_method"] * 3 + ["show"]))
    sender = draw(st.sampled_from(SENDERS))
    body: dict[str, Any] = {"reason": "credit committee"}
    if kind == "set_receipt_limits":
        body["changes"] = draw(changes)
    elif kind == "set_payment_method":
        body["pays"] = draw(pays)
    else:
        kind = "show_settlement_settings"
        body = {}
    if sender == OPERATOR or draw(st.booleans()):
        body["member"] = draw(st.sampled_from(sorted(MEMBERS)[:3]))
    if draw(st.integers(0, 4)) == 0:  # seldom: a wrong version hides everything else
        body["if_version"] = draw(st.integers(0, 3))
    return kind, pack(body), sender


garbage = st.tuples(
    st.sampled_from(
        ["set_receipt_limits", "set_payment_method", "show_settlement_settings", "Bad Kind", ""]
    ),
    st.one_of(
        st.binary(max_size=16),
        values.map(pack),
        st.fixed_dictionaries(
            {},
            optional={
                "member": st.one_of(st.sampled_from([*sorted(MEMBERS), "nobody"]), values),
                "reason": st.one_of(st.just("credit committee"), values),
                "changes": st.one_of(changes, values),
                "pays": st.one_of(pays, values),
                "if_version": st.one_of(st.integers(0, 3), values),
                "colour": values,
            },
        ).map(pack),
    ),
    st.sampled_from([*SENDERS, "stranger", None]),
)
requests = st.one_of(well_formed(), garbage)


def test_no_request_crashes_the_desk_or_stores_invalid_settings() -> None:
    with tempfile.TemporaryDirectory() as directory:
        store = SqliteStore(Path(directory) / "settlement.sqlite3")
        store.migrate()
        desk = RequestDesk(store, settings_request_kinds(CONFIG), MEMBERS, ACCOUNTS)
        ids = (f"m-{n}" for n in itertools.count())

        @settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
        @given(st.lists(requests, min_size=1, max_size=5))
        def run(batch: list[tuple[str, bytes, str | None]]) -> None:
            for kind, body, sender in batch:
                before = store.query("SELECT member, version FROM member_settings ORDER BY member")
                message_id = next(ids)
                outcome = desk.handle(StubDelivery(kind, body, sender, message_id))
                if sender is None:
                    assert outcome is Outcome.DEAD_LETTER
                    continue
                assert outcome is Outcome.ANSWERED
                status = store.query(
                    "SELECT status FROM settlement_requests WHERE sender = ? AND message_id = ?",
                    [sender, message_id],
                )
                assert len(status) == 1
                after = store.query("SELECT member, version FROM member_settings ORDER BY member")
                if status[0][0] == "rejected":
                    assert after == before
                with store.transaction() as tx:
                    stored: dict[str, Any] = load_settings(tx)
                for member, saved in stored.items():
                    effective(CONFIG, member, saved)  # raises if the file would refuse them

        run()
        store.close()
