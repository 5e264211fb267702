"""PoTR's system meter reaches the telemetry store under its own device key: a simulated
site (PV inverter, battery, grid meter on unit 2, system meter on unit 4), the real agent
(unchanged, SunSpec discovery) → a private Mosquitto → ingest → PostgreSQL.

The site's clock is stepped by hand; after each step the test waits for a reading the
agent took after it, and checks the stored ``import_wh`` / ``export_wh`` rises of each
meter against energies summed here from the plant's history (W * h per step), within
the registers' 1 Wh resolution.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from cloud.adapters.postgres import create_pool
from cloud.bootstrap import deliver_registry_events
from cloud.migrate import migrate
from cloud.registry import GatewayIn, RegistryService, SiteIn
from edge_agent.settings import AgentSettings
from potr.servers.mosquitto import PrivateMosquitto
from simulators.device_site import DeviceSite
from tests.integration.harness import running_agent
from tests.integration.system_meter_site import (
    GRID,
    SYSTEM,
    WH_RES,
    charge_then_discharge,
    counters_after,
    running_ingest,
    system_meter_site,
)

pytestmark = pytest.mark.integration


@pytest.fixture
async def site() -> AsyncIterator[DeviceSite]:
    async with system_meter_site("sysm") as sim:
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
    stored_after = counters_after(database_url, gateway, serials)
    async with running_ingest(database_url, mosquitto.url), running_agent(agent):
        first = {unit: await stored_after(unit, datetime.now(UTC)) for unit in (GRID, SYSTEM)}
        plant = charge_then_discharge(site)  # charge past the PV, then discharge
        last = {unit: await stored_after(unit, plant.mark) for unit in (GRID, SYSTEM)}
    drawn, delivered = plant.drawn, plant.delivered
    grid_in, grid_out = plant.grid_in, plant.grid_out

    def rise(unit: int, name: str) -> float:
        return last[unit][name] - first[unit][name]

    assert drawn > 400  # the system really drew (5 kW into the battery, 3 kW of PV)
    assert delivered > 1000
    assert rise(SYSTEM, "import_wh") == pytest.approx(delivered, abs=WH_RES)
    assert rise(SYSTEM, "export_wh") == pytest.approx(drawn, abs=WH_RES)
    assert rise(GRID, "import_wh") == pytest.approx(grid_in, abs=WH_RES)
    assert rise(GRID, "export_wh") == pytest.approx(grid_out, abs=WH_RES)
