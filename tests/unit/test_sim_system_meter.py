"""PoTR's system meter in the simulated site (decision 119), without sockets: the plant
integrates what the system delivers and draws, energy is conserved between the system
meter and the grid meter, and the opt-in flag adds exactly one meter with a stable serial.

Expected energies are summed here from the plant's own history of ``pv_w``,
``battery_w`` and ``load_w`` (energy accrues at the powers of the state a step ends in),
never from the meter code: W * h per step.
"""

from __future__ import annotations

import itertools
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from simulators.device_site import (
    SYSTEM_METER_UNIT,
    DeviceSite,
    DeviceSiteSettings,
    DeviceSpec,
    region_site,
)
from simulators.plant import BatteryControls, PlantConfig, PlantState, initial_state, step
from simulators.solar import ClearSky

NOON_SYDNEY = datetime(2024, 1, 10, 2, 0, tzinfo=UTC)  # 13:00 AEDT, clear sky
CFG = PlantConfig(pv_capacity_w=3000.0, battery_wh=10_000.0, seed=11)  # a 5 kW battery
SKY = ClearSky(CFG.latitude, CFG.longitude, CFG.tz)
#: (seconds, battery setpoint W; None = self-consumption) from noon: charging harder than
#: the PV makes (the system draws), discharging, self-consumption, then charging from the
#: grid at night (no PV at all).
PLAN: list[tuple[float, float | None]] = [
    (600, -5000.0),
    (900, 3000.0),
    (300, None),
    (1200, -1500.0),
]
NIGHT_CHARGE: tuple[float, float, float | None] = (11 * 3600, 1800, -2000.0)  # 00:00 AEDT
BATTERY_SITE = [
    DeviceSpec(profile="sim-inverter-103", unit_id=1),
    DeviceSpec(profile="sim-meter-203", unit_id=2),
    DeviceSpec(profile="sim-battery", unit_id=3),
]


def _run(
    plan: list[tuple[float, float | None]], start: PlantState
) -> list[tuple[float, PlantState]]:
    """(seconds, state after the step) for each step of ``plan`` from ``start``."""
    out, state = [], start
    for seconds, setpoint in plan:
        nxt = step(
            CFG,
            SKY,
            state,
            state.ts + timedelta(seconds=seconds),
            battery=BatteryControls(setpoint_w=setpoint),
        )
        out.append((seconds, nxt))
        state = nxt
    return out


def _integrals(history: list[tuple[float, PlantState]]) -> dict[str, float]:
    """Hand integration of the plant's powers over its steps, in Wh."""
    sums = {"out": 0.0, "in": 0.0, "system": 0.0, "grid": 0.0, "load": 0.0}
    for seconds, s in history:
        h = seconds / 3600
        system_w = s.pv_w + s.battery_w
        sums["out"] += max(system_w, 0.0) * h
        sums["in"] += max(-system_w, 0.0) * h
        sums["system"] += system_w * h
        sums["grid"] += (s.load_w - s.pv_w - s.battery_w) * h
        sums["load"] += s.load_w * h
    return sums


def test_the_system_meter_integrates_what_pv_and_battery_deliver_and_draw() -> None:
    start = initial_state(CFG, SKY, NOON_SYDNEY, soc_pct=50.0)
    history = _run(PLAN, start)
    # The afternoon and evening skipped: nothing accrues between the two runs.
    night_from = replace(history[-1][1], ts=NOON_SYDNEY + timedelta(seconds=NIGHT_CHARGE[0]))
    history += _run([NIGHT_CHARGE[1:]], night_from)
    # Both directions really happened: charging past the PV, and at night from the grid.
    flows = [s.pv_w + s.battery_w for _, s in history]
    assert flows[0] < -1000
    assert flows[1] > 1000
    assert history[-1][1].pv_w == 0.0
    assert history[-1][1].battery_w == -2000.0

    want = _integrals(history)
    t0, t1 = start.totals, history[-1][1].totals
    forward = t1.system_out_wh - t0.system_out_wh
    reverse = t1.system_in_wh - t0.system_in_wh
    assert forward == pytest.approx(want["out"], rel=1e-12)
    assert reverse == pytest.approx(want["in"], rel=1e-12)
    assert reverse >= 2000 * 0.5  # the night's 1 kWh from the grid at least
    # Conservation: the system meter's net is the system's energy, the grid meter's the
    # rest of the house's, and the two add up to the load.
    assert forward - reverse == pytest.approx(want["system"], rel=1e-12)
    grid_net = (t1.import_wh - t0.import_wh) - (t1.export_wh - t0.export_wh)
    assert grid_net == pytest.approx(want["grid"], rel=1e-9)
    assert forward - reverse + grid_net == pytest.approx(t1.load_wh - t0.load_wh, rel=1e-9)
    assert t1.load_wh - t0.load_wh == pytest.approx(want["load"], rel=1e-12)


def test_the_system_meters_counters_only_grow_and_never_move_the_others() -> None:
    start = initial_state(CFG, SKY, NOON_SYDNEY, soc_pct=50.0)
    states = [start] + [s for _, s in _run(PLAN, start)]
    for before, after in itertools.pairwise(states):
        a, b = before.totals, after.totals
        assert b.system_out_wh >= a.system_out_wh
        assert b.system_in_wh >= a.system_in_wh
        # one direction per step: the flow held its sign over it
        assert min(b.system_out_wh - a.system_out_wh, b.system_in_wh - a.system_in_wh) == 0
    # Its registers start on their own (a meter of its own, not the hybrid's port).
    assert start.totals.system_out_wh != start.totals.hybrid_out_wh
    assert start.totals.system_out_wh > 0
    assert start.totals.system_in_wh > 0  # a true zero would read as not implemented


# ----- the opt-in flag ------------------------------------------------------------------
def test_the_default_site_is_unchanged_without_the_flag() -> None:
    for settings in (
        DeviceSiteSettings(site_id="plain"),
        region_site("plain", "au"),
    ):
        assert not settings.system_meter
        assert [(d.unit_id, d.profile, d.meter_at) for d in settings.devices] == [
            (1, "sim-inverter-103", "grid"),
            (2, "sim-meter-203", "grid"),
        ]


def test_the_flag_adds_one_system_meter_with_a_serial_stable_per_site() -> None:
    first = region_site("au-site-7", "au", system_meter=True)
    again = DeviceSiteSettings.model_validate(first.model_dump())  # a round trip adds none
    other = region_site("au-site-8", "au", system_meter=True)
    for settings in (first, again):
        added = [d for d in settings.devices if d.meter_at == "system"]
        assert [(d.unit_id, d.profile, d.serial) for d in added] == [
            (SYSTEM_METER_UNIT, "sim-meter-203", "SYS-au-site-7")
        ]
        assert len(settings.devices) == 3
    assert [d.serial for d in other.devices] == ["INV-au-site-8", "MTR-au-site-8", "SYS-au-site-8"]
    site = DeviceSite(region_site("x" * 200, "au", system_meter=True))
    assert all(len(d.serial) <= 32 for d in site.devices)
    assert len({d.serial for d in site.devices}) == 3


def test_a_listed_system_meter_wins_and_bad_wiring_is_refused() -> None:
    own = DeviceSpec(profile="sim-meter-201", unit_id=9, meter_at="system")
    settings = DeviceSiteSettings(site_id="s", devices=[*BATTERY_SITE, own], system_meter=True)
    assert [d.unit_id for d in settings.devices] == [1, 2, 3, 9]
    with pytest.raises(ValueError, match="unit 4 is taken by sim-isolator"):
        DeviceSiteSettings(
            site_id="s",
            devices=[DeviceSpec(profile="sim-isolator", unit_id=SYSTEM_METER_UNIT)],
            system_meter=True,
        )
    inverter = DeviceSpec(profile="sim-inverter-103", unit_id=1, meter_at="system")
    with pytest.raises(ValueError, match=r"devices\[0\]\.meter_at: sim-inverter-103 is no meter"):
        DeviceSite(DeviceSiteSettings(site_id="s", devices=[inverter]))


# ----- what the site serves --------------------------------------------------------------
def _site(**kw: object) -> DeviceSite:
    settings = DeviceSiteSettings.model_validate(
        {
            "site_id": "sysm",
            "start_time": NOON_SYDNEY,
            "pv_capacity_w": 3000.0,  # the battery's 5 kW can draw past the PV
            "devices": BATTERY_SITE,
            **kw,
        }
    )
    return DeviceSite(settings)


def test_the_system_meter_serves_the_systems_flow_and_the_grid_meter_the_connections() -> None:
    site = _site(system_meter=True)
    site.set_point(3, "124.InWRte", 100)  # 5 kW into the battery, more than the PV makes
    site.set_point(3, "124.StorCtl_Mod", 1)
    site.fast_forward(600)
    s = site.state
    system_w = s.pv_w + s.battery_w
    assert system_w < -100  # the system draws from the premises
    sys_, grid = SYSTEM_METER_UNIT, 2
    assert site.point(sys_, "203.W") == pytest.approx(system_w, abs=0.5)  # W_SF 0
    assert site.point(sys_, "203.WphA") == pytest.approx(system_w / 3, abs=0.5)
    assert site.point(sys_, "203.VAR") == pytest.approx(s.pv_var, abs=0.5)
    assert site.point(sys_, "203.VA") == pytest.approx(abs(system_w), abs=0.5)  # no var here
    amps = abs(system_w) / 3 / s.phase_v[0]
    assert site.point(sys_, "203.AphA") == pytest.approx(amps, abs=0.01)  # A_SF -2
    assert site.point(sys_, "203.PhVphB") == pytest.approx(s.phase_v[1], abs=0.05)
    assert site.point(grid, "203.W") == pytest.approx(s.load_w - system_w, abs=0.5)
    assert site.device(sys_).serial == "SYS-sysm"


def test_a_replaced_system_meter_restarts_its_own_registers_only() -> None:
    site = _site(system_meter=True)
    site.set_point(3, "124.OutWRte", 60)  # 3 kW out of the battery
    site.set_point(3, "124.StorCtl_Mod", 2)
    grid_before = site.point(2, "203.TotWhImp"), site.point(2, "203.TotWhExp")
    site.activate_fault({"kind": "meter_replaced", "unit": SYSTEM_METER_UNIT})
    assert site.point(SYSTEM_METER_UNIT, "203.TotWhImp") == 1
    assert site.point(SYSTEM_METER_UNIT, "203.TotWhExp") == 1
    assert (site.point(2, "203.TotWhImp"), site.point(2, "203.TotWhExp")) == grid_before
    site.fast_forward(900)
    s = site.state
    delivered = (s.pv_w + s.battery_w) * 0.25
    assert site.point(SYSTEM_METER_UNIT, "203.TotWhImp") == pytest.approx(1 + delivered, abs=0.5)
    assert site.point(SYSTEM_METER_UNIT, "203.TotWhExp") == 1
