"""The fleet's only paho-mqtt module: one gateway connection, driven from outside.

No network thread per client: the worker's selector loop calls ``loop_read`` /
``loop_write`` / ``loop_misc`` (paho's documented external-loop integration through
``socket()``, ``want_write()`` and the ``on_socket_*`` callbacks), and paho calls back
into :class:`LinkEvents` from inside those calls, on the worker's one thread.
"""

from __future__ import annotations

import contextlib
import socket
from typing import Any, Protocol

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode, MQTTProtocolVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from simulators.fleet.spec import MqttTarget


class LinkEvents(Protocol):
    """What the worker loop hears from a connection (all on its own thread)."""

    def socket_opened(self, link: PahoLink, sock: socket.socket) -> None: ...
    def socket_closed(self, link: PahoLink, sock: socket.socket) -> None: ...
    def write_wanted(self, link: PahoLink) -> None: ...
    def write_done(self, link: PahoLink) -> None: ...
    def connected(self, link: PahoLink, ok: bool, reason: str) -> None: ...
    def lost(self, link: PahoLink, reason: str) -> None: ...
    def puback(self, link: PahoLink, mid: int) -> None: ...
    def message(self, link: PahoLink, topic: str, payload: bytes) -> None: ...


class PahoLink:
    """One gateway's MQTT connection (a new one per connect); ``key`` is the gateway's."""

    def __init__(
        self,
        key: int,
        client_id: str,
        target: MqttTarget,
        events: LinkEvents,
        *,
        will_topic: str,
        will_payload: bytes,
        max_inflight: int,
    ) -> None:
        self.key = key
        self.target = target
        self.sock: socket.socket | None = None
        self.write_armed = False
        self.closed = False
        v5 = target.protocol == "5"
        self._v5 = v5
        c = paho.Client(
            CallbackAPIVersion.VERSION2,
            client_id=client_id,
            protocol=MQTTProtocolVersion.MQTTv5 if v5 else MQTTProtocolVersion.MQTTv311,
            clean_session=None if v5 else target.session_expiry_s == 0,
        )
        c.username_pw_set(client_id, target.password)
        c.will_set(will_topic, will_payload, qos=1, retain=True)
        c.max_inflight_messages_set(max_inflight + 4)  # our window plus birth/state
        ev = events
        c.on_socket_open = lambda _c, _u, s: self._opened(ev, s)
        c.on_socket_close = lambda _c, _u, s: self._closed(ev, s)
        c.on_socket_register_write = lambda _c, _u, _s: ev.write_wanted(self)
        c.on_socket_unregister_write = lambda _c, _u, _s: ev.write_done(self)
        c.on_connect = lambda _c, _u, _f, rc, _p: ev.connected(self, not rc.is_failure, str(rc))
        c.on_disconnect = lambda _c, _u, _f, rc, _p: ev.lost(self, str(rc))
        c.on_publish = lambda _c, _u, mid, _rc, _p: ev.puback(self, mid)
        c.on_message = lambda _c, _u, m: ev.message(self, m.topic, bytes(m.payload))
        self.client = c

    def _opened(self, events: LinkEvents, sock: Any) -> None:
        self.sock = sock
        events.socket_opened(self, sock)

    def _closed(self, events: LinkEvents, sock: Any) -> None:
        if self.sock is not None:
            events.socket_closed(self, sock)
        self.sock = None

    def connect(self) -> None:
        """Open the TCP connection (blocking, loopback-fast) and queue CONNECT.

        Raises ``OSError`` when the broker does not answer."""
        t = self.target
        if self._v5:
            props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
            if t.session_expiry_s:
                props.SessionExpiryInterval = t.session_expiry_s
            self.client.connect(
                t.host,
                t.port,
                t.keepalive_s,
                clean_start=t.session_expiry_s == 0,
                properties=props,
            )
        else:
            self.client.connect(t.host, t.port, t.keepalive_s)

    def subscribe(self, topics: list[str]) -> None:
        """One SUBSCRIBE for all ``topics`` (QoS 1)."""
        self.client.subscribe([(t, 1) for t in topics])

    def publish(self, topic: str, payload: bytes, *, retain: bool = False) -> int | None:
        """Queue a QoS 1 publish; its mid, or None when paho refuses (queue full)."""
        info = self.client.publish(topic, payload, qos=1, retain=retain)
        if info.rc != MQTTErrorCode.MQTT_ERR_SUCCESS:
            return None
        return int(info.mid)

    def read(self) -> None:
        self.client.loop_read()

    def write(self) -> None:
        self.client.loop_write()

    def misc(self) -> None:
        self.client.loop_misc()

    def want_write(self) -> bool:
        return bool(self.client.want_write())

    def disconnect(self) -> None:
        """A clean goodbye (no will)."""
        self.client.disconnect()

    def abort(self) -> None:
        """Drop the link without DISCONNECT, as a network failure would: the broker
        publishes the will. The caller unregisters the socket first."""
        self.closed = True
        if self.sock is not None:
            with contextlib.suppress(OSError):
                self.sock.shutdown(socket.SHUT_RDWR)
            self.sock.close()
            self.sock = None
