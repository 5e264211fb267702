"""The fleet as ingest sees it (issue 15's staff screens), against the real PostgreSQL:
gateways and devices by status per region, per gateway and per site, the region's ingest
health and yesterday's completeness — each within the caller's reach, and nothing
outside it.

One world for the module, built through the real paths: the registry registers sites and
gateways (ingest learns them from its events), the ingest pipeline takes births, states
and telemetry, and the offline check announces presence. Region au:

* site A (account A): ``gw-a1`` online — INV-A online, BAT-A asleep, MTR-A faulty;
  ``gw-a2`` offline (its LWT) — INV-A2 (reported online);
* site B (account B): ``gw-b1`` online — INV-B unreachable, the only readings of the last
  hour; ``gw-b2`` registered, never heard from; ``gw-b3`` disabled after its birth —
  INV-B3 — and what it sends then is dead-lettered;
* region es: site E, ``gw-e1`` online — INV-E online, readings of the last minutes.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import orjson
import pytest

from cloud.adapters.mqtt import InboundMessage
from cloud.adapters.postgres import Connection, ConnectionPool, create_pool
from cloud.ingest import (
    DeviceCounts,
    DeviceState,
    FleetStatus,
    FleetStatusReader,
    GatewayCounts,
    GatewayState,
)
from cloud.ingest.limits import IngestLimits
from cloud.ingest.pipeline import IngestPipeline
from cloud.ingest.presence import check_presence
from cloud.migrate import migrate
from cloud.registry import GatewayIn, RegistryService, SiteIn
from cloud.scope import GatewayReach
from cloud.telemetry import TelemetryStore
from contracts.timeutil import to_wire, utc_now
from contracts.topics import Region, topic
from tests.integration.api_world import private_database
from tests.integration.registry_events import deliver_gateway_events

pytestmark = pytest.mark.integration

Pool = ConnectionPool[Connection[Any]]
#: The reader's clock and the offline check's round; messages arrived a minute before.
NOW = utc_now().replace(microsecond=0)
SENT = NOW - timedelta(minutes=1)
#: Keys ingest allocated "two days ago" (the world backdates them), so yesterday counts.
KNOWN_SINCE = NOW - timedelta(days=2)
BRISBANE = ZoneInfo("Australia/Brisbane")  # no DST: every local day is 24 h
POLL_S = 3600.0
ACCOUNT_A, ACCOUNT_B = "acc_" + "a" * 32, "acc_" + "b" * 32
#: Yesterday's local hours with a sample, per device (MTR-A: none; INV-B: keys of today).
YESTERDAY_HOURS = {"INV-A": range(12), "BAT-A": range(6), "INV-A2": range(4), "INV-B": range(3)}
#: Readings of the last hour: INV-B at these minutes before NOW, two metrics each.
RECENT_MINUTES = (2, 30, 90)
EVERYWHERE = GatewayReach()


@dataclass(frozen=True)
class World:
    pool: Pool
    sites: dict[str, int]

    def reader(self) -> FleetStatusReader:
        return FleetStatusReader(self.pool, clock=lambda: NOW)


def _message(
    region: str, gateway: str, kind: str, doc: dict[str, Any], at: datetime = SENT
) -> InboundMessage:
    return InboundMessage(topic(region, gateway, kind), orjson.dumps(doc), 1, 1, at)


def _birth(region: str, gateway: str, stream: uuid.UUID, devices: dict[str, str]) -> InboundMessage:
    return _message(
        region,
        gateway,
        "birth",
        {
            "v": 1,
            "gateway_id": gateway,
            "region": region,
            "agent_version": "test",
            "stream_id": str(stream),
            "boot_id": "boot-1",
            "poll_interval_s": POLL_S,
            "publish_interval_s": POLL_S,
            "devices": [
                {"device": d, "endpoint": "e", "unit_id": 1, "models": [1], "status": status}
                for d, status in devices.items()
            ],
            "ts": to_wire(SENT),
        },
    )


def _state(region: str, gateway: str, online: bool) -> InboundMessage:
    doc = {"v": 1, "online": online, "boot_id": "boot-1", "ts": to_wire(SENT)}
    return _message(region, gateway, "state", doc)


def _telemetry(
    region: str, gateway: str, stream: uuid.UUID, seq: int, stamps: dict[str, list[datetime]]
) -> InboundMessage:
    readings = [
        {"device": d, "ts": to_wire(ts), "values": {"pv_w": 1.0, "pv_hz": 50.0}}
        for d, tss in stamps.items()
        for ts in tss
    ]
    doc = {"v": 1, "stream_id": str(stream), "seq": seq, "readings": readings}
    return _message(region, gateway, "telemetry", doc)


def _yesterday() -> date:
    return NOW.astimezone(BRISBANE).date() - timedelta(days=1)


def _local(day: date, hour: int) -> datetime:
    return datetime.combine(day, time(hour), BRISBANE).astimezone(UTC)


def _build(pool: Pool) -> dict[str, int]:
    registry = RegistryService(pool)
    sites: dict[str, int] = {}
    gateways = {"A": ("gw-a1", "gw-a2"), "B": ("gw-b1", "gw-b2", "gw-b3"), "E": ("gw-e1",)}
    for name, region, zone, account in (
        ("A", Region.AU, "Australia/Brisbane", ACCOUNT_A),
        ("B", Region.AU, "Australia/Brisbane", ACCOUNT_B),
        ("E", Region.ES, "Europe/Madrid", None),
    ):
        site = registry.add_site(SiteIn(name=f"site {name}", region=region, time_zone=zone))
        registry.set_site_account(site.id, account)
        for gw in gateways[name]:
            registry.add_gateway(GatewayIn(id=gw, site_id=site.id))
        sites[name] = site.id
    deliver_gateway_events(pool)

    # No gateway cache: gw-b3's messages are refused as soon as its disabling is handled.
    pipeline = IngestPipeline(pool, TelemetryStore(pool), limits=IngestLimits(gateway_cache_s=0))
    streams = {gw: uuid.uuid4() for gws in gateways.values() for gw in gws}
    day = _yesterday()
    hours = {d: [_local(day, h) for h in hs] for d, hs in YESTERDAY_HOURS.items()}
    recent = [NOW - timedelta(minutes=m) for m in RECENT_MINUTES]
    pipeline.process(
        [
            _birth(
                "au",
                "gw-a1",
                streams["gw-a1"],
                {"INV-A": "online", "BAT-A": "asleep", "MTR-A": "faulty"},
            ),
            _birth("au", "gw-a2", streams["gw-a2"], {"INV-A2": "online"}),
            _state("au", "gw-a2", online=False),  # its LWT
            _birth("au", "gw-b1", streams["gw-b1"], {"INV-B": "unreachable"}),
            _birth("au", "gw-b3", streams["gw-b3"], {"INV-B3": "online"}),
            _birth("es", "gw-e1", streams["gw-e1"], {"INV-E": "online"}),
            _telemetry(
                "au", "gw-a1", streams["gw-a1"], 1, {d: hours[d] for d in ("INV-A", "BAT-A")}
            ),
            _telemetry("au", "gw-a2", streams["gw-a2"], 1, {"INV-A2": hours["INV-A2"]}),
            _telemetry("au", "gw-b1", streams["gw-b1"], 1, {"INV-B": hours["INV-B"] + recent}),
            _telemetry("es", "gw-e1", streams["gw-e1"], 1, {"INV-E": [NOW - timedelta(minutes=1)]}),
        ]
    )
    registry.set_gateway_enabled("gw-b3", False)
    deliver_gateway_events(pool)
    pipeline.process(
        [
            _telemetry("au", "gw-b3", streams["gw-b3"], 2, {"INV-B3": [SENT]}),  # disabled
            _message("au", "gw-zz", "telemetry", {"v": 1}),  # unknown gateway
            _message("au", "gw-old", "telemetry", {"v": 1}, at=NOW - timedelta(hours=2)),
            _message("es", "gw-e9", "telemetry", {"v": 1}),  # another region's
        ]
    )
    with pool.connection() as conn:
        conn.execute(
            "UPDATE ingest.device_keys SET created_at = %s WHERE local_id <> 'INV-B'",
            (KNOWN_SINCE,),
        )
    assert check_presence(pool, NOW, silence_factor=3.0)
    return sites


@pytest.fixture(scope="module")
def world(postgres_server_url: str) -> Iterator[World]:
    with private_database(postgres_server_url) as url:
        migrate(url, schemas={"registry", "ingest", "telemetry"})
        pool = create_pool(url, max_size=4, name="test-fleet")
        try:
            yield World(pool, _build(pool))
        finally:
            pool.close()


def _key(world: World, local_id: str) -> int:
    with world.pool.connection() as conn:
        row = conn.execute(
            "SELECT device_id FROM ingest.device_keys WHERE local_id = %s", (local_id,)
        ).fetchone()
    assert row is not None
    return int(row[0])


def _account_a() -> GatewayReach:
    return GatewayReach(Region.AU, ("gw-a1", "gw-a2"))


def _account_b() -> GatewayReach:
    return GatewayReach(Region.AU, ("gw-b1", "gw-b2", "gw-b3"))


# -- the region's counts ---------------------------------------------------------------------
def test_a_region_counts_gateways_by_status_and_devices_by_state(world: World) -> None:
    assert world.reader().fleet_status(EVERYWHERE, Region.AU) == FleetStatus(
        region="au",
        gateways=GatewayCounts(online=2, offline=1, never_seen=1, disabled=1),
        # INV-A2 behind the offline gw-a2 and INV-B3 behind the disabled gw-b3: unknown.
        devices=DeviceCounts(online=1, asleep=1, unreachable=1, faulty=1, unknown=2),
    )
    assert world.reader().fleet_status(GatewayReach(Region.ES), Region.ES) == FleetStatus(
        region="es", gateways=GatewayCounts(online=1), devices=DeviceCounts(online=1)
    )


def test_a_customers_reach_counts_only_its_gateways(world: World) -> None:
    assert world.reader().fleet_status(_account_a(), Region.AU) == FleetStatus(
        region="au",
        gateways=GatewayCounts(online=1, offline=1),
        devices=DeviceCounts(online=1, asleep=1, faulty=1, unknown=1),
    )


def test_outside_the_reach_a_region_counts_nothing(world: World) -> None:
    nothing = FleetStatus(region="au", gateways=GatewayCounts(), devices=DeviceCounts())
    assert world.reader().fleet_status(GatewayReach(Region.ES), Region.AU) == nothing
    assert world.reader().fleet_status(GatewayReach(Region.AU, ()), Region.AU) == nothing


# -- per gateway ---------------------------------------------------------------------------
def test_gateway_rows_come_offline_first_with_their_device_counts(world: World) -> None:
    a, b = world.sites["A"], world.sites["B"]
    rows = world.reader().gateway_states(EVERYWHERE, Region.AU)
    assert rows == [
        GatewayState(
            gateway_id="gw-a2", site_id=a, status="offline", online=False, last_seen=SENT,
            since=NOW, devices=DeviceCounts(unknown=1),
        ),
        GatewayState(
            gateway_id="gw-b2", site_id=b, status="never_seen", online=False, last_seen=None,
            since=None, devices=DeviceCounts(),
        ),
        GatewayState(
            gateway_id="gw-a1", site_id=a, status="online", online=True, last_seen=SENT,
            since=NOW, devices=DeviceCounts(online=1, asleep=1, faulty=1),
        ),
        GatewayState(
            gateway_id="gw-b1", site_id=b, status="online", online=True, last_seen=SENT,
            since=NOW, devices=DeviceCounts(unreachable=1),
        ),
        GatewayState(
            gateway_id="gw-b3", site_id=b, status="disabled", online=False, last_seen=SENT,
            since=None, devices=DeviceCounts(unknown=1),
        ),
    ]  # fmt: skip


def test_gateway_rows_page_and_filter_by_status(world: World) -> None:
    reader = world.reader()
    ids = [g.gateway_id for g in reader.gateway_states(EVERYWHERE, Region.AU, 2, offset=1)]
    assert ids == ["gw-b2", "gw-a1"]
    online = reader.gateway_states(EVERYWHERE, Region.AU, status="online")
    assert [g.gateway_id for g in online] == ["gw-a1", "gw-b1"]
    with pytest.raises(ValueError, match="limit"):
        reader.gateway_states(EVERYWHERE, Region.AU, 1001)


def test_gateway_rows_stay_within_the_reach(world: World) -> None:
    reader = world.reader()
    ids = [g.gateway_id for g in reader.gateway_states(_account_b(), Region.AU)]
    assert ids == ["gw-b2", "gw-b1", "gw-b3"]
    assert reader.gateway_states(GatewayReach(Region.ES), Region.AU) == []
    assert reader.gateway_states(EVERYWHERE, Region.US) == []


# -- per site ------------------------------------------------------------------------------
def test_a_sites_devices_show_their_state_since_when_and_last_reading(world: World) -> None:
    day = _yesterday()
    states = world.reader().site_device_states(_account_a(), world.sites["A"])
    assert states == [
        DeviceState(
            device_id=_key(world, "BAT-A"), gateway_id="gw-a1", local_id="BAT-A",
            status="asleep", reported_status="asleep", since=NOW,
            last_reading_at=_local(day, 5),
        ),
        DeviceState(
            device_id=_key(world, "INV-A"), gateway_id="gw-a1", local_id="INV-A",
            status="online", reported_status="online", since=KNOWN_SINCE,
            last_reading_at=_local(day, 11),
        ),
        DeviceState(
            device_id=_key(world, "MTR-A"), gateway_id="gw-a1", local_id="MTR-A",
            status="faulty", reported_status="faulty", since=NOW, last_reading_at=None,
        ),
        DeviceState(
            device_id=_key(world, "INV-A2"), gateway_id="gw-a2", local_id="INV-A2",
            status="unknown", reported_status="online", since=KNOWN_SINCE,
            last_reading_at=_local(day, 3),
        ),
    ]  # fmt: skip


def test_another_accounts_site_shows_no_devices(world: World) -> None:
    reader = world.reader()
    assert reader.site_device_states(_account_b(), world.sites["A"]) == []
    assert reader.site_device_states(GatewayReach(Region.ES), world.sites["A"]) == []
    assert len(reader.site_device_states(EVERYWHERE, world.sites["A"])) == 4


# -- ingest health -------------------------------------------------------------------------
def test_ingest_health_counts_the_regions_recent_readings_and_dead_letters(world: World) -> None:
    health = world.reader().ingest_health(EVERYWHERE, Region.AU)
    # INV-B's readings 2 and 30 min old (two metrics each); 90 min is outside the hour.
    assert (health.readings_last_5m, health.readings_last_hour) == (2, 4)
    # gw-b3 (disabled) and gw-zz (unknown) within the hour; gw-old's two hours ago, es's
    # in another region.
    assert health.dead_letters_last_hour == 2
    assert health.newest_reading_at == NOW - timedelta(minutes=2)
    assert health.newest_reading_age_s == 120.0
    assert health.last_stored_at is not None
    assert health.last_stored_at >= NOW
    assert health.at == NOW


def test_ingest_health_within_a_customers_reach(world: World) -> None:
    mine = world.reader().ingest_health(_account_a(), Region.AU)
    assert (mine.readings_last_5m, mine.readings_last_hour, mine.dead_letters_last_hour) == (
        0,
        0,
        0,
    )
    assert mine.newest_reading_at == _local(_yesterday(), 11)
    b = world.reader().ingest_health(_account_b(), Region.AU)
    assert (b.readings_last_hour, b.dead_letters_last_hour) == (4, 1)  # gw-b3's dead letter


def test_ingest_health_outside_the_reach_is_empty(world: World) -> None:
    health = world.reader().ingest_health(GatewayReach(Region.ES), Region.AU)
    assert (health.readings_last_hour, health.dead_letters_last_hour) == (0, 0)
    assert (health.newest_reading_at, health.newest_reading_age_s, health.last_stored_at) == (
        None,
        None,
        None,
    )


# -- completeness --------------------------------------------------------------------------
def test_yesterdays_completeness_averages_the_regions_device_days(world: World) -> None:
    summary = world.reader().completeness_yesterday(EVERYWHERE, Region.AU)
    # Expected 24 samples a day (hourly polls); INV-A 12, BAT-A 6, INV-A2 4, MTR-A none.
    # INV-B was first seen today (no yesterday); INV-B3's gateway is disabled.
    percents = [50.0, 25.0, round(100 * 4 / 24, 2), 0.0]
    assert summary.model_dump() == {
        "region": "au",
        "days": [_yesterday()],
        "devices": 5,
        "device_days": 4,
        "average_percent": round(sum(percents) / 4, 2),
        "sampled": False,
    }


def test_yesterdays_completeness_within_a_reach_and_from_a_sample(world: World) -> None:
    reader = world.reader()
    mine = reader.completeness_yesterday(_account_a(), Region.AU)
    assert (mine.devices, mine.device_days) == (4, 4)
    sampled = reader.completeness_yesterday(EVERYWHERE, Region.AU, sample=2)
    assert (sampled.devices, sampled.sampled) == (5, True)
    assert sampled.device_days <= 2
    outside = reader.completeness_yesterday(GatewayReach(Region.ES), Region.AU)
    assert (outside.devices, outside.device_days, outside.average_percent) == (0, 0, None)
