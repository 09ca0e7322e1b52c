"""What the AMQP bus logs when its connection goes: a loss it did not ask for is an ERROR
with its cause (the broker's reason, the exception), a close on stop is INFO."""

from __future__ import annotations

import logging

import pika.exceptions
import pytest

from rex.topology import Topology
from tests.rex.bus.conftest import Harness
from tests.rex.bus.helpers import run_until, stop_bus
from tests.rex.bus.test_contract import connection_pid, rabbitmqctl, start

pytestmark = pytest.mark.broker


def test_a_dropped_connection_is_an_error_with_its_cause_and_a_stop_is_info(
    amqp_harness: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    h = amqp_harness
    with caplog.at_level(logging.INFO, "rex.bus"):
        bus, readies = start(h, Topology((), (), ()), name="logged")
        pid = connection_pid(h.connection_name("logged"))
        rabbitmqctl("close_connection", pid, "dropped by the log test")
        assert run_until(bus, lambda: len(readies) == 2 and bus.connected)
        stopping = len(caplog.records)
        stop_bus(bus)
    [lost] = [r for r in caplog.records if r.getMessage().startswith("bus connection lost")]
    assert lost.levelno == logging.ERROR
    assert "dropped by the log test" in lost.getMessage()
    assert lost.exc_info is not None
    assert isinstance(lost.exc_info[1], pika.exceptions.ConnectionClosedByBroker)
    on_stop = caplog.records[stopping:]
    assert "bus closed name=" in caplog.text
    assert [r.levelname for r in on_stop] == ["INFO"] * len(on_stop), caplog.text
