"""The gateway service's own safety net (gateway/service.py): a request whose handling
raises -- a bug, since every field is checked before use -- is dead-lettered, counted and
logged at ERROR with its cause, and the requests around it are answered (on RabbitMQ the
exception would otherwise close the gateway's connection and have every request in flight
delivered again)."""

from __future__ import annotations

import logging
from typing import Any

import pytest

import gateway.service
from rex import metrics
from rex.protocol import encode_inputs
from tests.embedded import Exchange


def failures() -> float:
    return metrics.GATEWAY_REQUEST_FAILURES._value.get()


def test_a_request_whose_handling_raises_is_dead_lettered_and_the_others_are_answered(
    exchange: Exchange, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    judge = gateway.service.judge

    def judge_failing_on_boom(member: str, kind: str | None, *args: Any, **kwargs: Any) -> Any:
        if b"boom" in args[2]:  # the body
            raise RuntimeError("a bug in the judge")
        return judge(member, kind, *args, **kwargs)

    monkeypatch.setattr(gateway.service, "judge", judge_failing_on_boom)
    alpha, beta = exchange.traders["alpha"], exchange.traders["beta"]
    before = failures()
    beta.order("b1", "buy", 100, 455_000, time_in_force="IOC")
    boom = alpha.order("boom", "buy", 100, 455_000)
    beta.order("b2", "buy", 100, 455_000, time_in_force="IOC")
    with caplog.at_level(logging.ERROR, logger="rex.gateway"):
        exchange.run()
    assert [d.message_id for d in exchange.dead] == [boom]
    assert alpha.reports == []
    assert [r["client_order_id"] for r in beta.reports] == ["b1", "b2"]
    assert failures() - before == 1
    [record] = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert "request handling failed" in record.getMessage()
    assert record.exc_info is not None and "a bug in the judge" in str(record.exc_info[1])
    # The gateway goes on: the next request is handled as usual.
    beta.order("b3", "buy", 100, 455_000, time_in_force="IOC")
    exchange.run()
    assert [r["client_order_id"] for r in beta.reports] == ["b1", "b2", "b3"]


def test_a_forward_that_cannot_be_encoded_is_dead_lettered_and_the_gateway_goes_on(
    exchange: Exchange, monkeypatch: pytest.MonkeyPatch
) -> None:
    failed: list[Any] = []

    def encode_failing_once(entries: Any) -> bytes:
        if not failed and any(e.request and e.request.client_order_id == "f1" for e in entries):
            failed.append(entries)
            raise OverflowError("a bug in the encoding")
        return encode_inputs(entries)

    monkeypatch.setattr(gateway.service, "encode_inputs", encode_failing_once)
    beta = exchange.traders["beta"]
    before = failures()
    gaps = metrics.ENGINE_INPUT_GAPS.labels("PRND-OX")._value.get()
    beta.order("f0", "buy", 100, 455_000, time_in_force="IOC")  # its writer's first batch
    exchange.run()
    first = beta.order("f1", "buy", 100, 455_000, time_in_force="IOC")
    exchange.run()
    assert [d.message_id for d in exchange.dead] == [first]
    assert failures() - before == 1
    beta.order("f2", "buy", 100, 455_000, time_in_force="IOC")
    exchange.run()
    assert [r["client_order_id"] for r in beta.reports] == ["f0", "f2"]
    # The number the failed batch took is never in the log: the next batch is not a gap.
    assert metrics.ENGINE_INPUT_GAPS.labels("PRND-OX")._value.get() == gaps
