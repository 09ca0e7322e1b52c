"""The settlement request desk: members' and operator accounts' requests in, one answer each out.

Requests arrive on quorum queues (exchange ``rex.settlement.requests``, routing key
``<sender>.<kind>``; docs/members/protocol.md): each member's on its own,
``rex.settlement.member-requests.<member>``, the operator accounts' on the shared
``rex.settlement.member-requests``. For each, :meth:`RequestDesk.handle`:

1. **Who.** The sender is the broker-verified ``user_id`` (RabbitMQ refuses any other), as
   for trading requests: never a field of the body. It is an operator account's login
   (operators.toml, :mod:`rex.operators`: ``<REX_DEPLOYMENT>.<name>``), acting with its
   roles, or a member's login (:mod:`rex.identity`: ``<REX_DEPLOYMENT>.<id>``), acting for
   that member only; from here on the sender is that account's name or member's id. A
   request without ``user_id``, or from a login of no deployment's shape, cannot be
   answered and is dead-lettered; one from a login of this deployment that is neither
   (``guest``, say) is refused as ``unknown_member``.
2. **What.** The request is checked (a ``message_id`` of at most
   ``MAX_MESSAGE_ID_BYTES``, a msgpack map, the kind known, the routing key
   ``<sender>.<kind>``, ``member`` and ``reason`` well formed) before any handler runs.
   Every AMQP field of the answer is built from bounded parts (:func:`answer_id`), so an
   answer always fits AMQP's 255-byte short strings, a refusal of an over-long id too.
3. **Once.** In one transaction: the request's key (sender, message id) is claimed in
   ``settlement_requests``, the kind's handler applies it, and the answers are written to
   the outbox. A redelivered request finds its key claimed and is acked unapplied. A
   handler refuses by raising :class:`RequestRefused`: that transaction rolls back, so
   nothing the handler wrote stays, and a second one records the rejection and its answer.
4. **Answer.** The outbox publishes the answer (kind ``settlement_answer``) to the sender
   and, when an operator acted for a member, to that member too: the answer is committed
   with what it reports, so it is never lost. The service acks the request after the
   commit.

Kinds are registered in a mapping of :class:`RequestKind` given to the desk, so a new kind
is a handler function and one entry: ``handle(tx, request)`` returns the answer's
``detail`` or raises :class:`RequestRefused`. :func:`plain` adapts a function of
``(tx, member, params, now)``.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from types import MappingProxyType
from typing import Any, Final

from rex import metrics, topology
from rex.bus import Delivery, Envelope
from rex.config import Member
from rex.identity import member_of
from rex.operators import Action, OperatorAccount, role_needed
from rex.protocol import unpack
from rex.settlement_protocol import (
    ACCEPTED,
    ANSWER_ROUTING_WORD,
    MAX_MESSAGE_ID_BYTES,
    REJECTED,
    SettlementAnswer,
)
from settlement_worker.codes import SettlementCode
from settlement_worker.outbox import add_events
from settlement_worker.store import Store, Transaction

__all__ = [
    "MAX_REASON",
    "Handler",
    "Outcome",
    "RequestConflict",
    "RequestDesk",
    "RequestKind",
    "RequestRefused",
    "SettlementRequest",
    "answer_id",
    "plain",
]

log = logging.getLogger("rex.settlement.requests")

#: The longest ``reason`` a request may give (it goes to the audit log).
MAX_REASON: Final = 500
_ID_RE: Final = re.compile(r"[A-Za-z0-9_-]{1,32}")
_KIND_RE: Final = re.compile(r"[a-z][a-z0-9_]{0,63}")
_CONFLICT_RETRIES: Final = 5


@dataclass(frozen=True, slots=True)
class SettlementRequest:
    """A request that passed the desk's checks, as its handler sees it."""

    kind: str
    request_id: str  # the AMQP message_id
    sender: str  # from the broker-verified user_id: the operator account's name, or the member id
    member: str  # on whose behalf: the sender, or the member an operator named
    actor: str  # for audit rows: "member:<id>" or "operator:<user>"
    reason: str | None  # why, for the audit log (required when the kind changes something)
    params: Mapping[str, Any]  # the body without "member" and "reason"
    at: int  # ns, when the desk took it


class RequestRefused(Exception):
    """A handler refuses the request; nothing it wrote is kept. ``detail`` goes into the
    rejection's answer (e.g. the bill rule that refused it)."""

    def __init__(
        self,
        reason: SettlementCode,
        text: str | None = None,
        field: str | None = None,
        detail: Mapping[str, Any] | None = None,
    ) -> None:
        self.reason = reason
        self.text = text or reason.text
        self.field = field
        self.detail = dict(detail or {})
        super().__init__(f"{reason}: {self.text}")


class RequestConflict(RuntimeError):
    """The store changed under the request (another process wrote the same rows): the desk
    runs it again on fresh reads."""


Handler = Callable[[Transaction, SettlementRequest], Mapping[str, Any]]


@dataclass(frozen=True, slots=True)
class RequestKind:
    """One kind of settlement request.

    ``changes``: it writes something, so it needs a ``reason``. ``members_may_act``: a member
    may send it for itself; ``operators_may_act``: an operator may send it for any member.
    """

    name: str
    handle: Handler
    changes: bool = True
    members_may_act: bool = True
    operators_may_act: bool = True
    # An operator action of rex.operators' role table: only an operator account with its
    # role may send it, for no member (``member`` is not given). None: a member's request,
    # which an operator may send for a member (rex.operators.Action.ACT_FOR_MEMBER).
    action: Action | None = None


def plain(
    function: Callable[[Transaction, str, Mapping[str, Any], int], Mapping[str, Any]],
) -> Handler:
    """A handler from a function of ``(tx, member, params, now)``."""

    def handle(tx: Transaction, request: SettlementRequest) -> Mapping[str, Any]:
        return function(tx, request.member, request.params, request.at)

    return handle


class Outcome(StrEnum):
    ANSWERED = "answered"  # committed with its answer: ack
    DUPLICATE = "duplicate"  # answered before: ack
    DEAD_LETTER = "dead_letter"  # no user_id or not our login, nobody to answer: rex.dead


@dataclass(frozen=True, slots=True)
class _Refusal:
    reason: SettlementCode
    text: str
    field: str | None = None
    detail: Mapping[str, Any] = dataclasses.field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class _Received:
    """What the desk learnt of a delivery before judging it."""

    sender: str  # the operator account's name, or the member id (any other: unknown)
    request_id: str
    kind: str  # as sent, cut to a label-safe form
    member: str  # whose settings the answer is about (the sender if unknown)
    at: int
    account: OperatorAccount | None = None  # the operator account (operators.toml), if one


class RequestDesk:
    def __init__(
        self,
        store: Store,
        kinds: Mapping[str, RequestKind],
        members: Mapping[str, Member],
        accounts: Mapping[str, OperatorAccount] | None = None,
        clock: Callable[[], int] = time.time_ns,
        deployment: str = "",
    ) -> None:
        self.store = store
        # The operators: operator accounts (operators.toml), people with roles, logging in
        # as <deployment>.<name>. No other login acts for a member.
        self.accounts = dict(accounts or {})
        self.deployment = deployment  # members' logins are <deployment>.<id> (rex.identity)
        self.kinds = dict(kinds)
        self.members = dict(members)
        self.clock = clock
        # Every series whose labels are known in advance starts at 0 (docs/operators/metrics.md).
        requests = metrics.SETTLEMENT_REQUESTS
        metrics.start_at_zero(requests, list(self.kinds), [ACCEPTED, REJECTED, "duplicate"])
        metrics.start_at_zero(requests, ["unknown"], [REJECTED, "duplicate", "failed"])
        metrics.start_at_zero(requests, ["none"], ["dead_lettered"])
        metrics.start_at_zero(metrics.SETTLEMENT_REQUEST_REJECTS, list(SettlementCode))

    # ----------------------------------------------------------------- handling

    def handle(self, delivery: Delivery) -> Outcome:
        """Judge, apply and answer one delivery; commits before returning. Raises only for
        trouble outside the request (the store), which the caller retries."""
        login = delivery.user_id
        sender = member_of(login or "", self.deployment)
        account = None if sender is None else self.accounts.get(sender)
        if sender is None:
            log.warning(
                "settlement request %s: dead-lettered",
                f"from {login!r}, not a login of this deployment" if login else "without user_id",
            )
            metrics.SETTLEMENT_REQUESTS.labels("none", "dead_lettered").inc()
            return Outcome.DEAD_LETTER
        received = _Received(
            sender,
            delivery.message_id or _body_id(delivery.body),
            _label(delivery.type),
            sender,
            self.clock(),
            account,
        )
        judged = self._judge(delivery, received)
        if isinstance(judged, SettlementRequest):
            received = dataclasses.replace(received, kind=judged.kind, member=judged.member)
            try:
                return self._apply(judged, received)
            except RequestRefused as refused:
                judged = _Refusal(refused.reason, refused.text, refused.field, refused.detail)
        return self._reject(received, judged)

    def _apply(self, request: SettlementRequest, received: _Received) -> Outcome:
        kind = self.kinds[request.kind]
        for _ in range(_CONFLICT_RETRIES):
            try:
                with self.store.transaction() as tx:
                    if not _claim(tx, received, ACCEPTED, None):
                        metrics.SETTLEMENT_REQUESTS.labels(request.kind, "duplicate").inc()
                        return Outcome.DUPLICATE
                    detail = dict(kind.handle(tx, request))
                    _answer(tx, received, None, detail)
            except RequestConflict:
                continue  # read again: another process changed the same rows
            metrics.SETTLEMENT_REQUESTS.labels(request.kind, ACCEPTED).inc()
            log.info(
                "settlement request accepted kind=%s sender=%s member=%s request_id=%s",
                request.kind,
                request.sender,
                request.member,
                request.request_id,
            )
            return Outcome.ANSWERED
        raise RequestConflict(f"{request.request_id}: gave up after {_CONFLICT_RETRIES} conflicts")

    def _reject(self, received: _Received, refusal: _Refusal) -> Outcome:
        kind = received.kind if received.kind in self.kinds else "unknown"
        with self.store.transaction() as tx:
            if not _claim(tx, received, REJECTED, refusal.reason.value):
                metrics.SETTLEMENT_REQUESTS.labels(kind, "duplicate").inc()
                return Outcome.DUPLICATE
            _answer(tx, received, refusal, dict(refusal.detail))
        metrics.SETTLEMENT_REQUESTS.labels(kind, REJECTED).inc()
        metrics.SETTLEMENT_REQUEST_REJECTS.labels(refusal.reason.value).inc()
        log.info(
            "settlement request rejected kind=%s sender=%s reason=%s request_id=%s: %s",
            received.kind,
            received.sender,
            refusal.reason,
            received.request_id,
            refusal.text,
        )
        return Outcome.ANSWERED

    # ----------------------------------------------------------------- judging

    def _judge(self, delivery: Delivery, received: _Received) -> SettlementRequest | _Refusal:
        """The request, authenticated and authorised, or why not. Reads no store."""
        sender, kind_name = received.sender, delivery.type or ""
        if not delivery.message_id:
            return _Refusal(SettlementCode.MALFORMED, "message_id is required")
        size_bytes = len(delivery.message_id.encode("utf-8", "replace"))
        if size_bytes > MAX_MESSAGE_ID_BYTES:
            return _Refusal(
                SettlementCode.MESSAGE_ID_TOO_LONG,
                f"message_id is {size_bytes} bytes; at most {MAX_MESSAGE_ID_BYTES} are taken."
                " Send the request again with a shorter message_id (a UUID is 36).",
            )
        try:
            body = unpack(delivery.body)
        except Exception:  # msgpack raises several types for bytes that are not msgpack
            return _Refusal(SettlementCode.MALFORMED, "the body is not msgpack")
        if not isinstance(body, dict):
            return _Refusal(SettlementCode.MALFORMED, "the body must be a map")
        if delivery.routing_key != topology.settlement_request_key(sender, kind_name):
            return _Refusal(SettlementCode.MALFORMED, "the routing key must be <sender>.<kind>")
        kind = self.kinds.get(kind_name)
        if kind is None:
            known = ", ".join(sorted(self.kinds))
            return _Refusal(
                SettlementCode.UNKNOWN_REQUEST, f"no request {kind_name!r} (known: {known})"
            )
        params = dict(body)
        target = params.pop("member", None)
        reason = params.pop("reason", None)
        if received.account is not None:  # an operator: an operator account, nothing else
            if not kind.operators_may_act:
                return _Refusal(SettlementCode.NOT_PERMITTED, f"{kind.name} is for members only")
            refused = _role_refusal(kind, sender, received.account)
            if refused is not None:
                return refused
            if kind.action is not None:
                if target is not None:
                    return _Refusal(SettlementCode.MALFORMED, f"{kind.name} names no member")
                target = sender  # the answer goes to the operator only
            elif not isinstance(target, str):
                return _Refusal(SettlementCode.MALFORMED, "an operator must name the member")
            elif target not in self.members:
                return _Refusal(SettlementCode.UNKNOWN_MEMBER, f"no member {target!r}")
            # From the broker-verified login, never from the body: the store's audit rows
            # name the person who acted.
            actor = f"operator:{sender}"
        else:
            config = self.members.get(sender)
            if config is None or not config.enabled:
                return _Refusal(SettlementCode.UNKNOWN_MEMBER, SettlementCode.UNKNOWN_MEMBER.text)
            if not kind.members_may_act:
                return _Refusal(SettlementCode.NOT_PERMITTED, f"{kind.name} is for operators only")
            if target is None:
                target = sender
            elif not isinstance(target, str):
                return _Refusal(SettlementCode.MALFORMED, "member must be a string")
            elif target != sender:
                return _Refusal(
                    SettlementCode.NOT_PERMITTED, f"{sender} may not act for member {target!r}"
                )
            actor = f"member:{sender}"
        if reason is not None and not isinstance(reason, str):
            return _Refusal(SettlementCode.MALFORMED, "reason must be a string")
        if kind.changes and (not reason or not reason.strip() or len(reason) > MAX_REASON):
            return _Refusal(SettlementCode.REASON_REQUIRED, SettlementCode.REASON_REQUIRED.text)
        return SettlementRequest(
            kind.name,
            delivery.message_id,
            sender,
            target,
            actor,
            reason,
            MappingProxyType(params),
            received.at,
        )


def _role_refusal(kind: RequestKind, sender: str, account: OperatorAccount) -> _Refusal | None:
    """Why an operator may not send ``kind``, or None: an operator account needs the role
    rex.operators' table gives the kind's action (any other kind: ACT_FOR_MEMBER's)."""
    action = kind.action or Action.ACT_FOR_MEMBER
    role = role_needed(action)
    if not account.enabled:
        return _Refusal(SettlementCode.NOT_PERMITTED, f"operator account {sender!r} is disabled")
    if not account.may(action):
        has = ", ".join(sorted(account.roles))
        return _Refusal(
            SettlementCode.NOT_PERMITTED,
            f"{kind.name} needs the role {role}; operator {sender!r} has {has}",
        )
    return None


@dataclass(frozen=True, slots=True)
class _Outgoing:
    """An answer as the outbox stores it (the shape of a SettlementEvent)."""

    answer: SettlementAnswer
    recipient: str

    @property
    def event_id(self) -> str:
        return self.answer.answer_id

    @property
    def timestamp(self) -> int:
        return self.answer.timestamp

    def envelope(self) -> Envelope:
        return Envelope(
            topology.SETTLEMENT,
            f"{self.recipient}.{ANSWER_ROUTING_WORD}",
            self.answer.encode(),
            SettlementAnswer.kind,
            self.answer.answer_id,
            self.answer.timestamp // 1_000_000_000,
            mandatory=False,
        )


def _claim(tx: Transaction, received: _Received, status: str, reason: str | None) -> bool:
    """Take the request's key; False if it was answered before (a redelivery). On
    PostgreSQL a concurrent claimer of the same key waits for this one's commit."""
    rows = tx.execute(
        "INSERT INTO settlement_requests (sender, message_id, kind, member, status, reason,"
        " received_at) VALUES (?, ?, ?, ?, ?, ?, ?)"
        " ON CONFLICT (sender, message_id) DO NOTHING RETURNING sender",
        [
            received.sender,
            received.request_id,
            received.kind,
            received.member,
            status,
            reason,
            received.at,
        ],
    )
    return bool(rows)


def _answer(
    tx: Transaction, received: _Received, refusal: _Refusal | None, detail: dict[str, Any]
) -> None:
    """The answer, in the outbox, to the sender and to the member an operator acted for.
    An unknown sender whose name is not a plain id gets none: its routing key could reach
    another member's queue."""
    sender, member = received.sender, received.member
    recipients = [r for r in dict.fromkeys((sender, member)) if _ID_RE.fullmatch(r)]
    answer = SettlementAnswer(
        answer_id="",
        request_id=received.request_id,
        request=received.kind,
        sender=sender,
        member=member,
        status=ACCEPTED if refusal is None else REJECTED,
        timestamp=received.at,
        reason=None if refusal is None else refusal.reason.value,
        text=None if refusal is None else refusal.text,
        field=None if refusal is None else refusal.field,
        detail=detail,
    )
    add_events(
        tx,
        [
            _Outgoing(
                dataclasses.replace(
                    answer, answer_id=answer_id(sender, received.request_id, recipient)
                ),
                recipient,
            )
            for recipient in recipients
        ],
    )


def answer_id(sender: str, request_id: str, recipient: str) -> str:
    """The answer's id (its AMQP message_id): ``answer/<sender>/<request_id>/<recipient>``,
    at most 7 + 32 + 1 + MAX_MESSAGE_ID_BYTES + 1 + 32 = 201 bytes, within AMQP's 255. A
    request id over the bound (its request is refused for it) is replaced by a digest of
    it, so the refusal can be sent; the answer's ``request_id`` still carries it whole."""
    if len(request_id.encode("utf-8", "replace")) > MAX_MESSAGE_ID_BYTES:
        request_id = "sha1-" + hashlib.sha1(request_id.encode("utf-8", "replace")).hexdigest()
    return f"answer/{sender}/{request_id}/{recipient}"


def _label(kind: str | None) -> str:
    """The request's kind as recorded and answered: as sent if it looks like a kind."""
    if kind and _KIND_RE.fullmatch(kind):
        return kind
    return "invalid"


def _body_id(body: bytes) -> str:
    """An id for a request that came without message_id (so its answer is still stable)."""
    return "sha1-" + hashlib.sha1(body).hexdigest()[:20]
