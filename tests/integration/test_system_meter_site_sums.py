"""A site with both meters — the grid meter at its connection and PoTR's system meter at
the system's AC output — adds up to its grid meter's figures, never grid + system.

A simulated site (PV inverter, grid meter on unit 2, battery, system meter on unit 4),
the real agent (SunSpec discovery) → a private Mosquitto → ingest → PostgreSQL; the
installation record (customers service) names the two meters, and its
``site.installation_changed`` reaches the telemetry store through its outbox and the bus.
The site's clock is stepped by hand; the expected figures are summed here from the
plant's history (W * h per step) and its state, within the registers' resolution:

- the site's ``import_wh`` / ``export_wh`` energy (the store's site days and the
  ``sites.energy`` reader) equal the grid meter's rises;
- the portal's power flow shows the grid meter's power, and the home the site's load.

A second test proves a record that arrives after the data re-sums the stored days.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from cloud.adapters.postgres import Connection, ConnectionPool, create_pool
from cloud.bootstrap import cloud_events, deliver_registry_events
from cloud.customers import CustomersService
from cloud.events.bus import InProcessBus
from cloud.events.relay import OutboxRelay
from cloud.migrate import migrate
from cloud.portal.web.site_data import SiteData
from cloud.registry import GatewayIn, RegistryService, Site, SiteIn
from cloud.scope import GatewayReach
from cloud.telemetry import TelemetryReader
from cloud.telemetry.energy_store import site_energy
from cloud.telemetry.rollups import RollupRefresher
from cloud.telemetry.store import store_backend
from contracts.metrics import metric
from contracts.topics import Region
from edge_agent.settings import AgentSettings
from potr.servers.mosquitto import PrivateMosquitto
from simulators.device_site import DeviceSite
from tests.integration.api_world import installation_in, private_database
from tests.integration.harness import running_agent
from tests.integration.system_meter_site import (
    BATTERY,
    GRID,
    INVERTER,
    SYSTEM,
    WH_RES,
    charge_then_discharge,
    counters_after,
    running_ingest,
    system_meter_site,
)
from tests.integration.telemetry_world import Store, add_devices, add_gateway

pytestmark = pytest.mark.integration

Pool = ConnectionPool[Connection[Any]]
IMPORT_WH, EXPORT_WH = metric("import_wh").id, metric("export_wh").id


@pytest.fixture
async def sim() -> AsyncIterator[DeviceSite]:
    async with system_meter_site("sums") as site:
        yield site


async def _site_with_its_record(pool: Pool, gateway: str, serials: dict[int, str]) -> Site:
    """The registry's site and gateway (told to ingest) and the installation record
    naming both meters, its event relayed to the telemetry store as ``potr ingest``
    wires it."""
    registry = RegistryService(pool)
    site = registry.add_site(SiteIn(name="Both meters", region="au", time_zone="Australia/Sydney"))
    registry.add_gateway(GatewayIn(id=gateway, site_id=site.id))
    await deliver_registry_events(pool)
    record = installation_in(Region.AU, serials[SYSTEM]).model_copy(
        update={"grid_meter": serials[GRID]}
    )
    CustomersService(pool).put_installation(Region.AU, site.id, record)
    bus = InProcessBus()
    async with cloud_events(pool, ingest=True, outboxes=(), bus=bus):
        assert await OutboxRelay(pool, "customers", bus).relay_once() == 1
        assert bus.dead_letters == []
    return site


def _agent(gateway: str, url: str, port: int, buffer: Path) -> AgentSettings:
    return AgentSettings(
        gateway_id=gateway,
        region="au",
        mqtt_url=url,
        buffer_path=buffer,
        poll_interval_s=0.2,
        stored_timeout_s=2.0,
        reconnect_min_s=0.1,
        reconnect_max_s=0.5,
        endpoints=[
            {
                "name": "site",
                "host": "127.0.0.1",
                "port": port,
                "unit_ids": [INVERTER, GRID, BATTERY, SYSTEM],
                # The battery's profile maps its power (802.W) to battery_w.
                "unit_profiles": {BATTERY: "sim-battery"},
                "timeout_s": 1.0,
            }
        ],
    )


def _energy_wh(pool: Pool, site_id: int, metric_id: int) -> Decimal:
    """The site's energy of the counter over the local days around now, as the
    ``sites.energy`` reader gives it (stored site days where they are of these devices)."""
    today = datetime.now(UTC).date()
    with pool.connection() as conn:
        found = site_energy(
            conn, site_id, metric_id, "day", today - timedelta(days=1), today + timedelta(days=1)
        )
    assert found is not None
    return sum((f.energy_wh for f in found.figures), Decimal(0))


def _stored_day_devices(pool: Pool, site_id: int, metric_id: int) -> set[tuple[int, ...]]:
    with pool.connection() as conn:
        rows = conn.execute(
            "SELECT devices FROM telemetry.energy_site_1d WHERE site_id = %s AND metric_id = %s",
            (site_id, metric_id),
        ).fetchall()
    return {tuple(devices) for (devices,) in rows}


def _device_id(pool: Pool, gateway: str, local_id: str) -> int:
    with pool.connection() as conn:
        row = conn.execute(
            "SELECT device_id FROM ingest.device_keys WHERE gateway_id = %s AND local_id = %s",
            (gateway, local_id),
        ).fetchone()
    assert row is not None
    return int(row[0])


async def test_a_sites_grid_figures_are_its_grid_meters_not_grid_plus_system(
    database_url: str, mosquitto: PrivateMosquitto, sim: DeviceSite, tmp_path: Path
) -> None:
    gateway = f"gw-{sim.settings.site_id}"
    serials = {unit: sim.device(unit).serial for unit in (GRID, SYSTEM)}
    migrate(database_url)
    pool = create_pool(database_url, min_size=1, max_size=4, name="sums")
    try:
        site = await _site_with_its_record(pool, gateway, serials)
        stored_after = counters_after(database_url, gateway, serials)
        agent = _agent(gateway, mosquitto.url, sim.port, tmp_path / "b")
        async with running_ingest(database_url, mosquitto.url), running_agent(agent):
            # From the first reading of both meters on: nothing before it is paired.
            first = {u: await stored_after(u, datetime.now(UTC)) for u in (GRID, SYSTEM)}
            plant = charge_then_discharge(sim)  # charge past the PV, discharge
            last = {u: await stored_after(u, plant.mark) for u in (GRID, SYSTEM)}
            # The flow as the portal's site page reads it, while the agent still polls.
            flow = await asyncio.to_thread(
                SiteData(
                    RegistryService(pool), TelemetryReader(pool), device_states=lambda *_: {}
                ).flow,
                site,
                GatewayReach(),
                timedelta(minutes=10),
            )
            state = sim.state
        delivered, grid_in, grid_out = plant.delivered, plant.grid_in, plant.grid_out

        with pool.connection() as conn:
            RollupRefresher(store_backend(conn)).catch_up(conn)
        grid_device = _device_id(pool, gateway, serials[GRID])

        # The registers moved as the plant says (the system meter really ran alongside).
        assert last[GRID]["import_wh"] - first[GRID]["import_wh"] == pytest.approx(
            grid_in, abs=WH_RES
        )
        assert last[SYSTEM]["import_wh"] - first[SYSTEM]["import_wh"] == pytest.approx(
            delivered, abs=WH_RES
        )
        assert grid_in > 400, grid_in  # charging 5 kW past 3 kW of PV
        assert grid_out > 100, grid_out  # discharging beside the PV
        assert delivered > 1000, delivered
        # The site's energy: the grid meter's rises alone (grid + system would add
        # ``delivered`` to the import).
        imported = float(_energy_wh(pool, site.id, IMPORT_WH))
        exported = float(_energy_wh(pool, site.id, EXPORT_WH))
        assert imported == pytest.approx(grid_in, abs=WH_RES)
        assert exported == pytest.approx(grid_out, abs=WH_RES)
        # ... kept as such in the stored site days the month and year views sum.
        assert _stored_day_devices(pool, site.id, IMPORT_WH) == {(grid_device,)}
        # The power flow: the grid is the grid meter's; the home is the site's load.
        assert flow.grid_w == pytest.approx(state.load_w - state.pv_w - state.battery_w, abs=15)
        assert flow.home_w == pytest.approx(state.load_w, abs=15), (flow, state)
    finally:
        pool.close()


# -- a record that arrives after the data --------------------------------------------------
SITE, GATEWAY = 41, "gw-late-record"
GRID_KEY, SYSTEM_KEY = 7, 8
T = datetime(2026, 11, 30, 1, 0, tzinfo=UTC)  # 12:00 in Sydney
Q = timedelta(minutes=15)


async def test_a_record_heard_after_the_data_sums_the_stored_days_again(
    postgres_server_url: str,
) -> None:
    with private_database(postgres_server_url) as url:
        migrate(url, backend="plain", schemas={"telemetry", "ingest", "customers"})
        pool = create_pool(url, max_size=4, name="late-record")
        try:
            store = Store(pool, "plain")
            with pool.connection() as conn:
                add_gateway(conn, GATEWAY, SITE, "au", "Australia/Sydney")
                add_devices(conn, GATEWAY, {"MTR-A1": GRID_KEY, "PWR-B2": SYSTEM_KEY})
            # Grid meter: 100 Wh imported a quarter; system meter: 700 Wh delivered.
            store.write(
                [(T + i * Q, GRID_KEY, IMPORT_WH, 5_000.0 + 100 * i, 0) for i in range(5)]
                + [(T + i * Q, SYSTEM_KEY, IMPORT_WH, 9_000.0 + 700 * i, 0) for i in range(5)],
                T.date(),
            )
            store.catch_up(now=T + 6 * Q)
            day = T.astimezone(ZoneInfo("Australia/Sydney")).date()
            assert _stored_day_devices(pool, SITE, IMPORT_WH) == {(GRID_KEY, SYSTEM_KEY)}

            record = installation_in(Region.AU, "PWR-B2").model_copy(
                update={"grid_meter": "MTR-A1"}
            )
            CustomersService(pool).put_installation(Region.AU, SITE, record)
            bus = InProcessBus()
            async with cloud_events(pool, ingest=True, outboxes=(), bus=bus):
                assert await OutboxRelay(pool, "customers", bus).relay_once() == 1
                assert bus.dead_letters == []

            assert _stored_day_devices(pool, SITE, IMPORT_WH) == {(GRID_KEY,)}
            with pool.connection() as conn:
                found = site_energy(conn, SITE, IMPORT_WH, "day", day, day)
                stored = conn.execute(
                    "SELECT energy_mwh FROM telemetry.energy_site_1d WHERE site_id = %s"
                    " AND metric_id = %s AND day = %s",
                    (SITE, IMPORT_WH, day),
                ).fetchone()
            assert found is not None
            assert [f.energy_wh for f in found.figures] == [Decimal(400)]  # 4 x 100 Wh
            assert stored == (400_000,)
        finally:
            pool.close()
