"""Which device of a site a meter's serial names: the one lookup the store's meter-swap
handler (:mod:`cloud.telemetry.meter_swaps`) and the billing reader
(:mod:`cloud.telemetry.meter_hours`) share.

The edge agent keys a device by its serial (SunSpec model 1 ``SN``, cleaned to the
contract's id alphabet, which every serial the customers service accepts already is),
else by its position, ``<endpoint>-u<unit>`` (``edge_agent.poller.local_device_id``).
A meter's device on a site (ingest's keys and gateways, by site and region), by
:func:`device_by_serial`:

- the device keyed by the serial itself;
- else the site's one device keyed by position with readings of the register asked
  about: a meter whose serial the agent could not read, whose key outlives the meter.
  A device keyed by another serial is never taken: it is provably another meter (a
  site with PoTR's system meter and a grid meter has two with the same registers);
- else none (no such device yet), or several position-keyed candidates (ambiguous).

Which devices a site-level figure adds up (:func:`summed_devices`): a site may carry two
meters with the same registers, the grid meter at its connection and PoTR's system
meter at the system's AC output (ARCHITECTURE 119), whose forward register is what the
system delivered, not grid import. The store learns which serial is which from the
customers service (``site.installation_changed``: ``billing_meter`` is the system meter,
``grid_meter`` the grid's; ``site.meter_replaced``: both serials are system meters),
kept in ``telemetry.site_meter_roles`` (:func:`record_roles`, :func:`meter_roles`),
never from a serial's spelling. Then, per metric:

- a device keyed by a system meter's serial never counts (it only carries meter
  metrics, whose site figures are the grid's);
- for a grid metric (``grid_*``, ``import_wh``, ``export_wh``) the devices keyed by a
  grid meter's serial are the figure when there are any; else the site's one
  position-keyed device left (a grid meter whose serial the agent could not read) when
  the site has a grid meter on record; else every device left (a site whose record
  names no grid meter: US sites need none).

Exclusion needs a serial match: a device is never left out on a guess, so two meters
that both lack a readable serial still add up (the agent must read their ``SN``).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from cloud.adapters.postgres import Connection
from contracts.topics import Region

__all__ = [
    "DeviceMatch",
    "FoundDevice",
    "MeterRole",
    "SiteDevice",
    "device_by_serial",
    "is_grid_metric",
    "is_position_key",
    "meter_roles",
    "record_roles",
    "site_devices",
    "summed_devices",
]

#: The agent's key of a device it found no serial for: ``<endpoint name>-u<unit id>``.
_POSITION_KEY = re.compile(r"^[A-Za-z0-9_.:-]+-u[0-9]{1,3}$")


class DeviceMatch(StrEnum):
    """How a serial was matched to a device, or why it was not."""

    SERIAL = "serial"  # the device keyed by the serial
    POSITION = "position"  # the site's one position-keyed device with the register
    NONE = "none"  # no device keyed by the serial, no position-keyed one with the register
    AMBIGUOUS = "ambiguous"  # several position-keyed devices with the register


class MeterRole(StrEnum):
    """Where a site's meter is wired, as the installation record says."""

    SYSTEM = "system"  # PoTR's system meter at the system's AC output (billing meter)
    GRID = "grid"  # the meter at the site's grid connection


#: Metrics whose site figure is the grid connection's: measured by meters only.
_GRID_NAMES = frozenset({"import_wh", "export_wh"})


def is_grid_metric(name: str) -> bool:
    """Whether the catalogue metric ``name`` is a grid connection's (``grid_*``,
    ``import_wh``, ``export_wh``)."""
    return name.startswith("grid_") or name in _GRID_NAMES


@dataclass(frozen=True)
class SiteDevice:
    """A device key of the site and whether the device has data of the register asked
    about (readings, or energy buckets the readings' retention outlived)."""

    local_id: str
    device_id: int
    has_register: bool


@dataclass(frozen=True)
class FoundDevice:
    match: DeviceMatch
    #: Set when ``match`` is SERIAL or POSITION.
    device_id: int | None = None


def is_position_key(local_id: str) -> bool:
    """Whether the agent keyed the device by its position, not by a serial."""
    return _POSITION_KEY.match(local_id) is not None


def device_by_serial(devices: Sequence[SiteDevice], serial: str) -> FoundDevice:
    """The device of ``devices`` (one site's) that ``serial`` names (the rules: module
    docstring)."""
    for d in devices:
        if d.local_id == serial:
            return FoundDevice(DeviceMatch.SERIAL, d.device_id)
    candidates = [d.device_id for d in devices if d.has_register and is_position_key(d.local_id)]
    if len(candidates) == 1:
        return FoundDevice(DeviceMatch.POSITION, candidates[0])
    return FoundDevice(DeviceMatch.AMBIGUOUS if candidates else DeviceMatch.NONE)


def site_devices(
    conn: Connection[Any], site_id: int, region: Region, metric: int
) -> list[SiteDevice]:
    """The site's device keys (every gateway of it in ``region``), each with whether it
    has readings or energy buckets of ``metric``."""
    rows = conn.execute(
        "SELECT k.local_id, k.device_id,"
        " EXISTS (SELECT 1 FROM telemetry.readings r"
        "  WHERE r.device_id = k.device_id AND r.metric_id = %(m)s)"
        " OR EXISTS (SELECT 1 FROM telemetry.energy_15m e"
        "  WHERE e.device_id = k.device_id AND e.metric_id = %(m)s)"
        " FROM ingest.device_keys k JOIN ingest.gateways g USING (gateway_id)"
        " WHERE g.site_id = %(site)s AND g.region = %(region)s ORDER BY k.device_id",
        {"m": metric, "site": site_id, "region": region.value},
    ).fetchall()
    return [SiteDevice(local_id, device_id, bool(has)) for local_id, device_id, has in rows]


def summed_devices(
    devices: Sequence[SiteDevice], roles: Mapping[str, MeterRole], *, grid_metric: bool
) -> list[int]:
    """The ids of ``devices`` (one site's, with the register asked about) that a
    site-level figure adds up, given the site's meter ``roles`` by serial (the rules:
    module docstring), in device id order."""
    carrying = [d for d in devices if d.has_register]
    kept = [d for d in carrying if roles.get(d.local_id) is not MeterRole.SYSTEM]
    if grid_metric:
        grid = [d for d in kept if roles.get(d.local_id) is MeterRole.GRID]
        if not grid and MeterRole.GRID in roles.values():
            unread = [d for d in kept if is_position_key(d.local_id)]
            grid = unread if len(unread) == 1 else []
        if grid:
            kept = grid
    return sorted(d.device_id for d in kept)


def meter_roles(conn: Connection[Any], site_ids: Iterable[int]) -> dict[int, dict[str, MeterRole]]:
    """Each site's meter roles by serial (sites without any: an empty mapping)."""
    wanted = sorted(set(site_ids))
    out: dict[int, dict[str, MeterRole]] = {s: {} for s in wanted}
    for site_id, serial, role in conn.execute(
        "SELECT site_id, serial, role FROM telemetry.site_meter_roles WHERE site_id = ANY(%s)",
        (wanted,),
    ).fetchall():
        out[site_id][serial] = MeterRole(role)
    return out


def record_roles(
    conn: Connection[Any],
    site_id: int,
    region: Region,
    roles: Mapping[str, MeterRole],
    at: datetime,
) -> bool:
    """Store ``roles`` (serial → role) for the site as of ``at``, the newest winning per
    serial; whether any row changed."""
    if not roles:
        return False
    serials = sorted(roles)
    before = {
        serial: MeterRole(role)
        for serial, role in conn.execute(
            "SELECT serial, role FROM telemetry.site_meter_roles"
            " WHERE site_id = %s AND serial = ANY(%s) FOR UPDATE",
            (site_id, serials),
        ).fetchall()
    }
    conn.execute(
        "INSERT INTO telemetry.site_meter_roles (site_id, serial, region, role, updated_at)"
        " SELECT %s, s, %s, r, %s FROM unnest(%s::text[], %s::text[]) AS u(s, r)"
        " ON CONFLICT (site_id, serial) DO UPDATE SET role = EXCLUDED.role,"
        " region = EXCLUDED.region, updated_at = EXCLUDED.updated_at"
        " WHERE telemetry.site_meter_roles.updated_at < EXCLUDED.updated_at",
        (site_id, region.value, at, serials, [roles[s].value for s in serials]),
    )
    after = meter_roles(conn, [site_id])[site_id]
    return any(before.get(s) != after.get(s) for s in serials)
