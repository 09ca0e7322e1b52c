"""The engine service: input logs in, books in the middle, reports, trades and market data out.

Each product's input is a RabbitMQ stream (`rex.engine.<product>`), written by the gateway
(members' requests, clock ticks) and by operators (status). The engine owning a group of
products:

1. takes the group's lock (an exclusive queue; a standby process waits on it);
2. restores each product's latest *market image* (engine/image.py): it appends a fence to
   the product's image log (`rex.engine.<product>.images`), reads that stream up to its own
   fence and restores the last image before it (none yet: an empty market);
3. appends a *fence* with a fresh token to each input log, then reads it from the entry
   after the image (or from the start), rebuilding the books. If the log no longer holds
   that entry (retention dropped it) the book cannot be rebuilt: the engine stops with exit
   status 4 rather than trade on a book that lost orders. Outputs are held back while
   replaying (as the market's results: only those still held at the end are encoded): a
   *checkpoint* entry in the log says the outputs of every entry up to its offset are
   already out, so held outputs it covers are dropped. When the replay meets its own fence
   it has caught up: it publishes what is still held (outputs a crash may have lost;
   byte-identical, so consumers drop the duplicates by id) and goes live;
4. live, it publishes each entry's outputs with confirms (engine/outputs.py makes the
   market's results envelopes, those of one destination one batch message, and counts
   them for the metrics), and when every output up to an offset is confirmed it appends a
   checkpoint for that offset (one at a time, at most every `checkpoint_interval`
   seconds). Every `image_every` entries or `image_interval` seconds of log time it takes
   an image of the market, and publishes it once every output up to the image's offset is
   confirmed, so replaying from the image loses no output.

So outputs are delivered at least once: if the process dies between a confirm and the
checkpoint that covers it (a window of milliseconds), the next engine publishes those outputs
again, byte for byte the same, and consumers drop them by id (exec_id, trade_id).

A refused publish (nack, or a trade with no route) stops the process with exit status 3:
crash-only, a restart or the standby resumes from the log. A lost connection just starts
over from step 1 once the bus reconnects.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from rex import metrics, topology
from rex.bus import Bus, Delivery, Envelope, Subscription
from rex.config import Product
from rex.protocol import (
    ENGINE_INPUT,
    MAX_WRITER_CHARS,
    REQUEST_TYPES,
    SEQUENCE_HEADER,
    WRITER_HEADER,
    BookSnapshot,
    EngineInput,
    ExecStatus,
    InputKind,
    decode_inputs,
    encode_inputs,
    pack,
    unpack,
)
from rex.vocabulary import END_REASONS, REJECT_REASONS

from .image import IMAGE_KIND, ImageError, decode_image, encode_image
from .input_sequences import InputSequences, SequenceVerdict
from .market import Market, Result
from .outputs import Outputs, outputs

log = logging.getLogger("rex.engine")

EXIT_REFUSED_PUBLISH = 3
EXIT_LOG_LOST = 4
IMAGE_FENCE = "engine_image_fence"
# RabbitMQ refuses messages over 128 MiB by default; a bigger image is skipped, not sent.
IMAGE_MAX_BYTES = 100 * 1024 * 1024


@dataclass(slots=True)
class _Log:
    """One product's input log as this engine works through it."""

    market: Market
    fence: str
    live: bool = False
    # While replaying: each entry's results, made envelopes only if still held at the end.
    held: list[tuple[int, list[Result], BookSnapshot | None]] = field(default_factory=list)
    in_flight: dict[int, int] = field(default_factory=dict)  # offset -> unconfirmed outputs
    last_offset: int = -1  # last offset applied
    last_output_offset: int = -1  # last offset whose entries produced output
    checkpointed: int = -1  # last offset a checkpoint of ours covers
    checkpoint_pending: bool = False
    replay_started: float = 0.0
    # market images
    restoring: Subscription | None = None  # reading the image log
    image: bytes | None = None  # the last image read so far while restoring
    replay_from: int = -1  # the offset the restored image covers; -1: the log's start
    first_entry_seen: bool = False
    image_through: int = -1  # offset covered by the latest image restored or published
    image_tried: int = -1  # the latest image taken (or failed); the next is due after it
    image_clock: int = 0  # market clock when it was taken
    pending_image: tuple[int, bytes] | None = None  # waiting for its outputs' confirms
    image_in_flight: bool = False
    # The gateways' numbers in this log, and the gaps between them (engine/input_sequences.py)
    sequences: InputSequences = field(default_factory=InputSequences)

    def confirmed_through(self) -> int:
        """Every output of every entry up to this offset is confirmed."""
        if self.in_flight:
            return next(iter(self.in_flight)) - 1
        return self.last_offset


class EngineService:
    def __init__(
        self,
        bus: Bus,
        products: Iterable[Product],
        group: str = "main",
        *,
        prefetch: int = 1000,
        checkpoint_interval: float = 0.02,
        snapshot_interval: float = 0.1,
        image_every: int = 10_000,
        image_interval: float = 600.0,
        clock_ns: Callable[[], int] = time.time_ns,
    ) -> None:
        self.bus = bus
        self.products = {p.symbol: p for p in products}
        self.group = group
        self.prefetch = prefetch
        self.checkpoint_interval = checkpoint_interval
        self.snapshot_interval_ns = int(snapshot_interval * 1e9)
        self.image_every = image_every  # input-log entries between market images
        self.image_interval_ns = int(image_interval * 1e9)  # or this much log time
        self.clock_ns = clock_ns
        self.logs: dict[str, _Log] = {}
        self.active = False
        self.exit_status = 0
        self._input_counters: dict[tuple[str, str], Any] = {}
        self._reason_counters: dict[tuple[str, str, str], Any] = {}
        self._id_gauges: dict[str, tuple[Any, Any]] = {}  # product -> its two windows' gauges
        self._epoch = 0  # bumps on every (re)connect; late callbacks of older ones are ignored
        _start_metrics_at_zero(list(self.products))
        metrics.ENGINE_ACTIVE.labels(group).set(0)  # a standby until it holds the lock

    def start(self) -> None:
        self.bus.start(topology.for_engine(self.products), self._on_ready)

    def stop(self) -> None:
        self.bus.stop()

    # ----------------------------------------------------------------- take-over

    def _on_ready(self) -> None:
        self._epoch += 1
        self.active = False
        self.logs.clear()
        metrics.ENGINE_ACTIVE.labels(self.group).set(0)
        log.info("engine=%s standby products=%s", self.group, ",".join(self.products))
        self.bus.hold_lock(topology.engine_lock(self.group), self._activate)

    def _activate(self) -> None:
        epoch = self._epoch
        self.active = True
        metrics.ENGINE_ACTIVE.labels(self.group).set(1)
        token = f"{self.group}-{uuid.uuid4().hex}"
        log.info("engine=%s active fence=%s", self.group, token)
        for symbol, product in self.products.items():
            market = Market(product, snapshot_interval_ns=self.snapshot_interval_ns)
            state = _Log(market, token, replay_started=time.monotonic())
            self.logs[symbol] = state
            self._read_images(symbol, state, epoch)

    def _read_images(self, symbol: str, state: _Log, epoch: int) -> None:
        """Read the product's image log up to a fence of ours; then restore and replay."""

        def fenced(ok: bool) -> None:
            if epoch != self._epoch:
                return
            if not ok:
                self._refused(f"image fence for {symbol}")
                return
            state.restoring = Subscription(
                topology.engine_image_log(symbol),
                lambda d: self._on_image(symbol, d, epoch),
                prefetch=4,  # images can be large
                arguments={"x-stream-offset": "first"},
            )
            self.bus.consume(state.restoring)

        fence = Envelope(
            topology.ENGINE_IMAGES,
            symbol,
            pack({"fence": state.fence}),
            IMAGE_FENCE,
            f"image-fence-{symbol}-{uuid.uuid4().hex}",
            self.clock_ns() // 1_000_000_000,
        )
        self.bus.publish(fence, fenced)

    def _on_image(self, symbol: str, delivery: Delivery, epoch: int) -> None:
        delivery.ack()  # a stream ack only returns prefetch credit
        state = self.logs.get(symbol)
        if epoch != self._epoch or state is None or state.restoring is None:
            return
        if delivery.type == IMAGE_KIND:
            state.image = delivery.body  # decoded only if it is the last
            return
        if delivery.type != IMAGE_FENCE or _fence_token(delivery.body) != state.fence:
            return
        self.bus.cancel(state.restoring)
        state.restoring = None
        self._restore(symbol, state)
        self._replay(symbol, state, epoch)

    def _restore(self, symbol: str, state: _Log) -> None:
        body, state.image = state.image, None
        if body is None:
            log.info("engine=%s product=%s no market image: replaying the log", self.group, symbol)
            return
        try:
            market, through = decode_image(
                self.products[symbol], body, snapshot_interval_ns=self.snapshot_interval_ns
            )
        except ImageError as error:
            log.error(
                "engine=%s product=%s market image unusable (%s): replaying the log from its start",
                self.group,
                symbol,
                error,
            )
            return
        state.market = market
        self._count_ids(symbol, market)
        state.last_offset = state.replay_from = state.image_through = state.image_tried = through
        state.image_clock = market.clock
        metrics.ENGINE_IMAGE_OFFSET.labels(symbol).set(through)
        metrics.ENGINE_IMAGE_BYTES.labels(symbol).set(len(body))
        log.info(
            "engine=%s product=%s restored the market image through offset %d (%d bytes)",
            self.group,
            symbol,
            through,
            len(body),
        )

    def _replay(self, symbol: str, state: _Log, epoch: int) -> None:
        """Fence the input log, then read it from the entry after the image."""
        start: int | str = state.replay_from + 1 if state.replay_from >= 0 else "first"
        fence = EngineInput(InputKind.FENCE, symbol, self.clock_ns(), fence=state.fence)

        def fenced(ok: bool) -> None:
            if epoch != self._epoch:
                return
            if not ok:
                self._refused(f"fence for {symbol}")
                return
            self.bus.consume(
                Subscription(
                    topology.engine_input_queue(symbol),
                    lambda d: self._on_input(symbol, d, epoch),
                    prefetch=self.prefetch,
                    arguments={"x-stream-offset": start},
                )
            )

        self.bus.publish(self._input_envelope(fence), fenced)

    # ----------------------------------------------------------------- input

    def _on_input(self, symbol: str, delivery: Delivery, epoch: int) -> None:
        if epoch != self._epoch:
            return
        state = self.logs[symbol]
        offset = delivery.stream_offset
        if offset is None or offset <= state.last_offset:
            delivery.ack()
            return
        if not state.first_entry_seen:
            state.first_entry_seen = True
            if offset != state.last_offset + 1:
                delivery.ack()
                self._log_lost(symbol, state, offset)
                return
        self._check_sequence(symbol, state, offset, delivery.headers)
        try:
            entries = decode_inputs(delivery.body)
        except (ValueError, KeyError, TypeError) as error:
            log.error(
                "engine=%s product=%s offset=%d bad input skipped: %s",
                self.group,
                symbol,
                offset,
                error,
            )
            entries = []
        results: list[Result] = []
        caught_up = False
        received = None
        for entry in entries:
            if entry.kind == InputKind.CHECKPOINT:
                if not state.live and entry.through is not None:
                    state.held = [held for held in state.held if held[0] > entry.through]
            elif entry.kind == InputKind.FENCE:
                caught_up = caught_up or entry.fence == state.fence
            else:
                received = received or entry.received
                self._input_counter(symbol, entry.kind).inc()
                results.extend(state.market.handle(entry))
        snapshot = state.market.snapshot()
        self._count_ids(symbol, state.market)
        state.last_offset = offset
        if state.live and received is not None:
            metrics.ENGINE_INPUT_LAG.observe(max(self.clock_ns() - received, 0) / 1e9)
        if results or snapshot is not None:
            state.last_output_offset = offset
        if state.live:
            out = outputs(results, snapshot)
            # A replay's rejects and cancels were counted by the engine that decided them.
            self._count_reasons(symbol, out.tally.reasons)
            self._publish(symbol, state, offset, out, received, epoch)
            self._take_image_if_due(symbol, state, offset, epoch)
        elif results or snapshot is not None:
            state.held.append((offset, results, snapshot))
        if caught_up and not state.live:
            self._go_live(symbol, state, epoch)
        delivery.ack()  # a stream ack only returns prefetch credit; progress is the checkpoint

    def _check_sequence(
        self, symbol: str, state: _Log, offset: int, headers: Mapping[str, Any]
    ) -> None:
        """Count a gap in a gateway's numbers (logged at ERROR), and a gap filled late."""
        writer, sequence = headers.get(WRITER_HEADER), headers.get(SEQUENCE_HEADER)
        if not isinstance(writer, str) or not 0 < len(writer) <= MAX_WRITER_CHARS:
            return  # not a gateway's forward (a tick, a checkpoint, an older gateway's)
        if not isinstance(sequence, int) or isinstance(sequence, bool) or sequence < 1:
            return
        seen = state.sequences.see(writer, sequence)
        if seen.verdict is SequenceVerdict.GAP:
            metrics.ENGINE_INPUT_GAPS.labels(symbol).inc(len(seen.missing))
            log.error(
                "engine=%s product=%s offset=%d input log gap writer=%s missing=%d-%d: "
                "batches the log does not have although a later one is here",
                self.group,
                symbol,
                offset,
                writer,
                seen.missing[0],
                seen.missing[-1],
            )
        elif seen.verdict is SequenceVerdict.FILLED:
            metrics.ENGINE_INPUT_GAPS_FILLED.labels(symbol).inc()
            log.warning(
                "engine=%s product=%s offset=%d input log gap filled writer=%s sequence=%d",
                self.group,
                symbol,
                offset,
                writer,
                sequence,
            )
        metrics.ENGINE_INPUT_OPEN_GAPS.labels(symbol).set(state.sequences.open_gaps)

    def _input_counter(self, symbol: str, kind: str) -> Any:
        """The labelled counter, looked up once per (product, kind): ``labels()`` takes a lock
        and builds a key, which per input showed in profiles."""
        counter = self._input_counters.get((symbol, kind))
        if counter is None:
            counter = self._input_counters[symbol, kind] = metrics.ENGINE_INPUTS.labels(
                symbol, kind
            )
        return counter

    def _count_ids(self, symbol: str, market: Market) -> None:
        """The sizes of what the market remembers (engine/market.py's windows)."""
        gauges = self._id_gauges.get(symbol)
        if gauges is None:
            gauges = self._id_gauges[symbol] = (
                metrics.ENGINE_DEDUPE_IDS.labels(symbol),
                metrics.ENGINE_CLIENT_ORDER_IDS.labels(symbol),
            )
        gauges[0].set(len(market.seen_requests))
        gauges[1].set(len(market.used_client_ids))

    def _count_reasons(self, symbol: str, given: dict[tuple[str, str], int]) -> None:
        for (status, reason), count in given.items():
            counter = self._reason_counters.get((symbol, status, reason))
            if counter is None:
                metric = (
                    metrics.ENGINE_REJECTS
                    if status == ExecStatus.REJECTED
                    else metrics.ENGINE_CANCELS
                )
                counter = self._reason_counters[symbol, status, reason] = metric.labels(
                    symbol, reason
                )
            counter.inc(count)

    def _go_live(self, symbol: str, state: _Log, epoch: int) -> None:
        seconds = time.monotonic() - state.replay_started
        metrics.ENGINE_REPLAY_SECONDS.labels(self.group).set(seconds)
        replayed = state.last_offset - state.replay_from
        metrics.ENGINE_REPLAYED.labels(symbol).set(replayed)
        log.info(
            "engine=%s product=%s live after replay of %d entries (after offset %d) in %.3f s,"
            " republishing %d",
            self.group,
            symbol,
            replayed,
            state.replay_from,
            seconds,
            len(state.held),
        )
        state.live = True
        held, state.held = state.held, []
        for offset, results, snapshot in held:
            self._publish(symbol, state, offset, outputs(results, snapshot), None, epoch)
        self._take_image_if_due(symbol, state, state.last_offset, epoch)

    def _log_lost(self, symbol: str, state: _Log, offset: int) -> None:
        log.critical(
            "engine=%s product=%s the input log starts at offset %d, but the market image"
            " covers only through %d: entries %d..%d are gone (retention), so the book cannot"
            " be rebuilt; stopping rather than trading on a book that lost orders",
            self.group,
            symbol,
            offset,
            state.replay_from,
            state.replay_from + 1,
            offset - 1,
        )
        self.exit_status = EXIT_LOG_LOST
        self.bus.stop()

    # ----------------------------------------------------------------- market images

    def _take_image_if_due(self, symbol: str, state: _Log, offset: int, epoch: int) -> None:
        if state.pending_image is not None or state.image_in_flight:
            return  # one at a time
        behind = offset - state.image_tried
        if behind <= 0 or (
            behind < self.image_every
            and state.market.clock - state.image_clock < self.image_interval_ns
        ):
            return
        started = time.perf_counter()
        state.image_clock = state.market.clock
        state.image_tried = offset
        try:
            body = encode_image(state.market, offset)
        except Exception:  # an image only shortens a take-over: never stop trading for one
            log.exception("engine=%s product=%s market image failed", self.group, symbol)
            return
        metrics.ENGINE_IMAGE_SECONDS.labels(symbol).set(time.perf_counter() - started)
        if len(body) > IMAGE_MAX_BYTES:
            log.error(
                "engine=%s product=%s market image of %d bytes is over %d: not published",
                self.group,
                symbol,
                len(body),
                IMAGE_MAX_BYTES,
            )
            return
        state.pending_image = (offset, body)
        self._publish_image_if_covered(symbol, state, epoch)

    def _publish_image_if_covered(self, symbol: str, state: _Log, epoch: int) -> None:
        """Publish the pending image once every output up to its offset is confirmed: a
        take-over from it republishes nothing before it."""
        if state.pending_image is None or state.image_in_flight:
            return
        through, body = state.pending_image
        if state.confirmed_through() < through:
            return
        state.pending_image = None
        state.image_in_flight = True

        def published(ok: bool) -> None:
            if epoch != self._epoch:
                return
            state.image_in_flight = False
            if not ok:
                self._refused(f"market image of {symbol}")
                return
            state.image_through = max(state.image_through, through)
            metrics.ENGINE_IMAGES.labels(symbol).inc()
            metrics.ENGINE_IMAGE_OFFSET.labels(symbol).set(through)
            metrics.ENGINE_IMAGE_BYTES.labels(symbol).set(len(body))

        envelope = Envelope(
            topology.ENGINE_IMAGES,
            symbol,
            body,
            IMAGE_KIND,
            f"image-{symbol}-{through}",
            state.market.clock // 1_000_000_000,
        )
        self.bus.publish(envelope, published)

    # ----------------------------------------------------------------- output

    def _publish(
        self,
        symbol: str,
        state: _Log,
        offset: int,
        out: Outputs,
        received: int | None,
        epoch: int,
    ) -> None:
        envelopes, tally = out.envelopes, out.tally
        if not envelopes:
            self._progress(symbol, state, epoch)
            return
        if tally.reports:
            metrics.ENGINE_REPORTS.labels(symbol).inc(tally.reports)
        if tally.trades:
            metrics.ENGINE_TRADES.labels(symbol).inc(tally.trades)
        state.in_flight[offset] = len(envelopes)

        def confirmed(ok: bool) -> None:
            if epoch != self._epoch:
                return
            if not ok:
                self._refused(f"output of {symbol} offset {offset}")
                return
            state.in_flight[offset] -= 1
            if state.in_flight[offset] == 0:
                del state.in_flight[offset]
                if received is not None:
                    metrics.ENGINE_LATENCY.observe(max(self.clock_ns() - received, 0) / 1e9)
                self._progress(symbol, state, epoch)

        for envelope in envelopes:
            self.bus.publish(envelope, confirmed)

    def _progress(self, symbol: str, state: _Log, epoch: int) -> None:
        self._publish_image_if_covered(symbol, state, epoch)
        # Only output needs covering: our own checkpoints, ticks that expire nothing and the
        # like never call for another.
        if (
            state.checkpoint_pending
            or state.last_output_offset <= state.checkpointed
            or state.confirmed_through() <= state.checkpointed
        ):
            return
        state.checkpoint_pending = True
        self.bus.call_later(
            self.checkpoint_interval, lambda: self._checkpoint(symbol, state, epoch)
        )

    def _checkpoint(self, symbol: str, state: _Log, epoch: int) -> None:
        if epoch != self._epoch:
            return
        through = state.confirmed_through()
        entry = EngineInput(InputKind.CHECKPOINT, symbol, self.clock_ns(), through=through)

        def written(ok: bool) -> None:
            if epoch != self._epoch:
                return
            state.checkpoint_pending = False
            if ok:
                state.checkpointed = max(state.checkpointed, through)
                self._progress(symbol, state, epoch)
            else:
                self._refused(f"checkpoint of {symbol}")

        self.bus.publish(self._input_envelope(entry), written)

    def _input_envelope(self, entry: EngineInput) -> Envelope:
        return Envelope(
            topology.ENGINE,
            entry.product,
            encode_inputs([entry]),
            ENGINE_INPUT,
            f"{entry.kind}-{entry.product}-{uuid.uuid4().hex}",
            entry.received // 1_000_000_000,
        )

    def _refused(self, what: str) -> None:
        if not self.bus.connected:
            return  # the connection went; the reconnect starts over from the log
        log.error("engine=%s the broker refused the %s; stopping", self.group, what)
        self.exit_status = EXIT_REFUSED_PUBLISH
        self.bus.stop()


def _start_metrics_at_zero(symbols: list[str]) -> None:
    """Every series whose labels are known in advance, at 0 (docs/operators/metrics.md)."""
    kinds = [*REQUEST_TYPES, InputKind.TICK, InputKind.STATUS, InputKind.BAND]
    metrics.start_at_zero(metrics.ENGINE_INPUTS, symbols, kinds)
    for counter in (
        metrics.ENGINE_TRADES,
        metrics.ENGINE_REPORTS,
        metrics.ENGINE_IMAGES,
        metrics.ENGINE_INPUT_GAPS,
        metrics.ENGINE_INPUT_GAPS_FILLED,
    ):
        metrics.start_at_zero(counter, symbols)
    for symbol in symbols:
        metrics.ENGINE_INPUT_OPEN_GAPS.labels(symbol).set(0)
        metrics.ENGINE_DEDUPE_IDS.labels(symbol).set(0)
        metrics.ENGINE_CLIENT_ORDER_IDS.labels(symbol).set(0)
    metrics.start_at_zero(metrics.ENGINE_REJECTS, symbols, sorted(REJECT_REASONS))
    metrics.start_at_zero(metrics.ENGINE_CANCELS, symbols, sorted(END_REASONS))


def _fence_token(body: bytes) -> str | None:
    try:
        fence = unpack(body)
    except ValueError:
        return None
    token = fence.get("fence") if isinstance(fence, dict) else None
    return token if isinstance(token, str) else None
