"""Is the sun down at the site? A pure approximation (NOAA's, within about 1 degree),
enough to tell a PV inverter asleep at night from one that stopped answering by day."""

from __future__ import annotations

import math
from datetime import UTC, datetime

#: Below this solar elevation (degrees) a PV-powered device may be asleep: inverters
#: switch off some minutes after sunset and wake some minutes after sunrise.
ASLEEP_BELOW_DEG = 5.0


def sun_elevation_deg(latitude: float, longitude: float, when: datetime) -> float:
    """Solar elevation in degrees above the horizon (negative at night) at ``when``."""
    t = when.astimezone(UTC)
    hours = t.hour + t.minute / 60 + t.second / 3600
    gamma = 2 * math.pi / 365 * (t.timetuple().tm_yday - 1 + (hours - 12) / 24)
    eqtime = 229.18 * (
        0.000075
        + 0.001868 * math.cos(gamma)
        - 0.032077 * math.sin(gamma)
        - 0.014615 * math.cos(2 * gamma)
        - 0.040849 * math.sin(2 * gamma)
    )
    decl = (
        0.006918
        - 0.399912 * math.cos(gamma)
        + 0.070257 * math.sin(gamma)
        - 0.006758 * math.cos(2 * gamma)
        + 0.000907 * math.sin(2 * gamma)
        - 0.002697 * math.cos(3 * gamma)
        + 0.00148 * math.sin(3 * gamma)
    )
    true_solar_min = hours * 60 + eqtime + 4 * longitude
    hour_angle = math.radians(true_solar_min / 4 - 180)
    lat = math.radians(latitude)
    cos_zenith = math.sin(lat) * math.sin(decl) + math.cos(lat) * math.cos(decl) * math.cos(
        hour_angle
    )
    return 90.0 - math.degrees(math.acos(max(-1.0, min(1.0, cos_zenith))))


def sun_is_down(latitude: float, longitude: float, when: datetime) -> bool:
    """True when a PV-powered device at the site may be asleep (see ASLEEP_BELOW_DEG)."""
    return sun_elevation_deg(latitude, longitude, when) < ASLEEP_BELOW_DEG
