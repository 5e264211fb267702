"""Energy counters for billing: the catalog entries, the profiles' mappings, scaling of
the 64-bit DER counters (model 701), and the simulator's integration of power into Wh.

Expected figures are computed by hand in each test (raw * 10^SF, W * h).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from contracts.metrics import BY_ID, MetricKind, metric
from device_profiles import builtin_profile, builtin_profiles
from device_profiles.sunspec_codec import decode_model, model_registers
from edge_agent.normalise import normalise_sources, profile_sources
from simulators.plant import BatteryControls, PlantConfig, initial_state, step
from simulators.renderers import RenderContext, render_model
from simulators.solar import ClearSky

NOON_SYDNEY = datetime(2024, 1, 10, 2, 0, tzinfo=UTC)  # 13:00 AEDT
CFG = PlantConfig(battery_wh=10_000.0, seed=7)
SKY = ClearSky(CFG.latitude, CFG.longitude, CFG.tz)


def _battery(raw: dict[str, int | None]) -> dict[str, float | None]:
    """The battery profile's catalog values for a model 701 with these raw points."""
    decoded = {701: decode_model(701, model_registers(701, raw))}
    return normalise_sources(profile_sources(builtin_profile("sim-battery")), decoded).values


# ----- catalog ---------------------------------------------------------------------------
def test_energy_counters_keep_their_ids_and_the_battery_ones_join_its_range() -> None:
    assert {name: metric(name).id for name in ("pv_wh", "import_wh", "export_wh")} == {
        "pv_wh": 10,
        "import_wh": 52,
        "export_wh": 53,
    }
    charge, discharge = metric("battery_charge_wh"), metric("battery_discharge_wh")
    assert (charge.id, discharge.id) == (86, 87)
    for m in (charge, discharge):
        assert 80 <= m.id <= 119
        assert (m.unit, m.kind) == ("Wh", MetricKind.COUNTER)
        assert BY_ID[m.id] is m
    assert "TotWhAbs" in charge.description
    assert "into the battery" in charge.description
    assert "TotWhInj" in discharge.description


# ----- profiles --------------------------------------------------------------------------
def test_every_energy_counter_is_mapped_from_a_sunspec_counter_point() -> None:
    want = {
        "sim-inverter-103": {"pv_wh": "103.WH"},
        "sim-inverter-113": {"pv_wh": "113.WH"},
        "sim-der-inverter": {"pv_wh": "701.TotWhInj"},
        "sim-meter-201": {"import_wh": "201.TotWhImp", "export_wh": "201.TotWhExp"},
        "sim-meter-203": {"import_wh": "203.TotWhImp", "export_wh": "203.TotWhExp"},
        "sim-battery": {
            "battery_charge_wh": "701.TotWhAbs",
            "battery_discharge_wh": "701.TotWhInj",
        },
    }
    for profile in builtin_profiles().values():
        counters = {
            s.metric: (s.ref, s.factor)
            for s in profile_sources(profile)
            if metric(s.metric).kind is MetricKind.COUNTER and metric(s.metric).unit == "Wh"
        }
        expected = {name: (ref, 1.0) for name, ref in want.get(profile.name, {}).items()}
        assert counters == expected, profile.name  # counters are never sign-flipped


@pytest.mark.parametrize(
    ("abs_raw", "inj_raw", "sf", "charge_wh", "discharge_wh"),
    [
        (62_672, 69_760, 0, 62_672.0, 69_760.0),
        (123_456, 7_890, 1, 1_234_560.0, 78_900.0),  # 10 Wh steps
        (123_456, 7_890, -2, 1_234.56, 78.9),  # centi-Wh
        (5_000_000_123, 0, 0, 5_000_000_123.0, 0.0),  # past 2^32, and a true zero
        (2**40 + 1, 3, 3, (2**40 + 1) * 1000.0, 3000.0),  # kWh steps
    ],
)
def test_battery_counters_scale_by_the_shared_energy_sf(
    abs_raw: int, inj_raw: int, sf: int, charge_wh: float, discharge_wh: float
) -> None:
    values = _battery({"TotWhAbs": abs_raw, "TotWhInj": inj_raw, "TotWh_SF": sf})
    assert values["battery_charge_wh"] == pytest.approx(charge_wh, rel=1e-12)
    assert values["battery_discharge_wh"] == pytest.approx(discharge_wh, rel=1e-12)


def test_a_battery_counter_without_its_scale_factor_is_null_and_flagged() -> None:
    decoded = {701: decode_model(701, model_registers(701, {"TotWhAbs": 10, "TotWhInj": 20}))}
    out = normalise_sources(profile_sources(builtin_profile("sim-battery")), decoded)
    assert out.values["battery_charge_wh"] is None
    assert out.values["battery_discharge_wh"] is None
    assert "sf_missing:701.TotWhAbs" in out.flags
    assert out.quality.value == "suspect"


def test_a_battery_counter_not_implemented_is_null() -> None:
    values = _battery({"TotWhInj": 20, "TotWh_SF": 0})  # TotWhAbs left 0xFFFF...
    assert values["battery_charge_wh"] is None
    assert values["battery_discharge_wh"] == 20.0


# ----- simulator physics -----------------------------------------------------------------
def test_charging_at_a_setpoint_counts_its_energy_into_the_battery() -> None:
    s0 = initial_state(CFG, SKY, NOON_SYDNEY, soc_pct=50.0)
    charge = BatteryControls(setpoint_w=-2500.0)
    s1 = step(CFG, SKY, s0, NOON_SYDNEY + timedelta(minutes=90), battery=charge)
    assert s1.battery_w == -2500.0
    assert s1.totals.charge_wh - s0.totals.charge_wh == pytest.approx(2500 * 1.5)  # 3750 Wh
    assert s1.totals.discharge_wh == s0.totals.discharge_wh
    assert s1.battery_soc_pct == pytest.approx(50.0 + 3750 / 10_000 * 100)  # 87.5 %


def test_discharge_counts_only_the_energy_above_the_reserve() -> None:
    s0 = initial_state(CFG, SKY, NOON_SYDNEY, soc_pct=11.0)
    ctl = BatteryControls(setpoint_w=5000.0, min_reserve_pct=10.0)
    s1 = step(CFG, SKY, s0, NOON_SYDNEY + timedelta(hours=1), battery=ctl)
    # 1 % of 10 kWh is left above the reserve: 100 Wh, not 5 kWh
    assert s1.totals.discharge_wh - s0.totals.discharge_wh == pytest.approx(100.0)
    assert s1.totals.charge_wh == s0.totals.charge_wh


def test_a_hybrid_counts_at_its_ac_port_what_pv_and_battery_net() -> None:
    s0 = initial_state(CFG, SKY, NOON_SYDNEY, soc_pct=50.0)
    s1 = step(
        CFG, SKY, s0, NOON_SYDNEY + timedelta(hours=1), battery=BatteryControls(setpoint_w=-2000.0)
    )
    assert s1.pv_w > 2000  # PV covers the charge: nothing is absorbed from the AC bus
    t0, t1 = s0.totals, s1.totals
    assert t1.hybrid_out_wh - t0.hybrid_out_wh == pytest.approx((s1.pv_w - 2000.0) * 1.0)
    assert t1.hybrid_in_wh == t0.hybrid_in_wh
    assert t1.charge_wh - t0.charge_wh == pytest.approx(2000.0)


def test_the_battery_serves_its_power_and_counters_in_model_701() -> None:
    s0 = initial_state(CFG, SKY, NOON_SYDNEY, soc_pct=50.0)
    s1 = step(
        CFG, SKY, s0, NOON_SYDNEY + timedelta(hours=1), battery=BatteryControls(setpoint_w=-2500.0)
    )
    ctx = RenderContext(builtin_profile("sim-battery"), s1, 3, "BAT-1", {})
    values = render_model(701, ctx)
    assert values["W"] == -2500.0  # 701: > 0 generating, so < 0 while charging
    assert values["TotWhAbs"] == round(s0.totals.charge_wh) + 2500
    assert values["TotWhInj"] == round(s0.totals.discharge_wh)
    assert values["TotWh_SF"] == 0
