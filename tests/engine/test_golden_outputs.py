"""A replay publishes what the engine published before, byte for byte.

golden_outputs.jsonl holds what the engine did with a few fixed input-log sessions (seeded
random streams made here, each input-log message recorded by its sha256, on the
property tests' small product: orders of every type and time in force, cancels, replaces,
mass cancels, ticks, status changes, duplicate client order ids and request ids, far-off
GTD expiries, a clock that steps back now and then) and, for each input-log message, what
the engine service published for it: every envelope's exchange, routing key, type, message
id, timestamp, mandatory flag and body bytes, batches included, and what it counted in its
metrics. It was recorded from the engine before the redesign of issue 11 (market, outputs
and service apart), so this test holds the redesign, and any later change, to the same
bytes. Rewrite it (`python -m tests.engine.test_golden_outputs --write`) only for a change
that is meant to change what the engine publishes, and say so in the commit.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
from pathlib import Path
from typing import Any

import pytest

from engine.market import Market
from engine.outputs import outputs
from rex.protocol import (
    CancelRequest,
    EngineInput,
    InputKind,
    MassCancelRequest,
    NewOrderRequest,
    ReplaceRequest,
    Request,
    decode_inputs,
    encode_inputs,
)
from rex.vocabulary import OrderType, SelfTradePrevention, Side, TimeInForce
from tests.engine.products import PRODUCT

GOLDEN = Path(__file__).with_name("golden_outputs.jsonl")
SYMBOL = PRODUCT.symbol
MS = 1_000_000  # ns
START = 1_800_000_000_000 * MS
FAR_OFF_MS = 10**14  # year ~5138
# (seed, input-log messages, snapshot interval in ns)
SESSIONS = [(1, 150, 0), (2, 150, 2 * MS), (3, 300, 0)]

MEMBERS = ["M1", "M2", "M3"]
CLOCK_STEPS = [0, MS, MS // 2, 3 * MS, 40 * MS, -2 * MS]
PRICES = [*range(960, 1041, 10), 1005, 1100]  # the last two are refused
PASSIVE = {Side.BUY: [990, 990, 990, 980], Side.SELL: [1010, 1010, 1010, 1020]}
SMALL = [2, 4, 6]
QUANTITIES = [*SMALL, *range(8, 21, 2), 3, 0]  # 3 and 0 are refused
TERMS = [
    *[(OrderType.LIMIT, TimeInForce.GTC)] * 4,
    *[(OrderType.LIMIT, TimeInForce.GTD)] * 3,
    (OrderType.LIMIT, TimeInForce.IOC),
    (OrderType.LIMIT, TimeInForce.FOK),
    (OrderType.MARKET, TimeInForce.IOC),
    (OrderType.MARKET, TimeInForce.GTC),
]
STATUSES = ["open", "halted", "closed", "paused"]  # paused is not a status
KINDS = [
    *["resting"] * 10,
    *["taking"] * 3,
    *["new_order"] * 5,
    *["cancel"] * 4,
    *["replace"] * 4,
    "mass_cancel",
    "tick",
    "status",
]


# ----------------------------------------------------------------------- the sessions


def session(seed: int, messages: int) -> list[list[EngineInput]]:
    """Input-log messages of one to four entries each, reproducible from the seed."""
    rng = random.Random(seed)
    now = START
    trading = True
    sent: list[tuple[str, str, Side]] = []  # (member, client order id, side) of orders
    request_ids: list[tuple[str, str]] = []
    out: list[list[EngineInput]] = []
    n = 0
    for _ in range(messages):
        entries = []
        for _ in range(rng.choice([1, 1, 1, 2, 3, 4])):
            n += 1
            now += rng.choice(CLOCK_STEPS)
            kind = rng.choice(KINDS)
            if not trading and rng.random() < 0.3:  # not for long: most of a session trades
                kind = "open"
            if kind == "tick":
                entries.append(EngineInput(InputKind.TICK, SYMBOL, now))
                continue
            if kind in ("status", "open"):
                status = "open" if kind == "open" else rng.choice(STATUSES)
                trading = trading if status == "paused" else status == "open"
                entries.append(EngineInput(InputKind.STATUS, SYMBOL, now, status=status))
                continue
            member, request_id, orig, side = rng.choice(MEMBERS), f"r{n}", "c-unknown", Side.BUY
            if kind in ("cancel", "replace", "mass_cancel") and sent and rng.random() < 0.9:
                member, orig, side = rng.choice(sent[-12:])  # mostly one still resting
            if request_ids and rng.random() < 0.05:  # the gateway forwarded one twice
                member, request_id = rng.choice(request_ids)
            else:
                request_ids.append((member, request_id))
            used = [cid for m, cid, _ in sent if m == member]
            cid = rng.choice(used) if used and rng.random() < 0.05 else f"c{n}"
            request = _request(rng, kind, cid, orig, side, now)
            if isinstance(request, NewOrderRequest):
                sent.append((member, cid, request.side))
            elif isinstance(request, ReplaceRequest):
                sent.append((member, cid, side))
            entries.append(EngineInput(request.kind, SYMBOL, now, member, request_id, request))
        out.append(entries)
    return out


def _request(rng: random.Random, kind: str, cid: str, orig: str, side: Side, now: int) -> Request:
    if kind == "resting":
        side = rng.choice(list(Side))
        expire = _expiry(rng, now) if rng.random() < 0.25 else None
        return NewOrderRequest(
            cid,
            SYMBOL,
            side,
            rng.choice(SMALL),
            price=rng.choice(PASSIVE[side]),
            time_in_force=TimeInForce.GTC if expire is None else TimeInForce.GTD,
            expire_time=expire,
        )
    if kind == "taking":  # a limit order across the spread, of a few orders' size
        side = rng.choice(list(Side))
        across = rng.choice(PASSIVE[Side.SELL if side is Side.BUY else Side.BUY])
        return NewOrderRequest(cid, SYMBOL, side, rng.choice(QUANTITIES[3:-2]), price=across)
    if kind == "new_order":
        order_type, tif = rng.choice(TERMS)
        return NewOrderRequest(
            cid,
            SYMBOL,
            rng.choice(list(Side)),
            rng.choice(QUANTITIES),
            order_type,
            None if order_type is OrderType.MARKET else rng.choice(PRICES),
            tif,
            _expiry(rng, now) if tif is TimeInForce.GTD else None,
            rng.random() < 0.125,
            rng.choice(list(SelfTradePrevention)),
        )
    if kind == "mass_cancel":
        return MassCancelRequest(cid, SYMBOL)
    if kind == "cancel":
        return CancelRequest(cid, orig, SYMBOL)
    how = rng.choice(["move", "raise", "any"])
    price: int | None = None
    quantity: int | None = None
    if how == "move":
        price = rng.choice(sorted(set(PASSIVE[side])))
    elif how == "raise":
        quantity = rng.choice([8, 10, 12])
    else:
        price = rng.choice([None, *PRICES])
        quantity = rng.choice([None, *QUANTITIES])
    return ReplaceRequest(cid, orig, SYMBOL, price, quantity)


def _expiry(rng: random.Random, now: int) -> int:
    """A GTD expiry in ms: soon, now and then in the past, or centuries ahead."""
    return FAR_OFF_MS if rng.random() < 0.125 else now // MS - 1 + rng.randrange(60)


# ----------------------------------------------------------------------- what is published


def published(market: Market, entries: list[EngineInput]) -> dict[str, Any]:
    """What the engine service publishes and counts for one input-log message."""
    results = []
    for entry in entries:
        results.extend(market.handle(entry))
    out = outputs(results, market.snapshot())
    reasons = {f"{status} {reason}": n for (status, reason), n in out.tally.reasons.items()}
    return {
        "envelopes": [
            [
                e.exchange,
                e.routing_key,
                e.type,
                e.message_id,
                e.timestamp,
                e.mandatory,
                _sha256(e.body),
            ]
            for e in out.envelopes
        ],
        "reports": out.tally.reports,
        "trades": out.tally.trades,
        "reasons": dict(sorted(reasons.items())),
    }


def record() -> list[dict[str, Any]]:
    """One line per input-log message of every session."""
    lines = []
    for seed, messages, interval in SESSIONS:
        market = Market(PRODUCT, snapshot_interval_ns=interval)
        for n, body in enumerate(inputs(seed, messages)):
            step = published(market, decode_inputs(body))
            lines.append({"seed": seed, "message": n, "input": _sha256(body), **step})
    return lines


def inputs(seed: int, messages: int) -> list[bytes]:
    """The session's input-log messages, as the gateway writes them to the log."""
    return [encode_inputs(entries) for entries in session(seed, messages)]


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# ----------------------------------------------------------------------- the test


def _golden(seed: int | None = None) -> list[dict[str, Any]]:
    lines = [json.loads(line) for line in GOLDEN.read_text().splitlines()]
    return [line for line in lines if seed is None or line["seed"] == seed]


@pytest.mark.parametrize(("seed", "messages", "interval"), SESSIONS)
def test_the_engine_publishes_what_it_published_before(
    seed: int, messages: int, interval: int
) -> None:
    golden = _golden(seed)
    assert len(golden) == messages
    market = Market(PRODUCT, snapshot_interval_ns=interval)
    for n, (body, expected) in enumerate(zip(inputs(seed, messages), golden, strict=True)):
        assert _sha256(body) == expected["input"], f"message {n}: not the recorded session"
        got = published(market, decode_inputs(body))
        assert got == {k: expected[k] for k in got}, f"message {n}"


def test_the_sessions_exercise_every_kind_of_output() -> None:
    """Else the golden record would prove less than it seems to."""
    kinds: set[str] = set()
    reasons: set[str] = set()
    for message in _golden():
        kinds.update(e[2] for e in message["envelopes"])
        reasons.update(message["reasons"])
    assert kinds == {
        "execution",
        "execution_batch",
        "trade",
        "trade_batch",
        "public_trade",
        "public_trade_batch",
        "book",
    }
    statuses = {reason.split()[0] for reason in reasons}
    assert statuses == {"rejected", "cancelled", "expired"}
    assert len(reasons) >= 12, sorted(reasons)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m tests.engine.test_golden_outputs")
    parser.add_argument("--write", action="store_true", help=f"rewrite {GOLDEN.name}")
    if not parser.parse_args().write:
        parser.error("this rewrites the golden record: give --write if that is meant")
    text = "".join(json.dumps(line, separators=(",", ":")) + "\n" for line in record())
    GOLDEN.write_text(text)


if __name__ == "__main__":
    main()
