"""PoTR's system meter (decision 119) over real Modbus TCP: a simulated site with a PV
inverter, a battery, the grid meter (unit 2) and, opted in, the system meter (unit 4),
its clock stepped by hand (``fast_forward``); both meters are read by pysunspec2's own
client (an independent SunSpec reader) and by the agent's pollers.

Expected register rises are summed here from the plant's history (``pv_w``,
``battery_w``, ``load_w`` of each step: W * h), never from the meter code. Counters are
served in whole Wh (``TotWh_SF`` 0), so a rise read from two registers is within 1 Wh of
the energy; power in whole W (``W_SF`` 0), within 0.5 W.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime

import pytest
from sunspec2.modbus.client import SunSpecModbusClientDeviceTCP, SunSpecModbusClientError

from contracts.events import GatewayEvent
from contracts.messages import Reading
from device_profiles import builtin_profile
from edge_agent.modbus import ModbusEndpoint
from edge_agent.poller import DevicePoller, DeviceRegistry
from edge_agent.settings import EndpointSettings
from simulators.device_site import SYSTEM_METER_UNIT, DeviceSite, DeviceSiteSettings, DeviceSpec

pytestmark = pytest.mark.integration

NOON_SYDNEY = datetime(2024, 1, 10, 2, 0, tzinfo=UTC)  # 13:00 AEDT, clear sky
SITE_ID = "sysm-modbus"
GRID, SYSTEM, BATTERY = 2, SYSTEM_METER_UNIT, 3
STEP_S = 900
STEP_H = STEP_S / 3600
WH_RES = 1.0  # whole-Wh registers: a rise read from two of them is within 1 Wh
W_RES = 0.5  # whole-W power


@dataclass(frozen=True)
class MeterRead:
    """One meter as pysunspec2 decodes it."""

    serial: str
    models: list[int]
    w: float
    forward: float  # TotWhImp
    reverse: float  # TotWhExp


@dataclass
class Expected:
    """Energies summed by hand from the plant's states, one per step (Wh)."""

    system_out: float = 0.0
    system_in: float = 0.0
    grid_import: float = 0.0
    grid_export: float = 0.0

    def add(self, site: DeviceSite) -> None:
        s = site.state
        system_w = s.pv_w + s.battery_w
        grid_w = s.load_w - s.pv_w - s.battery_w
        self.system_out += max(system_w, 0.0) * STEP_H
        self.system_in += max(-system_w, 0.0) * STEP_H
        self.grid_import += max(grid_w, 0.0) * STEP_H
        self.grid_export += max(-grid_w, 0.0) * STEP_H


def _read_meter(port: int, unit: int) -> MeterRead:
    device = SunSpecModbusClientDeviceTCP(slave_id=unit, ipaddr="127.0.0.1", ipport=port, timeout=2)
    try:
        device.scan()
        meter = device.models[203][0]
        return MeterRead(
            serial=device.common[0].SN.value,
            models=sorted(k for k in device.models if isinstance(k, int)),
            w=meter.W.cvalue,
            forward=meter.TotWhImp.cvalue,
            reverse=meter.TotWhExp.cvalue,
        )
    finally:
        device.close()


async def _read(port: int, unit: int) -> MeterRead:
    async with asyncio.timeout(10):
        return await asyncio.to_thread(_read_meter, port, unit)


@pytest.fixture
async def site() -> AsyncIterator[DeviceSite]:
    settings = DeviceSiteSettings(
        site_id=SITE_ID,
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


def _battery(site: DeviceSite, mode: int, pct: float = 0.0) -> None:
    """124 StorCtl_Mod 1 charge at InWRte, 2 discharge at OutWRte (% of 5 kW), 0 self use."""
    if mode == 1:
        site.set_point(BATTERY, "124.InWRte", pct)
    if mode == 2:
        site.set_point(BATTERY, "124.OutWRte", pct)
    site.set_point(BATTERY, "124.StorCtl_Mod", mode)


async def test_both_meters_count_their_own_flow_and_energy_is_conserved(
    site: DeviceSite,
) -> None:
    first_sys, first_grid = await _read(site.port, SYSTEM), await _read(site.port, GRID)
    assert (first_sys.serial, first_sys.models) == ("SYS-sysm-modbus", [1, 203])
    assert first_grid.serial != first_sys.serial
    expected = Expected()
    reads = [first_sys]
    plan = [(1, 100.0), (2, 60.0), (0, 0.0), (1, 30.0)]  # draw, deliver, self use, charge
    for mode, pct in plan:
        _battery(site, mode, pct)
        site.fast_forward(STEP_S)
        expected.add(site)
        now = await _read(site.port, SYSTEM)
        reads.append(now)
        assert now.w == pytest.approx(site.state.pv_w + site.state.battery_w, abs=W_RES)
    assert reads[1].w < -1000  # the system drew from the premises ...
    assert reads[2].w > 1000  # ... and delivered into them
    last_sys, last_grid = reads[-1], await _read(site.port, GRID)

    for before, after in itertools.pairwise(reads):
        assert after.forward >= before.forward
        assert after.reverse >= before.reverse
    forward = last_sys.forward - first_sys.forward
    reverse = last_sys.reverse - first_sys.reverse
    imported = last_grid.forward - first_grid.forward
    exported = last_grid.reverse - first_grid.reverse
    assert forward == pytest.approx(expected.system_out, abs=WH_RES)
    assert reverse == pytest.approx(expected.system_in, abs=WH_RES)
    assert reverse > 400  # a real draw (5 kW charging past 3 kW of PV), not rounding
    assert imported == pytest.approx(expected.grid_import, abs=WH_RES)
    assert exported == pytest.approx(expected.grid_export, abs=WH_RES)
    # Conservation, from the history alone: ∫(pv + battery) at the system meter and
    # ∫(load - pv - battery) at the grid meter (two registers each: within 2 Wh).
    system_net = expected.system_out - expected.system_in
    assert forward - reverse == pytest.approx(system_net, abs=2 * WH_RES)
    grid_net = expected.grid_import - expected.grid_export
    assert imported - exported == pytest.approx(grid_net, abs=2 * WH_RES)


async def test_the_system_meter_survives_a_fault_and_a_replacement_like_the_grid_meter(
    site: DeviceSite,
) -> None:
    _battery(site, 2, 60.0)  # 3 kW out of the battery: the system delivers
    before = await _read(site.port, SYSTEM)
    grid_before = await _read(site.port, GRID)
    expected = Expected()

    # A failing meter (exception 4) while the system runs on: its registers carry on.
    site.activate_fault({"kind": "exception", "unit": SYSTEM, "code": 4})
    with pytest.raises(SunSpecModbusClientError, match="Modbus exception 4"):
        await _read(site.port, SYSTEM)
    assert (await _read(site.port, GRID)).forward >= grid_before.forward  # unit 2 answers
    site.fast_forward(STEP_S)
    expected.add(site)
    site.clear_faults()
    after = await _read(site.port, SYSTEM)
    assert after.forward - before.forward == pytest.approx(expected.system_out, abs=WH_RES)
    assert after.reverse == before.reverse

    # Replaced: the new meter's registers start near zero, the grid meter's do not move.
    grid_at_swap = await _read(site.port, GRID)
    site.activate_fault({"kind": "meter_replaced", "unit": SYSTEM})
    swapped = await _read(site.port, SYSTEM)
    assert (swapped.forward, swapped.reverse) == (1, 1)
    assert (await _read(site.port, GRID)).forward == grid_at_swap.forward
    later = Expected()
    site.fast_forward(STEP_S)
    later.add(site)
    grown = await _read(site.port, SYSTEM)
    assert grown.forward - swapped.forward == pytest.approx(later.system_out, abs=WH_RES)
    assert grown.reverse == swapped.reverse


# ----- the agent's pollers, unchanged --------------------------------------------------
async def _ignore(_event: GatewayEvent) -> None:
    return None


@pytest.mark.parametrize("profile", [None, "sim-meter-203"], ids=["discovered", "profiled"])
async def test_the_agent_polls_the_system_meter_under_its_own_serial(
    site: DeviceSite, profile: str | None
) -> None:
    """SunSpec discovery (the agent tests' configuration) or the meter's profile: the
    system meter is one more meter, keyed by its own serial, counters as ``import_wh`` /
    ``export_wh`` (its forward and reverse registers) and W as ``grid_w``."""
    units = [GRID, SYSTEM]
    settings = EndpointSettings(
        name="site",
        host="127.0.0.1",
        port=site.port,
        unit_ids=units,
        unit_profiles={u: profile for u in units} if profile else {},
    )
    endpoint = ModbusEndpoint("site", "127.0.0.1", site.port, 2.0)
    registry = DeviceRegistry()
    pollers = {
        unit: DevicePoller(
            endpoint,
            settings,
            unit,
            registry=registry,
            readings=asyncio.Queue[Reading](),
            emit_event=_ignore,
            interval_s=1.0,
            backoff_max_s=1.0,
            profile=builtin_profile(profile) if profile else None,
        )
        for unit in units
    }

    async def read(unit: int) -> Reading:
        async with asyncio.timeout(10):
            reading = await pollers[unit].poll_once()
        assert reading.quality.value == "good", reading.flags
        return reading

    try:
        firsts = {u: await read(u) for u in units}
        assert firsts[SYSTEM].device == "SYS-sysm-modbus"
        assert firsts[GRID].device != firsts[SYSTEM].device
        expected = Expected()
        lasts = firsts
        for mode, pct in [(1, 100.0), (2, 60.0)]:  # draw, then deliver
            _battery(site, mode, pct)
            site.fast_forward(STEP_S)
            expected.add(site)
            lasts = {u: await read(u) for u in units}
            flow = site.state.pv_w + site.state.battery_w
            assert lasts[SYSTEM].values["grid_w"] == pytest.approx(flow, abs=W_RES)
    finally:
        endpoint.close()

    def rise(unit: int, name: str) -> float:
        after, before = lasts[unit].values[name], firsts[unit].values[name]
        assert after is not None
        assert before is not None
        return after - before

    assert rise(SYSTEM, "import_wh") == pytest.approx(expected.system_out, abs=WH_RES)
    assert rise(SYSTEM, "export_wh") == pytest.approx(expected.system_in, abs=WH_RES)
    assert rise(GRID, "import_wh") == pytest.approx(expected.grid_import, abs=WH_RES)
    assert rise(GRID, "export_wh") == pytest.approx(expected.grid_export, abs=WH_RES)
    info = pollers[SYSTEM].state.info  # what its birth tells the cloud
    assert info is not None
    assert (info.serial, info.models, info.profile) == ("SYS-sysm-modbus", [1, 203], profile)
