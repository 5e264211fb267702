"""Requests checked against the gateway's devices and their profiles, before any signing.

Pure: the devices (from the gateway's latest birth) and the profiles are passed in. The
checks are the ones the gateways run themselves (``device_profiles.setpoints``), so the
API refuses what an agent would refuse, naming the field and the limit.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from cloud.config.errors import NotFoundError, RefusedError
from cloud.config.logic import GATEWAY_COMMANDS
from cloud.config.repository import KnownDevice
from device_profiles import DeviceProfile
from device_profiles.setpoints import (
    SetpointRefusal,
    device_nameplate,
    validate_command,
    validate_config_devices,
)

__all__ = ["check_command", "check_config"]


def _profile(
    device: KnownDevice, profiles: Mapping[str, DeviceProfile], field: str
) -> DeviceProfile:
    if device.profile is None:
        raise RefusedError(field, "", f"device {device.device!r} has no device profile")
    profile = profiles.get(device.profile)
    if profile is None:
        raise RefusedError(field, "", f"device profile {device.profile!r} is not known here")
    return profile


def check_command(
    gateway_id: str,
    device: str | None,
    name: str,
    args: Mapping[str, Any],
    devices: Mapping[str, KnownDevice],
    profiles: Mapping[str, DeviceProfile],
) -> None:
    """Raise :class:`NotFoundError` (unknown device) or :class:`RefusedError`."""
    if device is None:
        if name not in GATEWAY_COMMANDS:
            raise RefusedError(
                "name", "", f"gateway commands are {sorted(GATEWAY_COMMANDS)}, not {name!r}"
            )
        if args:
            raise RefusedError("args", "", f"{name} takes no arguments")
        return
    known = devices.get(device)
    if known is None:
        raise NotFoundError(f"gateway {gateway_id!r} has no device {device!r}")
    profile = _profile(known, profiles, "device")
    try:
        validate_command(profile, name, args, _nameplate(known))
    except SetpointRefusal as exc:
        # An unknown command comes back under its own name: the request's field is ``name``.
        field = exc.field if exc.field.startswith(("args", "writes")) else "name"
        raise RefusedError(field, exc.limit, exc.reason) from None


def check_config(
    gateway_id: str,
    settings: Mapping[str, Any],
    devices: Mapping[str, KnownDevice],
    profiles: Mapping[str, DeviceProfile],
) -> None:
    """Every device's settings; :class:`RefusedError` naming ``devices.<device>.<setting>``."""
    if not settings:
        raise RefusedError("devices", "", "a config sets at least one device")
    by_device: dict[str, DeviceProfile] = {}
    for name in settings:
        known = devices.get(name)
        if known is None:
            raise RefusedError(
                f"devices.{name}", "", f"gateway {gateway_id!r} has no device {name!r}"
            )
        by_device[name] = _profile(known, profiles, f"devices.{name}")
    nameplates = {d: _nameplate(devices[d]) for d in settings}
    try:
        validate_config_devices(settings, by_device, nameplates)
    except SetpointRefusal as exc:
        raise RefusedError(exc.field, exc.limit, exc.reason) from None


def _nameplate(device: KnownDevice) -> dict[str, float]:
    # The same mapping the gateway applies (model 120 keys → the profiles' keys).
    return device_nameplate(device.nameplate)
