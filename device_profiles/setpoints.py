"""Validation of setpoints against a device profile, before anything is written.

Shared by the agent and the virtual gateways. Every value of a config's settings or a
command's arguments is checked against the profile's writable :class:`Setting` (its hard
limits, in engineering units) and the SunSpec/vendor point it lands on:

* only JSON numbers: no strings, ``None``, containers, and no booleans posing as 0/1;
* finite (no NaN or infinity) and within ``min ≤ value ≤ max``;
* whole numbers for points without a scale factor (integer registers, enums), and one
  of the symbols of an enumerated point;
* a list of numbers only for a point inside a repeating group (a curve), at most as
  many as the profile's group count.

A limit ``nameplate.<key>`` resolves to the *tighter* of the device's reported nameplate
(``nameplate`` argument) and the profile's: the lower for a maximum, the higher for a
minimum; non-finite or missing device values are ignored, and a limit that resolves to
nothing refuses the value. Every refusal is a :class:`SetpointRefusal` naming the field,
the limit and the reason; nothing else is raised for any input.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from device_profiles.schema import Command, DeviceProfile, Limit, PointRef, Setting
from device_profiles.sunspec_codec import GroupDef, UnknownModelError, model_def

__all__ = [
    "SetpointRefusal",
    "ValidatedCommand",
    "ValidatedSetting",
    "ValidatedWrite",
    "device_nameplate",
    "is_adoption_request",
    "is_request_point",
    "validate_command",
    "validate_config_devices",
    "validate_settings",
]

_FLOAT_TYPES = frozenset({"float32", "float64"})
_ENUM_TYPES = frozenset({"enum16", "enum32"})
_INT_TYPES = frozenset(
    {
        "int16",
        "uint16",
        "int32",
        "uint32",
        "int64",
        "uint64",
        "count",
        "acc16",
        "acc32",
        "acc64",
        "enum16",
        "enum32",
        "bitfield16",
        "bitfield32",
        "bitfield64",
    }
)


#: Model 120 points a gateway reports in ``DeviceInfo.nameplate`` → the profiles' keys.
DEVICE_NAMEPLATE_KEYS = {"WRtg": "w_rtg", "VARtg": "va_rtg", "WHRtg": "wh_rtg", "ARtg": "a_rtg"}


def device_nameplate(reported: Mapping[str, Any]) -> dict[str, float]:
    """A device's reported nameplate under the profiles' keys, as every side (agent,
    cloud, virtual gateways) must pass it to the validators: unknown or non-numeric
    values are left out (the tighter of these and the profile's values is the limit)."""
    out: dict[str, float] = {}
    for key, value in reported.items():
        if isinstance(value, int | float) and not isinstance(value, bool):
            out[DEVICE_NAMEPLATE_KEYS.get(key, key)] = float(value)
    return out


class SetpointRefusal(ValueError):
    """A value that must not be written: ``field``, ``limit`` and ``reason``."""

    def __init__(self, field: str, limit: str, reason: str) -> None:
        self.field, self.limit, self.reason = field, limit, reason
        super().__init__(f"{field}: {reason}" + (f" (limit {limit})" if limit else ""))


@dataclass(frozen=True, slots=True)
class ValidatedSetting:
    """A setting value that passed every check; ``value`` is a tuple for a curve."""

    name: str
    point: str
    unit: str
    value: float | tuple[float, ...]
    min: float
    max: float


@dataclass(frozen=True, slots=True)
class ValidatedWrite:
    """One write of a command, with the limits of the setting that governs its point."""

    point: str
    value: float
    min: float
    max: float


@dataclass(frozen=True, slots=True)
class ValidatedCommand:
    name: str
    args: Mapping[str, ValidatedSetting]
    writes: tuple[ValidatedWrite, ...]


@dataclass(frozen=True, slots=True)
class _PointRule:
    integer: bool
    symbols: frozenset[int] | None
    curve_max: int | None  # None: a scalar point; else the most values of a curve


def _name(key: object) -> str:
    """A key as a field name for a refusal (never empty, never a huge ``str``)."""
    if isinstance(key, str):
        return key or "<empty name>"
    return f"<{type(key).__name__} key>"


def _fmt(value: float) -> str:
    return f"{value:g}"


def _show(value: int | float) -> str:
    """A value for a message (huge integers as their size: ``str`` refuses > 4300 digits)."""
    if isinstance(value, int) and abs(value) > 10**18:
        return f"an integer of {value.bit_length()} bits"
    return repr(value)


def _nameplate_value(
    key: str, nameplate: Mapping[str, Any], profile: DeviceProfile, *, is_max: bool
) -> float | None:
    candidates = []
    for source in (nameplate, profile.nameplate):
        value = source.get(key)
        if isinstance(value, int | float) and not isinstance(value, bool):
            try:
                number = float(value)
            except OverflowError:
                continue
            if math.isfinite(number):
                candidates.append(number)
    if not candidates:
        return None
    return min(candidates) if is_max else max(candidates)


def _limits(
    setting: Setting, field: str, profile: DeviceProfile, nameplate: Mapping[str, Any]
) -> tuple[float, float, str]:
    def resolve(limit: Limit, *, is_max: bool) -> float:
        if isinstance(limit, str):
            key = limit.removeprefix("nameplate.")
            value = _nameplate_value(key, nameplate, profile, is_max=is_max)
            if value is None:
                raise SetpointRefusal(field, limit, f"limit {limit} is unknown for this device")
            return value
        return float(limit)

    lo = resolve(setting.min, is_max=False)
    hi = resolve(setting.max, is_max=True)
    unit = f" {setting.unit}" if setting.unit else ""
    text = f"{_fmt(lo)} <= {setting.name} <= {_fmt(hi)}{unit}"
    named = [
        f"{k} = {v}" for k, v in (("min", setting.min), ("max", setting.max)) if isinstance(v, str)
    ]
    if named:
        text += f" ({', '.join(named)})"
    if lo > hi:
        raise SetpointRefusal(field, text, "the limits resolve to an empty range")
    return lo, hi, text


def _curve_max(profile: DeviceProfile, model_id: int, groups: list[GroupDef]) -> int | None:
    innermost = groups[-1]
    counts = profile.group_counts.get(model_id, {})
    if isinstance(innermost.count, int) and innermost.count > 0:
        return innermost.count
    key = innermost.count if isinstance(innermost.count, str) else innermost.name
    return counts.get(key)


def _point_rule(profile: DeviceProfile, ref: str, field: str) -> _PointRule:
    try:
        parsed = PointRef.parse(ref)
    except ValueError:
        raise SetpointRefusal(field, "", f"point {ref!r} is not a point reference") from None
    if parsed.model is None:
        reg = profile.vendor_map.register(parsed.path) if profile.vendor_map else None
        if reg is None:
            raise SetpointRefusal(field, "", f"point {ref} is not in the vendor map")
        symbols = frozenset(reg.symbols.values()) or None
        return _PointRule(integer=True, symbols=symbols, curve_max=None)
    try:
        mdef = model_def(parsed.model)
    except UnknownModelError:
        raise SetpointRefusal(field, "", f"point {ref}: unknown SunSpec model") from None
    *group_names, name = parsed.path.split(".")
    groups: list[GroupDef] = []
    group: GroupDef | None = mdef.root
    for part in group_names:
        group = group.group(part) if group is not None else None
        if group is None:
            break
        groups.append(group)
    pdef = group.point(name) if group is not None else None
    if pdef is None:
        raise SetpointRefusal(field, "", f"point {ref} is not in SunSpec model {parsed.model}")
    if pdef.type not in _INT_TYPES | _FLOAT_TYPES:
        raise SetpointRefusal(field, "", f"point {ref} is not numeric ({pdef.type})")
    integer = pdef.type in _INT_TYPES and pdef.sf is None
    symbols = (
        frozenset(pdef.symbols.values()) if pdef.type in _ENUM_TYPES and pdef.symbols else None
    )
    curve_max = None
    if any(g.count is not None for g in groups):
        curve_max = _curve_max(profile, parsed.model, groups) or 0
    return _PointRule(integer=integer, symbols=symbols, curve_max=curve_max)


def _number(field: str, value: object, lo: float, hi: float, limit: str, rule: _PointRule) -> float:
    if isinstance(value, bool):
        raise SetpointRefusal(field, limit, "a boolean is not a number")
    if isinstance(value, int):
        if not lo <= value <= hi:  # exact comparison, even for huge integers
            raise SetpointRefusal(field, limit, f"{_show(value)} is out of range")
        number = float(value)
    elif isinstance(value, float):
        if not math.isfinite(value):
            raise SetpointRefusal(field, limit, f"{_show(value)} is not a finite number")
        if not lo <= value <= hi:
            raise SetpointRefusal(field, limit, f"{_show(value)} is out of range")
        number = value
    else:
        raise SetpointRefusal(field, limit, f"expected a number, got {type(value).__name__}")
    if rule.integer and not number.is_integer():
        raise SetpointRefusal(field, limit, f"{number!r} must be a whole number")
    if rule.symbols is not None and number not in rule.symbols:
        allowed = ", ".join(str(s) for s in sorted(rule.symbols))
        raise SetpointRefusal(field, limit, f"{_fmt(number)} is not one of {allowed}")
    return number


def _value(
    field: str, value: object, lo: float, hi: float, limit: str, rule: _PointRule
) -> float | tuple[float, ...]:
    if rule.curve_max is None or not isinstance(value, list | tuple):
        return _number(field, value, lo, hi, limit, rule)
    if not 1 <= len(value) <= rule.curve_max:
        raise SetpointRefusal(
            field, limit, f"a curve has 1 to {rule.curve_max} values, not {len(value)}"
        )
    return tuple(
        _number(f"{field}[{i}]", item, lo, hi, limit, rule) for i, item in enumerate(value)
    )


def _setting_value(
    profile: DeviceProfile,
    setting: Setting,
    field: str,
    value: object,
    nameplate: Mapping[str, Any],
    *,
    scalar: bool = False,
) -> ValidatedSetting:
    lo, hi, limit = _limits(setting, field, profile, nameplate)
    rule = _point_rule(profile, setting.point, field)
    if scalar and rule.curve_max is not None:
        rule = _PointRule(rule.integer, rule.symbols, None)
    checked = _value(field, value, lo, hi, limit, rule)
    return ValidatedSetting(setting.name, setting.point, setting.unit, checked, lo, hi)


def validate_settings(
    profile: DeviceProfile, settings: Mapping[str, Any], nameplate: Mapping[str, float]
) -> list[ValidatedSetting]:
    """Every setting of one device's config, checked; else :class:`SetpointRefusal`."""
    if not isinstance(settings, Mapping):
        raise SetpointRefusal("<settings>", "", "settings are an object of name: value")
    out = []
    for name, value in settings.items():
        field = _name(name)
        setting = profile.setting(name) if isinstance(name, str) else None
        if setting is None:
            raise SetpointRefusal(field, "", f"{profile.name} has no writable setting {field!r}")
        out.append(_setting_value(profile, setting, field, value, nameplate))
    return out


def validate_command(
    profile: DeviceProfile, name: str, args: Mapping[str, Any], nameplate: Mapping[str, float]
) -> ValidatedCommand:
    """A named command with its arguments and writes, checked; else :class:`SetpointRefusal`."""
    command: Command | None = profile.command(name) if isinstance(name, str) else None
    if command is None:
        shown = _name(name)
        raise SetpointRefusal(shown, "", f"{profile.name} has no command {shown!r}")
    if not isinstance(args, Mapping):
        raise SetpointRefusal("args", "", "arguments are an object of name: value")
    declared = {a.name: a for a in command.args}
    unknown = sorted(_name(k) for k in args if k not in declared)
    if unknown:
        raise SetpointRefusal(f"args.{unknown[0]}", "", f"{name} has no argument {unknown[0]!r}")
    checked: dict[str, ValidatedSetting] = {}
    for arg in command.args:
        field = f"args.{arg.name}"
        if arg.name not in args:
            raise SetpointRefusal(field, "", f"{name} needs argument {arg.name!r}")
        setting = profile.setting(arg.setting)
        if setting is None:
            raise SetpointRefusal(field, "", f"no setting {arg.setting!r} governs it")
        checked[arg.name] = _setting_value(
            profile, setting, field, args[arg.name], nameplate, scalar=True
        )
    writes = []
    for i, write in enumerate(command.writes):
        field = f"writes[{i}]"
        setting = profile.setting_for(write.point)
        if setting is None:
            raise SetpointRefusal(field, "", f"no setting governs point {write.point}")
        if write.arg is not None:
            if write.arg not in checked:
                raise SetpointRefusal(field, "", f"{name} has no argument {write.arg!r}")
            value: object = checked[write.arg].value
        else:
            value = write.value
        # The written point obeys its own setting's limits too (profile-fixed values as well).
        result = _setting_value(profile, setting, field, value, nameplate, scalar=True)
        if not isinstance(result.value, float):
            raise SetpointRefusal(field, "", "a command writes single values")
        writes.append(ValidatedWrite(write.point, result.value, result.min, result.max))
    return ValidatedCommand(name, checked, tuple(writes))


#: Points that *request* an action (curve adoption) rather than hold a setting: the
#: agent writes them itself after a curve's points, so a config may not set them.
_REQUEST_POINTS = frozenset({"AdptCrvReq", "AdptCtlReq"})


def is_adoption_request(point: str) -> bool:
    """True for ``7xx.AdptCrvReq`` / ``7xx.AdptCtlReq``."""
    return point.rsplit(".", 1)[-1] in _REQUEST_POINTS


def is_request_point(point: str) -> bool:
    """A point the device *acts on* and resets rather than holds: curve adoption, or a
    vendor map's ``command`` register (open / close an isolator). Reading it back tells
    nothing, and a config must never carry it: every new version (a rollback too) would
    repeat the action."""
    return is_adoption_request(point) or point == "vendor.command"


def validate_config_devices(
    devices: Mapping[str, Any],
    profiles: Mapping[str, DeviceProfile],
    nameplates: Mapping[str, Mapping[str, Any]],
) -> dict[str, list[ValidatedSetting]]:
    """Every device's settings of a config document, checked before anything is written.

    ``profiles`` maps the gateway's local device ids to their profiles and ``nameplates``
    to the nameplates they report. A device the gateway does not have (or has without a
    profile), an unknown setting, an adoption request or a value outside its limits
    raises :class:`SetpointRefusal` whose field is ``devices.<device>.<setting>``.
    """
    if not isinstance(devices, Mapping):
        raise SetpointRefusal("devices", "", "devices are an object of device id: settings")
    out: dict[str, list[ValidatedSetting]] = {}
    for device, settings in devices.items():
        where = f"devices.{_name(device)}"
        profile = profiles.get(device) if isinstance(device, str) else None
        if profile is None:
            raise SetpointRefusal(where, "", "no such device with a profile on this gateway")
        try:
            checked = validate_settings(profile, settings, nameplates.get(device, {}))
        except SetpointRefusal as exc:
            field = exc.field if exc.field.startswith("<") else f"{where}.{exc.field}"
            raise SetpointRefusal(field, exc.limit, exc.reason) from None
        for item in checked:
            if is_request_point(item.point):
                raise SetpointRefusal(
                    f"{where}.{item.name}",
                    "",
                    f"{item.point} requests an action, it is not a setting: send the "
                    "command (a curve's points are set instead, the agent adopts them)",
                )
        out[device] = checked
    return out
