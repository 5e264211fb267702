"""Gateway events stored once and emitted on the bus once: a gateway publishes an
``isolator_open`` event twice over MQTT (a redelivery); ingest (a real worker) stores one
row in ``ingest.events`` and the outbox relay puts exactly one ``gateway.isolator_open``
on the bus — the in-process bus and RabbitMQ."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest

from cloud.adapters.postgres import create_pool
from cloud.bootstrap import cloud_events, create_ingest_worker
from cloud.events.amqp import RabbitBus
from cloud.events.bus import EventBus, InProcessBus, Subscription
from cloud.events.outbox import Event
from cloud.ingest import IngestWorker
from cloud.ingest.pipeline import IngestPipeline
from cloud.registry import RegistryService
from cloud.telemetry import TelemetryStore
from contracts.timeutil import to_wire, utc_now
from tests.integration.test_cloud_ingest import (
    GW,
    TestGateway,
    _query,
    _settings,
    gateway,
    registry,
)
from tests.integration.test_ingest_scale import _batch, _message
from tests.waiting import until

pytestmark = pytest.mark.integration
__all__ = ["gateway", "registry"]  # fixtures used here


@pytest.fixture(params=["in-process", "rabbitmq"])
async def bus(request: pytest.FixtureRequest) -> AsyncIterator[EventBus]:
    """An unstarted bus (``cloud_events`` starts and closes it); RabbitMQ names of its own
    on the shared broker."""
    if request.param == "in-process":
        yield InProcessBus()
        return
    url = request.getfixturevalue("rabbitmq_url")
    tag = uuid.uuid4().hex[:8]
    yield RabbitBus(url, exchange=f"test.{tag}.events", queue_prefix=f"test.{tag}.")


@pytest.fixture
async def ingest(
    database_url: str, mosquitto_url: str, registry: RegistryService
) -> AsyncIterator[IngestWorker]:
    worker = create_ingest_worker(_settings(database_url, mosquitto_url))
    await asyncio.to_thread(worker.start)
    yield worker
    await asyncio.to_thread(worker.stop)


def _event(stream_id: uuid.UUID, seq: int, name: str) -> dict[str, Any]:
    return {
        "v": 1,
        "stream_id": str(stream_id),
        "seq": seq,
        "ts": to_wire(utc_now()),
        "event": name,
        "severity": "critical",
        "device": "SN-INV-1",
        "detail": {"source": "test"},
    }


async def test_a_gateway_event_sent_twice_is_stored_once_and_delivered_once(
    bus: EventBus,
    ingest: IngestWorker,
    gateway: TestGateway,
    registry: RegistryService,
    database_url: str,
) -> None:
    pool = create_pool(database_url, min_size=1, max_size=4, name="test-events-bus")
    delivered: list[Event] = []

    async def record(event: Event) -> None:
        if event.payload.get("stream_id") == str(gateway.stream_id):
            delivered.append(event)

    def names() -> list[str]:
        return [e.name for e in delivered]

    try:
        async with cloud_events(pool, registry=registry, bus=bus) as runtime:
            try:
                await runtime.bus.subscribe(
                    Subscription("test-alarms", "*.ingest.gateway.*", record)
                )
                # The device reports first (so ingest knows it), then trips its isolator.
                await asyncio.to_thread(gateway.publish, "telemetry", gateway.telemetry(1))
                alarm = _event(gateway.stream_id, 2, "isolator_open")
                await asyncio.to_thread(gateway.publish, "event", alarm)
                await asyncio.to_thread(gateway.publish, "event", alarm)  # a redelivery
                marker = _event(gateway.stream_id, 3, "isolator_closed")
                await asyncio.to_thread(gateway.publish, "event", marker)
                # The relay publishes in outbox order and one consumer takes them in order:
                # once the later event is in, a second copy of the first would be too.
                await until(
                    lambda: "gateway.isolator_closed" in names(), 30, "the later event delivered"
                )
                await until(lambda: ingest.stats.messages, 10, "all four handled", at_least=4)
            finally:
                if isinstance(runtime.bus, RabbitBus) and runtime.bus.connected:
                    await runtime.bus.delete_topology()
    finally:
        pool.close()

    assert names() == ["gateway.isolator_open", "gateway.isolator_closed"]
    first = delivered[0]
    assert first.region.value == "au"
    assert first.source == "ingest"
    assert first.payload["gateway_id"] == GW
    assert (first.payload["event"], first.payload["seq"]) == ("isolator_open", 2)
    assert first.payload["severity"] == "critical"
    rows = _query(
        database_url,
        "SELECT seq, event FROM ingest.events WHERE stream_id = %s ORDER BY seq",
        (gateway.stream_id,),
    )
    assert rows == [(2, "isolator_open"), (3, "isolator_closed")]
    outbox = _query(
        database_url,
        "SELECT name, published_at IS NOT NULL FROM ingest.outbox"
        " WHERE name LIKE 'gateway.isolator%%' ORDER BY id",
    )
    assert outbox == [("gateway.isolator_open", True), ("gateway.isolator_closed", True)]
    assert gateway.wait_stored(3).upto_seq == 3


async def test_the_registry_learns_a_device_from_ingest_over_the_bus(
    bus: EventBus,
    ingest: IngestWorker,
    gateway: TestGateway,
    registry: RegistryService,
    database_url: str,
) -> None:
    """A device first seen in telemetry: ingest keys it in the batch's transaction and the
    registry records it under that key from the ``device.discovered`` event, the only way
    it hears of devices (no call between the two)."""
    pool = create_pool(database_url, min_size=1, max_size=4, name="test-device-bus")
    try:
        async with cloud_events(pool, registry=registry, bus=bus) as runtime:
            try:
                await asyncio.to_thread(gateway.publish, "telemetry", gateway.telemetry(1))
                await asyncio.to_thread(gateway.wait_stored, 1)
                await until(
                    lambda: registry.device_id_for(GW, "SN-INV-1") is not None,
                    30,
                    "the registry to learn the device",
                )
            finally:
                if isinstance(runtime.bus, RabbitBus) and runtime.bus.connected:
                    await runtime.bus.delete_topology()
    finally:
        pool.close()
    [(device_id,)] = _query(database_url, "SELECT device_id FROM ingest.device_keys")
    assert registry.device_id_for(GW, "SN-INV-1") == device_id
    assert _query(database_url, "SELECT count(*) FROM registry.inbox") == [(1,)]


def test_a_gateway_event_names_the_device_another_worker_learned(
    database_url: str, registry: RegistryService
) -> None:
    pool = create_pool(database_url, min_size=1, max_size=2, name="test-event-device")
    try:
        first, second = (IngestPipeline(pool, TelemetryStore(pool)) for _ in range(2))
        stream = uuid.uuid4()
        first.process([_message("telemetry", _batch(stream, 1, [utc_now()]))])
        second.process([_message("event", _event(stream, 2, "isolator_open"))])
    finally:
        pool.close()
    [(device_id,)] = _query(database_url, "SELECT device_id FROM ingest.device_keys")
    [(payload,)] = _query(
        database_url, "SELECT payload FROM ingest.outbox WHERE name = 'gateway.isolator_open'"
    )
    assert payload["device_id"] == device_id
