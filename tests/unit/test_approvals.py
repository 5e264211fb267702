"""A site's connection approval bounds every config change: region, trip settings and
export limit (cloud.config.approvals.check_change).

Trip values are stated here from shared/design/grid-codes.md §1 "Passive anti-islanding"
[V Tesla Powerwall 3 Install Manual App. H] for AS/NZS 4777.2:2020 regions A/B: F> 52 Hz
max disconnect 0.2 s; V< 180 V max disconnect 11 s, V<< 70 V 2 s (as % of 230 V).
"""

from __future__ import annotations

from typing import Any

import pytest

from cloud.config.approvals import (
    ConnectionApproval,
    DeviceOnGateway,
    check_change,
    fit_export_limit,
    is_trip_point,
)
from device_profiles import builtin_grid_codes, builtin_profile

INV = "SN-DER-1"
CODES = builtin_grid_codes()


def _approval(profile: str = "au-a-2020", export_w: float | None = None) -> ConnectionApproval:
    region = CODES[profile].region
    return ConnectionApproval(1, region, "SAPN-2026-0042", profile, export_w)


def _devices(w_rtg: float = 5000.0) -> dict[str, DeviceOnGateway]:
    return {INV: DeviceOnGateway(INV, builtin_profile("sim-der-inverter"), {"w_rtg": w_rtg})}


def _check(
    approval: ConnectionApproval | None,
    settings: dict[str, Any],
    *,
    profile: str = "au-a-2020",
    region: str = "au",
    w_rtg: float = 5000.0,
) -> Any:
    return check_change(
        approval,
        profile_id=profile,
        profile_region=region,
        settings={INV: settings},
        devices=_devices(w_rtg),
        grid_codes=CODES,
    )


A_TRIPS = {
    "trip_hf_must_hz": [52.0],
    "trip_hf_must_s": [0.2],
    "trip_lv_must_v_pct": [180 / 230 * 100, 70 / 230 * 100],
    "trip_lv_must_s": [11.0, 2.0],
}


def test_no_approval_on_file_bounds_nothing() -> None:
    assert _check(None, {"trip_hf_must_hz": [60.0]}, profile="x", region="us") is None


def test_the_approved_profiles_trip_settings_pass() -> None:
    assert _check(_approval(), {**A_TRIPS, "volt_var_enable": 1, "trip_hf_adopt": 1}) is None


def test_another_region_is_refused_naming_the_approval() -> None:
    refusal = _check(_approval(), {}, profile="ieee1547-2018-b-ii", region="us")
    assert refusal is not None
    assert refusal.field == "profile.region"
    assert "SAPN-2026-0042" in refusal.reason
    assert refusal.reference == "SAPN-2026-0042"


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("trip_hf_must_hz", [53.0]),  # region C's F> is 55 Hz; 53 Hz is nobody's
        ("trip_hf_must_s", [0.2, 1.0]),  # a point more
        ("trip_lv_must_v_pct", [180 / 230 * 100 - 1, 70 / 230 * 100]),
        ("trip_lv_may_s", [5.0]),  # a ride-through curve region A does not give
    ],
)
def test_a_trip_setting_beyond_the_approved_profile_is_refused(name: str, value: Any) -> None:
    refusal = _check(_approval(), {name: value})
    assert refusal is not None
    assert refusal.field == f"devices.{INV}.{name}"
    assert "beyond connection approval SAPN-2026-0042" in refusal.reason


def test_region_b_trips_equal_region_a_so_a_b_profile_label_passes_them() -> None:
    # §1: trips are the same for A and B; only the label and volt-var differ.
    assert _check(_approval(), A_TRIPS, profile="au-b-2020") is None


def test_an_export_above_the_approved_limit_is_refused() -> None:
    approval = _approval(export_w=5000.0)
    # a 10 kW inverter with no limit written exports its rating
    refusal = _check(approval, {"volt_var_enable": 1}, w_rtg=10_000.0)
    assert refusal is not None
    assert refusal.field == "export_limit"
    assert "10000 W" in refusal.reason
    assert "5000 W" in refusal.limit
    over = {"power_limit_pct": 60.0, "power_limit_enable": 1}
    assert _check(approval, over, w_rtg=10_000.0) is not None
    within = {"power_limit_pct": 50.0, "power_limit_enable": 1}
    assert _check(approval, within, w_rtg=10_000.0) is None
    disabled = {"power_limit_pct": 50.0, "power_limit_enable": 0}
    assert _check(approval, disabled, w_rtg=10_000.0) is not None


def test_moving_a_sin_excedentes_site_off_its_registration_is_refused() -> None:
    approval = _approval("es-en50549-1-sin-excedentes", export_w=0.0)
    refusal = _check(approval, {}, profile="es-en50549-1", region="es")
    assert refusal is not None
    assert "re-registration" in refusal.reason


def test_fitting_splits_the_approved_export_over_the_inverters_ratings() -> None:
    approval = _approval(export_w=5000.0)
    fitted = fit_export_limit(approval, {INV: {"volt_var_enable": 1}}, _devices(10_000.0))
    assert fitted[INV]["power_limit_pct"] == 50.0  # 5000 W of 10 000 W
    assert fitted[INV]["power_limit_enable"] == 1
    assert _check(approval, fitted[INV], w_rtg=10_000.0) is None
    small = fit_export_limit(approval, {INV: {"volt_var_enable": 1}}, _devices(4000.0))
    assert "power_limit_pct" not in small[INV]


def test_trip_points_are_the_curves_not_the_adoption_request() -> None:
    assert is_trip_point("707.Crv.MustTrip.Pt.V")
    assert is_trip_point("129.curve.V1")
    assert not is_trip_point("707.AdptCrvReq")
    assert not is_trip_point("705.Crv.Pt.V")
