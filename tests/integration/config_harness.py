"""The stack the config service's tests share against real PostgreSQL and Mosquitto:
the service connected to the broker with a demo signing key, its tracker told of the
gateways' births, and a fake gateway subscribed to a gateway's ``cmd``/``config``
topics whose messages land in a queue.

Plain context managers; each test module keeps its own fixtures (one test's each).
Nothing here holds state from one test to the next.
"""

from __future__ import annotations

import queue
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from cloud.adapters.mqtt import InboundMessage, MqttConsumer, MqttOptions
from cloud.adapters.postgres import Connection, ConnectionPool, create_pool
from cloud.bootstrap import create_tracker, open_config_service
from cloud.config import (
    ConfigService,
    ConfigSettings,
    ConfigTracker,
    public_key_path,
    write_key_file,
)
from cloud.events.types import GatewayBirth
from cloud.migrate import migrate
from contracts.signing import TrustedKeys
from contracts.timeutil import utc_now
from contracts.topics import Kind, Region, topic

__all__ = ["FakeGateway", "Stack", "config_stack"]

Pool = ConnectionPool[Connection[Any]]


@dataclass
class Stack:
    settings: ConfigSettings
    pool: Pool
    service: ConfigService
    tracker: ConfigTracker
    trusted: TrustedKeys
    mqtt: MqttOptions


@contextmanager
def config_stack(
    database_url: str,
    mosquitto_url: str,
    tmp_path: Path,
    *,
    pool_name: str,
    births: Sequence[GatewayBirth],
) -> Iterator[Stack]:
    """Every schema of ``database_url`` migrated, a demo key in ``tmp_path``, the
    service connected (10 s at most) over a pool of 8 named ``pool_name``, and its
    tracker told of ``births``; the pool closed after."""
    migrate(database_url)
    key_file = tmp_path / "cloud.pem"
    write_key_file(key_file, demo=True)
    settings = ConfigSettings(
        database_url=database_url,
        mqtt_url=mosquitto_url,
        signing_key_file=key_file,
        command_expiry_grace_s=0,
        config_publish_timeout_s=5,
    )
    pool = create_pool(database_url, max_size=8, name=pool_name)
    try:
        with open_config_service(settings, pool, connect_timeout_s=10) as (service, connected):
            assert connected
            tracker = create_tracker(settings, pool)
            for birth in births:
                tracker.apply_birth(uuid.uuid4(), "au", utc_now(), birth)
            endpoint = settings.mqtt
            yield Stack(
                settings,
                pool,
                service,
                tracker,
                TrustedKeys.from_pems([public_key_path(key_file).read_bytes()]),
                MqttOptions(endpoint.host, endpoint.port, client_id="unused"),
            )
    finally:
        pool.close()


class FakeGateway:
    """Subscribes to ``gateway_id``'s cmd and config topics (as client ``name``);
    messages land in a queue."""

    def __init__(self, options: MqttOptions, gateway_id: str, name: str) -> None:
        self.messages: queue.Queue[InboundMessage] = queue.Queue()
        self._consumer = MqttConsumer(
            MqttOptions(options.host, options.port, client_id=name, session_expiry_s=0),
            [topic(Region.AU, gateway_id, Kind.CMD), topic(Region.AU, gateway_id, Kind.CONFIG)],
            self._receive,
        )

    def _receive(self, message: InboundMessage) -> None:
        self._consumer.ack(message)
        self.messages.put(message)

    def __enter__(self) -> FakeGateway:
        self._consumer.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._consumer.stop()

    def next(self, within_s: float = 10.0) -> tuple[str, dict[str, Any]]:
        message = self.messages.get(timeout=within_s)
        return message.topic.rsplit("/", 1)[-1], orjson.loads(message.payload)
