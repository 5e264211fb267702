"""Profiles as the agent reads them: metric sources, vendor maps, signs; and night."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from contracts.messages import Quality
from device_profiles import builtin_profile, builtin_profiles
from device_profiles.sunspec_codec import decode_model, model_def, model_registers
from edge_agent.daylight import sun_elevation_deg, sun_is_down
from edge_agent.normalise import POINT_MAP, normalise_sources, profile_sources, sunspec_sources
from edge_agent.poller import SLEEPY_STATES
from edge_agent.vendor import decode_registers, read_spans
from simulators.solar import ClearSky

METER_201 = {"W": 1500, "WphA": 1500, "W_SF": 0, "Hz": 5000, "Hz_SF": -2}


def test_point_map_agrees_with_every_builtin_profile() -> None:
    """The fallback table for auto-discovered devices maps each SunSpec point to the
    metric the shipped profiles map it to."""
    for profile in builtin_profiles().values():
        for src in profile_sources(profile):
            if src.model in POINT_MAP:
                assert POINT_MAP[src.model].get(src.point) == src.metric, (profile.name, src.ref)


def test_export_positive_meters_flip_their_grid_power_in_the_profile() -> None:
    for profile in builtin_profiles().values():
        if profile.kind != "meter":
            continue
        want = -1.0 if profile.meter_sign == "export_positive" else 1.0
        signed = [
            s
            for s in profile_sources(profile)
            if s.metric.startswith("grid_") and s.metric.endswith("_w")
        ]
        assert signed, profile.name
        assert all(s.factor == want for s in signed), profile.name


def test_a_profile_maps_with_its_own_signs() -> None:
    decoded = {201: decode_model(201, model_registers(201, METER_201))}
    profiled = normalise_sources(profile_sources(builtin_profile("sim-meter-201")), decoded)
    auto = normalise_sources(sunspec_sources([201]), decoded)
    assert profiled.values["grid_w"] == -1500.0  # exporting, in the contract's sign
    assert auto.values["grid_w"] == 1500.0  # no profile: the meter's own sign
    assert profiled.values["grid_hz"] == pytest.approx(50.0)


def test_a_value_gone_not_implemented_is_null_and_flagged() -> None:
    sources = sunspec_sources([201])
    good = {201: decode_model(201, model_registers(201, METER_201))}
    gone = {201: decode_model(201, model_registers(201, {**METER_201, "W": None}))}
    first = normalise_sources(sources, gone)
    assert first.values["grid_w"] is None
    assert first.quality is Quality.GOOD  # never implemented on this device: just null
    seen = {m for m, v in normalise_sources(sources, good).values.items() if v is not None}
    later = normalise_sources(sources, gone, implemented=seen)
    assert later.values["grid_w"] is None
    assert later.quality is Quality.SUSPECT
    assert "not_implemented:201.W" in later.flags


def _der_state(inv_st: int) -> tuple[float | None, Quality, list[str]]:
    """``pv_state_code`` of the DER inverter serving 701 ``InvSt`` = ``inv_st``."""
    decoded = {701: decode_model(701, model_registers(701, {"InvSt": inv_st}))}
    sources = profile_sources(builtin_profile("sim-der-inverter"))
    out = normalise_sources([s for s in sources if s.metric == "pv_state_code"], decoded)
    return out.values["pv_state_code"], out.quality, out.flags


def test_the_der_inverter_reports_its_state_in_the_101_113_codes() -> None:
    """Each 701 InvSt state arrives as the 103 St code of the same SunSpec name (both
    enumerations from pysunspec2's model definitions; 701 RUNNING is 103 MPPT), so the
    agent's SLEEPING-then-silence rule sees a DER inverter fall asleep."""
    st = model_def(103).find("St")
    inv_st = model_def(701).find("InvSt")
    assert st is not None
    assert inv_st is not None
    for name, value in inv_st.symbols.items():
        want = st.symbols["MPPT" if name == "RUNNING" else name]
        assert _der_state(value) == (float(want), Quality.GOOD, []), name
    assert _der_state(inv_st.symbols["SLEEPING"])[0] in SLEEPY_STATES
    assert _der_state(inv_st.symbols["SHUTTING_DOWN"])[0] in SLEEPY_STATES


def test_a_state_outside_the_enumeration_is_null_and_flagged() -> None:
    assert _der_state(42) == (None, Quality.SUSPECT, ["unknown_code:701.InvSt"])


def test_vendor_registers_are_read_in_contiguous_spans_and_decoded() -> None:
    vmap = builtin_profile("sim-isolator").vendor_map
    assert vmap is not None
    assert read_spans(vmap.registers) == [(100, 7)]
    wanted = [r for r in vmap.registers if r.name in ("state", "rated_a")]
    assert read_spans(wanted) == [(100, 7)]
    assert read_spans(wanted, max_count=3) == [(100, 1), (106, 1)]
    words = [2, 0x0001, 0x0002, 0, 0, 9, 40]
    values = decode_registers(vmap, ["state", "trip_count", "rated_a"], {100: words})
    assert values == {"state": 2, "trip_count": 65538, "rated_a": 40}


def test_isolator_metrics_come_from_its_vendor_map() -> None:
    sources = profile_sources(builtin_profile("sim-isolator"))
    assert {(s.metric, s.model, s.point) for s in sources} == {
        ("isolator_state_code", None, "state"),
        ("isolator_trip_count", None, "trip_count"),
    }
    out = normalise_sources(sources, {}, {"state": 1, "trip_count": 3})
    assert out.values == {"isolator_state_code": 1.0, "isolator_trip_count": 3.0}


@pytest.mark.parametrize(
    ("lat", "lon", "tz"), [(-33.87, 151.21, "Australia/Sydney"), (52.0, 4.4, "Europe/Amsterdam")]
)
def test_sun_elevation_agrees_with_the_simulator_sky(lat: float, lon: float, tz: str) -> None:
    sky = ClearSky(lat, lon, tz)
    start = datetime(2024, 1, 10, tzinfo=UTC)
    for hour in range(0, 48, 3):
        when = start + timedelta(hours=hour, minutes=17)
        assert sun_elevation_deg(lat, lon, when) == pytest.approx(sky.at(when)[1], abs=1.5)


def test_night_in_sydney() -> None:
    assert sun_is_down(-33.87, 151.21, datetime(2024, 1, 10, 13, 0, tzinfo=UTC))  # 00:00 local
    assert not sun_is_down(-33.87, 151.21, datetime(2024, 1, 10, 2, 0, tzinfo=UTC))  # 13:00
