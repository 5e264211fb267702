"""Site physics as pure functions: a PV curve, a house load, and the grid balance.

Units are SI (W, V, A, Hz, Wh). Sign convention of this simulator: ``pv_w >= 0`` is
generation; ``grid_w = load_w - pv_w`` is **positive when importing** from the grid and
negative when exporting, and the simulated meter's SunSpec ``W`` uses that same sign.
Noise is deterministic: it depends only on the seed and the simulated second.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Literal
from zoneinfo import ZoneInfo

RegionCode = Literal["au", "us", "es"]


@dataclass(frozen=True, slots=True)
class GridNominal:
    phase_v: float
    hz: float


GRID_NOMINAL: dict[str, GridNominal] = {
    "au": GridNominal(phase_v=230.0, hz=50.0),
    "es": GridNominal(phase_v=230.0, hz=50.0),
    "us": GridNominal(phase_v=120.0, hz=60.0),
}

DEFAULT_TZ: dict[str, str] = {
    "au": "Australia/Sydney",
    "es": "Europe/Madrid",
    "us": "America/Los_Angeles",
}

SUNRISE_H = 6.0
SUNSET_H = 18.5
INVERTER_EFFICIENCY = 0.97


@dataclass(frozen=True, slots=True)
class Controls:
    """Immediate controls (SunSpec 123) as the inverter applies them."""

    connected: bool = True
    limit_pct: float = 100.0
    limit_enabled: bool = False


@dataclass(frozen=True, slots=True)
class Totals:
    """Energy accumulators in Wh; they only grow."""

    pv_wh: float
    import_wh: float
    export_wh: float


@dataclass(frozen=True, slots=True)
class SiteSample:
    """One instant of the site, engineering units; ``grid_w`` > 0 = import."""

    ts: datetime
    pv_w: float
    pv_dc_w: float
    pv_state: int  # SunSpec 103 St
    load_w: float
    grid_w: float
    phase_v: tuple[float, float, float]
    hz: float
    cabinet_c: float
    totals: Totals


def _noise(seed: int, second: int, channel: int) -> float:
    """Deterministic noise in [-1, 1] for a simulated second and a channel."""
    return random.Random(seed * 1_000_003 + second * 31 + channel).uniform(-1.0, 1.0)


def local_hour(ts: datetime, tz: str) -> float:
    local = ts.astimezone(ZoneInfo(tz))
    return local.hour + local.minute / 60 + local.second / 3600


def pv_available_w(hour: float, capacity_w: float) -> float:
    """Clear-sky PV power: a half sine between sunrise and sunset, peak 85 % of capacity."""
    if not SUNRISE_H < hour < SUNSET_H:
        return 0.0
    phase = (hour - SUNRISE_H) / (SUNSET_H - SUNRISE_H)
    return 0.85 * capacity_w * math.sin(math.pi * phase)


def house_load_w(hour: float) -> float:
    """A house: 350 W base, a morning bump around 7:30 and an evening peak around 19:00."""
    morning = 1200.0 * math.exp(-(((hour - 7.5) / 1.0) ** 2))
    evening = 2200.0 * math.exp(-(((hour - 19.0) / 1.5) ** 2))
    return 350.0 + morning + evening


def step(
    prev: Totals,
    ts: datetime,
    dt_s: float,
    *,
    region: str,
    tz: str,
    capacity_w: float,
    seed: int,
    controls: Controls = Controls(),
) -> SiteSample:
    """Advance the site to ``ts`` (``dt_s`` simulated seconds since the previous sample)."""
    hour = local_hour(ts, tz)
    second = int(ts.timestamp())
    nominal = GRID_NOMINAL[region]
    available = pv_available_w(hour, capacity_w) * (1.0 + 0.05 * _noise(seed, second, 0))
    available = max(0.0, available)
    limit_w = capacity_w
    if controls.limit_enabled:
        limit_w = capacity_w * max(0.0, min(controls.limit_pct, 100.0)) / 100.0
    pv_w = min(available, limit_w) if controls.connected else 0.0
    pv_w = round(pv_w)
    if not controls.connected:
        state = 8  # STANDBY
    elif available <= 0.0:
        state = 2  # SLEEPING
    elif available > limit_w:
        state = 5  # THROTTLED
    else:
        state = 4  # MPPT
    load_w = round(house_load_w(hour) * (1.0 + 0.1 * _noise(seed, second, 1)))
    grid_w = load_w - pv_w
    phase_v = tuple(
        round(nominal.phase_v * (1.0 + 0.01 * _noise(seed, second, 2 + i)), 1) for i in range(3)
    )
    hz = round(nominal.hz + 0.02 * _noise(seed, second, 5), 2)
    hours = max(dt_s, 0.0) / 3600.0
    totals = replace(
        prev,
        pv_wh=prev.pv_wh + pv_w * hours,
        import_wh=prev.import_wh + max(grid_w, 0) * hours,
        export_wh=prev.export_wh + max(-grid_w, 0) * hours,
    )
    return SiteSample(
        ts=ts,
        pv_w=pv_w,
        pv_dc_w=round(pv_w / INVERTER_EFFICIENCY) if pv_w else 0.0,
        pv_state=state,
        load_w=load_w,
        grid_w=grid_w,
        phase_v=(phase_v[0], phase_v[1], phase_v[2]),
        hz=hz,
        cabinet_c=round(25.0 + 20.0 * pv_w / capacity_w, 1),
        totals=totals,
    )


def initial_totals(seed: int) -> Totals:
    """Non-zero starting counters (a true zero reads as "not implemented" in acc32)."""
    rng = random.Random(seed)
    return Totals(
        pv_wh=float(rng.randint(1_000_000, 9_000_000)),
        import_wh=float(rng.randint(500_000, 5_000_000)),
        export_wh=float(rng.randint(100_000, 3_000_000)),
    )
