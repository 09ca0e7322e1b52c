"""The dispute rules (settlement_worker.disputes.rules), one test per rule, named after it."""

from __future__ import annotations

import datetime as dt

import pytest

from rex.config import ProcessConfig
from rex.money import Money
from rex.protocol import TradeMessage
from settlement_worker.bills.rules import (
    BillKind,
    BillState,
    accept,
    endorse,
    issue,
    pay_at_maturity,
)
from settlement_worker.codes import RuleViolation
from settlement_worker.disputes.rules import (
    Actor,
    Dispute,
    DisputeState,
    Subject,
    SubjectType,
    cancel_disputed_bill,
    is_frozen,
    open_dispute,
    reject,
    reversal_entries,
    uphold,
)
from settlement_worker.ledger.rules import (
    AccountId,
    AccountKind,
    AlreadyReversed,
    JournalEntry,
    Ledger,
    Posting,
)
from settlement_worker.obligations.fees import FeeRule, FeeSchedule
from settlement_worker.obligations.settle import settle_trade

PRODUCTS = ProcessConfig.from_env({}).products()
BUYER, SELLER, OTHER = "ganzhou-magnet", "baotou-metals", "ningbo-alloy"
TRADE = Subject.trade("PRND-OX-1", BUYER, SELLER)
AT = 1_795_000_000_000_000_000
RESOLVED = dt.datetime(2026, 11, 20, 2, 0, tzinfo=dt.UTC)


def opened(
    subject: Subject = TRADE, by: str = BUYER, existing: tuple[Dispute, ...] = ()
) -> Dispute:
    return open_dispute("D-1", subject, Actor.member(by), "wrong grade delivered", AT, existing)


def code(error: pytest.ExceptionInfo[RuleViolation]) -> str:
    return error.value.code


def trade_ledger(fees: FeeSchedule) -> Ledger:
    message = TradeMessage(
        "PRND-OX-1", "PRND-OX", 415_000, 1_000, BUYER, SELLER, 1, 2, "buy", 1, AT, "CNY"
    )
    return Ledger.rebuild(settle_trade(message, PRODUCTS["PRND-OX"], fees).entries)


FEES = FeeSchedule(FeeRule("*", 2, 2))
FREE = FeeSchedule(FeeRule("*", 0, 0))


# ------------------------------------------------------------------------- opening


@pytest.mark.parametrize("party", [BUYER, SELLER])
def test_a_party_to_the_trade_may_open(party: str) -> None:
    dispute = opened(by=party)
    assert (dispute.state, dispute.opened_by, dispute.subject_id) == (
        DisputeState.OPEN,
        party,
        "PRND-OX-1",
    )


def test_only_a_party_may_open_not_another_member() -> None:
    with pytest.raises(RuleViolation) as error:
        opened(by=OTHER)
    assert code(error) == "not_a_party"


def test_only_a_party_may_open_not_an_operator() -> None:
    with pytest.raises(RuleViolation) as error:
        open_dispute("D-1", TRADE, Actor.operator(BUYER), "x", AT)
    assert code(error) == "not_a_party"


def test_only_a_party_to_a_bill_may_open() -> None:
    bill = issue(
        "B-1",
        BillKind.BANK_ACCEPTANCE,
        BUYER,
        SELLER,
        "icbc-baotou",
        "Baotou",
        Money(100_000_00, "CNY"),
        dt.date(2026, 11, 1),
        dt.date(2027, 2, 1),
    )
    subject = Subject.bill(bill)
    assert open_dispute("D-1", subject, Actor.member(SELLER), "not delivered", AT).subject_type == (
        SubjectType.BILL
    )
    with pytest.raises(RuleViolation) as error:
        open_dispute("D-1", subject, Actor.member(OTHER), "not delivered", AT)
    assert code(error) == "not_a_party"


@pytest.mark.parametrize("reason", ["", "   ", "x" * 2001])
def test_a_reason_is_required(reason: str) -> None:
    with pytest.raises(RuleViolation) as error:
        open_dispute("D-1", TRADE, Actor.member(BUYER), reason, AT)
    assert code(error) == "reason_required"


def test_one_open_dispute_per_subject() -> None:
    first = opened()
    with pytest.raises(RuleViolation) as error:
        opened(by=SELLER, existing=(first,))
    assert code(error) == "already_disputed"
    other = Subject.trade("PRND-OX-2", BUYER, SELLER)
    assert opened(subject=other, existing=(first,)).subject_id == "PRND-OX-2"


def test_a_rejected_subject_may_be_disputed_again() -> None:
    rejected = reject(opened(), Actor.operator("li"), "grade within spec", AT + 1)
    again = open_dispute("D-2", TRADE, Actor.member(SELLER), "late", AT + 2, [rejected])
    assert again.state is DisputeState.OPEN


def test_an_upheld_subject_cannot_be_disputed_again() -> None:
    upheld = uphold(opened(), Actor.operator("li"), "assay confirms", AT + 1)
    with pytest.raises(RuleViolation) as error:
        open_dispute("D-2", TRADE, Actor.member(SELLER), "again", AT + 2, [upheld])
    assert code(error) == "already_upheld"


# ----------------------------------------------------------------------- resolving


@pytest.mark.parametrize("member", [BUYER, SELLER, OTHER])
def test_only_an_operator_resolves(member: str) -> None:
    for verdict in (uphold, reject):
        with pytest.raises(RuleViolation) as error:
            verdict(opened(), Actor.member(member), "I decide", AT + 1)
        assert code(error) == "not_operator"


def test_a_dispute_is_resolved_once() -> None:
    for first in (uphold, reject):
        done = first(opened(), Actor.operator("li"), "decided", AT + 1)
        for second in (uphold, reject):
            with pytest.raises(RuleViolation) as error:
                second(done, Actor.operator("wang"), "again", AT + 2)
            assert code(error) == "already_resolved"


def test_a_resolution_needs_a_note() -> None:
    with pytest.raises(RuleViolation) as error:
        uphold(opened(), Actor.operator("li"), " ", AT + 1)
    assert code(error) == "note_required"


def test_a_dispute_is_not_resolved_before_it_was_opened() -> None:
    with pytest.raises(RuleViolation) as error:
        reject(opened(), Actor.operator("li"), "no", AT - 1)
    assert code(error) == "backdated"


def test_resolution_records_who_when_and_why() -> None:
    done = uphold(opened(), Actor.operator("li"), "assay confirms", AT + 5)
    assert (done.state, done.resolved_by, done.resolution_note, done.resolved_at) == (
        DisputeState.UPHELD,
        "li",
        "assay confirms",
        AT + 5,
    )


def test_a_stored_dispute_is_held_to_the_rules() -> None:
    with pytest.raises(RuleViolation) as error:
        Dispute("D-1", SubjectType.TRADE, "T", BUYER, "r", AT, DisputeState.OPEN, "li", "n", AT)
    assert code(error) == "invalid_dispute"
    with pytest.raises(RuleViolation) as error:
        Dispute("D-1", SubjectType.TRADE, "T", BUYER, "r", AT, DisputeState.UPHELD)
    assert code(error) == "invalid_dispute"


def test_actors_are_recorded_with_their_role() -> None:
    assert (str(Actor.member(BUYER)), str(Actor.operator("li"))) == (
        "member:ganzhou-magnet",
        "operator:li",
    )
    with pytest.raises(RuleViolation):
        Actor.operator("li wei")  # no spaces: it is an audit key


# ------------------------------------------------------------------------ freezing


def test_an_open_dispute_freezes_its_subject_and_a_resolution_unfreezes_it() -> None:
    dispute = opened()
    assert is_frozen(SubjectType.TRADE, "PRND-OX-1", [dispute])
    assert not is_frozen(SubjectType.TRADE, "PRND-OX-2", [dispute])
    assert not is_frozen(SubjectType.BILL, "PRND-OX-1", [dispute])
    for verdict in (uphold, reject):
        done = verdict(dispute, Actor.operator("li"), "decided", AT + 1)
        assert not is_frozen(SubjectType.TRADE, "PRND-OX-1", [done])


# ----------------------------------------------------------------------- reversals


def test_uphold_reverses_the_trade_and_fee_entries() -> None:
    ledger = trade_ledger(FEES)
    done = uphold(opened(), Actor.operator("li"), "assay confirms", AT + 1)
    entries = reversal_entries(done, ledger, RESOLVED, dt.date(2026, 11, 20))
    assert [e.entry_id for e in entries] == [
        "reverse-trade-PRND-OX-1",
        "reverse-fees-PRND-OX-1",
    ]
    for entry in entries:
        original = ledger.entry(entry.corrects or "")
        assert entry.is_reversal_of(original)
        assert (entry.reason, entry.reference) == ("dispute_reversal", "PRND-OX-1")
        ledger.post(entry)
    assert all(v == 0 for v in ledger.balances().values())
    assert ledger.total_by_currency() == {"CNY": 0}


def test_uphold_without_fees_reverses_only_the_trade_entry() -> None:
    ledger = trade_ledger(FREE)
    done = uphold(opened(), Actor.operator("li"), "assay confirms", AT + 1)
    entries = reversal_entries(done, ledger, RESOLVED, dt.date(2026, 11, 20))
    assert [e.entry_id for e in entries] == ["reverse-trade-PRND-OX-1"]


def test_only_an_upheld_dispute_reverses() -> None:
    for dispute in (opened(), reject(opened(), Actor.operator("li"), "no", AT + 1)):
        with pytest.raises(RuleViolation):
            reversal_entries(dispute, trade_ledger(FEES), RESOLVED, dt.date(2026, 11, 20))


def test_an_entry_is_not_reversed_twice() -> None:
    ledger = trade_ledger(FEES)
    ledger.post(ledger.reverse("trade-PRND-OX-1", "manual-fix", RESOLVED, "correction"))
    done = uphold(opened(), Actor.operator("li"), "assay confirms", AT + 1)
    with pytest.raises(AlreadyReversed):
        reversal_entries(done, ledger, RESOLVED, dt.date(2026, 11, 20))


def test_a_bill_dispute_reverses_every_entry_about_the_bill() -> None:
    cash = AccountId(BUYER, AccountKind.BILLS_PAYABLE, "CNY")
    held = AccountId(SELLER, AccountKind.BILLS_RECEIVABLE, "CNY")
    drawn = JournalEntry(
        "bill-B-1",
        (Posting(held, 500), Posting(cash, -500)),
        "bill",
        "B-1",
        RESOLVED.date(),
        RESOLVED,
    )
    ledger = Ledger.rebuild([drawn])
    subject = Subject(SubjectType.BILL, "B-1", frozenset({BUYER, SELLER}))
    dispute = open_dispute("D-1", subject, Actor.member(BUYER), "forged", AT)
    done = uphold(dispute, Actor.operator("li"), "forged indeed", AT + 1)
    entries = reversal_entries(done, ledger, RESOLVED, RESOLVED.date())
    assert [e.entry_id for e in entries] == ["reverse-bill-B-1"]


def test_an_upheld_dispute_cancels_an_outstanding_bill_only() -> None:
    bill = issue(
        "B-1",
        BillKind.COMMERCIAL_ACCEPTANCE,
        BUYER,
        SELLER,
        BUYER,
        "Ganzhou",
        Money(100_000_00, "CNY"),
        dt.date(2026, 11, 1),
        dt.date(2027, 2, 1),
    )
    done = uphold(
        open_dispute("D-1", Subject.bill(bill), Actor.member(SELLER), "x", AT),
        Actor.operator("li"),
        "upheld",
        AT + 1,
    )
    assert cancel_disputed_bill(bill, done, dt.date(2026, 11, 2)).state is BillState.CANCELLED
    # Accepted and endorsed: still outstanding, so cancelled, the chain kept as it was.
    accepted = accept(bill, BUYER, dt.date(2026, 11, 2))
    endorsed = endorse(accepted, SELLER, "xinyu-pvc", dt.date(2026, 11, 3))
    cancelled = cancel_disputed_bill(endorsed, done, dt.date(2026, 11, 4))
    assert cancelled.state is BillState.CANCELLED
    assert cancelled.endorsements == endorsed.endorsements
    assert cancelled.closed_on == dt.date(2026, 11, 4)
    # Paid at maturity: history, not cancellable.
    paid = pay_at_maturity(accepted, dt.date(2027, 2, 1))
    with pytest.raises(RuleViolation) as error:
        cancel_disputed_bill(paid, done, dt.date(2027, 2, 2))
    assert code(error) == "bill_not_cancellable"
