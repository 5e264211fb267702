"""A site's live power flow — PV, battery, grid and home — from the newest reading of
each device (pure: the page and its tests share it; no I/O).

Sign conventions are the metric catalogue's: ``grid_w`` > 0 imports, ``battery_w`` > 0
discharges. The home uses what the others deliver: PV + battery + grid (a device that
measures the home's own load does not exist on these sites). A side without a device has
no value (shown as missing), which is not the same as 0 W.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

__all__ = ["FLOW_METRICS", "PowerFlow", "Sample", "power_flow"]

#: The metrics a power flow is made of.
FLOW_METRICS = ("pv_w", "battery_w", "grid_w")


@dataclass(frozen=True)
class Sample:
    device_id: int
    metric: str
    ts: datetime
    value: float


@dataclass(frozen=True)
class PowerFlow:
    pv_w: float | None
    battery_w: float | None
    grid_w: float | None
    home_w: float | None
    #: The newest sample it is made of (None: nothing at all).
    as_of: datetime | None
    #: True when the newest sample is older than the staleness limit.
    stale: bool

    @property
    def exporting(self) -> bool:
        return self.grid_w is not None and self.grid_w < 0

    @property
    def charging(self) -> bool:
        return self.battery_w is not None and self.battery_w < 0


def power_flow(samples: Iterable[Sample], now: datetime, stale_after: timedelta) -> PowerFlow:
    """Sum each metric over the site's devices (two inverters: their PV adds up).
    ``samples`` are those of the devices a site figure adds up (the telemetry reader's
    ``summed`` values): a system meter's ``grid_w`` is the system's output, not the
    grid's, and must not be among them."""
    sums: dict[str, float] = {}
    newest: datetime | None = None
    for s in samples:
        if s.metric not in FLOW_METRICS:
            continue
        sums[s.metric] = sums.get(s.metric, 0.0) + s.value
        newest = s.ts if newest is None or s.ts > newest else newest
    pv, battery, grid = (sums.get(m) for m in FLOW_METRICS)
    parts = [v for v in (pv, battery, grid) if v is not None]
    home = sum(parts) if parts else None
    stale = newest is None or now - newest > stale_after
    return PowerFlow(pv, battery, grid, home, newest, stale)
