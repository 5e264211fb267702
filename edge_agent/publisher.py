"""The MQTT session: birth, retained state, a bounded window of QoS 1 publishes from
the outbox, the ``stored`` watermark, resend after ``stored_timeout_s``, and reconnects
after a random phase, then doubling (:class:`pacing.Reconnect`).

Nothing over the broker's packet limit is ever sent (the broker would drop the link and
the message would come back after every reconnect): a buffered telemetry message cut
for a larger limit than the broker's (MQTT 5 CONNACK) is cut again in the buffer, its
first piece keeping its seq; any other message that cannot fit is dead-ended and
reported dropped ("too large").

A row is marked sent only after its PUBACK; it is deleted only when ``stored`` covers
it; a PUBACKed row not covered within ``stored_timeout_s`` is made unsent again.

Paced backfill: rows buffered before the current connection are the *backlog*. Events,
acks and config states go first, unpaced; then *live* telemetry (buffered since the
connection), unpaced too, with a few window slots kept for it; the backlog telemetry
drains oldest first through a :class:`TokenBucket` (``backfill_rate_msgs_s``,
``backfill_burst``), so a long outage never delays live data. Every batch is sent as
buffered: raw samples, nothing averaged.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import datetime
from typing import Any
from uuid import UUID, uuid4

from contracts.events import DropReason
from contracts.messages import (
    AckStatus,
    BirthMsg,
    CmdAck,
    CommandMsg,
    MessageError,
    StateMsg,
    StoredMsg,
    TelemetryBatch,
    decode,
)
from contracts.timeutil import utc_now
from contracts.topics import Kind, TopicError, gateway_subscriptions, parse_topic, topic
from edge_agent import __version__
from edge_agent.buffer import PRIORITY, AsyncOutbox, OutboxRow, Span
from edge_agent.mqtt import LinkConfig, LinkError, MqttLink
from edge_agent.packets import PacketLimit, ReadingCutter, span_of
from edge_agent.poller import DeviceRegistry
from edge_agent.settings import AgentSettings, SettingsError
from pacing import Reconnect, TokenBucket

log = logging.getLogger(__name__)

#: Takes a raw ``cmd``/``config`` payload (kind, bytes) for the control task.
ControlSink = Callable[[str, bytes], Awaitable[None]]

MARK_SENT_EVERY_S = 0.2
#: Backlog pacing wakes at most this often (live rows wake the sender at once).
BACKFILL_TICK_S = 0.1
TELEMETRY = PRIORITY["telemetry"]
URGENT = sorted({p for p in PRIORITY.values() if p < TELEMETRY})


class _Stopped(Exception):
    """Raised inside the session's task group to end it after a clean goodbye."""


class Publisher:
    def __init__(
        self,
        settings: AgentSettings,
        outbox: AsyncOutbox,
        registry: DeviceRegistry,
        wake: asyncio.Event,
        *,
        boot_id: str | None = None,
        on_cloud_time: Callable[[datetime], None] | None = None,
        on_control: ControlSink | None = None,
        config_version: Callable[[], int | None] | None = None,
        limit: PacketLimit | None = None,
    ) -> None:
        self._on_control = on_control
        self._config_version = config_version or (lambda: None)
        self._s = settings
        self._reconnect = Reconnect(settings.reconnect_min_s, settings.reconnect_max_s)
        #: Shared with the batcher, which cuts new batches to it.
        self.limit = limit or PacketLimit(
            settings.mqtt_max_packet_bytes, v5=settings.mqtt_protocol == "5"
        )
        self._outbox = outbox
        self._registry = registry
        self._wake = wake
        self.boot_id = boot_id or uuid4().hex
        self._inflight: set[int] = set()
        self._acked: list[int] = []
        self._acked_set: set[int] = set()
        self._backlog_inflight: set[int] = set()
        #: Window slots the backlog may use; the rest is kept for live rows.
        self._backlog_share = max(1, settings.max_inflight - max(1, settings.max_inflight // 4))
        self._on_cloud_time = on_cloud_time
        self.connected = asyncio.Event()
        self.sessions = 0
        self._was_up = False
        self.published = 0
        self.resent = 0
        self.stored_upto: int | None = None
        #: ``stored`` messages refused for claiming seqs this stream never allocated.
        self.stored_refused = 0
        #: Buffered messages over the packet limit (cut again or dead-ended), and the
        #: readings among them that fit no packet.
        self.too_large = 0
        self.too_large_readings = 0

    # ----- topics and messages ----------------------------------------------------------
    def _topic(self, kind: Kind | str) -> str:
        return topic(self._s.region, self._s.gateway_id, kind)

    def _state(self, online: bool) -> bytes:
        return StateMsg(online=online, boot_id=self.boot_id, ts=utc_now()).to_json()

    def birth(self) -> BirthMsg:
        return BirthMsg(
            gateway_id=self._s.gateway_id,
            region=self._s.region,
            agent_version=__version__,
            stream_id=self._outbox.stream_id,
            boot_id=self.boot_id,
            poll_interval_s=self._s.poll_interval_s,
            publish_interval_s=self._s.effective_publish_interval_s,
            devices=self._registry.infos(),
            config_version=self._config_version(),
            ts=utc_now(),
        )

    def _link_config(self) -> LinkConfig:
        try:
            target = self._s.mqtt_target()  # reads mqtt_password_file: a rotation applies now
        except SettingsError as exc:
            raise LinkError(str(exc)) from None
        s = self._s
        return LinkConfig(
            host=target.host,
            port=target.port,
            client_id=self._s.gateway_id,
            username=target.username,
            password=target.password.get_secret_value() if target.password else None,
            tls=target.tls,
            ca_file=str(s.mqtt_ca_file) if s.mqtt_ca_file else None,
            cert_file=str(s.mqtt_cert_file) if s.mqtt_cert_file else None,
            key_file=str(s.mqtt_key_file) if s.mqtt_key_file else None,
            protocol=self._s.mqtt_protocol,
            keepalive_s=self._s.mqtt_keepalive_s,
            session_expiry_s=self._s.mqtt_session_expiry_s,
            max_inflight=self._s.max_inflight,
            will_topic=self._topic(Kind.STATE),
            will_payload=self._state(False),
            # Bounds CONNACK and PUBACK waits: aiomqtt waits this long for a CONNACK even
            # when the peer resets the connection first (a proxy or balancer up, broker not).
            publish_timeout_s=float(self._s.mqtt_keepalive_s),
            disconnect_timeout_s=self._s.mqtt_goodbye_timeout_s,
        )

    # ----- lifecycle --------------------------------------------------------------------
    async def run(self, stop: asyncio.Event) -> None:
        """Keep a session up until ``stop`` is set; then say goodbye (retained offline).

        A session still going ``mqtt_goodbye_timeout_s`` after ``stop`` (a CONNACK, SUBACK
        or PUBACK that a dead link never brings) is cut: the agent must stop in a bounded
        time whatever the link does; what was not stored stays in the buffer."""
        attempt = 0
        while not stop.is_set():
            try:
                async with _cut_after(stop, self._s.mqtt_goodbye_timeout_s) as deadline:
                    await self._session(stop)
                return
            except TimeoutError:
                if not deadline.expired():
                    raise
                log.warning(
                    "gateway %s: mqtt session not done %.1fs after stop (no answer from the"
                    " broker): link dropped, unsent messages stay buffered",
                    self._s.gateway_id,
                    self._s.mqtt_goodbye_timeout_s,
                )
                return
            except LinkError as exc:
                self.connected.clear()
                attempt = 1 if self._was_up else attempt + 1
                delay = self._reconnect.delay(attempt)
                log.warning(
                    "gateway %s: mqtt link down (%s); retry in %.2fs",
                    self._s.gateway_id,
                    exc,
                    delay,
                )
                try:
                    async with asyncio.timeout(delay):
                        await stop.wait()
                except TimeoutError:
                    pass

    async def _session(self, stop: asyncio.Event) -> None:
        self._was_up = False
        self._inflight.clear()
        self._backlog_inflight.clear()
        async with MqttLink(self._link_config()) as link:
            self._was_up = True
            self.sessions += 1
            self.limit.broker = link.broker_max_packet
            await link.subscribe(gateway_subscriptions(self._s.region, self._s.gateway_id))
            self._registry.changed.clear()
            await self._publish_birth(link)
            await link.publish(self._topic(Kind.STATE), self._state(True), retain=True)
            log.info(
                "gateway %s: connected (session %d), stream %s",
                self._s.gateway_id,
                self.sessions,
                self._outbox.stream_id,
            )
            self.connected.set()
            try:
                async with asyncio.TaskGroup() as tg:
                    tg.create_task(self._receive(link))
                    tg.create_task(self._requeue_loop())
                    tg.create_task(self._mark_sent_loop())
                    tg.create_task(self._birth_on_change(link))
                    tg.create_task(self._send_loop(link, tg))
                    await stop.wait()
                    await self._flush_acked()
                    await link.publish(self._topic(Kind.STATE), self._state(False), retain=True)
                    log.info("gateway %s: offline (clean shutdown)", self._s.gateway_id)
                    raise _Stopped
            except* _Stopped:
                pass
            except* LinkError as group:
                raise group.exceptions[0] from None
            finally:
                self.connected.clear()
                await self._flush_acked()

    # ----- sending ----------------------------------------------------------------------
    async def _send_loop(self, link: MqttLink, tg: asyncio.TaskGroup) -> None:
        live_from = await self._outbox.last_seq()  # rows up to here are the backlog
        bucket = TokenBucket(self._s.backfill_rate_msgs_s, self._s.backfill_burst)
        tick = max(1.0, self._s.backfill_rate_msgs_s * BACKFILL_TICK_S)
        while True:
            self._wake.clear()
            rows = await self._next_rows(live_from, bucket)
            if not rows:
                paced = bucket.available() < 1
                try:
                    async with asyncio.timeout(bucket.wait_s(tick) if paced else None):
                        await self._wake.wait()
                except TimeoutError:
                    pass
                continue
            for row in rows:
                if not self.limit.fits(self._topic(row.kind), len(row.payload)):
                    await self._too_large(row)
                    self._wake.set()  # its pieces, if any, are unsent rows now
                    continue
                self._inflight.add(row.seq)
                if row.priority == TELEMETRY and row.seq <= live_from:
                    self._backlog_inflight.add(row.seq)
                tg.create_task(self._send_one(link, row))

    async def _next_rows(self, live_from: int, bucket: TokenBucket) -> list[OutboxRow]:
        """What to send next within the free window: events/acks/config states, then live
        telemetry, then as much backlog telemetry as the bucket and its share allow."""
        window = self._s.max_inflight
        free = window - len(self._inflight)
        if free <= 0:
            return []
        busy = self._inflight | self._acked_set
        rows: list[OutboxRow] = []
        for priority in URGENT:
            rows += await self._outbox.unsent_of(priority, free - len(rows), busy)
            if len(rows) >= free:
                return rows
        rows += await self._outbox.unsent_of(TELEMETRY, free - len(rows), busy, after_seq=live_from)
        room = min(
            free - len(rows), self._backlog_share - len(self._backlog_inflight), bucket.available()
        )
        if room > 0:
            backlog = await self._outbox.unsent_of(TELEMETRY, room, busy, upto_seq=live_from)
            bucket.take(len(backlog))
            rows += backlog
        return rows

    async def _send_one(self, link: MqttLink, row: OutboxRow) -> None:
        try:
            await link.publish(self._topic(row.kind), row.payload)
            self._acked.append(row.seq)
            self._acked_set.add(row.seq)
            self.published += 1
        finally:
            # Wake the sender only if this slot is what held it back: the window or the
            # backlog's share was full (new rows, requeues and the bucket wake it too).
            held = len(self._inflight) >= self._s.max_inflight or (
                row.seq in self._backlog_inflight
                and len(self._backlog_inflight) >= self._backlog_share
            )
            self._inflight.discard(row.seq)
            self._backlog_inflight.discard(row.seq)
            if held:
                self._wake.set()

    async def _flush_acked(self) -> None:
        if not self._acked:
            return
        seqs, self._acked = self._acked, []
        await self._outbox.mark_sent(seqs)
        self._acked_set.difference_update(seqs)

    async def _mark_sent_loop(self) -> None:
        while True:
            await asyncio.sleep(MARK_SENT_EVERY_S)
            await self._flush_acked()

    async def _requeue_loop(self) -> None:
        timeout = self._s.stored_timeout_s
        while True:
            await asyncio.sleep(min(timeout / 4, 1.0))
            n = await self._outbox.requeue_stale(timeout)
            if n:
                self.resent += n
                log.warning(
                    "gateway %s: %d messages not stored within %.0fs, resending",
                    self._s.gateway_id,
                    n,
                    timeout,
                )
                self._wake.set()

    async def _too_large(self, row: OutboxRow) -> None:
        """A buffered message over the packet limit: telemetry is cut again in the buffer
        (readings that fit no packet get a seq recorded dropped); anything else can never
        be delivered and is dead-ended. Either way the next ``data_dropped`` accounts for
        what is gone, and the stream goes on."""
        self.too_large += 1
        reason = DropReason.TOO_LARGE.value
        batch = _telemetry(row)
        if batch is None:
            await self._outbox.dead_end(row.seq, reason)
            log.error(
                "gateway %s: %s seq %d (%d bytes) can never fit a %d-byte MQTT packet: dropped",
                self._s.gateway_id,
                row.kind,
                row.seq,
                len(row.payload),
                self.limit.bytes,
            )
            return
        cutter = ReadingCutter(batch.readings, self.limit.room(self._topic(Kind.TELEMETRY)))
        lost: tuple[Span | None, int] | None = None
        if cutter.too_large:
            size = sum(len(r.model_dump_json()) for r in cutter.too_large)
            lost = (span_of(cutter.too_large), size)
            self.too_large_readings += len(cutter.too_large)

        def piece(stream_id: UUID, seq: int, start: int) -> tuple[bytes, int, Span]:
            end = cutter.cut(stream_id, seq, start)
            readings = cutter.readings[start:end]
            return cutter.payload(stream_id, seq, start, end), end, span_of(readings)

        seqs = await self._outbox.split(
            row.seq, piece, len(cutter.readings), reason=reason, lost=lost
        )
        log.warning(
            "gateway %s: telemetry seq %d (%d bytes) over the %d-byte packet limit: cut into"
            " seqs %s, %d readings dropped",
            self._s.gateway_id,
            row.seq,
            len(row.payload),
            self.limit.bytes,
            seqs,
            len(cutter.too_large),
        )

    async def _publish_birth(self, link: MqttLink) -> None:
        payload = self.birth().to_json()
        birth_topic = self._topic(Kind.BIRTH)
        if not self.limit.fits(birth_topic, len(payload)):
            # Sent, it would only get the link dropped, again at every reconnect.
            log.error(
                "gateway %s: birth of %d bytes over the %d-byte packet limit: not sent",
                self._s.gateway_id,
                len(payload),
                self.limit.bytes,
            )
            return
        await link.publish(birth_topic, payload)

    async def _birth_on_change(self, link: MqttLink) -> None:
        while True:
            await self._registry.changed.wait()
            self._registry.changed.clear()
            await self._publish_birth(link)

    # ----- receiving --------------------------------------------------------------------
    async def _receive(self, link: MqttLink) -> None:
        async for raw_topic, payload in link.messages():
            try:
                kind = parse_topic(raw_topic).kind
                if kind in (Kind.CMD, Kind.CONFIG) and self._on_control is not None:
                    # Raw bytes: verification is on the document as received.
                    await self._on_control(kind.value, payload)
                    continue
                message = decode(kind, payload)
            except (TopicError, MessageError) as exc:
                log.warning(
                    "gateway %s: ignored message on %s: %s", self._s.gateway_id, raw_topic, exc
                )
                continue
            if isinstance(message, StoredMsg):
                await self._on_stored(message)
            elif isinstance(message, CommandMsg):
                await self._refuse_command(message)
            else:
                log.info(
                    "gateway %s: %s not handled by this agent version",
                    self._s.gateway_id,
                    kind.value,
                )

    async def _on_stored(self, message: StoredMsg) -> None:
        if self._on_cloud_time is not None:
            self._on_cloud_time(message.ts)  # the cloud's clock, whichever stream
        if message.stream_id != self._outbox.stream_id:
            log.info(
                "gateway %s: stored for another stream %s ignored",
                self._s.gateway_id,
                message.stream_id,
            )
            return
        deleted = await self._outbox.apply_stored(message.stream_id, message.upto_seq)
        if deleted is None:
            self.stored_refused += 1
            log.warning(
                "gateway %s: stored upto %d beyond the stream's last seq ignored",
                self._s.gateway_id,
                message.upto_seq,
            )
            return
        self.stored_upto = max(self.stored_upto or 0, message.upto_seq)
        self._acked_set.difference_update([s for s in self._acked_set if s <= message.upto_seq])
        log.debug(
            "gateway %s: stored upto %d, %d rows released",
            self._s.gateway_id,
            message.upto_seq,
            deleted,
        )

    async def _refuse_command(self, command: CommandMsg) -> None:
        detail = "commands are not supported by this agent version"

        def make(stream_id: Any, seq: int) -> bytes:
            return CmdAck(
                stream_id=stream_id,
                seq=seq,
                id=command.id,
                status=AckStatus.REJECTED,
                detail=detail,
                ts=utc_now(),
            ).to_json()

        await self._outbox.append(Kind.CMD_ACK.value, make)
        self._wake.set()


@contextlib.asynccontextmanager
async def _cut_after(stop: asyncio.Event, grace_s: float) -> AsyncIterator[asyncio.Timeout]:
    """The block, cancelled (``TimeoutError``) ``grace_s`` after ``stop`` is set."""
    loop = asyncio.get_running_loop()
    async with asyncio.timeout(None) as deadline:
        active = True

        def arm(_: asyncio.Task[Any]) -> None:
            # Not once the block is over: a finished Timeout refuses to be rescheduled.
            if active and stop.is_set():
                deadline.reschedule(loop.time() + grace_s)

        watch = asyncio.create_task(stop.wait())
        watch.add_done_callback(arm)
        try:
            yield deadline
        finally:
            active = False
            watch.cancel()


def _telemetry(row: OutboxRow) -> TelemetryBatch | None:
    """The row's telemetry batch, None for any other kind (or a payload that is not one)."""
    if row.kind != Kind.TELEMETRY.value:
        return None
    try:
        batch = decode(Kind.TELEMETRY, row.payload)
    except MessageError:
        return None
    return batch if isinstance(batch, TelemetryBatch) else None
