"""Pure pieces of config handling: ``config_state`` bodies, drift, names (no I/O).

A *body* is a :class:`contracts.messages.ConfigState` without ``stream_id``, ``seq`` and
``ts`` (those are given when it is buffered); it is what the control store keeps.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

from device_profiles.schema import DeviceProfile

__all__ = [
    "UNANSWERING",
    "applied_body",
    "device_outcome",
    "drift_body",
    "failed_body",
    "pending_detail",
    "refused_body",
    "setting_for_point",
    "status_of",
    "to_json_value",
    "without_pending_details",
]


def to_json_value(value: float | tuple[float, ...] | None) -> Any:
    """A setting value for JSON: curves as lists."""
    return list(value) if isinstance(value, tuple) else value


def setting_for_point(profile: DeviceProfile, point: str) -> str:
    """The setting name governing ``point`` (indexed or not), else the point itself."""
    ref = re.sub(r"\[\d+\]", "", point)
    setting = profile.setting_for(ref)
    return setting.name if setting is not None else point


def status_of(devices: Mapping[str, str]) -> str:
    """``applied`` when every device applied, ``pending`` when the others wait for an
    unreachable device to answer (decision 153), else ``failed``."""
    if all(s == "applied" for s in devices.values()):
        return "applied"
    if all(s in ("applied", "pending") for s in devices.values()):
        return "pending"
    return "failed"


#: Poller statuses of a device that does not answer (no answer is not a refusal).
UNANSWERING = frozenset({"asleep", "unreachable"})


def device_outcome(ok: bool, *, unreachable: bool) -> str:
    """A device's status after a config attempt: ``applied``; ``pending`` when it did not
    answer at all (connection refused, timeout: asleep or unreachable), to be applied
    when it answers again; ``failed`` when it answered with a refusal or a read-back
    that differs (decision 153)."""
    if ok:
        return "applied"
    return "pending" if unreachable else "failed"


def pending_detail(device: str, why: str) -> str:
    """The ``detail`` part of a device kept pending (one part: no ``; `` inside)."""
    return f"{device}: no answer ({why.replace('; ', ', ')}), kept pending until it answers"


def without_pending_details(detail: str, devices: Iterable[str]) -> list[str]:
    """The parts of a ``detail`` (``; ``-joined) except the pending notes of ``devices``."""
    prefixes = tuple(f"{d}: no answer (" for d in devices)
    return [
        part for part in detail.split("; ") if part and not (prefixes and part.startswith(prefixes))
    ]


def refused_body(previous: Mapping[str, Any] | None, reason: str) -> dict[str, Any]:
    """A document that failed verification moves nothing: the last body, ``detail`` set."""
    if previous is None:
        return {
            "version": None,
            "hash": None,
            "status": "failed",
            "detail": f"refused config: {reason}",
        }
    return {**previous, "detail": f"refused config: {reason}"}


_DEVICE_ID = re.compile(r"^[A-Za-z0-9_.:-]{1,128}$")


def failed_body(version: int, hash_: str, devices: Iterable[str], reason: str) -> dict[str, Any]:
    """A verified, newer document refused by validation (or expired): handled, nothing
    written, each of its devices ``failed`` (ids that cannot be device ids are left out)."""
    return {
        "version": version,
        "hash": hash_,
        "status": "failed",
        "devices": {d: "failed" for d in devices if _DEVICE_ID.match(d)},
        "points": {},
        "drift": [],
        "detail": reason,
    }


def applied_body(
    version: int,
    hash_: str,
    devices: Mapping[str, str],
    points: Mapping[str, Mapping[str, Any]],
    details: list[str],
) -> dict[str, Any]:
    return {
        "version": version,
        "hash": hash_,
        "status": status_of(devices),
        "devices": dict(devices),
        "points": {d: dict(p) for d, p in points.items()},
        "drift": [],
        "detail": "; ".join(details),
    }


def drift_body(previous: Mapping[str, Any], drift: list[str]) -> dict[str, Any]:
    """The last body with the new drift set: ``drifted`` while any (so is every applied
    device with a drifted setting), else as applied. Entries are ``<device>.<setting>``;
    setting names hold no dot, device ids may."""
    drifted = {entry.rsplit(".", 1)[0] for entry in drift}
    devices: dict[str, str] = {}
    for device, status in previous.get("devices", {}).items():
        base = "applied" if status == "drifted" else status
        devices[device] = "drifted" if base == "applied" and device in drifted else base
    status = "drifted" if drift else status_of(devices)
    return {**previous, "status": status, "devices": devices, "drift": sorted(drift)}
