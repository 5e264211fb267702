"""Telemetry batches: one poll cycle's readings buffered as ``telemetry`` messages.

A poll cycle is one message unless it does not fit the broker's packet limit: then it is
cut into as many messages as it takes, one seq each (:mod:`.packets`). A reading too
large to fit any message is never buffered: it gets a seq recorded dropped ("too
large"), logged, counted and reported like any drop — the rest of its cycle goes on.

Readings taken while the clock was suspect are flagged ``clock_suspect``. A batch the
full disk refuses is dropped (telemetry is the one thing that may be) and counted; the
drops are reported as ``data_dropped`` events naming the seq ranges and time span.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import time
from collections.abc import Awaitable, Callable
from uuid import UUID

from contracts.events import DropReason, EventType, GatewayEvent
from contracts.messages import Quality, Reading
from edge_agent.buffer import AsyncOutbox, BufferFullError, Dropped, PayloadFactory
from edge_agent.clock import ClockGuard
from edge_agent.events import event_factory
from edge_agent.packets import PacketLimit, ReadingCutter, span_of
from edge_agent.poll_clock import next_aligned
from edge_agent.settings import AgentSettings

__all__ = [
    "BATCH_AFTER_POLL_S",
    "TelemetryBatcher",
    "batch_offset_s",
    "clock_suspect",
    "run_batcher",
]

log = logging.getLogger(__name__)

#: How long after an aligned poll the batch is cut: healthy devices answer within
#: milliseconds; a slower answer simply goes into the next batch (nothing is lost).
BATCH_AFTER_POLL_S = 0.25


def batch_offset_s(settings: AgentSettings) -> float:
    """Delay from the aligned poll to cutting its batch: short, so live data leaves the
    gateway well within the 2 s latency budget, but never more than half an interval."""
    interval = min(settings.effective_publish_interval_s, settings.poll_interval_s)
    return min(BATCH_AFTER_POLL_S, interval / 2)


def clock_suspect(reading: Reading) -> Reading:
    """The reading flagged ``clock_suspect`` (quality at most suspect), time untouched."""
    if "clock_suspect" in reading.flags:
        return reading
    quality = Quality.BAD if reading.quality is Quality.BAD else Quality.SUSPECT
    return reading.model_copy(
        update={"flags": [*reading.flags, "clock_suspect"], "quality": quality}
    )


class TelemetryBatcher:
    """Buffers batches; counts what was buffered and dropped; reports the drops."""

    def __init__(
        self,
        outbox: AsyncOutbox,
        wake: asyncio.Event,
        clock: ClockGuard,
        check_clock: Callable[[], Awaitable[None]],
        gateway_id: str,
        *,
        limit: PacketLimit,
        topic: str,
    ) -> None:
        self._outbox = outbox
        self._wake = wake
        self._clock = clock
        self._check_clock = check_clock
        self._gateway_id = gateway_id
        self._limit = limit
        self._topic = topic
        self.batches = 0
        #: Readings never buffered because no message under the packet limit holds them.
        self.too_large = 0
        self._unsequenced_drops = 0
        self._unbuffered_drop = Dropped("disk full")

    @property
    def dropped_batches(self) -> int:
        """Telemetry batches dropped since start (buffer full or disk full)."""
        return self._outbox.dropped_total + self._unsequenced_drops

    async def persist(self, readings: list[Reading]) -> None:
        """Buffer one poll cycle's readings (before any publish): one telemetry message,
        or several when one would not fit the packet limit."""
        await self._check_clock()
        if self._clock.take_suspect():
            readings = [clock_suspect(r) for r in readings]
        cutter = ReadingCutter(readings, self._limit.room(self._topic))
        if cutter.too_large:
            await self._dead_end(cutter.too_large)
        start = 0
        while start < len(cutter.readings):
            # Cut for the seq the message will get (one writer: the next one, unless an
            # event takes it first; then the publisher cuts again if it must).
            guess = await self._outbox.last_seq() + 1
            end = cutter.cut(self._outbox.stream_id, guess, start)
            await self._buffer(cutter, start, end)
            start = end

    async def _buffer(self, cutter: ReadingCutter, start: int, end: int) -> None:
        def make(stream_id: UUID, seq: int) -> bytes:
            return cutter.payload(stream_id, seq, start, end)

        span = span_of(cutter.readings[start:end])
        try:
            seq = await self._outbox.append("telemetry", make, span=span)
        except BufferFullError as exc:
            # No seq was allocated, so the stream has no hole: count it and report it
            # (span and count) once the disk takes events again.
            self._unsequenced_drops += 1
            self._unbuffered_drop.add(None, 0, span)
            log.error(
                "gateway %s: batch of %d readings not buffered: %s",
                self._gateway_id,
                end - start,
                exc,
            )
            return
        self.batches += 1
        log.debug("gateway %s: batch seq %d with %d readings", self._gateway_id, seq, end - start)
        self._wake.set()

    async def _dead_end(self, readings: list[Reading]) -> None:
        size = sum(len(r.model_dump_json()) for r in readings)
        for r in readings:
            log.error(
                "gateway %s: reading of %s at %s dropped: too large for a %d-byte MQTT packet",
                self._gateway_id,
                r.device,
                r.ts.isoformat(),
                self._limit.bytes,
            )
        self.too_large += len(readings)
        try:
            await self._outbox.skip(span_of(readings), DropReason.TOO_LARGE.value, size)
        except (BufferFullError, sqlite3.OperationalError) as exc:
            log.error("gateway %s: too-large readings not recorded: %s", self._gateway_id, exc)

    async def report_drops(self) -> None:
        """Report drops not yet reported: one ``data_dropped`` event per reason naming the
        exact seq ranges and time span (recorded in the buffer, so a crash loses no
        report), then the batches a full disk refused before they had a seq."""

        def make(dropped: Dropped) -> PayloadFactory:
            log.warning(
                "gateway %s: dropped %d telemetry batches (%s): seqs %s",
                self._gateway_id,
                len(dropped.seqs),
                dropped.reason,
                dropped.ranges(),
            )
            return event_factory(GatewayEvent(type=EventType.DATA_DROPPED, detail=dropped.detail()))

        try:
            if await self._outbox.report_drops(make):
                self._wake.set()
        except (BufferFullError, sqlite3.OperationalError) as exc:
            log.error("gateway %s: drop report deferred: %s", self._gateway_id, exc)
            return
        if self._unbuffered_drop.unsequenced:
            event = GatewayEvent(
                type=EventType.DATA_DROPPED,
                detail=self._unbuffered_drop.detail(),
                severity="critical",
            )
            try:
                await self._outbox.append("event", event_factory(event))
            except BufferFullError:
                return
            self._unbuffered_drop = Dropped("disk full")


async def run_batcher(
    readings: asyncio.Queue[Reading],
    persist: Callable[[list[Reading]], Awaitable[None]],
    *,
    interval_s: float,
    offset_s: float,
) -> None:
    """Every ``interval_s`` (aligned, + ``offset_s``) persist the queued readings as one
    batch; on cancellation persist what is left, then stop."""
    try:
        while True:
            now = time.time()
            await asyncio.sleep(next_aligned(now - offset_s, interval_s) + offset_s - now)
            await _drain(readings, persist)
    except asyncio.CancelledError:
        await _drain(readings, persist)
        raise


async def _drain(
    readings: asyncio.Queue[Reading], persist: Callable[[list[Reading]], Awaitable[None]]
) -> None:
    batch: list[Reading] = []
    while not readings.empty():
        batch.append(readings.get_nowait())
    if batch:
        await persist(batch)
