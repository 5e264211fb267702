"""PoTR's system meter reaches the telemetry store under its own device key: a simulated
site (PV inverter, battery, grid meter on unit 2, system meter on unit 4), the real agent
(unchanged, SunSpec discovery) → a private Mosquitto → ingest → PostgreSQL.

The site's clock is stepped by hand; after each step the test waits for a reading the
agent took after it, and checks the stored ``import_wh`` / ``export_wh`` rises of each
meter against energies summed here from the plant's history (W * h per step), within
the registers' 1 Wh resolution.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import psycopg
import pytest

from cloud.adapters.postgres import create_pool
from cloud.bootstrap import deliver_registry_events, run_ingest
from cloud.ingest import IngestSettings
from cloud.migrate import migrate
from cloud.registry import GatewayIn, RegistryService, SiteIn
from edge_agent.settings import AgentSettings
from potr.servers.mosquitto import PrivateMosquitto
from simulators.device_site import SYSTEM_METER_UNIT, DeviceSite, DeviceSiteSettings, DeviceSpec
from tests.integration.harness import running_agent
from tests.waiting import until

pytestmark = pytest.mark.integration

NOON_SYDNEY = datetime(2024, 1, 10, 2, 0, tzinfo=UTC)  # 13:00 AEDT, clear sky
GRID, SYSTEM, BATTERY = 2, SYSTEM_METER_UNIT, 3
STEP_S = 900
STEP_H = STEP_S / 3600
WH_RES = 1.0  # whole-Wh registers: a rise read from two of them is within 1 Wh
COUNTERS = ("import_wh", "export_wh")
Counters = dict[str, float]


def _stored_after(database_url: str, gateway: str, local_id: str, after: datetime) -> Counters:
    """The first stored reading of the device taken after ``after`` with both counters,
    read through ingest's key of (gateway, serial); {} if none yet."""
    with psycopg.connect(database_url) as conn:
        rows = conn.execute(
            "SELECT r.ts, m.name, r.value FROM telemetry.readings r"
            " JOIN ingest.device_keys k ON k.device_id = r.device_id"
            " JOIN telemetry.metrics m ON m.id = r.metric_id"
            " WHERE k.gateway_id = %s AND k.local_id = %s AND r.ts > %s"
            " AND m.name = ANY(%s) ORDER BY r.ts",
            (gateway, local_id, after, list(COUNTERS)),
        ).fetchall()
    by_ts: dict[datetime, Counters] = {}
    for ts, name, value in rows:
        by_ts.setdefault(ts, {})[name] = float(value)
    return next((v for v in by_ts.values() if set(v) == set(COUNTERS)), {})


@pytest.fixture
async def site() -> AsyncIterator[DeviceSite]:
    settings = DeviceSiteSettings(
        site_id=f"sysm-{uuid.uuid4().hex[:6]}",
        start_time=NOON_SYDNEY,
        update_period_s=3600.0,  # the physics moves only when the test says
        pv_capacity_w=3000.0,  # the battery's 5 kW can draw past the PV
        devices=[
            DeviceSpec(profile="sim-inverter-103", unit_id=1),
            DeviceSpec(profile="sim-meter-203", unit_id=GRID),
            DeviceSpec(profile="sim-battery", unit_id=BATTERY),
        ],
        system_meter=True,
    )
    async with DeviceSite(settings) as sim:
        sim.pause_updates()
        yield sim


async def _register_gateway(database_url: str, gateway: str) -> None:
    """The registry's site and gateway, told to ingest (it refuses unknown gateways)."""
    migrate(database_url)
    pool = create_pool(database_url, min_size=1, max_size=2, name="sysm-registry")
    try:
        registry = RegistryService(pool)
        site = registry.add_site(
            SiteIn(name="System meter", region="au", time_zone="Australia/Sydney")
        )
        registry.add_gateway(GatewayIn(id=gateway, site_id=site.id))
        await deliver_registry_events(pool)
    finally:
        pool.close()


async def test_the_store_keeps_the_system_meters_counters_under_its_own_key(
    database_url: str, mosquitto: PrivateMosquitto, site: DeviceSite, tmp_path: Path
) -> None:
    gateway = f"gw-{site.settings.site_id}"
    await _register_gateway(database_url, gateway)
    serials = {unit: site.device(unit).serial for unit in (GRID, SYSTEM)}
    assert serials[SYSTEM] == f"SYS-{site.settings.site_id}"
    agent = AgentSettings(
        gateway_id=gateway,
        region="au",
        mqtt_url=mosquitto.url,
        buffer_path=tmp_path / "buffer.sqlite",
        poll_interval_s=0.2,
        stored_timeout_s=2.0,
        reconnect_min_s=0.1,
        reconnect_max_s=0.5,
        endpoints=[
            {
                "name": "site",
                "host": "127.0.0.1",
                "port": site.port,
                "unit_ids": [GRID, SYSTEM],  # SunSpec discovery, as the agent tests run it
                "timeout_s": 1.0,
            }
        ],
    )
    cloud = IngestSettings(
        database_url=database_url,
        mqtt_url=mosquitto.url,
        mqtt_client_id=f"ingest-{uuid.uuid4().hex[:8]}",
        stored_interval_s=0.2,
    )

    async def stored_after(unit: int, mark: datetime) -> Counters:
        found: Counters = {}

        async def check() -> bool:
            nonlocal found
            found = await asyncio.to_thread(
                _stored_after, database_url, gateway, serials[unit], mark
            )
            return bool(found)

        await until(check, 15, f"unit {unit}'s counters read after {mark:%H:%M:%S.%f}")
        return found

    ingest_stop, ingest_ready = asyncio.Event(), asyncio.Event()
    ingest = asyncio.create_task(run_ingest(cloud, ingest_stop, ready=ingest_ready))
    try:
        async with asyncio.timeout(20):
            await ingest_ready.wait()
        async with running_agent(agent):
            mark = datetime.now(UTC)
            first = {unit: await stored_after(unit, mark) for unit in (GRID, SYSTEM)}
            drawn = delivered = grid_in = grid_out = 0.0
            for mode, pct in [(1, 100.0), (2, 60.0)]:  # charge past the PV, then discharge
                point = "124.InWRte" if mode == 1 else "124.OutWRte"
                site.set_point(BATTERY, point, pct)
                site.set_point(BATTERY, "124.StorCtl_Mod", mode)
                site.fast_forward(STEP_S)
                mark = datetime.now(UTC)  # a poll that starts later reads the new registers
                s = site.state
                system_w, grid_w = s.pv_w + s.battery_w, s.load_w - s.pv_w - s.battery_w
                delivered += max(system_w, 0.0) * STEP_H
                drawn += max(-system_w, 0.0) * STEP_H
                grid_in += max(grid_w, 0.0) * STEP_H
                grid_out += max(-grid_w, 0.0) * STEP_H
            last = {unit: await stored_after(unit, mark) for unit in (GRID, SYSTEM)}
    finally:
        ingest_stop.set()
        await asyncio.wait_for(ingest, 20)

    def rise(unit: int, name: str) -> float:
        return last[unit][name] - first[unit][name]

    assert drawn > 400  # the system really drew (5 kW into the battery, 3 kW of PV)
    assert delivered > 1000
    assert rise(SYSTEM, "import_wh") == pytest.approx(delivered, abs=WH_RES)
    assert rise(SYSTEM, "export_wh") == pytest.approx(drawn, abs=WH_RES)
    assert rise(GRID, "import_wh") == pytest.approx(grid_in, abs=WH_RES)
    assert rise(GRID, "export_wh") == pytest.approx(grid_out, abs=WH_RES)
