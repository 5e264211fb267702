"""The config service's subscriber to technicians' requests
(``potr/v1/<region>/_tech/+/config_req``), answering each on the sender's reply topic.

Messages arrive on paho's thread and are handled one at a time on the listener's own
thread (database, signing and publishing block); each is acknowledged once answered, so
a crash before the answer gets it redelivered — and a redelivered request that was
already logged is answered ``replayed`` without changing anything. The session outlives
a restart by the requests' maximum age: anything older is refused as stale anyway.

It connects as its own broker identity: the brokers bind client ids to usernames, so
sharing the config publisher's would make the two kick each other off.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Iterable
from dataclasses import replace

from cloud.adapters.mqtt import InboundMessage, MqttConsumer, MqttOptions
from cloud.config.tech_push import TechnicianPushes
from cloud.config.tech_rules import MAX_AGE
from contracts.topics import Region, tech_request_filter

__all__ = ["TechRequestListener"]

log = logging.getLogger(__name__)


class TechRequestListener:
    """``start`` subscribes to ``regions``' technician requests; ``stop`` ends it."""

    def __init__(
        self, pushes: TechnicianPushes, options: MqttOptions, regions: Iterable[Region | str]
    ) -> None:
        self._pushes = pushes
        self._inbox: queue.Queue[InboundMessage | None] = queue.Queue(maxsize=1_000)
        self._consumer = MqttConsumer(
            replace(options, session_expiry_s=int(MAX_AGE.total_seconds()), receive_maximum=100),
            [tech_request_filter(r) for r in sorted({Region(r) for r in regions})],
            self._inbox.put,
        )
        self._worker = threading.Thread(target=self._run, name="tech-requests", daemon=True)
        self.handled = 0

    def start(self, timeout_s: float = 10.0) -> None:
        """Subscribed when this returns; :class:`~cloud.adapters.mqtt.MqttError` if not."""
        self._worker.start()
        try:
            self._consumer.start(timeout_s)
        except Exception:
            self._inbox.put(None)
            raise

    def stop(self) -> None:
        self._consumer.stop()
        self._inbox.put(None)
        self._worker.join(timeout=10)

    def __enter__(self) -> TechRequestListener:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _run(self) -> None:
        while (message := self._inbox.get()) is not None:
            try:
                reply = self._pushes.handle(message.topic, message.payload)
                if reply is not None and not self._consumer.publish(
                    reply.topic, reply.response.to_json(), qos=1
                ):
                    log.warning("answer to %s not sent", reply.topic)
            except Exception:  # one bad request must not end the listener
                log.exception("technician request on %s failed", message.topic)
                continue  # not acknowledged: redelivered on the next connection
            self._consumer.ack(message)
            self.handled += 1
