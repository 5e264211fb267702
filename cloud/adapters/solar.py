"""Clear-sky production expectation and daylight for a site (the only cloud module importing
pvlib). Plain values in, floats and booleans out: no pandas type crosses this boundary.

The expectation is what a healthy array would make on a cloudless day, for the alerts
service's shortfall rule: Ineichen clear sky with pvlib's Linke turbidity climatology, SPA
sun position, Hay-Davies transposition onto the array's plane, PVWatts-style DC power times
one constant derate (:data:`SYSTEM_DERATE`), clipped at the nameplate. It is sampled on a
five-minute grid aligned to UTC and integrated as the straight lines between the samples,
so energies of adjoining windows add up exactly. Each UTC day is computed once per site
(one vectorised pvlib call) and its cumulative energy at every hour boundary kept in a
bounded cache: a window whose ends fall on whole hours reads only the cache once its days
are known; an end inside an hour costs one small pvlib call for that hour.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
import pvlib

__all__ = [
    "DAYLIGHT_ELEVATION_DEG",
    "MAX_WINDOW",
    "SYSTEM_DERATE",
    "PvSite",
    "clear_sky_wh",
    "is_daylight",
]

#: DC nameplate → AC energy on a clear day: PVWatts' default 14 % system losses (soiling,
#: shading, mismatch, wiring, connections, light-induced degradation, nameplate rating,
#: availability: 0.86) x its nominal inverter efficiency (0.96) x 0.93 for warm cells (a
#: roof-mounted module in full sun runs 20-25 K above the air; at -0.4 %/K that is about
#: 7 % averaged over a clear day). No temperature model: the cloud has no air temperature
#: or wind for the site, and a fixed guess would be off by ±15 K (±6 %) between a Madrid
#: winter and a Sydney summer. The losses are folded in rather than left out because an
#: expectation that is too high raises shortfall alarms on healthy arrays every fine day.
SYSTEM_DERATE = 0.86 * 0.96 * 0.93

#: Sunrise and sunset in the almanac sense: the centre of the sun 0.833° below the
#: geometric horizon (34' of refraction at the horizon + 16' of the sun's semi-diameter),
#: i.e. the upper limb just touching the apparent horizon. Compared with the true
#: (unrefracted) elevation, as the almanacs and NOAA's sunrise equation do.
DAYLIGHT_ELEVATION_DEG = -0.833

#: The longest window :func:`clear_sky_wh` accepts (a week's shortfall plus a day's slack).
MAX_WINDOW = timedelta(days=8)

_STEP_S = 300  # the sampling grid: 5 minutes, aligned to UTC midnight
_HOUR_S = 3600
_DAY_S = 86_400
_STEPS_PER_HOUR = _HOUR_S // _STEP_S
#: Site-days kept: about 7,000 sites with 8-day windows. A sweep over more sites than
#: fit, always in the same order, evicts each day before it is read again (LRU's worst
#: case): raise the bound or split the fleet across processes before that.
_CACHE_DAYS = 65_536


@dataclass(frozen=True, slots=True)
class PvSite:
    """An array as the installation record describes it.

    ``azimuth_deg`` is the direction the modules face, clockwise from true north (0 north,
    90 east, 180 south: pvlib's convention); ``tilt_deg`` from horizontal; ``kwp`` the DC
    nameplate in kW. Out-of-range values are refused with ``ValueError``.
    """

    latitude: float
    longitude: float
    tilt_deg: float
    azimuth_deg: float
    kwp: float
    altitude_m: float = 0.0

    def __post_init__(self) -> None:
        _check_place(self.latitude, self.longitude)
        _check_range("tilt_deg", self.tilt_deg, 0.0, 90.0)
        _check_range("azimuth_deg", self.azimuth_deg, 0.0, 360.0)
        _check_range("altitude_m", self.altitude_m, -500.0, 9000.0)
        if not (math.isfinite(self.kwp) and self.kwp > 0):
            raise ValueError(f"kwp must be a positive number of kW, got {self.kwp!r}")


def clear_sky_wh(site: PvSite, start: datetime, end: datetime) -> float:
    """Expected AC energy in Wh of ``site`` over ``[start, end)`` on a cloudless day.

    ``start`` and ``end`` must be timezone-aware; ``end <= start`` gives 0.0; windows longer
    than :data:`MAX_WINDOW` are refused (``ValueError``).
    """
    t0 = _as_utc("start", start)
    t1 = _as_utc("end", end)
    if t1 <= t0:
        return 0.0
    if t1 - t0 > MAX_WINDOW:
        raise ValueError(f"window of {t1 - t0} is longer than {MAX_WINDOW}")
    total = 0.0
    day_start = datetime(t0.year, t0.month, t0.day, tzinfo=UTC)
    while day_start < t1:
        a = (max(t0, day_start) - day_start).total_seconds()
        b = (min(t1, day_start + timedelta(days=1)) - day_start).total_seconds()
        total += _wh_since_midnight(site, day_start, b) - _wh_since_midnight(site, day_start, a)
        day_start += timedelta(days=1)
    return max(total, 0.0)


def is_daylight(latitude: float, longitude: float, at: datetime) -> bool:
    """True when the sun is up at the place at the aware instant ``at``: the true elevation
    of its centre is above :data:`DAYLIGHT_ELEVATION_DEG` (between sunrise and sunset)."""
    _check_place(latitude, longitude)
    when = pd.DatetimeIndex([_as_utc("at", at)])
    position = pvlib.solarposition.get_solarposition(when, latitude, longitude)
    return bool(position["elevation"].iloc[0] > DAYLIGHT_ELEVATION_DEG)


def _wh_since_midnight(site: PvSite, day_start: datetime, seconds: float) -> float:
    """Energy from UTC midnight ``day_start`` to ``seconds`` later (0 ≤ seconds ≤ 86400)."""
    hour, into_hour = divmod(seconds, _HOUR_S)
    whole = _hourly_cumulative_wh(site, day_start.toordinal())[int(hour)]
    if into_hour == 0:
        return float(whole)
    hour_start = day_start + timedelta(hours=int(hour))
    samples = _power_w(site, _grid(hour_start, _STEPS_PER_HOUR + 1))
    return float(whole) + _integral_wh(samples, into_hour)


@functools.lru_cache(maxsize=_CACHE_DAYS)
def _hourly_cumulative_wh(site: PvSite, day_ordinal: int) -> np.ndarray:
    """Wh from UTC midnight of the day to each of its 25 hour boundaries (read-only).

    Pure and keyed by value (the site is a frozen dataclass), hence a process-wide cache.
    """
    day_start = datetime.fromordinal(day_ordinal).replace(tzinfo=UTC)
    samples = _power_w(site, _grid(day_start, _DAY_S // _STEP_S + 1))
    per_step = (samples[:-1] + samples[1:]) * (_STEP_S / 2 / _HOUR_S)
    per_hour = per_step.reshape(24, _STEPS_PER_HOUR).sum(axis=1)
    cumulative = np.concatenate(([0.0], np.cumsum(per_hour)))
    cumulative.setflags(write=False)
    return cumulative


def _integral_wh(samples: np.ndarray, seconds: float) -> float:
    """Wh under the straight lines joining ``samples`` (W, every _STEP_S from 0) to ``seconds``."""
    k = int(seconds // _STEP_S)
    whole = float(np.sum(samples[:k] + samples[1 : k + 1])) * (_STEP_S / 2 / _HOUR_S)
    rest = seconds - k * _STEP_S
    if rest == 0:
        return whole
    p_end = samples[k] + (samples[k + 1] - samples[k]) * (rest / _STEP_S)
    return whole + float(samples[k] + p_end) * (rest / 2 / _HOUR_S)


def _grid(first: datetime, count: int) -> pd.DatetimeIndex:
    return pd.date_range(first, periods=count, freq=f"{_STEP_S}s")


def _power_w(site: PvSite, times: pd.DatetimeIndex) -> np.ndarray:
    """Clear-sky AC power (W) of the array at ``times`` (UTC): never negative nor NaN."""
    location = pvlib.location.Location(
        site.latitude, site.longitude, tz="UTC", altitude=site.altitude_m
    )
    sun = location.get_solarposition(times)
    dni_extra = pvlib.irradiance.get_extra_radiation(times)
    sky = location.get_clearsky(times, model="ineichen", solar_position=sun, dni_extra=dni_extra)
    # Hay-Davies: on clear days much of the diffuse light comes from around the sun; the
    # isotropic model spreads it over the sky and under-rates an array facing the sun.
    # Plain arrays from here: pandas' per-operation overhead was half the cost.
    poa: np.ndarray = np.asarray(
        pvlib.irradiance.get_total_irradiance(
            site.tilt_deg,
            site.azimuth_deg,
            sun["apparent_zenith"].to_numpy(dtype=float),
            sun["azimuth"].to_numpy(dtype=float),
            sky["dni"].to_numpy(dtype=float),
            sky["ghi"].to_numpy(dtype=float),
            sky["dhi"].to_numpy(dtype=float),
            dni_extra=dni_extra.to_numpy(dtype=float),
            model="haydavies",
        )["poa_global"],
        dtype=float,
    )
    nameplate_w = site.kwp * 1000.0
    power: np.ndarray = nameplate_w * np.nan_to_num(poa, nan=0.0) / 1000.0 * SYSTEM_DERATE
    clipped: np.ndarray = np.clip(power, 0.0, nameplate_w)
    return clipped


def _as_utc(name: str, value: datetime) -> datetime:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{name} must be a timezone-aware datetime, got naive {value!r}")
    return value.astimezone(UTC)


def _check_place(latitude: float, longitude: float) -> None:
    _check_range("latitude", latitude, -90.0, 90.0)
    _check_range("longitude", longitude, -180.0, 180.0)


def _check_range(name: str, value: float, low: float, high: float) -> None:
    if not (math.isfinite(value) and low <= value <= high):
        raise ValueError(f"{name} must be between {low:g} and {high:g}, got {value!r}")
