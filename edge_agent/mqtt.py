"""The agent's only MQTT-library module: a QoS 1 link over aiomqtt (paho underneath).

MQTT 5 uses ``clean_start=False`` plus a session expiry, so subscriptions survive a
reconnect; 3.1.1 (amqtt demo) uses a persistent session. Library errors surface as
:class:`LinkError`.
"""

from __future__ import annotations

import contextlib
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass
from types import TracebackType

import aiomqtt
import paho.mqtt.client as mqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties


class LinkError(Exception):
    """The broker connection failed or was lost."""


@dataclass(frozen=True, slots=True)
class LinkConfig:
    host: str
    port: int
    client_id: str
    username: str | None = None
    password: str | None = None
    protocol: str = "5"
    keepalive_s: int = 30
    session_expiry_s: int = 3600
    max_inflight: int = 20
    will_topic: str | None = None
    will_payload: bytes | None = None
    publish_timeout_s: float = 30.0


class MqttLink:
    """``async with MqttLink(cfg) as link``: connected for the block's duration."""

    def __init__(self, cfg: LinkConfig) -> None:
        self._cfg = cfg
        v5 = cfg.protocol == "5"
        properties = None
        if v5:
            properties = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
            properties.SessionExpiryInterval = cfg.session_expiry_s
        will = None
        if cfg.will_topic is not None:
            will = aiomqtt.Will(cfg.will_topic, cfg.will_payload, qos=1, retain=True)
        self._client = aiomqtt.Client(
            cfg.host,
            cfg.port,
            username=cfg.username,
            password=cfg.password,
            identifier=cfg.client_id,
            protocol=aiomqtt.ProtocolVersion.V5 if v5 else aiomqtt.ProtocolVersion.V311,
            clean_session=None if v5 else False,
            # v5: resume the session; paho refuses any other value than the default on 3.1.1
            clean_start=False if v5 else mqtt.MQTT_CLEAN_START_FIRST_ONLY,
            properties=properties,
            will=will,
            keepalive=cfg.keepalive_s,
            max_inflight_messages=cfg.max_inflight,
            timeout=cfg.publish_timeout_s,
            # Nagle off: an ack right after a PUBACK would otherwise wait for the
            # broker's delayed ACK (~40 ms a hop; bench/control_latency.py).
            socket_options=((socket.IPPROTO_TCP, socket.TCP_NODELAY, 1),),
        )

    async def __aenter__(self) -> MqttLink:
        try:
            await self._client.__aenter__()
        except aiomqtt.MqttError as exc:
            raise LinkError(f"connect to {self._cfg.host}:{self._cfg.port}: {exc}") from None
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        with contextlib.suppress(aiomqtt.MqttError):  # already disconnected
            await self._client.__aexit__(exc_type, exc, tb)

    async def publish(self, topic: str, payload: bytes, *, retain: bool = False) -> None:
        """Publish with QoS 1; returns once the broker's PUBACK arrived."""
        try:
            await self._client.publish(topic, payload, qos=1, retain=retain)
        except aiomqtt.MqttError as exc:
            raise LinkError(f"publish {topic}: {exc}") from None

    async def subscribe(self, topics: list[str]) -> None:
        try:
            await self._client.subscribe([(t, 1) for t in topics])
        except aiomqtt.MqttError as exc:
            raise LinkError(f"subscribe: {exc}") from None

    async def messages(self) -> AsyncIterator[tuple[str, bytes]]:
        """Incoming ``(topic, payload)``; raises :class:`LinkError` on disconnect."""
        try:
            async for message in self._client.messages:
                payload = message.payload
                if isinstance(payload, str):
                    payload = payload.encode()
                elif not isinstance(payload, bytes | bytearray):
                    payload = b"" if payload is None else str(payload).encode()
                yield message.topic.value, bytes(payload)
        except aiomqtt.MqttError as exc:
            raise LinkError(f"receive: {exc}") from None
