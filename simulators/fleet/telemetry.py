"""A virtual gateway's devices: a light site model → contract readings.

The model is :mod:`simulators.plant`'s house load, noise and totals with a clear-sky
half sine for PV instead of pvlib (a fleet runs thousands of sites, without pandas),
at its region's nominal grid (:mod:`simulators.regions`).

Two devices per site, as the full site simulator serves them: a PV inverter and a grid
meter, with local device ids in the style of a SunSpec serial (``INV-…``, ``MTR-…``).
Signs follow :mod:`contracts.metrics`: ``pv_w >= 0``, ``grid_w > 0`` importing. Each
device has a builtin device profile (:data:`INVERTER_PROFILE`, :data:`METER_PROFILE`):
the birth names it, and commands and configs are validated against it.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from uuid import UUID

from contracts.messages import DeviceInfo, Reading, TelemetryBatch
from contracts.topics import Region
from simulators.plant import Totals, house_load_w, local_hour, noise
from simulators.regions import REGIONS

#: The builtin profiles of the two devices and their SunSpec chains (as the profiles say).
INVERTER_PROFILE = "sim-inverter-103"
METER_PROFILE = "sim-meter-203"
INVERTER_MODELS = [1, 103, 120, 121, 122, 123, 126, 132, 160]
METER_MODELS = [1, 203]


@dataclass(frozen=True, slots=True)
class SiteDevices:
    inverter: str
    meter: str


def device_ids(gateway_id: str) -> SiteDevices:
    return SiteDevices(inverter=f"INV-{gateway_id}", meter=f"MTR-{gateway_id}")


def inverter_nameplate(capacity_w: float) -> dict[str, float]:
    """What the virtual inverter reports as its nameplate (limits resolve against it)."""
    return {"w_rtg": capacity_w}


def device_infos(gateway_id: str, capacity_w: float) -> list[DeviceInfo]:
    """The ``devices`` of a virtual gateway's birth."""
    ids = device_ids(gateway_id)
    return [
        DeviceInfo(
            device=ids.inverter,
            endpoint="virtual",
            unit_id=1,
            models=INVERTER_MODELS,
            manufacturer="PoTR Sim",
            model="Virtual PV inverter",
            serial=ids.inverter,
            firmware="1.0.0",
            profile=INVERTER_PROFILE,
            nameplate=inverter_nameplate(capacity_w),
        ),
        DeviceInfo(
            device=ids.meter,
            endpoint="virtual",
            unit_id=2,
            models=METER_MODELS,
            manufacturer="PoTR Sim",
            model="Virtual grid meter",
            serial=ids.meter,
            firmware="1.0.0",
            profile=METER_PROFILE,
        ),
    ]


SUNRISE_H = 6.0
SUNSET_H = 18.5
INVERTER_EFFICIENCY = 0.97


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


def pv_available_w(hour: float, capacity_w: float) -> float:
    """Clear-sky PV power: a half sine between sunrise and sunset, peak 85 % of capacity."""
    if not SUNRISE_H < hour < SUNSET_H:
        return 0.0
    phase = (hour - SUNRISE_H) / (SUNSET_H - SUNRISE_H)
    return 0.85 * capacity_w * math.sin(math.pi * phase)


def initial_totals(seed: int) -> Totals:
    """Non-zero starting counters (a true zero reads as "not implemented" in acc32)."""
    rng = random.Random(seed)
    return Totals(
        pv_wh=float(rng.randint(1_000_000, 9_000_000)),
        import_wh=float(rng.randint(500_000, 5_000_000)),
        export_wh=float(rng.randint(100_000, 3_000_000)),
    )


class SitePhysics:
    """One site's state; :meth:`sample` advances it to a simulated instant."""

    def __init__(self, region: Region, capacity_w: float, seed: int, start: datetime) -> None:
        self.region = region
        self.grid = REGIONS[region.value]
        self.tz = self.grid.tz
        self.capacity_w = capacity_w
        self.seed = seed
        self._last_ts = start
        self._totals: Totals = initial_totals(seed)

    def sample(self, ts: datetime) -> SiteSample:
        dt = max((ts - self._last_ts).total_seconds(), 0.0)
        s = self._step(self._totals, ts, dt)
        self._totals, self._last_ts = s.totals, ts
        return s

    def _step(self, prev: Totals, ts: datetime, dt_s: float) -> SiteSample:
        """The site at ``ts``, ``dt_s`` simulated seconds after ``prev`` was accrued."""
        hour = local_hour(ts, self.tz)
        second = int(ts.timestamp())
        seed, capacity = self.seed, self.capacity_w
        available = pv_available_w(hour, capacity) * (1.0 + 0.05 * noise(seed, second, 0))
        pv_w = round(max(0.0, min(available, capacity)))
        state = 2 if available <= 0.0 else 5 if available > capacity else 4  # SLEEPING/...MPPT
        load_w = round(house_load_w(hour) * (1.0 + 0.1 * noise(seed, second, 1)))
        grid_w = load_w - pv_w
        phase_v = tuple(
            round(self.grid.nominal_v * (1.0 + 0.01 * noise(seed, second, 2 + i)), 1)
            for i in range(3)
        )
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
            hz=round(self.grid.nominal_hz + 0.02 * noise(seed, second, 5), 2),
            cabinet_c=round(25.0 + 20.0 * pv_w / capacity, 1),
            totals=totals,
        )


def readings(sample: SiteSample, ids: SiteDevices) -> list[Reading]:
    """The inverter's and the meter's readings of one sample (SI units, contract signs)."""
    v1, v2, v3 = sample.phase_v
    return [
        Reading(
            device=ids.inverter,
            ts=sample.ts,
            values={
                "pv_w": sample.pv_w,
                "pv_dc_w": sample.pv_dc_w,
                "pv_state_code": float(sample.pv_state),
                "pv_l1_v": v1,
                "pv_l2_v": v2,
                "pv_l3_v": v3,
                "pv_hz": sample.hz,
                "pv_wh": round(sample.totals.pv_wh, 3),
                "pv_cabinet_c": sample.cabinet_c,
            },
        ),
        Reading(
            device=ids.meter,
            ts=sample.ts,
            values={
                "grid_w": sample.grid_w,
                "grid_l1_v": v1,
                "grid_l2_v": v2,
                "grid_l3_v": v3,
                "grid_hz": sample.hz,
                "import_wh": round(sample.totals.import_wh, 3),
                "export_wh": round(sample.totals.export_wh, 3),
            },
        ),
    ]


def sample_times(first: datetime, poll_s: float, batch: int, per_batch: int) -> list[datetime]:
    """Simulated instants of batch ``batch`` (1-based): ``per_batch`` samples ``poll_s``
    apart on the gateway's grid starting at ``first``, truncated to milliseconds."""
    out = []
    for m in range(1, per_batch + 1):
        ts = first + timedelta(seconds=((batch - 1) * per_batch + m) * poll_s)
        out.append(ts.replace(microsecond=(ts.microsecond // 1000) * 1000))
    return out


def telemetry_batch(stream_id: UUID, seq: int, rows: list[Reading]) -> bytes:
    """One ``telemetry`` payload (validated by the contract's model)."""
    return TelemetryBatch(stream_id=stream_id, seq=seq, readings=rows).to_json()
