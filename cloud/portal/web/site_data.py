"""What a site's pages show, read through the services' published interfaces with the
viewer's scope (every read filtered in SQL by it; a site outside it is "not found").

Blocking reads: the routes call these in the thread pool. Shaping the answers for a
page (the power flow, the chart's aligned columns, energy per year) is done by pure
functions here and in :mod:`power_flow`, tested without sockets.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any, Literal
from zoneinfo import ZoneInfo

from cloud.portal.web.power_flow import FLOW_METRICS, PowerFlow, Sample, power_flow
from cloud.registry import Device, Gateway, RegistryService, Site
from cloud.scope import GatewayReach, Scope
from cloud.telemetry import RollupSeries, TelemetryReader, level_named

__all__ = [
    "Chart",
    "DeviceRow",
    "EnergyRow",
    "EnergyTable",
    "EnergyView",
    "SiteData",
    "chart_columns",
    "energy_by_year",
]

EnergyView = Literal["day", "month", "year"]
#: How far back each energy view looks (local days, months, years), this period included.
ENERGY_SPAN = {"day": 14, "month": 12, "year": 5}
#: The energy counters shown per period: PV production, grid import and export.
ENERGY_METRICS = ("pv_wh", "import_wh", "export_wh")
_MAX_RAW_POINTS = 2000


@dataclass(frozen=True)
class DeviceRow:
    device: Device
    status: str
    since: datetime | None


@dataclass(frozen=True)
class Chart:
    """Aligned columns for uPlot: ``x`` in Unix seconds, one column per series."""

    labels: list[str]
    x: list[int]
    columns: list[list[float | None]]
    unit: str
    time_zone: str
    #: The local day the chart spans (Unix seconds): its x axis, however few points.
    day: tuple[int, int]

    def as_json(self) -> dict[str, Any]:
        return {
            "unit": self.unit,
            "time_zone": self.time_zone,
            "day": list(self.day),
            "labels": self.labels,
            "data": [self.x, *self.columns],
        }


@dataclass(frozen=True)
class EnergyRow:
    start: date
    label: str
    values: dict[str, Decimal | None]
    complete: bool


@dataclass(frozen=True)
class EnergyTable:
    view: EnergyView
    rows: list[EnergyRow]
    metrics: list[str] = field(default_factory=list)

    @property
    def peak_wh(self) -> Decimal:
        found = [v for r in self.rows for v in r.values.values() if v is not None]
        return max(found, default=Decimal(0))


def chart_columns(
    series: Iterable[tuple[str, Sequence[tuple[datetime, float]]]],
) -> tuple[list[str], list[int], list[list[float | None]]]:
    """Align several (label, points) series on the union of their timestamps (uPlot draws
    aligned columns; a series without a point at a time has a gap there)."""
    labelled = [(label, {int(ts.timestamp()): v for ts, v in points}) for label, points in series]
    xs = sorted({x for _, points in labelled for x in points})
    columns = [[points.get(x) for x in xs] for _, points in labelled]
    return [label for label, _ in labelled], xs, columns


def energy_by_year(months: Iterable[tuple[date, Decimal | None]]) -> dict[int, Decimal | None]:
    """Months' energy summed per calendar year; a year with no month known is None."""
    years: dict[int, Decimal | None] = {}
    for start, wh in months:
        if wh is None:
            years.setdefault(start.year, None)
            continue
        years[start.year] = (years.get(start.year) or Decimal(0)) + wh
    return years


class SiteData:
    def __init__(
        self,
        registry: RegistryService,
        telemetry: TelemetryReader,
        *,
        device_states: Callable[[GatewayReach, int], dict[int, tuple[str, datetime | None]]],
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._registry = registry
        self._telemetry = telemetry
        self._device_states = device_states
        self._clock = clock

    # -- reach --------------------------------------------------------------------------
    def reach(self, scope: Scope) -> GatewayReach:
        """The gateways telemetry may read for ``scope`` (an account's: its sites', one
        registry query): a page works it out once and hands it to the reads below."""
        if not scope.by_account:
            return GatewayReach.of(scope)
        return GatewayReach.of(scope, self._registry.gateway_ids(scope))

    def site(self, scope: Scope, site_id: int) -> Site | None:
        return self._registry.get_site(site_id, scope=scope)

    def sites(self, scope: Scope, limit: int = 500) -> list[Site]:
        return self._registry.list_sites(scope=scope, limit=limit)

    def gateways(self, scope: Scope, site: Site) -> list[Gateway]:
        return self._registry.list_gateways(site_id=site.id, scope=scope)

    def site_states(self, reach: GatewayReach, sites: Sequence[Site]) -> dict[int, dict[str, int]]:
        """Site id → device status → count (what a list of sites shows at a glance)."""
        counts: dict[int, dict[str, int]] = {}
        for site in sites:
            states = self._device_states(reach, site.id)
            per_status: dict[str, int] = {}
            for status, _since in states.values():
                per_status[status] = per_status.get(status, 0) + 1
            counts[site.id] = dict(sorted(per_status.items()))
        return counts

    def devices_of(self, scope: Scope, gateways: Sequence[Gateway]) -> list[Device]:
        """The devices behind ``gateways`` (a site's, listed once by the caller)."""
        return [
            device
            for gateway in gateways
            for device in self._registry.list_devices(gateway_id=gateway.id, scope=scope)
        ]

    def devices(
        self, scope: Scope, site: Site, reach: GatewayReach, gateways: Sequence[Gateway]
    ) -> list[DeviceRow]:
        """The site's devices with the state ingest last announced for each."""
        states = self._device_states(reach, site.id)
        rows = []
        for device in self.devices_of(scope, gateways):
            status, since = states.get(device.id, ("unknown", None))
            rows.append(DeviceRow(device, status, since))
        return rows

    # -- live ---------------------------------------------------------------------------
    def flow(self, site: Site, reach: GatewayReach, stale_after: timedelta) -> PowerFlow:
        now = self._clock()
        # Summed: the devices whose values add up to the site's (the grid is the grid
        # meter's; PoTR's system meter measures the system, not the connection).
        latest = self._telemetry.site_latest(
            site.id, now - timedelta(hours=1), reach=reach, summed=True
        )
        samples = [
            Sample(v.device_id, v.metric, v.ts, v.value)
            for v in (latest.values if latest else [])
            if v.metric in FLOW_METRICS and v.quality != "bad"
        ]
        return power_flow(samples, now, stale_after)

    def today(self, site: Site, reach: GatewayReach, labels: dict[int, str]) -> Chart:
        """The PV power of each inverter since local midnight: 5-minute means where the
        rollups have them, raw samples after the newest rolled-up sample."""
        zone = ZoneInfo(site.time_zone)
        now = self._clock()
        midnight = datetime.combine(now.astimezone(zone).date(), datetime.min.time(), zone)
        five = level_named("5m")
        rolled = self._telemetry.site_readings(
            site.id, "pv_w", (midnight, now), five, limit=400, reach=reach
        )
        per_device: dict[int, list[tuple[datetime, float]]] = defaultdict(list)
        cutoff = midnight
        for s in rolled.series if rolled else []:
            assert isinstance(s, RollupSeries)
            for b in s.buckets:
                per_device[s.device_id].append((max(b.bucket, midnight), b.avg))
                cutoff = max(cutoff, b.last_ts + timedelta(microseconds=1))
        raw = self._telemetry.site_readings(
            site.id, "pv_w", (cutoff, now + timedelta(seconds=1)), None,
            limit=_MAX_RAW_POINTS, reach=reach,
        )  # fmt: skip
        for s in raw.series if raw else []:
            points = getattr(s, "points", [])
            per_device[s.device_id].extend((p.ts, p.value) for p in points if p.quality != "bad")
        names, xs, columns = chart_columns(
            (labels.get(device_id, f"#{device_id}"), sorted(points))
            for device_id, points in sorted(per_device.items())
            if points  # a meter has no PV power: no empty series in the legend
        )
        day = (int(midnight.timestamp()), int((midnight + timedelta(days=1)).timestamp()))
        return Chart(names, xs, columns, "W", site.time_zone, day)

    # -- energy -------------------------------------------------------------------------
    def energy(self, site: Site, reach: GatewayReach, view: EnergyView) -> EnergyTable:
        zone = ZoneInfo(site.time_zone)
        today = self._clock().astimezone(zone).date()
        span = ENERGY_SPAN[view]
        unit: Literal["day", "month"] = "day" if view == "day" else "month"
        if view == "day":
            first = today - timedelta(days=span - 1)
        elif view == "month":
            first = _months_back(today, span - 1)
        else:
            first = date(today.year - span + 1, 1, 1)
        by_metric: dict[str, dict[date, tuple[str, Decimal | None, bool]]] = {}
        for metric in ENERGY_METRICS:
            found = self._telemetry.site_energy(site.id, metric, unit, first, today, reach=reach)
            if found is None or not any(p.samples for p in found.periods):
                continue
            by_metric[metric] = {
                p.start.astimezone(zone).date(): (
                    p.label,
                    p.energy_wh if p.samples else None,
                    p.complete,
                )
                for p in found.periods
            }
        metrics = list(by_metric)
        if view == "year":
            return _years(by_metric, metrics, first.year, today.year)
        starts = sorted({d for periods in by_metric.values() for d in periods}, reverse=True)
        rows = [
            EnergyRow(
                start=d,
                label=next(iter(by_metric[m][d][0] for m in metrics if d in by_metric[m])),
                values={m: by_metric[m].get(d, ("", None, False))[1] for m in metrics},
                complete=all(by_metric[m].get(d, ("", None, False))[2] for m in metrics),
            )
            for d in starts
        ]
        # Periods with no reading at all (before the site reported) are left out.
        rows = [r for r in rows if any(v is not None for v in r.values.values())]
        return EnergyTable(view, rows, metrics)


def _months_back(day: date, months: int) -> date:
    index = day.year * 12 + day.month - 1 - months
    return date(index // 12, index % 12 + 1, 1)


def _years(
    by_metric: dict[str, dict[date, tuple[str, Decimal | None, bool]]],
    metrics: list[str],
    first_year: int,
    last_year: int,
) -> EnergyTable:
    sums = {
        m: energy_by_year((start, wh) for start, (_, wh, _) in by_metric[m].items())
        for m in metrics
    }
    rows = [
        EnergyRow(
            start=date(year, 1, 1),
            label=str(year),
            values={m: sums[m].get(year) for m in metrics},
            complete=False,
        )
        for year in range(last_year, first_year - 1, -1)
        if any(sums[m].get(year) is not None for m in metrics)
    ]
    return EnergyTable("year", rows, metrics)
