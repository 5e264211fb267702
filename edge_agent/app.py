"""The agent process: wires settings, outbox, pollers, batcher and publisher.

``run_agent`` runs everything in one TaskGroup until ``stop`` is set (clean shutdown:
readings still queued are persisted, retained ``state`` offline is published) or the
task is cancelled.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from typing import TYPE_CHECKING
from uuid import UUID

from contracts.events import BufferCorrupt, EventType, GatewayEvent
from contracts.messages import Quality, Reading, TelemetryBatch
from contracts.timeutil import to_wire, utc_now
from edge_agent.buffer import AsyncOutbox, BufferFullError, Dropped, PayloadFactory
from edge_agent.clock import ClockGuard
from edge_agent.control import ControlService
from edge_agent.control_store import ControlStore, control_store_path
from edge_agent.daylight import sun_is_down
from edge_agent.modbus import open_endpoint
from edge_agent.poller import DevicePoller, DeviceRegistry, NightCheck, run_batcher
from edge_agent.publisher import Publisher
from edge_agent.settings import AgentSettings

if TYPE_CHECKING:
    from edge_agent.health import AgentMetrics

log = logging.getLogger(__name__)

READING_QUEUE_MAX = 10_000


class Agent:
    """One agent's parts, exposed so tests and the health endpoint can look inside."""

    def __init__(
        self, settings: AgentSettings, outbox: AsyncOutbox, *, clock: ClockGuard | None = None
    ) -> None:
        self.settings = settings
        self.outbox = outbox
        self.registry = DeviceRegistry()
        self.wake = asyncio.Event()
        self.readings: asyncio.Queue[Reading] = asyncio.Queue(maxsize=READING_QUEUE_MAX)
        self.clock = clock or ClockGuard(
            jump_threshold_s=settings.clock_jump_threshold_s,
            max_skew_s=settings.clock_max_skew_s,
        )
        self.control_store = ControlStore(
            settings.control_state_path or control_store_path(settings.buffer_path)
        )
        self.publisher = Publisher(
            settings,
            outbox,
            self.registry,
            self.wake,
            on_cloud_time=self.clock.on_cloud_time,
            on_control=self._submit_control,
            config_version=lambda: self.control.config_version,
        )
        self.metrics: AgentMetrics | None = None
        if settings.health_port is not None:
            from edge_agent.health import AgentMetrics  # prometheus-client only when served

            self.metrics = AgentMetrics(self)
        self.endpoints = {ep.name: open_endpoint(ep) for ep in settings.endpoints}
        profiles = settings.device_profiles() if settings.endpoints else {}
        self.pollers = [
            DevicePoller(
                self.endpoints[ep.name],
                ep,
                unit,
                registry=self.registry,
                readings=self.readings,
                emit_event=self.emit_event,
                interval_s=settings.poll_interval_s,
                backoff_max_s=settings.unreachable_backoff_max_s,
                on_poll=self.metrics.observe_poll if self.metrics else None,
                profile=profiles[name] if (name := ep.profile_for(unit)) else None,
                is_night=_night_check(settings),
            )
            for ep in settings.endpoints
            for unit in ep.unit_ids
        ]
        self.control = ControlService(
            settings,
            outbox,
            self.wake,
            self.pollers,
            self.emit_event,
            self.control_store,
            settings.trusted_keys(),
            self.registry,
        )
        self.batches = 0
        self._unsequenced_drops = 0
        self._unbuffered_events: list[PayloadFactory] = []
        self._unbuffered_drop = Dropped("disk full")

    async def _submit_control(self, kind: str, payload: bytes) -> None:
        await self.control.submit(kind, payload)

    async def persist_batch(self, readings: list[Reading]) -> None:
        """Buffer one poll cycle's readings as one telemetry batch (before any publish).
        Readings taken while the clock was suspect are flagged ``clock_suspect``."""
        await self.check_clock()
        if self.clock.take_suspect():
            readings = [_clock_suspect(r) for r in readings]

        def make(stream_id: UUID, seq: int) -> bytes:
            return TelemetryBatch(stream_id=stream_id, seq=seq, readings=readings).to_json()

        stamps = [r.ts for r in readings]
        span = (to_wire(min(stamps)), to_wire(max(stamps)))
        try:
            seq = await self.outbox.append("telemetry", make, span=span)
        except BufferFullError as exc:
            # No seq was allocated, so the stream has no hole: count it and report it
            # (span and count) once the disk takes events again.
            self._unsequenced_drops += 1
            self._unbuffered_drop.add(None, 0, span)
            log.error(
                "gateway %s: batch of %d readings not buffered: %s",
                self.settings.gateway_id,
                len(readings),
                exc,
            )
            return
        self.batches += 1
        log.debug(
            "gateway %s: batch seq %d with %d readings",
            self.settings.gateway_id,
            seq,
            len(readings),
        )
        self.wake.set()

    @staticmethod
    def _event_factory(event: GatewayEvent) -> PayloadFactory:
        ts = utc_now()  # when it happened, even if it is buffered later

        def make(stream_id: UUID, seq: int) -> bytes:
            return event.message(stream_id, seq, ts).to_json()

        return make

    async def emit_event(self, event: GatewayEvent) -> None:
        """Buffer one event (same seq space as telemetry); events are never dropped."""
        make = self._event_factory(event)
        try:
            await self.outbox.append("event", make)
        except BufferFullError as exc:
            # Only a full disk gets here: keep the event in memory until space returns.
            self._unbuffered_events.append(make)
            log.error(
                "gateway %s: event %s kept in memory: %s",
                self.settings.gateway_id,
                event.type.value,
                exc,
            )
            return
        self.wake.set()

    @property
    def dropped_batches(self) -> int:
        """Telemetry batches dropped since start (buffer full or disk full)."""
        return self.outbox.dropped_total + self._unsequenced_drops

    async def report_drops(self) -> None:
        """Report drops not yet reported: one ``data_dropped`` event per reason naming the
        exact seq ranges and time span (recorded in the buffer, so a crash loses no
        report); then any events a full disk kept in memory."""

        def make(dropped: Dropped) -> PayloadFactory:
            log.warning(
                "gateway %s: dropped %d telemetry batches (%s): seqs %s",
                self.settings.gateway_id,
                len(dropped.seqs),
                dropped.reason,
                dropped.ranges(),
            )
            return self._event_factory(
                GatewayEvent(type=EventType.DATA_DROPPED, detail=dropped.detail())
            )

        try:
            if await self.outbox.report_drops(make):
                self.wake.set()
        except (BufferFullError, sqlite3.OperationalError) as exc:
            log.error("gateway %s: drop report deferred: %s", self.settings.gateway_id, exc)
            return
        if self._unbuffered_drop.unsequenced:
            event = GatewayEvent(
                type=EventType.DATA_DROPPED,
                detail=self._unbuffered_drop.detail(),
                severity="critical",
            )
            try:
                await self.outbox.append("event", self._event_factory(event))
            except BufferFullError:
                return
            self._unbuffered_drop = Dropped("disk full")
        while self._unbuffered_events:
            try:
                await self.outbox.append("event", self._unbuffered_events[0])
            except BufferFullError:
                return
            self._unbuffered_events.pop(0)

    async def check_clock(self) -> None:
        """Look for a clock jump; report one as a ``clock_jump`` event."""
        jump = self.clock.check()
        if jump is not None:
            log.warning(
                "gateway %s: wall clock jumped by %.3fs", self.settings.gateway_id, jump.delta_s
            )
            await self.emit_event(GatewayEvent(type=EventType.CLOCK_JUMP, detail=jump.detail()))

    async def report_drops_every(self) -> None:
        """Coalesced drop reports: at start (a previous run's), then every interval."""
        while True:
            await self.report_drops()
            await asyncio.sleep(self.settings.drop_report_interval_s)

    async def watch_clock(self) -> None:
        while True:
            await asyncio.sleep(self.settings.poll_interval_s)
            await self.check_clock()

    async def run(self, stop: asyncio.Event) -> None:
        s = self.settings
        requeued = await self.outbox.requeue_all()
        self.publisher.resent += requeued
        log.info(
            "gateway %s (%s) starting: stream %s, %d endpoints, %d devices, %d rows to resend",
            s.gateway_id,
            s.region.value,
            self.outbox.stream_id,
            len(s.endpoints),
            len(self.pollers),
            requeued,
        )
        try:
            async with asyncio.TaskGroup() as tg:
                workers = [
                    tg.create_task(p.run(), name=f"poll-{p.state.endpoint}-u{p.state.unit_id}")
                    for p in self.pollers
                ]
                workers.append(
                    tg.create_task(
                        run_batcher(
                            self.readings,
                            self.persist_batch,
                            interval_s=s.effective_publish_interval_s,
                            offset_s=batch_offset_s(s),
                        ),
                        name="batcher",
                    )
                )
                workers.append(tg.create_task(self.watch_clock(), name="clock"))
                workers.append(tg.create_task(self.report_drops_every(), name="drop-reports"))
                workers.append(tg.create_task(self.control.run(), name="control"))
                tg.create_task(self.publisher.run(stop), name="publisher")
                if s.health_port is not None:
                    from edge_agent.health import serve_health

                    workers.append(tg.create_task(serve_health(self, s.health_port, s.health_host)))
                await stop.wait()
                for task in workers:
                    task.cancel()
                await asyncio.gather(*workers, return_exceptions=True)
                await self.report_drops()  # what the last batches displaced
        finally:
            for endpoint in self.endpoints.values():
                endpoint.close()
            self.control_store.close()
            log.info("gateway %s stopped", s.gateway_id)


def _night_check(settings: AgentSettings) -> NightCheck | None:
    """Is the sun down at the configured site? None when no location is configured."""
    lat, lon = settings.latitude, settings.longitude
    if lat is None or lon is None:
        return None
    return lambda: sun_is_down(lat, lon, utc_now())


def _clock_suspect(reading: Reading) -> Reading:
    """The reading flagged ``clock_suspect`` (quality at most suspect), time untouched."""
    if "clock_suspect" in reading.flags:
        return reading
    quality = Quality.BAD if reading.quality is Quality.BAD else Quality.SUSPECT
    return reading.model_copy(
        update={"flags": [*reading.flags, "clock_suspect"], "quality": quality}
    )


#: How long after an aligned poll the batch is cut: healthy devices answer within
#: milliseconds; a slower answer simply goes into the next batch (nothing is lost).
BATCH_AFTER_POLL_S = 0.25


def batch_offset_s(settings: AgentSettings) -> float:
    """Delay from the aligned poll to cutting its batch: short, so live data leaves the
    gateway well within the 2 s latency budget, but never more than half an interval."""
    interval = min(settings.effective_publish_interval_s, settings.poll_interval_s)
    return min(BATCH_AFTER_POLL_S, interval / 2)


async def run_agent(settings: AgentSettings, stop: asyncio.Event | None = None) -> None:
    """Run the agent until ``stop`` is set (or the task is cancelled)."""
    stop = stop or asyncio.Event()
    async with AsyncOutbox(settings.buffer_path, max_bytes=settings.buffer_max_bytes) as outbox:
        agent = Agent(settings, outbox)
        if outbox.recovered is not None:
            corrupt = BufferCorrupt(
                moved_to=str(outbox.recovered.moved_to),
                reason=outbox.recovered.reason,
                new_stream_id=outbox.stream_id,
            )
            await agent.emit_event(GatewayEvent(type=EventType.BUFFER_CORRUPT, detail=corrupt))
        await agent.run(stop)
