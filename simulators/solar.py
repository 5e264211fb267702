"""Clear-sky irradiance and sun position at a place (the simulators' only pvlib module).

pvlib computes a whole local day at one-minute resolution at once (Ineichen clear sky
with pvlib's Linke turbidity climatology, SPA sun position); instants in between are
interpolated linearly. Irradiance in W/m², elevation in degrees.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
import pvlib

__all__ = ["ClearSky", "DayProfile"]

_STEP_S = 60


@dataclass(frozen=True, slots=True)
class DayProfile:
    """One local day: ``start`` (aware, local midnight) and per-minute GHI and elevation."""

    start: datetime
    ghi: np.ndarray
    elevation: np.ndarray

    def at(self, ts: datetime) -> tuple[float, float]:
        """``(ghi W/m², sun elevation °)`` at ``ts``, interpolated between minutes."""
        x = (ts - self.start).total_seconds() / _STEP_S
        grid = np.arange(len(self.ghi), dtype=float)
        ghi = float(np.interp(x, grid, self.ghi))
        elevation = float(np.interp(x, grid, self.elevation))
        return max(ghi, 0.0), elevation

    def energy_wh_per_m2(self) -> float:
        """pvlib's own daily clear-sky GHI energy (trapezoid over the minutes)."""
        return float(np.trapezoid(self.ghi, dx=_STEP_S / 3600.0))


class ClearSky:
    """Clear-sky GHI and sun elevation for one place; days are computed once and cached."""

    def __init__(self, latitude: float, longitude: float, tz: str, altitude_m: float = 0.0):
        self.tz = tz
        self._zone = ZoneInfo(tz)
        self._location = pvlib.location.Location(latitude, longitude, tz=tz, altitude=altitude_m)

    @functools.lru_cache(maxsize=8)  # noqa: B019 - bounded, per instance and local day
    def day(self, day: date) -> DayProfile:
        start = datetime(day.year, day.month, day.day, tzinfo=self._zone)
        end = start + timedelta(days=1)
        # one sample past midnight so interpolation covers the whole day
        times = pd.date_range(start, end, freq=f"{_STEP_S}s", inclusive="both")
        clear = self._location.get_clearsky(times, model="ineichen")
        position = self._location.get_solarposition(times)
        return DayProfile(
            start=start,
            ghi=clear["ghi"].to_numpy(dtype=float),
            elevation=position["apparent_elevation"].to_numpy(dtype=float),
        )

    def at(self, ts: datetime) -> tuple[float, float]:
        """``(ghi W/m², sun elevation °)`` at an aware instant."""
        local = ts.astimezone(self._zone)
        return self.day(local.date()).at(local)

    def daily_energy_wh_per_m2(self, day: date) -> float:
        return self.day(day).energy_wh_per_m2()
