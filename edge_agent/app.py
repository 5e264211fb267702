"""The agent process: wires settings, outbox, pollers, batcher, control and publisher.

``run_agent`` runs everything in one TaskGroup until ``stop`` is set (clean shutdown:
readings still queued are persisted, retained ``state`` offline is published) or the
task is cancelled. The parts each do one job in their own module: telemetry batches
(:mod:`.batching`), events (:mod:`.events`), what a full disk holds in memory
(:mod:`.pending`), commands and configs (:mod:`.control`), ``/healthz`` and ``/metrics``
(:mod:`.health`, reading :meth:`Agent.status` only).
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import TYPE_CHECKING

from contracts.events import BufferCorrupt, EventType, GatewayEvent
from contracts.messages import Reading
from contracts.timeutil import utc_now
from contracts.topics import Kind, topic
from edge_agent.batching import TelemetryBatcher, batch_offset_s, run_batcher
from edge_agent.buffer import AsyncOutbox
from edge_agent.cancellation import cancel_and_wait
from edge_agent.clock import ClockGuard
from edge_agent.control import ControlService
from edge_agent.control_store import ControlStore, control_store_path
from edge_agent.daylight import sun_is_down
from edge_agent.events import EventWriter
from edge_agent.modbus import open_endpoint
from edge_agent.packets import PacketLimit
from edge_agent.pending import HeldMessages
from edge_agent.poll_clock import PollClock
from edge_agent.poller import DevicePoller, DeviceRegistry, NightCheck
from edge_agent.publisher import Publisher
from edge_agent.settings import AgentSettings
from edge_agent.status import AgentStatus, BufferStats, DeviceStatus

if TYPE_CHECKING:
    from edge_agent.health import AgentMetrics

log = logging.getLogger(__name__)

READING_QUEUE_MAX = 10_000


class Agent:
    """One agent's parts, exposed so tests can look inside; the health endpoint sees
    only :meth:`status` and :meth:`buffer_stats`."""

    def __init__(
        self,
        settings: AgentSettings,
        outbox: AsyncOutbox,
        *,
        clock: ClockGuard | None = None,
        poll_clock: PollClock | None = None,
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
        self.held = HeldMessages(outbox, self.wake, settings.gateway_id)
        self.events = EventWriter(self.held)
        #: The packet limit batches are cut to; the publisher lowers it to the broker's.
        self.packet_limit = PacketLimit(
            settings.mqtt_max_packet_bytes, v5=settings.mqtt_protocol == "5"
        )
        self.batcher = TelemetryBatcher(
            outbox,
            self.wake,
            self.clock,
            self.check_clock,
            settings.gateway_id,
            limit=self.packet_limit,
            topic=topic(settings.region, settings.gateway_id, Kind.TELEMETRY),
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
            limit=self.packet_limit,
        )
        self.metrics: AgentMetrics | None = None
        if settings.health_port is not None:
            from edge_agent.health import AgentMetrics  # prometheus-client only when served

            self.metrics = AgentMetrics(self)
        self.endpoints = {ep.name: open_endpoint(ep) for ep in settings.endpoints}
        self.pollers = self._pollers(poll_clock)
        self.control = ControlService(
            settings,
            self.held,
            self.pollers,
            self.events.emit,
            self.control_store,
            settings.trusted_keys(),
            self.registry,
        )

    def _pollers(self, clock: PollClock | None) -> list[DevicePoller]:
        s = self.settings
        profiles = s.device_profiles() if s.endpoints else {}
        return [
            DevicePoller(
                self.endpoints[ep.name],
                ep,
                unit,
                registry=self.registry,
                readings=self.readings,
                emit_event=self.events.emit,
                interval_s=s.poll_interval_s,
                backoff_max_s=s.unreachable_backoff_max_s,
                on_poll=self.metrics.observe_poll if self.metrics else None,
                profile=profiles[name] if (name := ep.profile_for(unit)) else None,
                is_night=_night_check(s),
                clock=clock,
            )
            for ep in s.endpoints
            for unit in ep.unit_ids
        ]

    async def _submit_control(self, kind: str, payload: bytes) -> None:
        await self.control.submit(kind, payload)

    @property
    def batches(self) -> int:
        """Telemetry batches buffered since start."""
        return self.batcher.batches

    @property
    def dropped_batches(self) -> int:
        """Telemetry batches dropped since start (buffer full or disk full)."""
        return self.batcher.dropped_batches

    async def emit_event(self, event: GatewayEvent) -> None:
        """Buffer one event (same seq space as telemetry); events are never dropped."""
        await self.events.emit(event)

    async def report_drops(self) -> None:
        """Report telemetry drops not yet reported, then buffer whatever a full disk
        held in memory (events, acks, config states)."""
        await self.batcher.report_drops()
        await self.held.flush()

    async def check_clock(self) -> None:
        """Look for a clock jump; report one as a ``clock_jump`` event."""
        jump = self.clock.check()
        if jump is not None:
            log.warning(
                "gateway %s: wall clock jumped by %.3fs", self.settings.gateway_id, jump.delta_s
            )
            await self.events.emit(GatewayEvent(type=EventType.CLOCK_JUMP, detail=jump.detail()))

    async def report_drops_every(self) -> None:
        """Coalesced drop reports: at start (a previous run's), then every interval."""
        while True:
            await self.report_drops()
            await asyncio.sleep(self.settings.drop_report_interval_s)

    async def watch_clock(self) -> None:
        while True:
            await asyncio.sleep(self.settings.poll_interval_s)
            await self.check_clock()

    # ----- the narrow view the health endpoint reads ------------------------------------
    def status(self) -> AgentStatus:
        pub, stats = self.publisher, self.control.stats
        return AgentStatus(
            gateway_id=self.settings.gateway_id,
            region=self.settings.region.value,
            stream_id=str(self.outbox.stream_id),
            mqtt_connected=pub.connected.is_set(),
            stored_upto_seq=pub.stored_upto,
            devices=tuple(
                DeviceStatus(d.device_id, d.endpoint, d.unit_id, d.status, d.last_error or None)
                for d in self.registry.devices.values()
            ),
            published=pub.published,
            resent=pub.resent,
            sessions=pub.sessions,
            stored_refused=pub.stored_refused,
            too_large=pub.too_large,
            too_large_readings=self.batcher.too_large + pub.too_large_readings,
            batches=self.batches,
            dropped_batches=self.dropped_batches,
            held=len(self.held),
            held_lost=self.held.lost,
            commands=dict(stats.commands),
            configs=dict(stats.configs),
            refusals=dict(stats.refusals),
            writes=dict(stats.writes),
        )

    async def buffer_stats(self) -> BufferStats:
        counts = await self.outbox.counts()
        oldest = await self.outbox.oldest_created_at()
        return BufferStats(
            rows=counts["rows"],
            unsent=counts["unsent"],
            bytes=counts["bytes"],
            oldest_age_s=None if oldest is None else round(max(time.time() - oldest, 0.0), 3),
        )

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
                            self.batcher.persist,
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

                    server = serve_health(self, self.metrics, s.health_port, s.health_host)
                    workers.append(tg.create_task(server, name="health"))
                await stop.wait()
                # Not one cancel and a gather: a cancel the Modbus or MQTT library loses
                # would leave a poller running and the agent never stopping.
                await cancel_and_wait(workers)
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


async def run_agent(
    settings: AgentSettings,
    stop: asyncio.Event | None = None,
    *,
    poll_clock: PollClock | None = None,
) -> None:
    """Run the agent until ``stop`` is set (or the task is cancelled); ``poll_clock``:
    when the devices are polled and the time readings carry (the wall clock if None)."""
    stop = stop or asyncio.Event()
    async with AsyncOutbox(settings.buffer_path, max_bytes=settings.buffer_max_bytes) as outbox:
        agent = Agent(settings, outbox, poll_clock=poll_clock)
        if outbox.recovered is not None:
            corrupt = BufferCorrupt(
                moved_to=str(outbox.recovered.moved_to),
                reason=outbox.recovered.reason,
                new_stream_id=outbox.stream_id,
            )
            await agent.emit_event(GatewayEvent(type=EventType.BUFFER_CORRUPT, detail=corrupt))
        await agent.run(stop)
