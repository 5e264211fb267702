"""A probe MQTT client for identity tests: connects as someone (or no one), reports the
broker's CONNACK verdict, publishes, and records what the broker delivers to it.

Under MQTT 3.1.1 a denied publish is silent and under v5 it may be answered, so a denial
is always asserted on the receiving side: a subscriber with rights never gets it. Each
probe publishes a unique marker after its forgeries on a topic the subscriber may read,
so "not received" is judged once later traffic has arrived (no fixed wait).
"""

from __future__ import annotations

import contextlib
import ssl
import threading
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion

__all__ = ["Probe", "ProbeTls"]


@dataclass(frozen=True)
class ProbeTls:
    ca_file: Path
    cert_file: Path | None = None
    key_file: Path | None = None


@dataclass
class Probe:
    port: int
    username: str | None = None
    password: str | None = None
    tls: ProbeTls | None = None
    protocol: int = paho.MQTTv5
    client_id: str = field(default_factory=lambda: f"probe-{uuid.uuid4().hex[:8]}")
    received: list[tuple[str, bytes]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self._arrived = threading.Condition(self._lock)
        self._connack = threading.Event()
        self._gone = threading.Event()
        self.reason: str | None = None
        self.client = paho.Client(
            CallbackAPIVersion.VERSION2, client_id=self.client_id, protocol=self.protocol
        )
        if self.username is not None:
            self.client.username_pw_set(self.username, self.password)
        if self.tls is not None:
            self.client.tls_set(
                ca_certs=str(self.tls.ca_file),
                certfile=str(self.tls.cert_file) if self.tls.cert_file else None,
                keyfile=str(self.tls.key_file) if self.tls.key_file else None,
                cert_reqs=ssl.CERT_REQUIRED,
            )
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = self._on_disconnect
        self.client.on_message = self._on_message

    # -- connection -------------------------------------------------------------------
    def connect(self, timeout_s: float = 5.0) -> bool:
        """True when the broker accepted the connection; else ``reason`` says why (a
        refused CONNACK, a failed TLS handshake, a closed socket)."""
        try:
            self.client.connect("127.0.0.1", self.port, keepalive=30)
        except (OSError, ssl.SSLError) as exc:
            self.reason = f"{type(exc).__name__}: {exc}"
            return False
        self.client.loop_start()
        if not self._connack.wait(timeout_s):
            self.reason = self.reason or "no CONNACK"
            self.close()
            return False
        if self.reason is not None:
            self.close()
            return False
        return True

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()

    def wait_disconnected(self, timeout_s: float) -> bool:
        return self._gone.wait(timeout_s)

    def _on_connect(
        self, _c: object, _u: object, _f: object, rc: object, _p: object = None
    ) -> None:
        if getattr(rc, "is_failure", False):
            self.reason = str(rc)
        self._connack.set()

    def _on_disconnect(self, *args: object) -> None:
        self._gone.set()
        if not self._connack.is_set():
            self.reason = self.reason or f"disconnected: {args[3] if len(args) > 3 else ''}"
            self._connack.set()

    def _on_message(self, _c: object, _u: object, msg: paho.MQTTMessage) -> None:
        with self._arrived:
            self.received.append((msg.topic, bytes(msg.payload)))
            self._arrived.notify_all()

    # -- traffic ----------------------------------------------------------------------
    def subscribe(self, *filters: str, timeout_s: float = 5.0) -> None:
        done = threading.Event()
        self.client.on_subscribe = lambda *a: done.set()
        self.client.subscribe([(f, 1) for f in filters])
        if not done.wait(timeout_s):
            raise TimeoutError(f"no SUBACK for {filters}")

    def publish(self, topic: str, payload: bytes, *, retain: bool = False) -> None:
        """QoS 1; returns once the broker answered (or the link dropped)."""
        info = self.client.publish(topic, payload, qos=1, retain=retain)
        with contextlib.suppress(RuntimeError, ValueError):  # the broker hung up on us
            info.wait_for_publish(timeout=5.0)

    def topics(self) -> list[str]:
        with self._lock:
            return [t for t, _ in self.received]

    def wait_for(self, topic: str, payload: bytes, timeout_s: float = 5.0) -> bool:
        with self._arrived:
            return self._arrived.wait_for(lambda: (topic, payload) in self.received, timeout_s)
