"""Outbox → relay → bus → inbox, against real PostgreSQL and RabbitMQ.

Scenario 8 of reliability.md: RabbitMQ SIGKILLed while services publish events through
the outbox; after its restart every event is delivered and handlers run exactly once in
effect.
"""

from __future__ import annotations

import asyncio
import itertools
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

from cloud.adapters.postgres import Connection, ConnectionPool, create_pool
from cloud.bootstrap import EMITTING_SCHEMAS, cloud_events
from cloud.events.amqp import RabbitBus
from cloud.events.bus import InProcessBus, RetryPolicy, Subscription
from cloud.events.outbox import Event, emit, handle_once
from cloud.events.relay import OutboxRelay
from cloud.events.runtime import BusSettings, event_runtime
from cloud.events.types import GatewayBirth, gateway_birth_event
from cloud.migrate import migrate
from cloud.registry import GatewayIn, RegistryService, SiteIn
from cloud.registry import subscriptions as registry_subscriptions
from contracts.messages import DeviceInfo
from contracts.topics import Region
from potr.servers.ports import free_port
from potr.servers.rabbitmq import PrivateRabbitMQ
from tests.waiting import until

pytestmark = pytest.mark.integration
Pool = ConnectionPool[Connection[Any]]


@pytest.fixture
def pool(database_url: str) -> Iterator[Pool]:
    migrate(database_url)
    with create_pool(database_url, max_size=8, name="test-events") as p:
        with p.connection() as conn:
            conn.execute(
                "CREATE SCHEMA effects;"
                " CREATE TABLE effects.inbox (event_id uuid PRIMARY KEY,"
                "  handled_at timestamptz NOT NULL DEFAULT now());"
                " CREATE TABLE effects.applied (event_id uuid NOT NULL, n int NOT NULL)"
            )
        yield p


@pytest.fixture
def registry(pool: Pool) -> RegistryService:
    service = RegistryService(pool)
    site = service.add_site(SiteIn(name="Bondi", region=Region.AU, time_zone="Australia/Sydney"))
    for i in range(5):
        service.add_gateway(GatewayIn(id=f"gw-{i:03d}", site_id=site.id))
    return service


class EffectCounter:
    """A consumer whose effect is visible per event: one ``effects.applied`` row each."""

    def __init__(self, pool: Pool) -> None:
        self.pool = pool
        self.calls = 0

    async def __call__(self, event: Event) -> None:
        self.calls += 1
        await asyncio.to_thread(self._apply, event)

    def _apply(self, event: Event) -> None:
        with self.pool.connection() as conn:
            if handle_once(conn, "effects", event.id):
                conn.execute(
                    "INSERT INTO effects.applied VALUES (%s, %s)", (event.id, event.payload["n"])
                )

    def applied(self) -> tuple[int, int]:
        """(rows, distinct events) of the effect."""
        with self.pool.connection() as conn:
            row = conn.execute(
                "SELECT count(*), count(DISTINCT event_id) FROM effects.applied"
            ).fetchone()
        assert row is not None
        return int(row[0]), int(row[1])


#: Device keys, as ingest would allocate them (unique across gateways).
_KEYS = itertools.count(1)


def _birth(gateway_id: str, devices: int = 2) -> GatewayBirth:
    return GatewayBirth(
        gateway_id=gateway_id,
        stream_id=uuid.uuid4(),
        boot_id="boot-1",
        agent_version="0.1.0",
        publish_interval_s=300,
        devices=[
            DeviceInfo(device=f"inv{d}", endpoint="tcp://10.0.0.2:502", unit_id=d + 1, models=[1])
            for d in range(devices)
        ],
        device_ids={f"inv{d}": next(_KEYS) for d in range(devices)},
    )


def _emit(pool: Pool, events: list[Event], schema: str = "ingest") -> float:
    """Commit ``events`` in one producer transaction; its duration in seconds."""
    started = time.monotonic()
    with pool.connection() as conn:
        for e in events:
            emit(conn, schema, e)
    return time.monotonic() - started


def _counted(n: int) -> Event:
    return Event.model_validate(
        {"name": "telemetry.received", "region": "au", "source": "ingest", "payload": {"n": n}}
    )


def _outbox_pending(pool: Pool, schema: str = "ingest") -> int:
    with pool.connection() as conn:
        row = conn.execute(
            f"SELECT count(*) FROM {schema}.outbox WHERE published_at IS NULL"
        ).fetchone()
    assert row is not None
    return int(row[0])


def _devices(registry: RegistryService) -> int:
    return len(registry.list_devices())


def _inbox(pool: Pool, schema: str) -> int:
    with pool.connection() as conn:
        row = conn.execute(f"SELECT count(*) FROM {schema}.inbox").fetchone()
    assert row is not None
    return int(row[0])


@pytest.fixture
async def rabbit_bus(rabbitmq_url: str) -> AsyncIterator[RabbitBus]:
    """A RabbitBus on the shared broker with names of its own, deleted afterwards."""
    tag = uuid.uuid4().hex[:8]
    bus = RabbitBus(rabbitmq_url, exchange=f"test.{tag}.events", queue_prefix=f"test.{tag}.")
    await bus.start()
    try:
        yield bus
    finally:
        if bus.connected:
            await bus.delete_topology()
        await bus.close()


# -- the in-process bus (the demo) -------------------------------------------------------
async def test_a_birth_emitted_by_ingest_updates_the_registry_once(
    pool: Pool, registry: RegistryService
) -> None:
    birth = gateway_birth_event(Region.AU, _birth("gw-001", devices=3))
    async with cloud_events(pool, registry=registry, bus=InProcessBus()) as runtime:
        _emit(pool, [birth])
        runtime.kick("ingest")
        await until(lambda: _devices(registry) == 3, 10, "the birth's devices in the registry")
        await until(lambda: _outbox_pending(pool) == 0, 10, "the outbox drained")
        # Redelivered (e.g. a relay crash between confirm and commit): no second effect.
        await runtime.bus.publish([birth])
    assert _inbox(pool, "registry") == 1
    assert {d.local_id for d in registry.list_devices(gateway_id="gw-001")} == {
        "inv0",
        "inv1",
        "inv2",
    }


async def test_a_rolled_back_producer_transaction_emits_nothing(pool: Pool) -> None:
    counter = EffectCounter(pool)
    bus = InProcessBus()
    kept, dropped = _counted(1), _counted(2)
    with pool.connection() as conn:
        emit(conn, "ingest", dropped)
        conn.rollback()
    _emit(pool, [kept])
    async with bus:
        await bus.subscribe(Subscription("effects", "#", counter))
        relay = OutboxRelay(pool, "ingest", bus, poll_s=0.05)
        stop = asyncio.Event()
        task = asyncio.create_task(relay.run(stop))
        await until(lambda: relay.drained.is_set() and relay.stats.published == 1, 10, "relay")
        stop.set()
        await task
    assert counter.applied() == (1, 1)


async def test_relays_of_every_schema_on_a_small_pool_leave_their_handlers_a_connection(
    pool: Pool, database_url: str
) -> None:
    """Nine relays on a pool of two, one event in each outbox, a handler that needs a
    connection: a relay holds its claim's connection until the in-process bus says the
    handler is done. Were two relays to claim at once, the handler would find no
    connection until the pool's timeout and the publishes would time out (failures)."""
    counter = EffectCounter(pool)  # the effect's own reads and writes: the small pool's
    for n, schema in enumerate(EMITTING_SCHEMAS):
        _emit(pool, [_counted(n).model_copy(update={"source": schema})], schema)
    settings = BusSettings(outbox_poll_ms=50, outbox_publish_timeout_s=3.0)
    with create_pool(database_url, max_size=2, timeout_s=3.0, name="test-events-two") as small:
        counter.pool = small
        async with event_runtime(
            settings,
            small,
            outboxes=EMITTING_SCHEMAS,
            subscriptions=[Subscription("effects", "#", counter)],
        ) as runtime:
            await until(
                lambda: sum(r.stats.published for r in runtime.relays.values()),
                15,
                "every outbox's event published",
                at_least=len(EMITTING_SCHEMAS),
            )
            failures = {s: r.stats.failures for s, r in runtime.relays.items()}
    counter.pool = pool
    assert counter.applied() == (len(EMITTING_SCHEMAS), len(EMITTING_SCHEMAS))
    assert failures == {s: 0 for s in EMITTING_SCHEMAS}


# -- RabbitMQ -----------------------------------------------------------------------------
async def test_poison_events_go_to_the_dead_letter_exchange(
    pool: Pool, registry: RegistryService, rabbit_bus: RabbitBus
) -> None:
    for sub in registry_subscriptions(registry):
        await rabbit_bus.subscribe(sub)
    await rabbit_bus.wait_connected(20)
    good = gateway_birth_event(Region.AU, _birth("gw-002"))
    unknown_gateway = gateway_birth_event(Region.AU, _birth("gw-999"))
    bad_payload = Event.model_validate(
        {"name": "gateway.birth", "region": "au", "source": "ingest", "payload": {"x": 1}}
    )
    await rabbit_bus.publish([bad_payload, unknown_gateway, good])
    await rabbit_bus.publish_raw("au.ingest.gateway.birth", b"not json")
    await until(lambda: _devices(registry) == 2, 20, "the good birth applied")

    dead: list[tuple[str, bytes]] = []

    async def three_dead() -> bool:
        dead.extend(await rabbit_bus.dead_letters())
        return len(dead) >= 3

    await until(three_dead, 20, "three dead letters")
    bodies = [body for _, body in dead]
    assert b"not json" in bodies
    ids = {Event.from_bytes(b).id for b in bodies if b != b"not json"}
    assert ids == {bad_payload.id, unknown_gateway.id}
    assert {key for key, _ in dead} == {"au.ingest.gateway.birth"}
    assert _inbox(pool, "registry") == 1  # refused events leave no inbox row


async def test_the_relay_never_blocks_producers_while_the_broker_is_away(pool: Pool) -> None:
    # Nothing listens on this port: the bus keeps reconnecting, the relay keeps waiting.
    bus = RabbitBus(f"amqp://guest:guest@127.0.0.1:{free_port()}/", reconnect_max_s=0.5)
    relay = OutboxRelay(pool, "ingest", bus, poll_s=0.05, stats_interval_s=0.1)
    stop = asyncio.Event()
    async with bus:
        task = asyncio.create_task(relay.run(stop))
        durations = [await asyncio.to_thread(_emit, pool, [_counted(i)]) for i in range(200)]
        await until(lambda: relay.stats.pending == 200, 10, "the outbox counted 200 pending")
        stop.set()
        await task
    assert max(durations) < 1.0, f"a producer transaction took {max(durations):.2f}s"
    assert relay.stats.published == 0
    assert not relay.stats.bus_connected
    assert _outbox_pending(pool) == 200


@pytest.mark.chaos
async def test_scenario_8_rabbitmq_killed_while_services_publish(
    pool: Pool, registry: RegistryService, private_rabbitmq: PrivateRabbitMQ
) -> None:
    counter = EffectCounter(pool)
    bus = RabbitBus(private_rabbitmq.url, reconnect_max_s=1.0)
    await bus.subscribe(
        Subscription("effects", "*.ingest.telemetry.received", counter, RetryPolicy())
    )
    total, births = 300, 5
    durations: list[float] = []
    emitted = 0

    async def produce(upto: int) -> None:
        nonlocal emitted
        while emitted < upto:
            events = [_counted(emitted)]
            if emitted % (total // births) == 0:  # a birth now and then, to the registry
                gw = f"gw-{emitted // (total // births):03d}"
                events.append(gateway_birth_event(Region.AU, _birth(gw)))
            durations.append(await asyncio.to_thread(_emit, pool, events))
            emitted += 1

    async with cloud_events(pool, registry=registry, bus=bus) as runtime:
        relay = runtime.relays["ingest"]
        await bus.wait_connected(30)
        # The queues exist now; as on a broker that has run a while, have their state
        # saved (see PrivateRabbitMQ) before the chaos starts.
        await asyncio.to_thread(private_rabbitmq.restart)
        await until(lambda: bus.connected and bus.connects >= 2, 30, "reconnected")
        await produce(100)
        await until(lambda: relay.stats.published >= 50, 20, "events flowing")

        private_rabbitmq.kill()
        await until(lambda: not bus.connected, 10, "the bus noticing the broker is gone")
        await produce(250)  # producers go on while the broker is down
        pending = (await relay.refresh_stats()).pending
        assert pending > 0

        # Producers go on while the node boots; the relay drains once it is back.
        await asyncio.gather(asyncio.to_thread(private_rabbitmq.start), produce(total))
        await until(lambda: _outbox_pending(pool) == 0, 60, "the outbox drained after restart")
        await until(lambda: counter.applied()[1] == total, 60, "every event handled")
        await until(lambda: _devices(registry) == 2 * births, 30, "every birth applied")

    assert counter.applied() == (total, total)  # each effect exactly once
    assert counter.calls >= total
    assert _inbox(pool, "registry") == births
    assert bus.connects >= 3
    assert max(durations) < 1.0, f"a producer transaction took {max(durations):.2f}s"
