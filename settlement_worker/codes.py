"""Every reason settlement refuses something: one table, and one error that carries a code.

:class:`SettlementCode` lists the codes in order of precedence, as a request meets them:
first what is wrong with the request itself (the ``reason`` of a settlement answer,
docs/members/protocol.md), then what its subject -- a member, a bill, a dispute, an offline trade --
is not, then the rules of each domain in the order its steps check them. A step that finds
several problems reports the one its checks meet first, which is the earlier in this table.
:class:`RuleViolation` is the one error a rule raises; an offline trade's price and
quantity are checked by the exchange's own trading rules, so its code may also be a trading
:class:`rex.vocabulary.Reason`. Codes are stable strings: they travel in answers
(``detail.rule``), audit rows and the commands' output.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Final

from rex.settlement_protocol import MAX_MESSAGE_ID_BYTES
from rex.vocabulary import Reason

__all__ = ["RuleViolation", "SettlementCode"]


class SettlementCode(StrEnum):
    # -- the request itself: a settlement answer's `reason`
    MALFORMED = "malformed"
    MESSAGE_ID_TOO_LONG = "message_id_too_long"
    UNKNOWN_REQUEST = "unknown_request"
    UNKNOWN_MEMBER = "unknown_member"
    NOT_PERMITTED = "not_permitted"
    REASON_REQUIRED = "reason_required"
    INVALID_LIMITS = "invalid_limits"
    INVALID_PAYMENT_METHOD = "invalid_payment_method"
    NOTHING_TO_CHANGE = "nothing_to_change"
    VERSION_MISMATCH = "version_mismatch"
    BILL_RULE = "bill_rule"  # a rule of bills refused it: the rule in the answer's detail
    # -- what the subject is not
    UNKNOWN_BILL = "unknown_bill"
    UNKNOWN_BANK = "unknown_bank"
    UNKNOWN_PRODUCT = "unknown_product"
    UNKNOWN_DISPUTE = "unknown_dispute"
    UNKNOWN_SUBJECT = "unknown_subject"
    UNKNOWN_OFFLINE_TRADE = "unknown_offline_trade"
    NOT_TODAY = "not_today"
    DATE_OUT_OF_RANGE = "date_out_of_range"
    # -- bills: the bill's own data
    INVALID_BILL = "invalid_bill"
    INVALID_PARTY = "invalid_party"
    WRONG_ACCEPTOR = "wrong_acceptor"
    NON_POSITIVE_FACE = "non_positive_face"
    INVALID_DATE = "invalid_date"
    INVALID_STATE = "invalid_state"
    TENOR_NOT_POSITIVE = "tenor_not_positive"
    TENOR_TOO_LONG = "tenor_too_long"
    CHAIN_BROKEN = "chain_broken"
    # -- bills: who may take a step
    NOT_A_PARTY = "not_a_party"
    NOT_HOLDER = "not_holder"
    NOT_ACCEPTOR = "not_acceptor"
    NOT_DRAWER = "not_drawer"
    NOT_RECOURSE_PARTY = "not_recourse_party"
    SELF_ENDORSEMENT = "self_endorsement"
    RECEIPT_LIMITS = "receipt_limits"
    # -- bills: what the bill's state allows
    BILL_FROZEN = "bill_frozen"
    NOT_ACCEPTED = "not_accepted"
    ALREADY_ACCEPTED = "already_accepted"
    CANCELLED = "cancelled"
    ALREADY_PAID = "already_paid"
    DISHONOURED = "dishonoured"
    DISCOUNTED = "discounted"
    ALREADY_DISCOUNTED = "already_discounted"
    NOT_TRANSFERABLE = "not_transferable"
    PARTIAL_ENDORSEMENT = "partial_endorsement"
    OVERDUE = "overdue"
    NOT_DUE = "not_due"
    BACKDATED = "backdated"
    # -- discounting: the arithmetic
    DISCOUNT_REFUSED = "discount_refused"
    AFTER_MATURITY = "after_maturity"
    INVALID_RATE = "invalid_rate"
    INVALID_DAYS = "invalid_days"
    INVALID_FACE = "invalid_face"
    PROCEEDS_NOT_POSITIVE = "proceeds_not_positive"
    # -- disputes
    INVALID_DISPUTE = "invalid_dispute"
    NOTE_REQUIRED = "note_required"
    NOT_OPERATOR = "not_operator"
    ALREADY_DISPUTED = "already_disputed"
    ALREADY_UPHELD = "already_upheld"
    ALREADY_RESOLVED = "already_resolved"
    BILL_NOT_CANCELLABLE = "bill_not_cancellable"
    # -- offline trades
    OFFLINE_RULE_VIOLATION = "offline_rule_violation"
    SELF_TRADE = "self_trade"
    INVALID_REF = "invalid_ref"
    DUPLICATE_REF = "duplicate_ref"
    NOT_PENDING = "not_pending"
    NOT_COUNTERPARTY = "not_counterparty"
    NOT_REPORTER = "not_reporter"
    TERMS_MISMATCH = "terms_mismatch"

    @property
    def text(self) -> str:
        """What the code means, for a person (the request-level codes have one)."""
        return _TEXT.get(self, self.value.replace("_", " "))


_TEXT: Final[dict[SettlementCode, str]] = {
    SettlementCode.MALFORMED: (
        "The request could not be decoded: not a msgpack map, a missing, unknown or mistyped"
        " field, no message_id, or a routing key other than <sender>.<kind>."
    ),
    SettlementCode.MESSAGE_ID_TOO_LONG: (
        f"The request's message_id is over {MAX_MESSAGE_ID_BYTES} bytes (UTF-8): the exchange"
        " builds its answer's ids from it. Send the request again with a shorter message_id"
        " (a UUID is 36)."
    ),
    SettlementCode.UNKNOWN_REQUEST: "No settlement request of that kind exists.",
    SettlementCode.UNKNOWN_MEMBER: (
        "The sender is neither an enabled member nor an operator, or the member named is not"
        " a member of the exchange."
    ),
    SettlementCode.NOT_PERMITTED: (
        "A member may only act for itself; this request is not open to the sender."
    ),
    SettlementCode.REASON_REQUIRED: (
        "A change needs a reason (1-500 characters) for the audit log."
    ),
    SettlementCode.INVALID_LIMITS: "A receipt limit is invalid; `field` names it.",
    SettlementCode.INVALID_PAYMENT_METHOD: "The payment method is invalid; `field` names it.",
    SettlementCode.NOTHING_TO_CHANGE: "The request would leave the settings as they are.",
    SettlementCode.VERSION_MISMATCH: (
        "The settings changed since the version given in if_version; read them again."
    ),
    SettlementCode.BILL_RULE: (
        "A rule of bills refused the request; detail.rule names it (docs/members/settlement.md)."
    ),
}


class RuleViolation(ValueError):
    """A step or a value that breaks a rule of settlement; ``code`` names the rule."""

    def __init__(self, code: SettlementCode | Reason, message: str) -> None:
        super().__init__(message)
        self.code: SettlementCode | Reason = code

    def __reduce__(self) -> tuple[type[RuleViolation], tuple[SettlementCode | Reason, str]]:
        return RuleViolation, (self.code, str(self))
