"""Settings secured against unauthorised change: a site's network-operator connection
approval bounds every config change (pure: no I/O).

AS/NZS 4777.2 (grid-codes.md §5): no rollout, technician push or manual set may change a
site's **region**, its **trip settings** or its **export limit** beyond the network
operator's connection approval, and the approval's reference is stored with the change.
:func:`check_change` is the one check every path calls (the config service's
``set_config``/``new_version`` — manual sets, rollbacks, rollouts, provisioning — and the
technician push); :func:`fit_export_limit` tightens a provisioned config to the approval.

What "beyond the approval" means here:

* region — the change's profile is of another region than the approved profile's, or
  moves a site onto or off registration data (Spain's sin excedentes:
  :func:`device_profiles.rollout_refusal`);
* trip settings — any setting written to a must-trip, may-trip or momentary-cessation
  point (SunSpec 707 to 710; legacy 129, 130, 135 to 144) whose value differs from what the
  approved profile gives that device (curves compared point by point, within 1e-6);
* export limit — the power the change lets the gateway's devices export: per device with
  an active-power limit setting, ``WMaxLimPct`` % of its rated W when the limit is enabled,
  else its whole rating; summed over the devices the change configures, it must not pass
  the approved limit (W). A site whose approved profile carries registration data (an
  anti-export device enforces export 0) is not checked here: the device is.

Sign conventions: export in W at the connection point, positive out of the site.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from device_profiles import DeviceProfile, GridCodeProfile, device_settings, rollout_refusal
from device_profiles.schema import PointRef

__all__ = [
    "EXPORT_LIMIT_POINTS",
    "TRIP_MODELS",
    "ApprovalRefusal",
    "ConnectionApproval",
    "DeviceOnGateway",
    "check_change",
    "fit_export_limit",
    "is_trip_point",
]

#: SunSpec models whose curves are trip, ride-through and momentary-cessation settings.
TRIP_MODELS = frozenset({707, 708, 709, 710, 129, 130, 135, 136, *range(137, 145)})
#: (limit %, enable) points of an active-power limit, 7xx then 1xx.
EXPORT_LIMIT_POINTS = (
    ("704.WMaxLimPct", "704.WMaxLimPctEna"),
    ("123.WMaxLimPct", "123.WMaxLim_Ena"),
)
_REQUEST_POINTS = ("AdptCrvReq", "AdptCtlReq")
_TOLERANCE = 1e-6


@dataclass(frozen=True, slots=True)
class ConnectionApproval:
    """A network operator's approval of a site's connection.

    ``reference``: the operator's approval number; ``profile``: the grid-code profile it
    approves (its region is the site's); ``export_limit_w``: the approved export at the
    connection point in W (None: the approval sets none); ``phases``: the connection's
    phases (a per-phase export value of a profile counts once per phase)."""

    site_id: int
    region: str
    reference: str
    profile: str
    export_limit_w: float | None = None
    phases: int = 1
    recorded_by: str = ""
    recorded_at: datetime | None = None
    note: str = ""


@dataclass(frozen=True, slots=True)
class DeviceOnGateway:
    """A device as the gateway's birth described it: its profile and nameplate."""

    device: str
    profile: DeviceProfile | None
    nameplate: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class ApprovalRefusal:
    """Why a change is beyond the approval: ``field`` (what), ``limit`` (the approval's
    bound, with its reference) and ``reason``."""

    field: str
    limit: str
    reason: str
    reference: str


def is_trip_point(point: str) -> bool:
    """True for a point of a trip / ride-through / momentary-cessation curve (not the
    adoption request, which only makes a written curve active)."""
    try:
        ref = PointRef.parse(point)
    except ValueError:
        return False
    return ref.model in TRIP_MODELS and not ref.path.endswith(_REQUEST_POINTS)


def check_change(
    approval: ConnectionApproval | None,
    *,
    profile_id: str,
    profile_region: str,
    settings: Mapping[str, Mapping[str, Any]],
    devices: Mapping[str, DeviceOnGateway],
    grid_codes: Mapping[str, GridCodeProfile],
) -> ApprovalRefusal | None:
    """Why a config change is beyond the site's connection approval (None: it is within,
    or the site has no approval on file).

    ``profile_id``/``profile_region``: the label of the proposed config; ``settings``:
    device → setting name → value, as the config carries them; ``devices``: the gateway's
    devices; ``grid_codes``: the grid-code profiles by id (the approved one must be there:
    an approval naming an unknown profile refuses every change)."""
    if approval is None:
        return None
    ref = approval.reference
    approved = grid_codes.get(approval.profile)
    if approved is None:
        return ApprovalRefusal(
            "approval.profile", ref, f"approval {ref} names unknown profile {approval.profile}", ref
        )
    if profile_region != approved.region:
        return ApprovalRefusal(
            "profile.region",
            f"approved region {approved.region} ({ref})",
            f"a change to region {profile_region} is beyond connection approval {ref}",
            ref,
        )
    proposed = grid_codes.get(profile_id)
    if proposed is not None:
        why = rollout_refusal(approved, proposed)
        if why is not None:
            return ApprovalRefusal("profile", f"{approved.id} ({ref})", why, ref)
    for device, values in sorted(settings.items()):
        known = devices.get(device)
        if known is None or known.profile is None:
            continue
        refusal = _trip_refusal(approval, approved, known, values)
        if refusal is not None:
            return refusal
    return _export_refusal(approval, approved, settings, devices)


def _trip_refusal(
    approval: ConnectionApproval,
    approved: GridCodeProfile,
    device: DeviceOnGateway,
    values: Mapping[str, Any],
) -> ApprovalRefusal | None:
    assert device.profile is not None
    expected: dict[str, Any] | None = None
    for name, value in sorted(values.items()):
        setting = device.profile.setting(name)
        if setting is None or not is_trip_point(setting.point):
            continue
        if expected is None:
            expected = _approved_settings(approval, approved, device)
        want = expected.get(name)
        field = f"devices.{device.device}.{name}"
        if want is None:
            return ApprovalRefusal(
                field,
                f"{approved.id} ({approval.reference})",
                f"trip setting {name} is not one the approved profile {approved.id} gives;"
                f" beyond connection approval {approval.reference}",
                approval.reference,
            )
        if not _same(value, want):
            return ApprovalRefusal(
                field,
                f"{_shown(want)} ({approved.id}, {approval.reference})",
                f"trip setting {name} = {_shown(value)} differs from the approved profile"
                f" {approved.id}: beyond connection approval {approval.reference}",
                approval.reference,
            )
    return None


def _approved_settings(
    approval: ConnectionApproval, approved: GridCodeProfile, device: DeviceOnGateway
) -> dict[str, Any]:
    assert device.profile is not None
    return dict(
        device_settings(
            approved, device.profile, nameplate=_plate(device), phases=approval.phases
        ).settings
    )


def _plate(device: DeviceOnGateway) -> dict[str, float]:
    return {k: float(v) for k, v in device.nameplate.items() if isinstance(v, int | float)}


def _export_refusal(
    approval: ConnectionApproval,
    approved: GridCodeProfile,
    settings: Mapping[str, Mapping[str, Any]],
    devices: Mapping[str, DeviceOnGateway],
) -> ApprovalRefusal | None:
    if approval.export_limit_w is None or approved.registration_only:
        return None
    total = 0.0
    parts: list[str] = []
    for device, values in sorted(settings.items()):
        export = _device_export_w(devices.get(device), values)
        if export is not None:
            total += export
            parts.append(f"{device} {export:g} W")
    if total <= approval.export_limit_w + _TOLERANCE:
        return None
    return ApprovalRefusal(
        "export_limit",
        f"{approval.export_limit_w:g} W ({approval.reference})",
        f"the change lets the site export {total:g} W ({', '.join(parts)}): beyond"
        f" connection approval {approval.reference}",
        approval.reference,
    )


def _limit_settings(profile: DeviceProfile) -> tuple[str, str | None] | None:
    """(limit %, enable) setting names of the device's active-power limit, if it has one."""
    for limit_point, enable_point in EXPORT_LIMIT_POINTS:
        limit = profile.setting_for(limit_point)
        if limit is not None:
            enable = profile.setting_for(enable_point)
            return limit.name, enable.name if enable is not None else None
    return None


def _device_export_w(device: DeviceOnGateway | None, values: Mapping[str, Any]) -> float | None:
    """What the change lets one device export (W); None for a device that cannot export
    (no active-power limit setting: a meter, an isolator) or of unknown profile."""
    if device is None or device.profile is None:
        return None
    names = _limit_settings(device.profile)
    if names is None:
        return None
    rating = float(_plate(device).get("w_rtg") or device.profile.nameplate.get("w_rtg") or 0.0)
    limit_name, enable_name = names
    pct = values.get(limit_name)
    enabled = values.get(enable_name) if enable_name is not None else 1
    if isinstance(pct, int | float) and enabled == 1:
        return rating * min(100.0, max(0.0, float(pct))) / 100.0
    return rating


def fit_export_limit(
    approval: ConnectionApproval | None,
    settings: Mapping[str, Mapping[str, Any]],
    devices: Mapping[str, DeviceOnGateway],
) -> dict[str, dict[str, Any]]:
    """``settings`` with each exporting device's active-power limit tightened so that
    together they export at most the approved limit (split in proportion to their
    ratings); devices already within keep theirs. What provisioning applies."""
    out = {d: dict(v) for d, v in settings.items()}
    if approval is None or approval.export_limit_w is None:
        return out
    exporting: list[tuple[str, float, tuple[str, str | None]]] = []
    for name in out:
        device = devices.get(name)
        if device is None or device.profile is None:
            continue
        names = _limit_settings(device.profile)
        rating = float(_plate(device).get("w_rtg") or device.profile.nameplate.get("w_rtg") or 0)
        if names is not None and rating > 0:
            exporting.append((name, rating, names))
    total = sum(rating for _, rating, _ in exporting)
    if total <= 0:
        return out
    share = min(1.0, approval.export_limit_w / total)
    for name, rating, (limit_name, enable_name) in exporting:
        allowed_pct = math.floor(share * 100.0 * 1e4) / 1e4
        current = _device_export_w(devices[name], out[name])
        if current is not None and current <= rating * share + _TOLERANCE:
            continue
        out[name][limit_name] = allowed_pct
        if enable_name is not None:
            out[name][enable_name] = 1
    return out


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, list | tuple) or isinstance(b, list | tuple):
        if not (isinstance(a, list | tuple) and isinstance(b, list | tuple)) or len(a) != len(b):
            return False
        return all(_same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, int | float) and isinstance(b, int | float):
        return math.isclose(float(a), float(b), rel_tol=_TOLERANCE, abs_tol=_TOLERANCE)
    return bool(a == b)


def _shown(value: Any) -> str:
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_shown(v) for v in value) + "]"
    return f"{value:g}" if isinstance(value, int | float) else str(value)
