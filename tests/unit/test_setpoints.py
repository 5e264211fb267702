"""device_profiles.setpoints: every value checked against the profile before any write.

Includes reliability scenario 11 as hypothesis properties: for any input, ``validate_*``
either returns values all within the profile's limits or raises ``SetpointRefusal``.
"""

from __future__ import annotations

import math
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from device_profiles import DeviceProfile, builtin_profile, builtin_profiles
from device_profiles.schema import Setting
from device_profiles.setpoints import (
    SetpointRefusal,
    ValidatedSetting,
    validate_command,
    validate_settings,
)

PROFILES = builtin_profiles()
DER = builtin_profile("sim-der-inverter")
INV = builtin_profile("sim-inverter-103")
HYB = builtin_profile("sim-hybrid-inverter")
ISO = builtin_profile("sim-isolator")


def refused(fn: Any, *args: Any) -> SetpointRefusal:
    with pytest.raises(SetpointRefusal) as info:
        fn(*args)
    return info.value


# --- examples -------------------------------------------------------------------------


def test_valid_settings_pass_with_their_limits() -> None:
    out = validate_settings(DER, {"power_limit_pct": 80, "w_max": 4000.5}, {})
    assert [(s.name, s.point, s.value, s.min, s.max) for s in out] == [
        ("power_limit_pct", "704.WMaxLimPct", 80.0, 0.0, 100.0),
        ("w_max", "702.WMax", 4000.5, 0.0, 5000.0),
    ]
    assert validate_settings(DER, {}, {}) == []


def test_out_of_range_is_refused_naming_field_and_limit() -> None:
    err = refused(validate_settings, INV, {"v_ref": 300}, {})
    assert err.field == "v_ref"
    assert err.limit == "180 <= v_ref <= 265 V"
    assert "out of range" in err.reason


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        (float("nan"), "not a finite number"),
        (float("inf"), "not a finite number"),
        (-float("inf"), "not a finite number"),
        (True, "boolean"),
        (False, "boolean"),
        ("50", "expected a number, got str"),
        (None, "expected a number, got NoneType"),
        ({"value": 50}, "expected a number, got dict"),
        ([50], "expected a number, got list"),
        pytest.param(10**5000, "an integer of", id="huge-int"),
        (1e308, "out of range"),
        (-0.0001, "out of range"),
        (100.0001, "out of range"),
    ],
)
def test_wrong_values_are_refused(value: Any, reason: str) -> None:
    err = refused(validate_settings, DER, {"power_limit_pct": value}, {})
    assert err.field == "power_limit_pct"
    assert reason in err.reason
    assert err.limit == "0 <= power_limit_pct <= 100 %"


def test_unknown_settings_and_non_mappings_are_refused() -> None:
    err = refused(validate_settings, DER, {"export_limit_w": 10}, {})
    assert err.field == "export_limit_w"
    assert "no writable setting" in err.reason
    assert refused(validate_settings, DER, [("w_max", 1)], {}).field == "<settings>"


def test_nameplate_limit_is_the_tighter_of_device_and_profile() -> None:
    # the device says it is a 4 kW variant: 4500 W is refused, the limit names the key
    err = refused(validate_settings, DER, {"w_max": 4500}, {"w_rtg": 4000.0})
    assert err.limit == "0 <= w_max <= 4000 W (max = nameplate.w_rtg)"
    # a device claiming more than its profile does not widen the limit
    assert refused(validate_settings, DER, {"w_max": 6000}, {"w_rtg": 9000.0})
    # non-finite device values are ignored (the profile's value stands)
    out = validate_settings(DER, {"w_max": 5000}, {"w_rtg": math.nan})
    assert out[0].max == 5000.0


def test_a_nameplate_limit_known_nowhere_refuses() -> None:
    profile = DER.model_copy(update={"nameplate": {}})
    err = refused(validate_settings, profile, {"w_max": 1}, {})
    assert "nameplate.w_rtg is unknown" in err.reason


def test_limits_that_resolve_to_an_empty_range_refuse() -> None:
    # battery setpoint: min -5000, max nameplate.max_discharge_w; a device reporting a
    # negative rating leaves no safe value at all
    err = refused(validate_settings, HYB, {"battery_setpoint_w": 0}, {"max_discharge_w": -6000})
    assert "empty range" in err.reason


def test_integer_points_refuse_fractions_and_enums_refuse_non_symbols() -> None:
    assert "whole number" in refused(validate_settings, INV, {"connect": 0.5}, {}).reason
    assert validate_settings(INV, {"connect": 1.0}, {})[0].value == 1.0
    # 123.OutPFSet has a scale factor: fractions are fine
    assert validate_settings(INV, {"pf_setpoint": -0.95}, {})[0].value == -0.95
    assert "whole number" in refused(validate_settings, ISO, {"command": 1.5}, {}).reason


def test_curves_take_a_bounded_list_of_values_each_checked() -> None:
    out = validate_settings(DER, {"volt_var_v_pct": [92, 98, 102, 108]}, {})
    assert out[0].value == (92.0, 98.0, 102.0, 108.0)
    err = refused(validate_settings, DER, {"volt_var_v_pct": [92, 98, 102, 160]}, {})
    assert err.field == "volt_var_v_pct[3]"
    assert "1 to 4 values" in refused(validate_settings, DER, {"volt_var_v_pct": []}, {}).reason
    assert "1 to 4" in refused(validate_settings, DER, {"volt_var_v_pct": [100] * 5}, {}).reason
    # a scalar point takes no list
    assert "got list" in refused(validate_settings, DER, {"w_max": [1, 2]}, {}).reason


def test_commands_validate_args_and_every_write() -> None:
    cmd = validate_command(INV, "set_power_limit", {"pct": 40}, {})
    assert cmd.args["pct"].value == 40.0
    assert [(w.point, w.value) for w in cmd.writes] == [
        ("123.WMaxLimPct", 40.0),
        ("123.WMaxLim_Ena", 1.0),
    ]
    assert [(w.point, w.value) for w in validate_command(INV, "disconnect", {}, {}).writes] == [
        ("123.Conn", 0.0)
    ]


@pytest.mark.parametrize(
    ("name", "args", "field", "reason"),
    [
        ("format_disk", {}, "format_disk", "no command"),
        ("set_power_limit", {}, "args.pct", "needs argument"),
        ("set_power_limit", {"pct": 40, "force": 1}, "args.force", "no argument"),
        ("set_power_limit", {"pct": 101}, "args.pct", "out of range"),
        ("set_power_limit", {"pct": math.nan}, "args.pct", "not a finite number"),
        ("set_power_limit", {"pct": True}, "args.pct", "boolean"),
        ("set_power_limit", {"pct": "40"}, "args.pct", "got str"),
        ("set_power_limit", {"pct": [40]}, "args.pct", "got list"),
        ("set_power_limit", [("pct", 40)], "args", "object"),
    ],
)
def test_bad_commands_are_refused(name: str, args: Any, field: str, reason: str) -> None:
    err = refused(validate_command, INV, name, args, {})
    assert err.field == field
    assert reason in err.reason


def test_battery_setpoint_obeys_the_device_nameplate() -> None:
    ok = validate_command(HYB, "set_battery_power", {"w": -5000}, {"max_discharge_w": 3000.0})
    assert ok.writes[0].value == -5000.0
    err = refused(validate_command, HYB, "set_battery_power", {"w": 3500}, {"max_discharge_w": 3e3})
    assert err.limit.endswith("(max = nameplate.max_discharge_w)")


@pytest.mark.parametrize("profile", list(PROFILES.values()), ids=list(PROFILES))
def test_every_builtin_command_and_setting_is_valid_at_its_limits(profile: DeviceProfile) -> None:
    for setting in profile.settings:
        for limit in (setting.min, setting.max):
            value = profile.limit(limit)
            validate_settings(profile, {setting.name: value}, {})
    for command in profile.commands:
        args = {a.name: _any_valid(profile, a.setting) for a in command.args}
        validate_command(profile, command.name, args, {})


def _any_valid(profile: DeviceProfile, setting_name: str) -> float:
    setting = profile.setting(setting_name)
    assert setting is not None
    return profile.limit(setting.max)


# --- scenario 11: properties ----------------------------------------------------------

JSON_LEAF = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.floats(min_value=-1e6, max_value=1e6)
    | st.sampled_from([0, 1, 2, 3, -1, 0.5, 100, 100.0000001, 5000, 1e308, -0.0, 2**64])
    | st.text(max_size=8)
)
JSON = st.recursive(
    JSON_LEAF,
    lambda inner: st.lists(inner, max_size=6) | st.dictionaries(st.text(max_size=5), inner),
    max_leaves=12,
)
NAMEPLATE_VALUE = (
    st.floats(allow_nan=True, allow_infinity=True)
    | st.integers(min_value=-(10**6), max_value=10**6)
    | st.sampled_from([0.0, 3000.0, 4000.0, 5000.0, 9000.0, -5000.0])
)
PROFILE = st.sampled_from(sorted(PROFILES.values(), key=lambda p: p.name))


def _values_for(
    setting: Setting, profile: DeviceProfile, *, clean: bool = False
) -> st.SearchStrategy[Any]:
    lo, hi = profile.limit(setting.min), profile.limit(setting.max)
    if clean:  # mostly acceptable values, so the "returned" branch is exercised too
        whole_in = st.integers(min_value=math.ceil(lo), max_value=math.floor(hi))
        inside = st.one_of(whole_in, whole_in, whole_in, st.floats(min_value=lo, max_value=hi))
        if "." in setting.point.split(".", 1)[1]:  # a point in a repeating group: a curve
            return st.lists(inside, min_size=1, max_size=2)
        return inside
    near = st.floats(min_value=lo - 1, max_value=hi + 1, allow_nan=False)
    whole = st.integers(min_value=math.floor(lo) - 1, max_value=math.ceil(hi) + 1)
    return JSON | near | whole | st.lists(near | whole, max_size=6)


def _profile_limits(
    profile: DeviceProfile, setting: Setting, nameplate: dict[str, Any]
) -> tuple[float, float]:
    """The limits computed independently: the profile's, tightened by finite device values."""
    lo, hi = profile.limit(setting.min), profile.limit(setting.max)
    for limit, is_max in ((setting.min, False), (setting.max, True)):
        if isinstance(limit, str):
            dev = nameplate.get(limit.removeprefix("nameplate."))
            if isinstance(dev, int | float) and not isinstance(dev, bool) and math.isfinite(dev):
                if is_max:
                    hi = min(hi, dev)
                else:
                    lo = max(lo, dev)
    return lo, hi


def _assert_within(profile: DeviceProfile, out: ValidatedSetting, nameplate: Any) -> None:
    setting = profile.setting(out.name)
    assert setting is not None
    lo, hi = _profile_limits(profile, setting, nameplate)
    values = out.value if isinstance(out.value, tuple) else (out.value,)
    assert values
    for v in values:
        assert type(v) is float
        assert math.isfinite(v)
        assert lo <= v <= hi, (out.name, v, lo, hi)


@st.composite
def settings_input(draw: st.DrawFn) -> tuple[DeviceProfile, Any, dict[str, Any]]:
    profile = draw(PROFILE)
    names = [s.name for s in profile.settings]
    chosen: dict[Any, Any] = {}
    clean = draw(st.booleans())
    if names:
        for name in draw(st.lists(st.sampled_from(names), max_size=4, unique=True)):
            setting = profile.setting(name)
            assert setting is not None
            chosen[name] = draw(_values_for(setting, profile, clean=clean))
    if not clean and draw(st.booleans()):
        chosen[draw(st.text(max_size=6))] = draw(JSON)
    keys = [*sorted(profile.nameplate), "bogus"]
    nameplate = draw(st.dictionaries(st.sampled_from(keys), NAMEPLATE_VALUE, max_size=3))
    settings_arg: Any = chosen if draw(st.integers(0, 20)) else draw(JSON)
    return profile, settings_arg, nameplate


def _outcome(fn: Any, *args: Any) -> tuple[Any, SetpointRefusal | None]:
    """``(result, None)`` or ``(None, refusal)``; any other exception fails the test."""
    try:
        return fn(*args), None
    except SetpointRefusal as exc:
        return None, exc


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(settings_input())
def test_scenario_11_settings_are_within_limits_or_refused(
    case: tuple[DeviceProfile, Any, dict[str, Any]],
) -> None:
    profile, raw, nameplate = case
    out, refusal = _outcome(validate_settings, profile, raw, nameplate)
    if out is None:
        assert refusal is not None
        assert refusal.field
        assert refusal.reason
        return
    assert isinstance(raw, dict)
    assert [s.name for s in out] == list(raw)
    for item in out:
        _assert_within(profile, item, nameplate)


@st.composite
def command_input(draw: st.DrawFn) -> tuple[DeviceProfile, Any, Any, dict[str, Any]]:
    profile = draw(PROFILE)
    names = [c.name for c in profile.commands] or ["none"]
    name: Any = draw(st.sampled_from(names) | st.text(max_size=8) | JSON)
    command = profile.command(name) if isinstance(name, str) else None
    args: dict[Any, Any] = {}
    clean = draw(st.booleans())
    if command is not None:
        for arg in command.args:
            setting = profile.setting(arg.setting)
            assert setting is not None
            if draw(st.integers(0, 9)):
                args[arg.name] = draw(_values_for(setting, profile, clean=clean))
    if not clean and draw(st.integers(0, 4)) == 0:
        args[draw(st.text(max_size=6))] = draw(JSON)
    keys = [*sorted(profile.nameplate), "bogus"]
    nameplate = draw(st.dictionaries(st.sampled_from(keys), NAMEPLATE_VALUE, max_size=3))
    args_arg: Any = args if draw(st.integers(0, 20)) else draw(JSON)
    return profile, name, args_arg, nameplate


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(command_input())
def test_scenario_11_commands_write_only_within_limits_or_are_refused(
    case: tuple[DeviceProfile, Any, Any, dict[str, Any]],
) -> None:
    profile, name, args, nameplate = case
    cmd, refusal = _outcome(validate_command, profile, name, args, nameplate)
    if cmd is None:
        assert refusal is not None
        assert refusal.field
        assert refusal.reason
        return
    command = profile.command(name)
    assert command is not None
    assert set(cmd.args) == {a.name for a in command.args}
    for item in cmd.args.values():
        _assert_within(profile, item, nameplate)
    assert [w.point for w in cmd.writes] == [w.point for w in command.writes]
    for write in cmd.writes:
        setting = profile.setting_for(write.point)
        assert setting is not None
        lo, hi = _profile_limits(profile, setting, nameplate)
        assert type(write.value) is float
        assert math.isfinite(write.value)
        assert lo <= write.value <= hi


def test_a_config_validates_every_device_and_refuses_requests_for_actions() -> None:
    from device_profiles.setpoints import validate_config_devices

    profiles = {"INV-1": DER, "ISO-1": ISO}
    checked = validate_config_devices(
        {"INV-1": {"power_limit_pct": 50, "volt_var_v_pct": [95, 100, 105]}}, profiles, {}
    )
    assert [s.name for s in checked["INV-1"]] == ["power_limit_pct", "volt_var_v_pct"]
    cases = {
        "devices.ISO-1.command": {"ISO-1": {"command": 1}},  # would open the isolator
        "devices.INV-1.volt_var_adopt": {"INV-1": {"volt_var_adopt": 2}},
        "devices.INV-1.power_limit_pct": {"INV-1": {"power_limit_pct": 101}},
        "devices.MTR-9": {"MTR-9": {"power_limit_pct": 1}},  # not on this gateway
    }
    for field, devices in cases.items():
        with pytest.raises(SetpointRefusal) as refused:
            validate_config_devices(devices, profiles, {})
        assert refused.value.field == field, (field, str(refused.value))
