"""Where settlement requests wait (rex.topology.for_settlement): each member's on its own
queue, the operator accounts' on the shared one, nobody else's anywhere. On the memory bus;
tests/system/test_settlement_queues.py does it through RabbitMQ, floods included."""

from __future__ import annotations

from pathlib import Path

from rex import topology
from rex.bus import Envelope
from rex.protocol import pack
from settlement_worker.store.sqlite import SqliteStore
from tests.settlement_worker.helpers import BUYER, MEMBERS, SELLER
from tests.settlement_worker.request_helpers import OPERATOR, Worker

SHOW = "show_settlement_settings"


def test_each_members_requests_route_to_its_own_queue_and_the_operators_to_the_shared() -> None:
    topo = topology.for_settlement([BUYER, SELLER], [OPERATOR])
    routes = {
        (b.queue, b.routing_key)
        for b in topo.bindings
        if b.exchange == topology.SETTLEMENT_REQUESTS
    }
    assert routes == {
        (topology.member_settlement_queue(BUYER), f"{BUYER}.*"),
        (topology.member_settlement_queue(SELLER), f"{SELLER}.*"),
        (topology.SETTLEMENT_REQUEST_QUEUE, f"{OPERATOR}.*"),
    }
    assert topo.unbindings == (topology.SHARED_SETTLEMENT_BINDING,)
    assert topology.SHARED_SETTLEMENT_BINDING.routing_key == "#"


def test_the_worker_answers_members_and_operators_from_their_queues(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "settlement.sqlite3")
    worker = Worker(store)
    queues = worker.broker.queues
    assert {topology.member_settlement_queue(m) for m in MEMBERS} <= set(queues)
    mine = worker.send(BUYER, SHOW, {})
    theirs = worker.send(OPERATOR, SHOW, {"member": SELLER})
    assert worker.answer(BUYER, mine).accepted
    assert worker.answer(OPERATOR, theirs).accepted and worker.answer(SELLER, theirs).accepted
    store.close()


def test_a_request_under_a_key_of_no_member_nor_operator_routes_nowhere(tmp_path: Path) -> None:
    """guest (the broker's user), or a login REX_OPERATORS used to make an operator: no
    queue is bound to its key, so a mandatory publish is not confirmed and nothing is
    recorded."""
    store = SqliteStore(tmp_path / "settlement.sqlite3")
    worker = Worker(store)
    confirms: list[bool] = []
    worker.bus("guest").publish(
        Envelope(
            topology.SETTLEMENT_REQUESTS,
            topology.settlement_request_key("guest", SHOW),
            pack({"member": SELLER}),
            SHOW,
            "guest-1",
            1_795_000_000,
            user_id="guest",
        ),
        confirms.append,
    )
    worker.broker.run_until_idle()
    assert confirms == [False]
    assert store.query("SELECT COUNT(*) FROM settlement_requests") == [(0,)]
    store.close()
