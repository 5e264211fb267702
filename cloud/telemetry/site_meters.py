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
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from cloud.adapters.postgres import Connection
from contracts.topics import Region

__all__ = [
    "DeviceMatch",
    "FoundDevice",
    "SiteDevice",
    "device_by_serial",
    "is_position_key",
    "site_devices",
]

#: The agent's key of a device it found no serial for: ``<endpoint name>-u<unit id>``.
_POSITION_KEY = re.compile(r"^[A-Za-z0-9_.:-]+-u[0-9]{1,3}$")


class DeviceMatch(StrEnum):
    """How a serial was matched to a device, or why it was not."""

    SERIAL = "serial"  # the device keyed by the serial
    POSITION = "position"  # the site's one position-keyed device with the register
    NONE = "none"  # no device keyed by the serial, no position-keyed one with the register
    AMBIGUOUS = "ambiguous"  # several position-keyed devices with the register


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
