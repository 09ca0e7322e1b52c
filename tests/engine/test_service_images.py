"""Market images on the embedded exchange: a take-over restores the latest image and replays
only what follows it, so an input log whose start retention dropped still rebuilds the book;
a log that lost entries no image covers stops the engine instead."""

from __future__ import annotations

from engine.image import IMAGE_KIND
from engine.service import EXIT_LOG_LOST, EngineService
from rex import topology
from rex.bus import Envelope
from rex.bus.memory import MemoryBus
from tests.embedded import PRODUCTS, Exchange

SYMBOL = "PRND-OX"


def standby(exchange: Exchange) -> EngineService:
    service = EngineService(
        MemoryBus(exchange.broker, "rex-engine-2"),
        PRODUCTS,
        "main",
        checkpoint_interval=0.05,
        image_every=2,
    )
    service.start()
    return service


def images(exchange: Exchange) -> list[int]:
    """The offsets the images in the product's image log cover, oldest first."""
    log = exchange.broker.queues[topology.engine_image_log(SYMBOL)].log
    return [
        int(m.envelope.message_id.rsplit("-", 1)[1])
        for m in log
        if m is not None and m.envelope.type == IMAGE_KIND
    ]


def input_log_length(exchange: Exchange) -> int:
    return len(exchange.broker.queues[topology.engine_input_queue(SYMBOL)].log)


def trade_some(exchange: Exchange) -> None:
    """A resting sell of 1000 with 300 of it traded, and a resting bid at another price."""
    alpha, beta = exchange.traders["alpha"], exchange.traders["beta"]
    alpha.order("a1", "sell", 1000, 500_000)
    beta.order("b1", "buy", 300, 500_000)
    beta.order("b-rest", "buy", 200, 499_000)
    exchange.run()


def take_over(exchange: Exchange) -> EngineService:
    second = standby(exchange)
    exchange.engine_bus.disconnect()  # the active engine dies
    exchange.run(3)
    assert second.active
    return second


def test_the_engine_publishes_images_once_their_outputs_are_confirmed(exchange: Exchange) -> None:
    exchange.engine.image_every = 2
    trade_some(exchange)
    taken = images(exchange)
    assert taken, "no image published"
    assert taken == sorted(taken) and taken[-1] < input_log_length(exchange)
    assert exchange.engine.logs[SYMBOL].image_through == taken[-1]


def test_a_take_over_restores_the_image_and_replays_only_what_follows(exchange: Exchange) -> None:
    exchange.engine.image_every = 2
    trade_some(exchange)
    image_through = images(exchange)[-1]
    second = take_over(exchange)
    state = second.logs[SYMBOL]
    assert state.replay_from == image_through
    assert state.live
    beta = exchange.traders["beta"]
    beta.order("b2", "buy", 300, 500_000)
    exchange.run()
    # the ids go on from the image: no trade id, order id or exec id starts over
    assert [t["trade_id"] for t in exchange.trades] == ["PRND-OX-1", "PRND-OX-2"]
    b2 = beta.answers("b2")
    assert [r["status"] for r in b2] == ["filled"]
    exec_ids = [r["exec_id"] for m in exchange.reports for r in exchange.reports[m]]
    assert len(exec_ids) == len(set(exec_ids))


def test_a_log_whose_start_retention_dropped_still_rebuilds_the_book(exchange: Exchange) -> None:
    exchange.engine.image_every = 2
    trade_some(exchange)
    image_through = images(exchange)[-1]
    exchange.broker.truncate_stream(topology.engine_input_queue(SYMBOL), image_through + 1)
    take_over(exchange)
    alpha, beta = exchange.traders["alpha"], exchange.traders["beta"]
    beta.order("b2", "buy", 700, 500_000)  # takes the rest of a1, placed before the cut
    alpha.order("a2", "sell", 200, 499_000)  # and b-rest is still there
    exchange.run()
    assert [t["trade_id"] for t in exchange.trades] == ["PRND-OX-1", "PRND-OX-2", "PRND-OX-3"]
    assert [r["status"] for r in alpha.answers("a1")][-1] == "filled"
    assert [r["status"] for r in beta.answers("b-rest")][-1] == "filled"


def test_a_log_that_lost_what_no_image_covers_stops_the_engine(exchange: Exchange) -> None:
    exchange.engine.image_every = 10**9
    exchange.engine.image_interval_ns = 10**20
    trade_some(exchange)  # no image
    assert images(exchange) == []
    exchange.broker.truncate_stream(topology.engine_input_queue(SYMBOL), 2)
    second = take_over(exchange)
    assert second.exit_status == EXIT_LOG_LOST
    assert not second.logs[SYMBOL].live
    assert not second.bus.connected


def test_an_unusable_image_falls_back_to_the_whole_log(exchange: Exchange) -> None:
    exchange.engine.image_every = 2
    trade_some(exchange)
    bad = Envelope(topology.ENGINE_IMAGES, SYMBOL, b"\xc1not msgpack", IMAGE_KIND, "image-bad-0", 0)
    exchange.engine_bus.publish(bad)
    exchange.run()
    second = take_over(exchange)
    assert second.logs[SYMBOL].replay_from == -1  # read from the log's start
    beta = exchange.traders["beta"]
    beta.order("b2", "buy", 300, 500_000)
    exchange.run()
    assert [t["trade_id"] for t in exchange.trades] == ["PRND-OX-1", "PRND-OX-2"]
