"""A virtual gateway's devices: :mod:`simulators.physics` samples → contract readings.

Two devices per site, as the full site simulator serves them: a PV inverter and a grid
meter, with local device ids in the style of a SunSpec serial (``INV-…``, ``MTR-…``).
Signs follow :mod:`contracts.metrics`: ``pv_w >= 0``, ``grid_w > 0`` importing. Each
device has a builtin device profile (:data:`INVERTER_PROFILE`, :data:`METER_PROFILE`):
the birth names it, and commands and configs are validated against it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from uuid import UUID

from contracts.messages import DeviceInfo, Reading, TelemetryBatch
from contracts.topics import Region
from simulators.physics import DEFAULT_TZ, SiteSample, Totals, initial_totals, step

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


class SitePhysics:
    """One site's physics state; :meth:`sample` advances it to a simulated instant."""

    def __init__(self, region: Region, capacity_w: float, seed: int, start: datetime) -> None:
        self.region = region
        self.tz = DEFAULT_TZ[region.value]
        self.capacity_w = capacity_w
        self.seed = seed
        self._last_ts = start
        self._totals: Totals = initial_totals(seed)

    def sample(self, ts: datetime) -> SiteSample:
        dt = max((ts - self._last_ts).total_seconds(), 0.0)
        s = step(
            self._totals,
            ts,
            dt,
            region=self.region.value,
            tz=self.tz,
            capacity_w=self.capacity_w,
            seed=self.seed,
        )
        self._totals, self._last_ts = s.totals, ts
        return s


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
