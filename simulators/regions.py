"""The simulators' regions as data: where a site is and what its grid is nominally.

One table serves the region preset of :class:`~simulators.device_site.DeviceSite`
(``potr sim site``), the virtual gateways of :mod:`simulators.fleet` and ``potr fleet``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

__all__ = ["REGIONS", "RegionCode", "RegionSite"]

RegionCode = Literal["au", "us", "es"]


@dataclass(frozen=True, slots=True)
class RegionSite:
    """A representative city of the region and its grid's nominal phase voltage and frequency."""

    tz: str
    latitude: float
    longitude: float
    nominal_v: float
    nominal_hz: float


REGIONS: dict[str, RegionSite] = {
    "au": RegionSite("Australia/Sydney", -33.87, 151.21, 230.0, 50.0),
    "es": RegionSite("Europe/Madrid", 40.42, -3.70, 230.0, 50.0),
    "us": RegionSite("America/Los_Angeles", 34.05, -118.24, 120.0, 60.0),
}
