"""Scenario files refuse bad input by file and key; plant physics obeys its controls."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from simulators.device_site import DeviceSite, DeviceSiteSettings, DeviceSpec
from simulators.faults import ScenarioError, load_scenario
from simulators.plant import (
    BatteryControls,
    InverterControls,
    PlantConfig,
    VoltVar,
    curve_value,
    initial_state,
    step,
)
from simulators.solar import ClearSky

NOON_SYDNEY = datetime(2024, 1, 10, 2, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("body", "key", "reason"),
    [
        ("faults:\n  - {kind: gremlins}\n", "faults[0].kind", "unknown fault kind 'gremlins'"),
        ("faults:\n  - {kind: slow_response}\n", "faults[0].delay_s", "Field required"),
        ("faults:\n  - {kind: exception, code: 9}\n", "faults[0].code", "Input should be"),
        ("faults:\n  - {kind: no_response, colour: red}\n", "faults[0].colour", "Extra inputs"),
        ("nme: x\n", "nme", "Extra inputs"),
        ("faults:\n  - {kind: grid_voltage}\n", "faults[0].v", "Field required"),
        ("faults:\n  - {kind: grid_voltage, v: -5}\n", "faults[0].v", "greater than or equal"),
        ("faults:\n  - {kind: grid_frequency, hz: high}\n", "faults[0].hz", "valid number"),
    ],
)
def test_bad_scenario_names_file_key_and_reason(
    tmp_path: Path, body: str, key: str, reason: str
) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(body)
    with pytest.raises(ScenarioError) as info:
        load_scenario(path)
    assert (info.value.file, info.value.key) == (str(path), key)
    assert reason in info.value.reason


@pytest.mark.parametrize(
    ("fault", "key", "reason"),
    [
        ({"kind": "no_response", "unit": 9}, "faults[0].unit", "no device on unit 9"),
        ({"kind": "not_implemented", "points": ["103.Watts"]}, "faults[0].points[0]", "no such"),
        ({"kind": "not_implemented", "points": ["802.W"]}, "faults[0].points[0]", "no such"),
        ({"kind": "isolator_trip"}, "faults[0].kind", "no isolator"),
        ({"kind": "grid_voltage", "v": 258, "unit": 1}, "faults[0].unit", "names no unit"),
        ({"kind": "grid_voltage", "v": 400}, "faults[0].v", "above 150% of the site's nominal"),
        ({"kind": "grid_frequency", "hz": 61}, "faults[0].hz", "outside 40 to 60 Hz"),
    ],
)
def test_scenario_refers_to_devices_points_that_exist(
    fault: dict[str, object], key: str, reason: str
) -> None:
    site = DeviceSite(DeviceSiteSettings(site_id="x", start_time=NOON_SYDNEY))
    with pytest.raises(ScenarioError) as info:
        site.load_scenario_data({"faults": [fault]}, "s.yaml")
    assert (info.value.file, info.value.key) == ("s.yaml", key)
    assert reason in info.value.reason


def test_grid_faults_step_the_plant_and_the_latest_started_is_in_force() -> None:
    site = DeviceSite(DeviceSiteSettings(site_id="x", start_time=NOON_SYDNEY))
    site.load_scenario_data(
        {
            "faults": [
                {"kind": "grid_voltage", "v": 258, "at_s": 60, "duration_s": 120},
                {"kind": "grid_voltage", "v": 210, "at_s": 120},
                {"kind": "grid_frequency", "hz": 51.2, "at_s": 60},
            ]
        }
    )
    seen = []
    for seconds in (30, 30, 60, 60):  # to 30, 60, 120 and 180 s
        site.fast_forward(seconds)
        seen.append((site.state.phase_v, site.state.hz))
    assert seen[0][0] != (258.0,) * 3  # before the scenario's step: the plant's own grid
    # 210 V from 120 s wins over 258 V (60-180 s): it started later
    assert seen[1:] == [((258.0,) * 3, 51.2), ((210.0,) * 3, 51.2), ((210.0,) * 3, 51.2)]
    site.clear_faults("grid_voltage")
    site.fast_forward(60)
    assert site.state.phase_v != (210.0,) * 3
    with pytest.raises(ScenarioError, match="names no unit"):
        site.activate_fault({"kind": "grid_frequency", "hz": 50, "unit": 1})


def test_default_curves_change_nothing_on_a_demo_feeder() -> None:
    # potr/demo.py's feeder: 3 % rise at full sun (236.9 V ± noise) and 50 Hz ± 0.02 Hz,
    # inside region A's flat volt-var band (220-240 V), below its volt-watt start (253 V)
    # and inside the droop deadband (0.036 Hz)
    settings = DeviceSiteSettings(
        site_id="demo-like",
        start_time=NOON_SYDNEY,
        grid_rise_pct=3.0,
        devices=[DeviceSpec(profile="sim-der-inverter", unit_id=1)],
    )
    site = DeviceSite(settings)
    for enable in (None, "705.Ena", "706.Ena", "711.Ena"):
        if enable is not None:
            site.set_point(1, enable, 1)  # the device's default curve, now enabled
        site.fast_forward(600)
        s = site.state
        assert (s.pv_var, s.pv_w, s.pv_state) == (0.0, s.pv_available_w, 4), enable


def test_unknown_device_profile_is_refused() -> None:
    with pytest.raises(ValueError, match=r"devices\[0\]\.profile: unknown device profile"):
        DeviceSite(
            DeviceSiteSettings.model_validate(
                {"site_id": "x", "devices": [{"profile": "toaster", "unit_id": 1}]}
            )
        )


CFG = PlantConfig(battery_wh=10_000.0)
SKY = ClearSky(CFG.latitude, CFG.longitude, CFG.tz)


def test_curves_interpolate_and_hold_their_ends() -> None:
    curve = ((253.0, 100.0), (260.0, 20.0))
    assert curve_value(curve, 240) == 100
    assert curve_value(curve, 256.5) == pytest.approx(60)
    assert curve_value(curve, 270) == 20


def test_pv_follows_clear_sky_and_is_zero_at_night() -> None:
    noon = initial_state(CFG, SKY, NOON_SYDNEY)
    night = initial_state(CFG, SKY, NOON_SYDNEY + timedelta(hours=11))
    assert noon.pv_w > 4000
    assert night.pv_w == 0
    assert night.pv_state == 2
    assert noon.v > night.v  # midday voltage rise


def test_meter_closes_the_balance_and_battery_self_consumes() -> None:
    s = initial_state(CFG, SKY, NOON_SYDNEY)
    s = step(CFG, SKY, s, NOON_SYDNEY + timedelta(minutes=5))
    assert s.grid_w == pytest.approx(s.load_w - s.pv_w - s.battery_w)
    assert s.battery_w < 0  # surplus PV charges the battery


def test_battery_setpoint_and_reserve() -> None:
    s = initial_state(CFG, SKY, NOON_SYDNEY, soc_pct=11.0)
    ctl = BatteryControls(setpoint_w=5000.0, min_reserve_pct=10.0)
    s = step(CFG, SKY, s, NOON_SYDNEY + timedelta(hours=1), battery=ctl)
    assert s.battery_w == pytest.approx(100.0)  # only 1 % of 10 kWh above the reserve
    assert s.battery_soc_pct == pytest.approx(10.0)


def test_inverter_obeys_limit_disconnect_and_volt_watt() -> None:
    s = initial_state(CFG, SKY, NOON_SYDNEY)
    later = NOON_SYDNEY + timedelta(seconds=10)
    assert step(CFG, SKY, s, later, InverterControls(limit_pct=30, limit_enabled=True)).pv_w == 1500
    assert step(CFG, SKY, s, later, InverterControls(connected=False)).pv_state == 8
    vw = InverterControls(volt_watt=((200.0, 50.0), (210.0, 50.0)))
    assert step(CFG, SKY, s, later, vw).pv_w == pytest.approx(2500)


@pytest.mark.parametrize(("q_priority", "p_w", "q_var"), [(False, 5000, 0), (True, 4000, -3000)])
def test_the_va_rating_cuts_q_or_p_as_the_priority_says(
    q_priority: bool, p_w: float, q_var: float
) -> None:
    # full sun: 5000 W on a 5000 VA inverter asked for -60 % of rated VA (-3000 var):
    # active priority keeps P and leaves no room for Q; reactive priority keeps Q and
    # cuts P to sqrt(5000^2 - 3000^2) = 4000 W
    s = initial_state(CFG, SKY, NOON_SYDNEY)
    vv = VoltVar(curve=((200.0, -60.0), (300.0, -60.0)), ref_var=5000.0, q_priority=q_priority)
    ctl = InverterControls(volt_var=vv, va_max=5000.0)
    after = step(CFG, SKY, s, NOON_SYDNEY + timedelta(seconds=10), ctl)
    assert (after.pv_w, after.pv_var) == pytest.approx((p_w, q_var))


def test_fast_forward_steps_exactly_and_never_moves_the_clock_back() -> None:
    site = DeviceSite(DeviceSiteSettings(site_id="ff", start_time=NOON_SYDNEY))
    site.fast_forward(900)
    assert site.state.ts == NOON_SYDNEY + timedelta(seconds=900)
    assert site.sim_now() >= site.state.ts
    site.fast_forward(0)
    assert site.state.ts == NOON_SYDNEY + timedelta(seconds=900)
    with pytest.raises(ValueError, match="seconds must be >= 0"):
        site.fast_forward(-1)
