"""Load device profiles from YAML and check every reference they make.

Shape is checked by pydantic (:mod:`device_profiles.schema`); references here: SunSpec
models and points against pysunspec2's definitions (exists; writable where a setting or
command writes it), metrics against :data:`contracts.metrics.BY_NAME`, vendor registers
against the profile's own map, nameplate keys, command arguments. Every refusal is a
:class:`ProfileError` naming the file, the key (dotted path) and the reason.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from contracts.metrics import BY_NAME
from device_profiles.schema import DeviceProfile, PointRef
from device_profiles.sunspec_codec import UnknownModelError, model_def

__all__ = [
    "BUILTIN_DIR",
    "ProfileError",
    "builtin_profile",
    "builtin_profiles",
    "check_profile",
    "load_profile",
    "load_profiles",
    "parse_profile",
    "profile_problems",
]

from device_profiles.errors import DataFileError, key_path

BUILTIN_DIR = Path(__file__).parent / "profiles"


class ProfileError(DataFileError):
    """A profile that must not load: ``file``, ``key`` (dotted path) and ``reason``."""


_loc = key_path


def _count_names(model_id: int) -> set[str]:
    names: set[str] = set()

    def walk(group: Any) -> None:
        for sub in group.groups:
            if isinstance(sub.count, str):
                names.add(sub.count)
            elif sub.count == 0:
                names.add(sub.name)
            walk(sub)

    walk(model_def(model_id).root)
    return names


def _symbols(profile: DeviceProfile, ref: str) -> dict[str, int]:
    """The enumeration of an existing point: its SunSpec or vendor-map symbols."""
    parsed = PointRef.parse(ref)
    if parsed.model is None:
        reg = profile.vendor_map.register(parsed.path) if profile.vendor_map else None
        return reg.symbols if reg is not None else {}
    pdef = model_def(parsed.model).find(parsed.path)
    return pdef.symbols if pdef is not None else {}


def _code_problems(
    profile: DeviceProfile, key: str, ref: str, codes: dict[int, int]
) -> Iterator[tuple[str, str]]:
    """A code table must translate exactly the point's enumeration: every symbol (so an
    unlisted value is out of spec, not a gap in the table) and nothing else."""
    symbols = _symbols(profile, ref)
    if not symbols:
        yield key, f"{ref}: codes need an enumerated point (it has no symbols)"
        return
    missing = sorted(name for name, value in symbols.items() if value not in codes)
    if missing:
        yield key, f"{ref}: no code for {', '.join(missing)}"
    extra = sorted(set(codes) - set(symbols.values()))
    if extra:
        yield key, f"{ref}: {extra} are not values of the point"


def profile_problems(profile: DeviceProfile) -> Iterator[tuple[str, str]]:
    """Every ``(key, reason)`` wrong with a shape-valid profile's references."""
    declared: set[int] = set()
    for i, model_id in enumerate(profile.models):
        try:
            model_def(model_id)
        except UnknownModelError as exc:
            yield f"models[{i}]", str(exc.args[0])
            continue
        if model_id in declared:
            yield f"models[{i}]", f"model {model_id} declared twice"
        declared.add(model_id)
    if profile.models and profile.models[0] != 1:
        yield "models[0]", "the SunSpec chain must start with the common model 1"
    if not profile.models and profile.vendor_map is None:
        yield "models", "a profile needs SunSpec models or a vendor_map"
    for model_id, counts in profile.group_counts.items():
        key = f"group_counts.{model_id}"
        if model_id not in declared:
            yield key, f"model {model_id} is not in models"
            continue
        allowed = _count_names(model_id)
        for name, count in counts.items():
            if name not in allowed:
                yield (
                    f"{key}.{name}",
                    f"model {model_id} has no repeating group counted by {name!r}",
                )
            elif count < 1:
                yield f"{key}.{name}", "a group count must be at least 1"
    if profile.kind == "meter" and profile.meter_sign is None:
        yield "meter_sign", "a meter must state its sign (import_positive or export_positive)"
    if profile.kind != "meter" and profile.meter_sign is not None:
        yield "meter_sign", f"only meters have a meter_sign, not a {profile.kind}"

    def point(key: str, ref: str, *, writable: bool) -> Iterator[tuple[str, str]]:
        parsed = PointRef.parse(ref)
        if parsed.model is None:
            if profile.vendor_map is None:
                yield key, f"{ref}: the profile has no vendor_map"
                return
            reg = profile.vendor_map.register(parsed.path)
            if reg is None:
                yield key, f"{ref}: no register {parsed.path!r} in vendor_map"
            elif writable and reg.access != "RW":
                yield key, f"{ref}: register is read-only"
            return
        if parsed.model not in declared:
            yield key, f"{ref}: model {parsed.model} is not in models"
            return
        pdef = model_def(parsed.model).find(parsed.path)
        if pdef is None:
            yield key, f"{ref}: model {parsed.model} has no point {parsed.path!r}"
        elif writable and not pdef.writable:
            yield key, f"{ref}: point is read-only in SunSpec model {parsed.model}"

    for i, mapping in enumerate(profile.metrics):
        key = f"metrics[{i}]"
        if mapping.metric not in BY_NAME:
            yield f"{key}.metric", f"unknown metric {mapping.metric!r} (not in contracts catalog)"
        problems = list(point(f"{key}.source", mapping.source, writable=False))
        yield from problems
        if mapping.codes is not None and not problems:
            yield from _code_problems(profile, f"{key}.codes", mapping.source, mapping.codes)
    names = [m.metric for m in profile.metrics]
    for dup in sorted({n for n in names if names.count(n) > 1}):
        yield "metrics", f"metric {dup!r} mapped twice"

    def limit(key: str, value: float | str) -> Iterator[tuple[str, str]]:
        if isinstance(value, str) and value.removeprefix("nameplate.") not in profile.nameplate:
            yield key, f"{value}: no such key in nameplate"

    for i, setting in enumerate(profile.settings):
        key = f"settings[{i}]"
        yield from point(f"{key}.point", setting.point, writable=True)
        yield from limit(f"{key}.min", setting.min)
        yield from limit(f"{key}.max", setting.max)
    snames = [s.name for s in profile.settings]
    for dup in sorted({n for n in snames if snames.count(n) > 1}):
        yield "settings", f"setting {dup!r} declared twice"

    for i, command in enumerate(profile.commands):
        key = f"commands[{i}]"
        args = {a.name for a in command.args}
        for j, arg in enumerate(command.args):
            if profile.setting(arg.setting) is None:
                yield f"{key}.args[{j}].setting", f"no setting {arg.setting!r}"
        for j, effect in enumerate(command.expect):
            yield from point(f"{key}.expect[{j}].point", effect.point, writable=False)
        for j, condition in enumerate(command.requires):
            yield from point(f"{key}.requires[{j}].point", condition.point, writable=False)
        for j, write in enumerate(command.writes):
            yield from point(f"{key}.writes[{j}].point", write.point, writable=True)
            if write.arg is not None and write.arg not in args:
                yield f"{key}.writes[{j}].arg", f"command has no argument {write.arg!r}"
    cnames = [c.name for c in profile.commands]
    for dup in sorted({n for n in cnames if cnames.count(n) > 1}):
        yield "commands", f"command {dup!r} declared twice"

    if profile.state_events is not None and profile.state_events.metric not in names:
        yield (
            "state_events.metric",
            f"metric {profile.state_events.metric!r} is not mapped in metrics",
        )


def check_profile(profile: DeviceProfile, file: str = "<profile>") -> DeviceProfile:
    """Raise :class:`ProfileError` for the first bad reference; return the profile."""
    for key, reason in profile_problems(profile):
        raise ProfileError(file, key, reason)
    return profile


def parse_profile(data: Any, file: str = "<profile>") -> DeviceProfile:
    """A checked profile from already-parsed YAML/JSON data."""
    if not isinstance(data, dict):
        raise ProfileError(file, "", "a profile is a mapping")
    try:
        profile = DeviceProfile.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        raise ProfileError(file, _loc(tuple(err["loc"])), err["msg"]) from None
    return check_profile(profile, file)


def load_profile(path: Path | str) -> DeviceProfile:
    """Load and check one profile file; :class:`ProfileError` names file, key and reason."""
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ProfileError(str(path), "", f"cannot read: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        raise ProfileError(str(path), "", f"not valid YAML: {exc}") from None
    return parse_profile(data, str(path))


def load_profiles(directory: Path | str = BUILTIN_DIR) -> dict[str, DeviceProfile]:
    """Every ``*.yaml`` profile of a directory by name; names must be unique."""
    profiles: dict[str, DeviceProfile] = {}
    for path in sorted(Path(directory).glob("*.yaml")):
        profile = load_profile(path)
        if profile.name in profiles:
            raise ProfileError(str(path), "name", f"profile {profile.name!r} defined twice")
        profiles[profile.name] = profile
    return profiles


@functools.cache
def _builtin() -> dict[str, DeviceProfile]:
    return load_profiles(BUILTIN_DIR)


def builtin_profiles() -> dict[str, DeviceProfile]:
    """The profiles shipped in ``device_profiles/profiles`` (read once; profiles are frozen)."""
    return dict(_builtin())


def builtin_profile(name: str) -> DeviceProfile:
    """One shipped profile; ``KeyError`` names the unknown profile."""
    try:
        return _builtin()[name]
    except KeyError:
        raise KeyError(f"unknown device profile {name!r}") from None
