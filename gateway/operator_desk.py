"""The operator desk: the one authenticated path of operators' market actions.

Operators publish to ``rex.operator.requests`` (rex/operator_requests.py has the wire
contract); the gateway serves the queue bound to it, ``rex.gateway.operator-desk``. The
broker vouches for the request's ``user_id``; the desk maps it to an account of
``operators.toml`` (rex/operators.py) and checks, in this order: an operator account of
this deployment, enabled, the routing key its own, a request it can read, the role the
action needs (rex.operators.ACTION_ROLES), a product of this exchange, and for set_band a
band the product may have (rex.operator_requests.band_refusal). Allowed, the action is
appended to the product's engine input log -- a STATUS entry for halt, resume and close, a
BAND entry for set_band, which the engine applies in log order -- and the answer goes to the
operator's answer stream.

Every request, allowed or refused, writes one audit line (INFO when done, WARNING when
refused) whose keys ``actor``, ``action``, ``product``, ``verdict`` (and ``band``,
``low..high``, for a set_band that could be read) come from the login the broker verified
and the checked request, never from a field the operator wrote; and counts
in ``rex_gateway_operator_actions_total{action, verdict}``. A request from a login that is
no account gets no answer (there is no stream of its to answer on) but is logged and
counted all the same.

Accounts are read at start-up: a change to operators.toml takes effect when the gateway
restarts, and a disabled account's broker user is deleted by ``rex provision`` at once.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Final

from rex import metrics, topology
from rex.bus import Bus, Delivery, Envelope, Subscription
from rex.config import Product, TradingStatus
from rex.identity import member_of
from rex.logs import with_fields
from rex.operator_requests import (
    ANSWER_TYPE,
    REFUSALS,
    REQUEST_TYPE,
    OperatorAnswer,
    OperatorRequest,
    Refusal,
    Verdict,
    band_refusal,
    decode_request,
    encode_answer,
    split_routing_key,
    usable_request_id,
)
from rex.operators import MARKET_ACTIONS, Action, OperatorAccount, role_needed
from rex.price_band import PriceBand
from rex.protocol import ENGINE_INPUT, EngineInput, InputKind, encode_inputs

__all__ = ["OperatorDesk"]

log = logging.getLogger("rex.gateway.operators")

NS_PER_S: Final = 1_000_000_000
_ACTIONS: Final = frozenset(a.value for a in MARKET_ACTIONS)
_SHOWN: Final = 64  # characters of an unchecked value in a log line

#: The trading status each market action sets.
STATUS_OF: Final[Mapping[Action, TradingStatus]] = {
    Action.HALT: TradingStatus.HALTED,
    Action.RESUME: TradingStatus.OPEN,
    Action.CLOSE: TradingStatus.CLOSED,
}


@dataclass(frozen=True, slots=True)
class _Judged:
    """A request as judged: who (from the verified login), what, and the verdict."""

    login: str | None
    account: OperatorAccount | None
    request_id: str
    action: str  # the action word as asked, bounded ("-" if unreadable)
    product: str  # as asked, bounded ("" if unreadable)
    request: OperatorRequest | None  # allowed
    refusal: Refusal | None = None
    text: str = ""
    band: PriceBand | None = None  # set_band's, as asked (read, not necessarily allowed)

    @property
    def actor(self) -> str:
        if self.account is not None:
            return f"operator:{self.account.name}"
        return f"login:{self.login[:_SHOWN]}" if self.login else "unknown"


class OperatorDesk:
    """Serves ``rex.gateway.operator-desk`` on the gateway's bus."""

    def __init__(
        self,
        bus: Bus,
        products: Mapping[str, Product],
        accounts: Mapping[str, OperatorAccount],
        deployment: str = "",
        *,
        clock_ns: Callable[[], int] = time.time_ns,
    ) -> None:
        self.bus = bus
        self.products = products
        self.accounts = accounts
        self.deployment = deployment
        self.clock_ns = clock_ns
        metrics.start_at_zero(
            metrics.GATEWAY_OPERATOR_ACTIONS,
            [*(a.value for a in Action if a in MARKET_ACTIONS), "unknown"],
            ["done", *(r.value for r in Refusal)],
        )

    def on_ready(self) -> None:
        """Start consuming; called on every (re)connection of the gateway's bus."""
        self.bus.consume(Subscription(topology.GATEWAY_OPERATOR_REQUESTS, self._on_request, 10))

    def _on_request(self, delivery: Delivery) -> None:
        try:
            judged = self._judge(delivery)
            if judged.request is None:
                self._audit(judged)
                self._answer(delivery, judged)
            else:
                self._apply(delivery, judged)
        except Exception:
            # A bug, not the operator's input (every field is checked before use): this
            # request is dead-lettered and the desk goes on; left to pika, the exception
            # would close the gateway's connection.
            log.exception("operator request handling failed; dead-lettered")
            delivery.reject(requeue=False)

    # ------------------------------------------------------------------ judging

    def _judge(self, delivery: Delivery) -> _Judged:
        login = delivery.user_id if isinstance(delivery.user_id, str) else None
        name = member_of(login, self.deployment) if login else None
        account = self.accounts.get(name) if name else None
        request_id = usable_request_id(delivery.message_id) or _body_id(delivery.body)
        parts = split_routing_key(delivery.routing_key)
        action_word = parts[1] if parts else "-"
        decoded = decode_request(action_word, delivery.body)
        # What the request asks for, checked, so that even a refusal's audit line names it.
        asked = decoded.product if isinstance(decoded, OperatorRequest) else ""
        band = decoded.band if isinstance(decoded, OperatorRequest) else None

        def refused(refusal: Refusal, text: str) -> _Judged:
            return _Judged(
                login, account, request_id, action_word, asked, None, refusal, text, band
            )

        if account is None:
            who = repr(login[:_SHOWN]) if login else "a sender with no user_id"
            return refused(Refusal.NOT_AN_OPERATOR, f"{who}: {REFUSALS[Refusal.NOT_AN_OPERATOR]}")
        if not account.enabled:
            return refused(Refusal.ACCOUNT_DISABLED, REFUSALS[Refusal.ACCOUNT_DISABLED])
        if parts is None or parts[0] != account.name:
            return refused(
                Refusal.BAD_REQUEST,
                f"the routing key must be {account.name}.<action>, got "
                f"{delivery.routing_key[:_SHOWN]!r}",
            )
        if delivery.type != REQUEST_TYPE:
            return refused(Refusal.BAD_REQUEST, f"the AMQP type must be {REQUEST_TYPE!r}")
        if usable_request_id(delivery.message_id) is None:
            return refused(Refusal.BAD_REQUEST, "message_id must be 1-128 printable ASCII")
        if not isinstance(decoded, OperatorRequest):
            return refused(*decoded)
        request = decoded
        if request.action not in MARKET_ACTIONS:
            return refused(
                Refusal.UNKNOWN_ACTION,
                f"{request.action} is not served here: send it as a settlement request "
                f"(rex.settlement.requests, kind {request.action!r})",
            )
        if not account.may(request.action):
            role = role_needed(request.action)
            has = ", ".join(sorted(account.roles))
            return refused(
                Refusal.ROLE_REQUIRED,
                f"{request.action} needs the role {role}; operator {account.name!r} has {has}",
            )
        product = self.products.get(request.product)
        if product is None:
            return refused(
                Refusal.UNKNOWN_PRODUCT,
                f"{REFUSALS[Refusal.UNKNOWN_PRODUCT]}: {request.product!r}",
            )
        if request.band is not None:
            problem = band_refusal(product, request.band)
            if problem is not None:
                return refused(*problem)
        return _Judged(
            login, account, request_id, action_word, request.product, request, band=request.band
        )

    # ------------------------------------------------------------------ acting

    def _apply(self, delivery: Delivery, judged: _Judged) -> None:
        request = judged.request
        assert request is not None and judged.account is not None
        now = self.clock_ns()
        if request.band is not None:
            entry = EngineInput(
                InputKind.BAND,
                request.product,
                now,
                band_low=request.band.low,
                band_high=request.band.high,
            )
        else:
            entry = EngineInput(
                InputKind.STATUS, request.product, now, status=str(STATUS_OF[request.action])
            )
        envelope = Envelope(
            topology.ENGINE,
            request.product,
            encode_inputs([entry]),
            ENGINE_INPUT,
            f"op-{judged.account.name}-{judged.request_id}",
            now // NS_PER_S,
        )

        def confirmed(ok: bool) -> None:
            if not ok:
                # Not in the log: the request goes back to the queue, to be tried again
                # (and dead-lettered after the delivery limit).
                log.error(
                    "operator %s %s by %s: the engine input log refused it; requeued",
                    request.action,
                    request.product,
                    judged.actor,
                )
                delivery.reject(requeue=True)
                return
            self._audit(judged)
            self._answer(delivery, judged)

        self.bus.publish(envelope, confirmed)

    def _audit(self, judged: _Judged) -> None:
        verdict = "done" if judged.refusal is None else str(judged.refusal)
        action = judged.action if judged.action in _ACTIONS else "unknown"
        metrics.GATEWAY_OPERATOR_ACTIONS.labels(action, verdict).inc()
        level = logging.INFO if judged.refusal is None else logging.WARNING
        band = {} if judged.band is None else {"band": str(judged.band)}
        log.log(
            level,
            "operator action %s %s%s by %s: %s",
            judged.action[:_SHOWN],
            judged.product[:_SHOWN] or "-",
            "" if judged.band is None else f" band {judged.band}",
            judged.actor,
            verdict if judged.refusal is None else f"refused ({verdict}: {judged.text})",
            extra=with_fields(
                actor=judged.actor,
                action=judged.action[:_SHOWN],
                product=judged.product[:_SHOWN],
                verdict=verdict,
                request_id=judged.request_id,
                **band,
            ),
        )

    def _answer(self, delivery: Delivery, judged: _Judged) -> None:
        account = judged.account
        if account is None:
            delivery.ack()  # nobody to answer: logged and counted above
            return
        answer = OperatorAnswer(
            judged.request_id,
            judged.action,
            judged.product,
            Verdict.DONE if judged.refusal is None else Verdict.REFUSED,
            None if judged.refusal is None else str(judged.refusal),
            judged.text,
        )
        envelope = Envelope(
            topology.OPERATOR_ANSWERS,
            topology.operator_request_key(account.name, judged.action),
            encode_answer(answer),
            ANSWER_TYPE,
            f"op-{judged.request_id}",
            self.clock_ns() // NS_PER_S,
            mandatory=False,  # an account whose stream is not provisioned yet: logged anyway
        )

        def confirmed(ok: bool) -> None:
            if ok:
                delivery.ack()
            else:
                delivery.reject(requeue=True)

        self.bus.publish(envelope, confirmed)


def _body_id(body: bytes) -> str:
    """A stable id for a request with no usable message_id, so its answer is the same when
    it is redelivered."""
    return "sha1-" + hashlib.sha1(body).hexdigest()[:20]
