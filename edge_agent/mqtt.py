"""The agent's only MQTT-library module: a QoS 1 link over aiomqtt (paho underneath).

MQTT 5 uses ``clean_start=False`` plus a session expiry, so subscriptions survive a
reconnect; 3.1.1 (amqtt demo) uses a persistent session. Library errors surface as
:class:`LinkError`.

TLS (``LinkConfig.tls``) verifies the broker's certificate against ``ca_file`` (the
system's CAs without one) and its host name; a client certificate is the gateway's
identity where the broker asks for one.

Keepalive: paho sends PINGREQ after a keepalive of silence and gives up when no PINGRESP
came a keepalive later, so a half-open link would go unnoticed for up to 2 x keepalive.
The CONNECT still announces ``keepalive_s`` (the broker drops a silent gateway after 1.5
x that, and fires its will), but once connected paho pings at half of it: a dead link is
noticed within ``keepalive_s`` plus paho's one-second timer, inside 1.5 x keepalive.

Every wait on the broker is bounded: CONNACK, SUBACK and PUBACK by ``publish_timeout_s``,
the DISCONNECT by ``disconnect_timeout_s`` (a goodbye on a dead link is given up, logged,
and paho's keepalive closes the socket). A cancel that aiomqtt's ``wait_for`` loses is
raised as the call returns (:mod:`edge_agent.cancellation`).
"""

from __future__ import annotations

import logging
import socket
import ssl
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any

import aiomqtt
import paho.mqtt.client as mqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from edge_agent.cancellation import honour_cancel

log = logging.getLogger(__name__)


class LinkError(Exception):
    """The broker connection failed or was lost."""


@dataclass(frozen=True, slots=True)
class LinkConfig:
    host: str
    port: int
    client_id: str
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    protocol: str = "5"
    keepalive_s: int = 30
    session_expiry_s: int = 3600
    max_inflight: int = 20
    will_topic: str | None = None
    will_payload: bytes | None = None
    publish_timeout_s: float = 30.0
    #: How long leaving waits for the DISCONNECT to go out before dropping the link.
    disconnect_timeout_s: float = 5.0
    tls: bool = False
    #: PEM files: the CA(s) the broker's certificate must chain to; the client's own
    #: certificate and private key.
    ca_file: str | None = None
    cert_file: str | None = None
    key_file: str | None = None


def _tls(cfg: LinkConfig) -> aiomqtt.TLSParameters | None:
    if not cfg.tls:
        return None
    # PROTOCOL_TLS_CLIENT: TLS 1.2 or later, certificate and host name checked. aiomqtt
    # loads the files in its connect thread, off the event loop.
    return aiomqtt.TLSParameters(
        ca_certs=cfg.ca_file,
        certfile=cfg.cert_file,
        keyfile=cfg.key_file,
        cert_reqs=ssl.CERT_REQUIRED,
        tls_version=ssl.PROTOCOL_TLS_CLIENT,
    )


class MqttLink:
    """``async with MqttLink(cfg) as link``: connected for the block's duration."""

    def __init__(self, cfg: LinkConfig) -> None:
        self._cfg = cfg
        #: The broker's Maximum Packet Size from CONNACK (MQTT 5), None when not given.
        self.broker_max_packet: int | None = None
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
            tls_params=_tls(cfg),
            tls_insecure=False if cfg.tls else None,
            # Nagle off: an ack right after a PUBACK would otherwise wait for the
            # broker's delayed ACK (~40 ms a hop; bench/control_latency.py).
            socket_options=((socket.IPPROTO_TCP, socket.TCP_NODELAY, 1),),
        )
        self._watch_connack()

    def _watch_connack(self) -> None:
        # aiomqtt 2.x drops CONNACK's properties and keeps paho in ``_client`` (private;
        # pinned <3, covered by tests against Mosquitto): wrap its handler to read them.
        paho: mqtt.Client = self._client._client
        forward = paho.on_connect

        def on_connect(client: mqtt.Client, userdata: Any, *args: Any) -> None:
            properties = args[2] if len(args) > 2 else None
            size = getattr(properties, "MaximumPacketSize", None)
            self.broker_max_packet = int(size) if size else None
            # Ping at half the session's keepalive (after a Server Keep Alive, if any):
            # the public setter refuses once connected, so the attribute it sets.
            client._keepalive = client.keepalive / 2  # type: ignore[assignment]
            if forward is not None:
                forward(client, userdata, *args)

        paho.on_connect = on_connect

    async def __aenter__(self) -> MqttLink:
        try:
            with honour_cancel():
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
        # aiomqtt waits for paho's on_disconnect, which comes once the DISCONNECT is
        # written, so with a full send buffer on a dead link not before paho's keepalive
        # gives up; it bounds the wait by the client's (public) timeout.
        self._client.timeout = self._cfg.disconnect_timeout_s
        try:
            await self._client.__aexit__(exc_type, exc, tb)
        except aiomqtt.MqttError as err:  # only that wait timing out: log, drop the link
            log.warning(
                "mqtt %s: no clean disconnect from %s:%d within %.1fs (%s); link dropped",
                self._cfg.client_id,
                self._cfg.host,
                self._cfg.port,
                self._cfg.disconnect_timeout_s,
                err,
            )

    async def publish(self, topic: str, payload: bytes, *, retain: bool = False) -> None:
        """Publish with QoS 1; returns once the broker's PUBACK arrived."""
        try:
            with honour_cancel():
                await self._client.publish(topic, payload, qos=1, retain=retain)
        except aiomqtt.MqttError as exc:
            raise LinkError(f"publish {topic}: {exc}") from None

    async def subscribe(self, topics: list[str]) -> None:
        try:
            with honour_cancel():
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
