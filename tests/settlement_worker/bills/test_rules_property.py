"""Property: whatever endorsements are tried, a bill's chain stays continuous and append-only."""

from __future__ import annotations

from datetime import date, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from rex.money import Money
from settlement_worker.bills.rules import Bill, BillKind, accept, endorse, issue
from settlement_worker.codes import RuleViolation

MEMBERS = ["seller", "a", "b", "c", "buyer"]


@given(
    st.lists(
        st.tuples(
            st.sampled_from(MEMBERS),
            st.sampled_from(MEMBERS),
            st.integers(min_value=-3, max_value=40),
        ),
        max_size=25,
    )
)
@settings(max_examples=200, deadline=None)
def test_endorsement_chains_stay_continuous_and_append_only(
    attempts: list[tuple[str, str, int]],
) -> None:
    bill: Bill = accept(
        issue(
            "B-P",
            BillKind.BANK_ACCEPTANCE,
            "buyer",
            "seller",
            "bank",
            "Baotou",
            Money(10_000_00, "CNY"),
            date(2026, 3, 2),
            date(2026, 4, 2),
        ),
        "bank",
        date(2026, 3, 2),
    )
    day = date(2026, 3, 2)
    for frm, to, step in attempts:
        on = day + timedelta(days=step)
        try:
            after = endorse(bill, frm, to, on)
        except RuleViolation as exc:
            # Refused for a stated rule; the bill we hold is unchanged (it is a value).
            assert exc.code in {"not_holder", "self_endorsement", "overdue", "backdated"}
            continue
        assert after.endorsements[: len(bill.endorsements)] == bill.endorsements
        assert len(after.endorsements) == len(bill.endorsements) + 1
        bill, day = after, on
    holder = bill.payee
    for n, link in enumerate(bill.endorsements, start=1):
        assert link.sequence == n
        assert link.from_holder == holder
        holder = link.to_holder
    assert bill.holder == holder
