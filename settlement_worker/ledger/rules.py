"""Double-entry ledger: accounts, balanced journal entries, and an in-memory ledger.

Pure: no I/O and no clock. Timestamps and dates are inputs chosen by the caller, so the
same journal always produces the same ledger (which is what makes :meth:`Ledger.rebuild`
a meaningful check).

Conventions (see ``docs/internals/settlement/ledger.md``):

* **Sign.** A posting's ``amount`` is signed integer minor units of the account's currency:
  a **debit is positive, a credit is negative**. Every journal entry sums to zero per
  currency, so the whole ledger sums to zero per currency after every post.
* **Immutability.** Entries are frozen and there is no edit or delete. A mistake is
  corrected by a new entry whose ``corrects`` names the entry it corrects; the usual one
  is the full reversal built by :meth:`Ledger.reverse`.
* **Idempotency** (TigerBeetle-style): the caller picks ``entry_id``. Posting an entry
  whose id is already in the ledger with identical content is a no-op that returns
  ``False`` (a retried request); the same id with different content raises
  :class:`ConflictingEntry` (a bug or a replay of the wrong request), and nothing changes.
* **One posting per account per entry.** An entry that names one account twice is
  refused, not merged: merging would hide what the caller meant and would make "identical
  content" for idempotency depend on how postings were split.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from enum import StrEnum
from typing import Final

from rex.money import minor_units

__all__ = [
    "EXCHANGE",
    "AccountId",
    "AccountKind",
    "AlreadyReversed",
    "ConflictingEntry",
    "InvalidEntry",
    "JournalEntry",
    "Ledger",
    "LedgerError",
    "Posting",
    "UnknownEntry",
]

#: The owner name of the exchange's own accounts. No member may use it as its id.
EXCHANGE: Final = "exchange"

_OWNER_RE: Final = re.compile(r"[A-Za-z0-9_-]{1,32}")


class LedgerError(ValueError):
    """Base class for ledger errors."""


class InvalidEntry(LedgerError):
    """A journal entry or posting that breaks a construction rule (unbalanced, empty...)."""


class ConflictingEntry(LedgerError):
    """An entry id already posted with different content."""


class UnknownEntry(LedgerError):
    """An entry id that is not in the ledger."""


class AlreadyReversed(LedgerError):
    """A second full reversal of the same entry (it would undo the entry twice)."""


class AccountKind(StrEnum):
    """What an account holds. The first group belongs to members, the second to the exchange.

    Member accounts (one per member and currency):

    * ``CASH``: the member's money held for settlement (debit balance = money it has).
    * ``RECEIVABLES``: amounts other members owe it for trades (debit balance).
    * ``PAYABLES``: amounts it owes other members for trades (credit balance).
    * ``BILLS_RECEIVABLE``: face value of acceptance bills it holds (debit balance).
    * ``BILLS_PAYABLE``: face value of bills it has drawn and must honour (credit balance).
    * ``FEES``: exchange fees it has been charged (debit balance: an expense).
    * ``DISCOUNT_INTEREST``: interest it paid a bank to discount a bill (debit balance: an
      expense). Needed because discount proceeds are face minus interest, and the
      difference has to land somewhere for the entry to balance.

    Exchange accounts (owner :data:`EXCHANGE`, one per currency):

    * ``CLEARING``: the exchange's clearing account, the counterparty of every
      member-to-member obligation it stands between.
    * ``FEE_INCOME``: fees earned (credit balance).
    * ``BANK_SETTLEMENT``: money in transit through settlement banks, i.e. the outside
      world's side of cash paid in, paid out, or advanced by a bank against a discounted
      bill. It is what keeps the ledger closed (summing to zero) when money enters or
      leaves.
    """

    CASH = "cash"
    RECEIVABLES = "receivables"
    PAYABLES = "payables"
    BILLS_RECEIVABLE = "bills_receivable"
    BILLS_PAYABLE = "bills_payable"
    FEES = "fees"
    DISCOUNT_INTEREST = "discount_interest"
    CLEARING = "clearing"
    FEE_INCOME = "fee_income"
    BANK_SETTLEMENT = "bank_settlement"

    @property
    def is_exchange_kind(self) -> bool:
        """True for the kinds only the exchange may own."""
        return self in _EXCHANGE_KINDS


_EXCHANGE_KINDS: Final = frozenset(
    {AccountKind.CLEARING, AccountKind.FEE_INCOME, AccountKind.BANK_SETTLEMENT}
)


@dataclass(frozen=True, slots=True, order=True)
class AccountId:
    """An account: who owns it, what it holds, in which currency.

    ``owner`` is a member id or :data:`EXCHANGE`. Member kinds may only be owned by members
    and exchange kinds only by the exchange, so a typo cannot open a member "fee income"
    account. Ordered (owner, kind, currency) so listings are deterministic.
    """

    owner: str
    kind: AccountKind
    currency: str

    def __post_init__(self) -> None:
        if not isinstance(self.owner, str) or _OWNER_RE.fullmatch(self.owner) is None:
            raise InvalidEntry(
                f"account owner must be 1-32 letters, digits, '_' or '-', got {self.owner!r}"
            )
        if not isinstance(self.kind, AccountKind):
            raise InvalidEntry(f"account kind must be an AccountKind, got {self.kind!r}")
        if self.kind.is_exchange_kind and self.owner != EXCHANGE:
            raise InvalidEntry(f"only the exchange may own a {self.kind} account")
        if not self.kind.is_exchange_kind and self.owner == EXCHANGE:
            raise InvalidEntry(f"the exchange has no {self.kind} account (a member kind)")
        minor_units(self.currency)

    def __str__(self) -> str:
        return f"{self.owner}:{self.kind}:{self.currency}"


@dataclass(frozen=True, slots=True)
class Posting:
    """One line of a journal entry: ``amount`` minor units, **debit positive, credit negative**."""

    account: AccountId
    amount: int

    def __post_init__(self) -> None:
        if not isinstance(self.account, AccountId):
            raise InvalidEntry(f"posting account must be an AccountId, got {self.account!r}")
        if not isinstance(self.amount, int) or isinstance(self.amount, bool):
            raise InvalidEntry(f"posting amount must be an int, got {self.amount!r}")
        if self.amount == 0:
            # A zero line carries no information and would let two "identical" entries
            # differ only by noise.
            raise InvalidEntry(f"zero-amount posting to {self.account}")

    @classmethod
    def debit(cls, account: AccountId, amount: int) -> Posting:
        """Debit ``amount`` (> 0) minor units to ``account``."""
        if amount <= 0:
            raise InvalidEntry(f"debit amount must be positive, got {amount}")
        return cls(account, amount)

    @classmethod
    def credit(cls, account: AccountId, amount: int) -> Posting:
        """Credit ``amount`` (> 0) minor units to ``account`` (stored as ``-amount``)."""
        if amount <= 0:
            raise InvalidEntry(f"credit amount must be positive, got {amount}")
        return cls(account, -amount)

    def __neg__(self) -> Posting:
        return Posting(self.account, -self.amount)


@dataclass(frozen=True, slots=True)
class JournalEntry:
    """A balanced, immutable set of postings, validated on construction.

    * ``entry_id``: chosen by the caller; the idempotency key.
    * ``postings``: at least two, none zero, no account twice, summing to zero **per
      currency** (an FX entry with CNY and USD lines is fine if each currency nets to zero).
    * ``reason``: what happened, e.g. ``"trade"``, ``"fee"``, ``"bill_discount"``.
    * ``reference``: what it is about, e.g. a trade id or a bill id.
    * ``effective``: the business date the entry belongs to.
    * ``created_at``: when it was made; a timezone-aware UTC datetime, supplied by the
      caller (this module never reads the clock).
    * ``corrects``: the id of the entry this one corrects, if any.
    """

    entry_id: str
    postings: tuple[Posting, ...]
    reason: str
    reference: str
    effective: date
    created_at: datetime
    corrects: str | None = None

    def __post_init__(self) -> None:
        for name in ("entry_id", "reason", "reference"):
            value = getattr(self, name)
            if not isinstance(value, str) or not value.strip():
                raise InvalidEntry(f"{name} must be a non-empty string, got {value!r}")
        postings = tuple(self.postings)
        object.__setattr__(self, "postings", postings)
        if len(postings) < 2:
            raise InvalidEntry(f"entry {self.entry_id!r}: needs at least two postings")
        seen: set[AccountId] = set()
        net: dict[str, int] = {}
        for posting in postings:
            if not isinstance(posting, Posting):
                raise InvalidEntry(f"entry {self.entry_id!r}: not a Posting: {posting!r}")
            if posting.account in seen:
                raise InvalidEntry(
                    f"entry {self.entry_id!r}: account {posting.account} appears twice"
                )
            seen.add(posting.account)
            currency = posting.account.currency
            net[currency] = net.get(currency, 0) + posting.amount
        unbalanced = {c: n for c, n in net.items() if n}
        if unbalanced:
            detail = ", ".join(f"{c} {n:+d}" for c, n in sorted(unbalanced.items()))
            raise InvalidEntry(
                f"entry {self.entry_id!r}: debits and credits differ per currency ({detail})"
            )
        if not isinstance(self.effective, date) or isinstance(self.effective, datetime):
            raise InvalidEntry(f"effective must be a date, got {self.effective!r}")
        created = self.created_at
        if not isinstance(created, datetime) or created.utcoffset() is None:
            raise InvalidEntry(f"created_at must be a timezone-aware datetime, got {created!r}")
        if created.utcoffset():
            raise InvalidEntry(f"created_at must be in UTC, got {created.isoformat()}")
        if self.corrects is not None and (
            not isinstance(self.corrects, str) or self.corrects == self.entry_id
        ):
            raise InvalidEntry(f"entry {self.entry_id!r}: corrects must name another entry")

    def currencies(self) -> frozenset[str]:
        """The currencies this entry moves."""
        return frozenset(p.account.currency for p in self.postings)

    def is_reversal_of(self, other: JournalEntry) -> bool:
        """True if this entry corrects ``other`` by exactly negating all its postings."""
        return self.corrects == other.entry_id and _as_map(self.postings) == {
            p.account: -p.amount for p in other.postings
        }


def _as_map(postings: Iterable[Posting]) -> dict[AccountId, int]:
    return {p.account: p.amount for p in postings}


class Ledger:
    """An in-memory ledger: the journal plus balances derived from it.

    The only way to change it is :meth:`post`. Balances are a cache of the journal; they can
    always be rebuilt with :meth:`rebuild`.
    """

    __slots__ = ("_balances", "_by_id", "_entries", "_reversed_by")

    def __init__(self) -> None:
        self._entries: list[JournalEntry] = []
        self._by_id: dict[str, JournalEntry] = {}
        self._balances: dict[AccountId, int] = {}
        # original entry id -> id of the entry that fully reverses it
        self._reversed_by: dict[str, str] = {}

    @classmethod
    def rebuild(cls, entries: Iterable[JournalEntry]) -> Ledger:
        """A fresh ledger from a journal, posting each entry in order.

        Identical duplicates are skipped (as a retried post would be); conflicts raise.
        """
        ledger = cls()
        for entry in entries:
            ledger.post(entry)
        return ledger

    def post(self, entry: JournalEntry) -> bool:
        """Append ``entry``; return ``True`` if posted, ``False`` if it was already posted.

        Raises :class:`ConflictingEntry` if the id is taken by different content,
        :class:`UnknownEntry` if ``corrects`` names an entry not in the ledger, and
        :class:`AlreadyReversed` for a second full reversal of one entry. On any error the
        ledger is unchanged.
        """
        if not isinstance(entry, JournalEntry):
            raise TypeError(f"can only post a JournalEntry, got {type(entry).__name__}")
        existing = self._by_id.get(entry.entry_id)
        if existing is not None:
            if existing == entry:
                return False
            raise ConflictingEntry(
                f"entry {entry.entry_id!r} was already posted with different content"
            )
        reverses = False
        if entry.corrects is not None:
            target = self.entry(entry.corrects)
            reverses = entry.is_reversal_of(target)
            if reverses and target.entry_id in self._reversed_by:
                raise AlreadyReversed(
                    f"entry {target.entry_id!r} was already reversed by "
                    f"{self._reversed_by[target.entry_id]!r}"
                )
        # Validated: from here on nothing can fail, so the ledger never half-applies.
        self._entries.append(entry)
        self._by_id[entry.entry_id] = entry
        if reverses:
            assert entry.corrects is not None
            self._reversed_by[entry.corrects] = entry.entry_id
        for posting in entry.postings:
            self._balances[posting.account] = (
                self._balances.get(posting.account, 0) + posting.amount
            )
        return True

    def reverse(
        self,
        entry_id: str,
        new_entry_id: str,
        created_at: datetime,
        reason: str,
        effective: date | None = None,
    ) -> JournalEntry:
        """Build (do not post) the entry that exactly undoes ``entry_id``.

        The reversal has every posting negated, the original's reference, ``corrects`` set
        to ``entry_id``, and ``effective`` defaulting to the UTC date of ``created_at``
        (a correction belongs to the day it is made; the original keeps its own date).

        Raises :class:`UnknownEntry` if there is no such entry, and :class:`AlreadyReversed`
        if another entry already reversed it. If the existing reversal has ``new_entry_id``
        itself the entry is built anyway, so a retried reverse-and-post stays idempotent.
        """
        original = self.entry(entry_id)
        previous = self._reversed_by.get(entry_id)
        if previous is not None and previous != new_entry_id:
            raise AlreadyReversed(f"entry {entry_id!r} was already reversed by {previous!r}")
        if effective is None:
            if not isinstance(created_at, datetime) or created_at.utcoffset() is None:
                # A naive datetime would be read in the machine's local zone: refuse it.
                raise InvalidEntry(
                    f"created_at must be a timezone-aware datetime, got {created_at!r}"
                )
            effective = created_at.astimezone(UTC).date()
        return JournalEntry(
            entry_id=new_entry_id,
            postings=tuple(-p for p in original.postings),
            reason=reason,
            reference=original.reference,
            effective=effective,
            created_at=created_at,
            corrects=entry_id,
        )

    # ----------------------------------------------------------------------- queries

    def entry(self, entry_id: str) -> JournalEntry:
        """The entry with this id; :class:`UnknownEntry` if none."""
        try:
            return self._by_id[entry_id]
        except KeyError:
            raise UnknownEntry(f"no entry {entry_id!r} in the ledger") from None

    def __contains__(self, entry_id: object) -> bool:
        return entry_id in self._by_id

    def __len__(self) -> int:
        return len(self._entries)

    def entries(self) -> tuple[JournalEntry, ...]:
        """Every entry, in the order posted."""
        return tuple(self._entries)

    def reversal_of(self, entry_id: str) -> JournalEntry | None:
        """The full reversal of ``entry_id``, if it has been posted."""
        reversal = self._reversed_by.get(entry_id)
        return None if reversal is None else self._by_id[reversal]

    def balance(self, account: AccountId) -> int:
        """Debits minus credits on ``account``, in minor units (0 if never used)."""
        return self._balances.get(account, 0)

    def balances(self) -> Mapping[AccountId, int]:
        """Every account ever posted to (zero balances included), sorted by account."""
        return {account: self._balances[account] for account in sorted(self._balances)}

    def total_by_currency(self) -> Mapping[str, int]:
        """Sum of all balances per currency. Always all zero: the ledger's invariant."""
        totals: dict[str, int] = {}
        for account, amount in self._balances.items():
            totals[account.currency] = totals.get(account.currency, 0) + amount
        return dict(sorted(totals.items()))
