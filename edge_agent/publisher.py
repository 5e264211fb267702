"""The MQTT session: birth, retained state, a bounded window of QoS 1 publishes from
the outbox, the ``stored`` watermark, resend after ``stored_timeout_s``, and reconnects
with exponential back-off and full jitter.

A row is marked sent only after its PUBACK; it is deleted only when ``stored`` covers
it; a PUBACKed row not covered within ``stored_timeout_s`` is made unsent again.
"""

from __future__ import annotations

import asyncio
import logging
import random
from typing import Any
from uuid import uuid4

from contracts.messages import (
    AckStatus,
    BirthMsg,
    CmdAck,
    CommandMsg,
    MessageError,
    StateMsg,
    StoredMsg,
    decode,
)
from contracts.timeutil import utc_now
from contracts.topics import Kind, TopicError, gateway_subscriptions, parse_topic, topic
from edge_agent import __version__
from edge_agent.buffer import AsyncOutbox, OutboxRow
from edge_agent.mqtt import LinkConfig, LinkError, MqttLink
from edge_agent.poller import DeviceRegistry
from edge_agent.settings import AgentSettings

log = logging.getLogger(__name__)

MARK_SENT_EVERY_S = 0.2


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
    ) -> None:
        self._s = settings
        self._outbox = outbox
        self._registry = registry
        self._wake = wake
        self.boot_id = boot_id or uuid4().hex
        self._inflight: set[int] = set()
        self._acked: list[int] = []
        self._acked_set: set[int] = set()
        self._window = asyncio.Semaphore(settings.max_inflight)
        self.connected = asyncio.Event()
        self.sessions = 0
        self._was_up = False
        self.published = 0
        self.resent = 0
        self.stored_upto: int | None = None

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
            ts=utc_now(),
        )

    def _link_config(self) -> LinkConfig:
        host, port, user, password = self._s.mqtt_target()
        return LinkConfig(
            host=host,
            port=port,
            client_id=self._s.gateway_id,
            username=user,
            password=password,
            protocol=self._s.mqtt_protocol,
            keepalive_s=self._s.mqtt_keepalive_s,
            session_expiry_s=self._s.mqtt_session_expiry_s,
            max_inflight=self._s.max_inflight,
            will_topic=self._topic(Kind.STATE),
            will_payload=self._state(False),
        )

    # ----- lifecycle --------------------------------------------------------------------
    async def run(self, stop: asyncio.Event) -> None:
        """Keep a session up until ``stop`` is set; then say goodbye (retained offline)."""
        attempt = 0
        while not stop.is_set():
            try:
                await self._session(stop)
                return
            except LinkError as exc:
                self.connected.clear()
                attempt = 0 if self._was_up else attempt + 1
                ceiling = min(self._s.reconnect_max_s, self._s.reconnect_min_s * 2**attempt)
                delay = random.uniform(0, ceiling)
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
        self._window = asyncio.Semaphore(self._s.max_inflight)
        async with MqttLink(self._link_config()) as link:
            self._was_up = True
            self.sessions += 1
            await link.subscribe(gateway_subscriptions(self._s.region, self._s.gateway_id))
            self._registry.changed.clear()
            await link.publish(self._topic(Kind.BIRTH), self.birth().to_json())
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
        while True:
            self._wake.clear()
            rows = await self._outbox.unsent(
                self._s.max_inflight, exclude=self._inflight | self._acked_set
            )
            if not rows:
                await self._wake.wait()
                continue
            for row in rows:
                await self._window.acquire()
                self._inflight.add(row.seq)
                tg.create_task(self._send_one(link, row))

    async def _send_one(self, link: MqttLink, row: OutboxRow) -> None:
        try:
            await link.publish(self._topic(row.kind), row.payload)
            self._acked.append(row.seq)
            self._acked_set.add(row.seq)
            self.published += 1
        finally:
            self._inflight.discard(row.seq)
            self._window.release()
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

    async def _birth_on_change(self, link: MqttLink) -> None:
        while True:
            await self._registry.changed.wait()
            self._registry.changed.clear()
            await link.publish(self._topic(Kind.BIRTH), self.birth().to_json())

    # ----- receiving --------------------------------------------------------------------
    async def _receive(self, link: MqttLink) -> None:
        async for raw_topic, payload in link.messages():
            try:
                kind = parse_topic(raw_topic).kind
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
        if message.stream_id != self._outbox.stream_id:
            log.info(
                "gateway %s: stored for another stream %s ignored",
                self._s.gateway_id,
                message.stream_id,
            )
            return
        deleted = await self._outbox.apply_stored(message.stream_id, message.upto_seq)
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
