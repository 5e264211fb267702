"""Billing's energy counters over real Modbus TCP, read by the agent's pollers.

A simulated site (inverter 103, meter 203, battery 802/124/701 on one endpoint) charges
and discharges its battery at known setpoints for known simulated times, driven by
``DeviceSite.fast_forward`` (no waiting); the agent's pollers, with the shipped
profiles, read the counters. Expected rises are hand-computed W * h.

Tolerances, where there are any, come from the registers' resolution: counters are
served in whole Wh (``TotWh_SF`` / ``WH_SF`` 0), so the difference of two readings may be
up to 1 Wh off the energy delivered; power is served in whole W (``W_SF`` 0), ±0.5 W.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest

from contracts.events import GatewayEvent
from contracts.messages import Reading
from device_profiles import builtin_profile
from edge_agent.modbus import ModbusEndpoint
from edge_agent.poller import DevicePoller, DeviceRegistry
from edge_agent.settings import EndpointSettings
from simulators.device_site import DeviceSite, DeviceSiteSettings, DeviceSpec

pytestmark = pytest.mark.integration

NOON_SYDNEY = datetime(2024, 1, 10, 2, 0, tzinfo=UTC)  # 13:00 AEDT, clear sky
PROFILES = {1: "sim-inverter-103", 2: "sim-meter-203", 3: "sim-battery"}
BATTERY = 3
STEP_S = 900  # 15 simulated minutes per step
STEP_H = STEP_S / 3600
WH_RES = 1.0  # whole-Wh counters: a difference of two readings is within 1 Wh
COUNTERS = ("pv_wh", "import_wh", "export_wh", "battery_charge_wh", "battery_discharge_wh")


async def _ignore(_event: GatewayEvent) -> None:
    return None


class Agent:
    """The agent's pollers for the three units, read together into one dict."""

    def __init__(self, site: DeviceSite) -> None:
        self.endpoint = ModbusEndpoint("site", "127.0.0.1", site.port, 2.0)
        settings = EndpointSettings(
            name="site",
            host="127.0.0.1",
            port=site.port,
            unit_ids=list(PROFILES),
            unit_profiles=PROFILES,
        )
        registry = DeviceRegistry()
        self.pollers = [
            DevicePoller(
                self.endpoint,
                settings,
                unit,
                registry=registry,
                readings=asyncio.Queue[Reading](),
                emit_event=_ignore,
                interval_s=1.0,
                backoff_max_s=1.0,
                profile=builtin_profile(name),
            )
            for unit, name in PROFILES.items()
        ]

    async def read(self) -> dict[str, float]:
        values: dict[str, float] = {}
        async with asyncio.timeout(10):
            for poller in self.pollers:
                reading = await poller.poll_once()
                assert reading.quality.value == "good", reading.flags
                values |= {k: v for k, v in reading.values.items() if v is not None}
        return values


@pytest.fixture
async def site() -> AsyncIterator[DeviceSite]:
    settings = DeviceSiteSettings(
        site_id="counters",
        start_time=NOON_SYDNEY,
        update_period_s=3600.0,  # the physics moves only when the test says
        battery_soc_pct=50.0,
        devices=[DeviceSpec(profile=p, unit_id=u) for u, p in PROFILES.items()],
    )
    async with DeviceSite(settings) as sim:
        sim.pause_updates()
        yield sim


@pytest.fixture
async def agent(site: DeviceSite) -> AsyncIterator[Agent]:
    reader = Agent(site)
    try:
        yield reader
    finally:
        reader.endpoint.close()


def _charge(site: DeviceSite, pct: float) -> None:
    """124: InWRte % of WChaMax (5000 W), StorCtl_Mod bit 0 — as the profile's `charge`."""
    site.set_point(BATTERY, "124.InWRte", pct)
    site.set_point(BATTERY, "124.StorCtl_Mod", 1)


def _discharge(site: DeviceSite, pct: float) -> None:
    site.set_point(BATTERY, "124.OutWRte", pct)
    site.set_point(BATTERY, "124.StorCtl_Mod", 2)


async def test_battery_counters_rise_by_the_energy_charged_and_discharged(
    site: DeviceSite, agent: Agent
) -> None:
    first = await agent.read()
    assert first["battery_charge_wh"] > 0
    assert first["battery_discharge_wh"] > 0

    _charge(site, 50)  # 50 % of 5000 W = 2500 W into the battery
    charged = [first]
    for _ in range(6):  # 1.5 h
        site.fast_forward(STEP_S)
        charged.append(await agent.read())
    for before, after in itertools.pairwise(charged):
        assert after["battery_w"] == -2500.0  # 802 W < 0 while charging
        rise = after["battery_charge_wh"] - before["battery_charge_wh"]
        assert rise == pytest.approx(2500 * STEP_H, abs=WH_RES)  # 625 Wh
        assert after["battery_discharge_wh"] == before["battery_discharge_wh"]
    total = charged[-1]["battery_charge_wh"] - first["battery_charge_wh"]
    assert total == pytest.approx(2500 * 1.5, abs=WH_RES)  # 3750 Wh
    assert charged[-1]["battery_soc_pct"] == pytest.approx(50.0 + 3750 / 10_000 * 100)  # 87.5

    _discharge(site, 40)  # 40 % of WChaMax 5000 W = 2000 W out of the battery
    discharged = [charged[-1]]
    for _ in range(2):  # 0.5 h
        site.fast_forward(STEP_S)
        discharged.append(await agent.read())
    for before, after in itertools.pairwise(discharged):
        assert after["battery_w"] == 2000.0
        rise = after["battery_discharge_wh"] - before["battery_discharge_wh"]
        assert rise == pytest.approx(2000 * STEP_H, abs=WH_RES)  # 500 Wh
        assert after["battery_charge_wh"] == before["battery_charge_wh"]
    assert discharged[-1]["battery_soc_pct"] == pytest.approx(87.5 - 1000 / 10_000 * 100)

    for before, after in itertools.pairwise(charged + discharged[1:]):
        for name in COUNTERS:
            assert after[name] >= before[name], name  # monotonic, every reading


async def test_pv_and_grid_counters_integrate_the_power_they_serve(
    site: DeviceSite, agent: Agent
) -> None:
    """Each step holds one power over STEP_S, so a counter's rise is that power * time:
    W served ±0.5 W over 0.25 h is ±0.125 Wh, plus the counters' 1 Wh resolution."""
    tolerance = WH_RES + 0.5 * STEP_H
    _charge(site, 50)
    readings = [await agent.read()]
    for step in range(4):
        if step == 2:
            _discharge(site, 100)  # the meter sees the battery change direction
        site.fast_forward(STEP_S)
        readings.append(await agent.read())
    for before, after in itertools.pairwise(readings):
        assert after["pv_w"] > 0
        assert after["pv_wh"] - before["pv_wh"] == pytest.approx(
            after["pv_w"] * STEP_H, abs=tolerance
        )
        imported = after["import_wh"] - before["import_wh"]
        exported = after["export_wh"] - before["export_wh"]
        assert imported - exported == pytest.approx(after["grid_w"] * STEP_H, abs=tolerance)
        assert min(imported, exported) == 0  # one direction per step: grid_w held its sign
