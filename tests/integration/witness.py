"""A witness MQTT client: records what the broker delivers of one gateway, with the local
receive time, and can play the cloud's ``stored`` message."""

from __future__ import annotations

import threading
import time
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson
import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from contracts.messages import StoredMsg
from contracts.timeutil import utc_now
from contracts.topics import topic


@dataclass(frozen=True, slots=True)
class Delivery:
    kind: str
    doc: dict[str, Any]
    received: float  # epoch seconds, local wall clock
    size: int = 0  # payload bytes as delivered

    @property
    def newest_reading(self) -> float:
        """Epoch seconds of the batch's newest reading (telemetry only)."""
        return max(datetime.fromisoformat(r["ts"]).timestamp() for r in self.doc["readings"])


class Witness:
    """Subscribes (persistent session, QoS 1) to every kind a gateway sends."""

    def __init__(
        self,
        port: int,
        gateway_id: str,
        region: str = "au",
        *,
        credentials: tuple[str, str] | None = None,
    ) -> None:
        self.gateway_id = gateway_id
        self.region = region
        self.deliveries: list[Delivery] = []
        self.connected = threading.Event()
        self._lock = threading.Lock()
        self.client = paho.Client(
            CallbackAPIVersion.VERSION2, client_id=f"witness-{uuid.uuid4()}", protocol=paho.MQTTv5
        )
        self.client.reconnect_delay_set(0.05, 0.5)
        if credentials is not None:  # a broker that refuses anonymous clients
            self.client.username_pw_set(*credentials)
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = lambda *a: self.connected.clear()
        self.client.on_message = self._on_message
        props = Properties(PacketTypes.CONNECT)
        props.SessionExpiryInterval = 3600
        self.client.connect("127.0.0.1", port, keepalive=5, clean_start=False, properties=props)
        self.client.loop_start()

    def _on_connect(self, client: paho.Client, *_: Any) -> None:
        client.subscribe(f"potr/v1/{self.region}/{self.gateway_id}/#", qos=1)
        client.on_subscribe = lambda *a: self.connected.set()

    def _on_message(self, _c: paho.Client, _u: Any, msg: paho.MQTTMessage) -> None:
        received = time.time()
        kind = msg.topic.rsplit("/", 1)[1]
        with self._lock:
            delivery = Delivery(kind, orjson.loads(msg.payload), received, len(msg.payload))
            self.deliveries.append(delivery)

    def of(self, kind: str) -> list[Delivery]:
        with self._lock:
            return [d for d in self.deliveries if d.kind == kind]

    def seqs(self, kind: str = "telemetry") -> set[int]:
        return {d.doc["seq"] for d in self.of(kind)}

    def publish_stored(self, stream_id: str, upto_seq: int) -> None:
        """What ingest would say, stamped with this (good) clock."""
        msg = StoredMsg(stream_id=uuid.UUID(stream_id), upto_seq=upto_seq, ts=utc_now())
        self.client.publish(topic(self.region, self.gateway_id, "stored"), msg.to_json(), qos=1)

    def __enter__(self) -> Witness:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()
