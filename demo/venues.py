"""Where the demo plays: in one process on the memory bus, or through RabbitMQ with the
gateway and engine as separate processes (in a throw-away vhost and deployment of its own,
loadtest/throwaway.py, removed afterwards)."""

from __future__ import annotations

import contextlib
import os
import time
import uuid
from pathlib import Path
from typing import Any, Protocol

from loadtest.stack import SERVICES, LocalStack
from rex.client import Client
from rex.config import Member, ProcessConfig, Product
from rex.identity import login_of
from rex.protocol import Malformed, decode_request, encode, pack, unpack

from .embedded import EmbeddedExchange
from .session import Step

DEMO_PASSWORD_DEFAULT = "demo-password"


class ServicesNotUp(Exception):
    """The demo's gateway and engine did not answer; the message has their last log lines
    (their log goes with the throw-away exchange)."""


class Venue(Protocol):
    def play(self, step: Step) -> list[dict[str, Any]]:
        """Send the step's request; return every report any member received meanwhile."""

    def book(self, product: str) -> dict[str, Any] | None: ...

    def close(self) -> None: ...


class EmbeddedVenue:
    def __init__(self, products: dict[str, Product], members: dict[str, Member], data: Path):
        self.exchange = EmbeddedExchange(products.values(), members, data_dir=data)

    def play(self, step: Step) -> list[dict[str, Any]]:
        before = {m: len(r) for m, r in self.exchange.reports.items()}
        self.exchange.send(step.member, step.kind, step.body)
        self.exchange.run()
        return [r for m, rs in self.exchange.reports.items() for r in rs[before[m] :]]

    def book(self, product: str) -> dict[str, Any] | None:
        return self.exchange.latest_book(product)

    def close(self) -> None:
        pass


class AmqpVenue:
    """Real processes (`rex provision`, `python -m gateway`, `python -m engine`) in a
    throw-away vhost of their own (not the one ``broker_url`` names); members connect with
    the SDK as the throw-away deployment's logins. Made exception-safe: if anything fails
    (or is interrupted) before it is up, everything made is removed."""

    def __init__(self, broker_url: str, process_config: ProcessConfig, members: dict[str, Member]):
        env = {
            m.password_env: os.environ.get(m.password_env, DEMO_PASSWORD_DEFAULT)
            for m in members.values()
            if m.password_env
        }
        self.stack = LocalStack(
            broker_url, process_config.broker_admin_url, process_config.config_dir, extra_env=env
        )
        self.clients: dict[str, Client] = {}
        try:
            for m in members.values():
                login = login_of(m.id, self.stack.deployment)
                password = m.resolve_password(self.stack.env)
                self.clients[m.id] = Client(m.id, password, self.stack.url, login=login)
            self._wait_until_up()
        except BaseException:
            self.close()
            raise

    def _wait_until_up(self, timeout: float = 30.0) -> None:
        client = next(iter(self.clients.values()))
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                client.place(
                    "PRND-OX",
                    "buy",
                    100,
                    380_000,
                    time_in_force="IOC",
                    client_order_id=f"probe-{uuid.uuid4().hex[:8]}",
                    wait=2,
                )
                return
            except TimeoutError:
                continue
        tails = "".join(
            f"\n--- the {service}'s last lines:\n" + "\n".join(self.stack.log_tail(service, 20))
            for service in SERVICES
        )
        raise ServicesNotUp(f"the services did not answer within {timeout:.0f} s{tails}")

    def play(self, step: Step) -> list[dict[str, Any]]:
        request = decode_request(step.kind, pack(step.body))
        assert not isinstance(request, Malformed), request
        client = self.clients[step.member]
        client.send(request)
        answer = client.await_answer(request.client_order_id, timeout=10)
        time.sleep(0.2)  # let the other side's reports arrive
        got = [unpack(encode(answer))]
        for c in self.clients.values():
            got.extend(unpack(encode(r)) for r in c.executions(timeout=0.2))
        return got

    def book(self, product: str) -> dict[str, Any] | None:
        snapshot = next(iter(self.clients.values())).book(product, timeout=0.5)
        return None if snapshot is None else unpack(encode(snapshot))

    def close(self) -> None:
        try:
            for client in self.clients.values():
                with contextlib.suppress(Exception):  # a broken connection: nothing to close
                    client.close()
        finally:
            self.stack.close()
