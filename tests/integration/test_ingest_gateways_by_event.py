"""Ingest learns gateways from the registry's events only (issue 11): ``gateway.registered``
and ``gateway.updated`` go through the registry's outbox, the real relay and a bus to
ingest's handlers, which keep ``ingest.gateways`` (migration 009). No call from ingest into
the registry: a gateway is refused until its registration arrives, accepted right after,
and its site's time zone decides completeness' local days as soon as a change arrives."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import psycopg
import pytest

from cloud.adapters.postgres import Connection, ConnectionPool, create_pool
from cloud.bootstrap import cloud_events
from cloud.events.amqp import RabbitBus
from cloud.events.bus import InProcessBus
from cloud.events.outbox import Event
from cloud.events.runtime import BusSettings
from cloud.ingest import CompletenessReader, IngestPipeline, event_subscriptions
from cloud.migrate import migrate
from cloud.registry import ConflictError, GatewayIn, RegistryService, Site, SiteIn
from cloud.telemetry import TelemetryStore
from contracts.timeutil import utc_now
from tests.integration.harness import migrations_before
from tests.integration.registry_events import deliver_gateway_events
from tests.integration.test_cloud_ingest import GW, _query
from tests.integration.test_ingest_scale import _batch, _birth, _message
from tests.waiting import until

pytestmark = pytest.mark.integration

Pool = ConnectionPool[Connection[Any]]
TOKYO = ZoneInfo("Asia/Tokyo")  # UTC+9 all year (no DST): the arithmetic below is fixed


@pytest.fixture
def pool(database_url: str) -> Iterator[Pool]:
    migrate(database_url)
    pool = create_pool(database_url, max_size=4, name="test-gateways")
    yield pool
    pool.close()


@pytest.fixture
def registry(pool: Pool) -> RegistryService:
    return RegistryService(pool)


def _register(registry: RegistryService, time_zone: str = "Asia/Tokyo") -> Site:
    site = registry.add_site(SiteIn(name="Tokyo office", region="au", time_zone=time_zone))
    registry.add_gateway(GatewayIn(id=GW, site_id=site.id))
    return site


def _known(database_url: str) -> list[tuple[Any, ...]]:
    return _query(database_url, "SELECT gateway_id, region, time_zone FROM ingest.gateways")


def _registry_events(database_url: str) -> list[Event]:
    """What the registry emitted, in order, as the relay would publish it."""
    rows = _query(
        database_url,
        "SELECT event_id, name, region, source, occurred_at, payload FROM registry.outbox"
        " ORDER BY id",
    )
    return [
        Event(id=i, name=n, region=r, source=s, occurred_at=at, payload=p)
        for i, n, r, s, at, p in rows
    ]


async def _publish(pool: Pool, *batches: list[Event]) -> InProcessBus:
    """Each batch on an in-process bus with ingest's handlers (publish returns once the
    handlers are done)."""
    async with InProcessBus() as bus:
        for sub in event_subscriptions(pool):
            await bus.subscribe(sub)
        for events in batches:
            await bus.publish(events, timeout_s=10)
    return bus


# -- the handler ------------------------------------------------------------------------
async def test_a_registration_delivered_twice_is_one_row(
    pool: Pool, registry: RegistryService, database_url: str
) -> None:
    site = _register(registry)
    with pytest.raises(ConflictError):  # refused: its transaction emits nothing
        registry.add_gateway(GatewayIn(id=GW, site_id=site.id))
    [event] = _registry_events(database_url)
    assert (event.name, event.source, event.routing_key) == (
        "gateway.registered",
        "registry",
        "au.registry.gateway.registered",
    )

    bus = await _publish(pool, [event], [event])  # at-least-once: the same event again
    assert bus.dead_letters == []
    assert _known(database_url) == [(GW, "au", "Asia/Tokyo")]
    assert _query(database_url, "SELECT event_id FROM ingest.inbox") == [(event.id,)]


async def test_an_older_registration_never_overwrites_a_newer_one(
    pool: Pool, registry: RegistryService, database_url: str
) -> None:
    site = _register(registry)
    registry.set_site_time_zone(site.id, "Etc/UTC")
    registered, updated = _registry_events(database_url)
    assert (registered.name, updated.name) == ("gateway.registered", "gateway.updated")

    await _publish(pool, [updated], [registered])  # out of order (two queues)
    assert _known(database_url) == [(GW, "au", "Etc/UTC")]
    assert _query(database_url, "SELECT count(*) FROM ingest.inbox") == [(2,)]


# -- the pipeline -----------------------------------------------------------------------
def test_a_gateway_is_refused_until_its_registration_arrives_then_accepted_at_once(
    pool: Pool, registry: RegistryService, database_url: str
) -> None:
    pipeline = IngestPipeline(pool, TelemetryStore(pool))
    stream = uuid.uuid4()
    _register(registry)  # committed in the registry, not yet relayed
    first = pipeline.process([_message("telemetry", _batch(stream, 1, [utc_now()]))])
    assert (first.dead_letters, first.readings_added, first.stored) == (1, 0, [])
    [(reason,)] = _query(database_url, "SELECT reason FROM ingest.dead_letters")
    assert f"unknown gateway {GW!r}" in reason
    # Not counted in its stream: the agent resends what `stored` does not cover.
    assert _query(database_url, "SELECT count(*) FROM ingest.streams") == [(0,)]

    assert deliver_gateway_events(pool) == 1  # one relay round
    # The same pipeline (no remembered refusal): the resend is stored.
    again = pipeline.process([_message("telemetry", _batch(stream, 1, [utc_now()]))])
    assert (again.dead_letters, again.readings_added) == (0, 2)
    assert [(n.gateway_id, n.upto_seq) for n in again.stored] == [(GW, 1)]


def _send_local_day(pipeline: IngestPipeline, day: date) -> None:
    """A birth (poll 60 s), then one reading a minute over ``day`` in Tokyo."""
    stream = uuid.uuid4()
    pipeline.process([_message("birth", _birth(stream, poll_s=60, publish_s=300))])
    start = datetime.combine(day, datetime.min.time(), TOKYO).astimezone(UTC)
    stamps = [start + timedelta(minutes=m) for m in range(1440)]
    for seq, i in enumerate(range(0, 1440, 240), start=1):
        pipeline.process([_message("telemetry", _batch(stream, seq, stamps[i : i + 240]))])


def _days(pool: Pool, device_id: int, first: date, last: date) -> tuple[str, list[Any]]:
    found = CompletenessReader(pool).device(device_id, first, last)
    assert found is not None
    return found.time_zone, [(d.day, d.stored, d.expected) for d in found.days]


def test_a_site_time_zone_change_reaches_ingest_and_moves_the_local_days(
    pool: Pool, registry: RegistryService, database_url: str
) -> None:
    site = _register(registry)
    deliver_gateway_events(pool)
    day = (utc_now().astimezone(TOKYO) - timedelta(days=3)).date()
    _send_local_day(IngestPipeline(pool, TelemetryStore(pool)), day)
    [(device,)] = _query(database_url, "SELECT device_id FROM ingest.device_keys")
    before = day - timedelta(days=1)

    # Tokyo's day ``day``: all 1440 minutes, none the day before.
    tokyo = [(before, 0, 1440), (day, 1440, 1440)]
    assert _days(pool, device, before, day) == ("Asia/Tokyo", tokyo)

    registry.set_site_time_zone(site.id, "Etc/UTC")
    assert _days(pool, device, before, day) == ("Asia/Tokyo", tokyo)  # not heard yet
    assert deliver_gateway_events(pool) == 1
    # Tokyo's midnight is 15:00 UTC the day before: 9 h (540 min) fall on the UTC date
    # before, the other 15 h (900 min) on ``day``.
    utc = [(before, 540, 1440), (day, 900, 1440)]
    assert _days(pool, device, before, day) == ("Etc/UTC", utc)


# -- a process's events -----------------------------------------------------------------
async def test_an_ingest_process_knows_earlier_gateways_on_entry_and_later_ones_by_relay(
    pool: Pool, registry: RegistryService, database_url: str
) -> None:
    _register(registry)  # while no process relays: the outbox holds it
    bus = BusSettings(amqp_url=None, outbox_poll_ms=50)  # in-process, whatever the env says
    async with cloud_events(pool, ingest=True, outboxes=("registry",), settings=bus):
        assert _known(database_url) == [(GW, "au", "Asia/Tokyo")]  # caught up on entry
        site = registry.add_site(SiteIn(name="Madrid", region="es", time_zone="Europe/Madrid"))
        registry.add_gateway(GatewayIn(id="gw-later-1", site_id=site.id))
        await until(lambda: len(_known(database_url)) == 2, 10, "the later gateway in ingest")
    assert sorted(_known(database_url)) == [
        (GW, "au", "Asia/Tokyo"),
        ("gw-later-1", "es", "Europe/Madrid"),
    ]


async def test_a_registration_reaches_ingest_over_rabbitmq(
    pool: Pool, registry: RegistryService, database_url: str, rabbitmq_url: str
) -> None:
    tag = uuid.uuid4().hex[:8]
    bus = RabbitBus(rabbitmq_url, exchange=f"test.{tag}.events", queue_prefix=f"test.{tag}.")
    fast = BusSettings(amqp_url=None, outbox_poll_ms=50)
    async with cloud_events(pool, ingest=True, outboxes=("registry",), settings=fast, bus=bus):
        site = _register(registry)
        await until(lambda: _known(database_url) != [], 20, "the gateway in ingest")
        registry.set_site_time_zone(site.id, "Asia/Seoul")
        await until(
            lambda: _known(database_url) == [(GW, "au", "Asia/Seoul")], 20, "the new time zone"
        )


# -- the migration ----------------------------------------------------------------------
def test_the_migration_copies_the_registrys_gateways_and_events_win_over_the_copy(
    database_url: str, tmp_path: Path
) -> None:
    migrate(database_url, migrations_before(tmp_path / "cloud", {"ingest": 9}))
    with psycopg.connect(database_url) as conn:
        conn.execute(
            "INSERT INTO registry.sites (id, name, region, time_zone) VALUES"
            " (1, 'Old', 'au', 'Australia/Perth'), (2, 'Older', 'us', 'America/Denver')"
        )
        conn.execute(
            "INSERT INTO registry.gateways (id, site_id, region)"
            " VALUES ('gw-old-1', 1, 'au'), ('gw-old-2', 2, 'us')"
        )
        conn.execute(
            "INSERT INTO ingest.sessions (gateway_id, region, time_zone, poll_interval_s)"
            " VALUES ('gw-old-1', 'au', 'Australia/Perth', 60)"
        )

    assert migrate(database_url)[0] == "ingest/009_gateways_by_event.sql"  # then later ones
    assert sorted(_known(database_url)) == [
        ("gw-old-1", "au", "Australia/Perth"),
        ("gw-old-2", "us", "America/Denver"),
    ]
    columns = _query(
        database_url,
        "SELECT column_name FROM information_schema.columns"
        " WHERE table_schema = 'ingest' AND table_name = 'sessions' AND column_name = 'time_zone'",
    )
    assert columns == []  # the time zone lives in ingest.gateways now

    pool = create_pool(database_url, max_size=2, name="test-migrated")
    try:
        RegistryService(pool).set_site_time_zone(1, "Australia/Sydney")
        assert deliver_gateway_events(pool) == 1
    finally:
        pool.close()
    assert sorted(_known(database_url))[0] == ("gw-old-1", "au", "Australia/Sydney")


def test_a_fresh_database_has_no_gateway_to_copy(database_url: str) -> None:
    migrate(database_url)  # ingest's migrations run before the registry's tables exist
    assert _known(database_url) == []
