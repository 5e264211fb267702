"""Energy buckets in the database: the SQL around :mod:`cloud.telemetry.energy`.

The maintenance job hands :func:`recompute_energy` the dirty ranges it consumed (in its
transaction). For each device's Wh counter with readings in a range, the buckets the new
readings can change (:func:`~cloud.telemetry.energy.revision_span`, treating every
reading of the range as possibly new) are recomputed from the stored samples around
them and replace what ``telemetry.energy_15m`` held there. Readings of quality bad (2)
and invalid values (negative, NaN, infinite) take no part, as in the rollups.

What changed on a site's local day that had already ended when the job ran is announced
as ``energy.revised`` (site, region, local days) through ``telemetry.outbox``, so billing
can true those days up; today's figures are provisional and change every minute, so they
are not announced.
"""

from __future__ import annotations

from calendar import monthrange
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from cloud.adapters.postgres import Connection
from cloud.events.outbox import emit_many
from cloud.events.types import EnergyRevised, energy_revised_event
from cloud.scope import GatewayReach, gateway_reach_condition
from cloud.telemetry.dirty import DirtyRange, merge_spans
from cloud.telemetry.energy import (
    aggregate,
    base_buckets,
    local_periods,
    revised_days,
    revision_span,
    site_buckets,
)
from cloud.telemetry.energy_models import (
    BaseBucket,
    CounterRules,
    CounterSample,
    EnergyFigure,
    EnergyFlag,
    LocalPeriod,
    MeterSwap,
    PeriodUnit,
)
from contracts.metrics import CATALOG, MetricKind

__all__ = [
    "ENERGY_METRICS",
    "REVISION_GRACE",
    "SCHEMA",
    "SiteEnergy",
    "load_buckets",
    "recompute_energy",
    "refresh_site_days",
    "site_energy",
]

SCHEMA = "telemetry"
#: The counters energy is reckoned for: every Wh counter of the catalog.
ENERGY_METRICS: tuple[int, ...] = tuple(
    m.id for m in CATALOG if m.kind == MetricKind.COUNTER and m.unit == "Wh"
)
_VALID = "quality < 2 AND value >= 0 AND value < 'Infinity'"
#: A day is announced as revised only once it ended this long before: the minutes after
#: midnight complete yesterday as a matter of course (the job runs every minute), which
#: is no revision billing needs to hear of.
REVISION_GRACE = timedelta(hours=1)


def _merged(ranges: Iterable[DirtyRange]) -> dict[int, list[tuple[datetime, datetime]]]:
    """Per device, overlapping ranges joined (in time order)."""
    by_device: dict[int, list[tuple[datetime, datetime]]] = defaultdict(list)
    for r in ranges:
        by_device[r.device_id].append((r.from_ts, r.to_ts))
    return {device: merge_spans(spans) for device, spans in sorted(by_device.items())}


def recompute_energy(
    conn: Connection[Any],
    ranges: Sequence[DirtyRange],
    now: datetime,
    rules: CounterRules | None = None,
) -> dict[int, set[datetime]]:
    """Bring the energy buckets up to date with ``ranges`` in the caller's transaction,
    then the site days they fall in (``telemetry.energy_site_1d``); emit
    ``energy.revised`` for ended days that changed. The changed bucket starts per
    device."""
    rules = rules or CounterRules()
    changed: dict[tuple[int, int], set[datetime]] = defaultdict(set)
    for device, spans in _merged(ranges).items():
        for first, last in spans:
            for metric in _counters_in(conn, device, first, last):
                changed[(device, metric)] |= _recompute_one(
                    conn, device, metric, first, last, rules
                )
    per_device: dict[int, set[datetime]] = defaultdict(set)
    for (device, _), starts in changed.items():
        per_device[device] |= starts
    per_device = {d: s for d, s in per_device.items() if s}
    if per_device:
        sites = _sites_of(conn, per_device)
        _refresh_changed_site_days(conn, sites, changed)
        _announce(conn, sites, per_device, now)
    return per_device


def _counters_in(conn: Connection[Any], device: int, first: datetime, last: datetime) -> list[int]:
    rows = conn.execute(
        "SELECT DISTINCT metric_id FROM telemetry.readings WHERE device_id = %s"
        " AND metric_id = ANY(%s) AND ts >= %s AND ts <= %s",
        (device, list(ENERGY_METRICS), first, last),
    ).fetchall()
    return sorted(int(r[0]) for r in rows)


def _edge(
    conn: Connection[Any], device: int, metric: int, op: str, at: datetime
) -> datetime | None:
    """The nearest valid sample's time before (``<``, ``<=``) or after (``>``, ``>=``)."""
    order = "DESC" if op.startswith("<") else "ASC"
    row = conn.execute(
        f"SELECT ts FROM telemetry.readings WHERE device_id = %s AND metric_id = %s"
        f" AND ts {op} %s AND {_VALID} ORDER BY ts {order} LIMIT 1",
        (device, metric, at),
    ).fetchone()
    return row[0] if row else None


def _recompute_one(
    conn: Connection[Any],
    device: int,
    metric: int,
    first: datetime,
    last: datetime,
    rules: CounterRules,
) -> set[datetime]:
    span = revision_span(
        first, last, _edge(conn, device, metric, "<", first), _edge(conn, device, metric, ">", last)
    )
    # Every sample from the last valid one at or before the span to the first at or after.
    lo = _edge(conn, device, metric, "<=", span.start) or span.start
    hi = _edge(conn, device, metric, ">=", span.end) or span.end
    samples = [
        CounterSample(ts=ts, value_wh=value)
        for ts, value in conn.execute(
            "SELECT ts, value FROM telemetry.readings WHERE device_id = %s AND metric_id = %s"
            " AND ts >= %s AND ts <= %s AND quality < 2 ORDER BY ts",
            (device, metric, lo, hi),
        ).fetchall()
    ]
    swaps = [
        MeterSwap(replaced_at=at, old_register_wh=old, new_register_wh=new)
        for at, old, new in conn.execute(
            "SELECT replaced_at, old_register_wh, new_register_wh FROM telemetry.meter_swaps"
            " WHERE device_id = %s AND metric_id = %s ORDER BY replaced_at",
            (device, metric),
        ).fetchall()
    ]
    new = [b for b in base_buckets(samples, swaps, rules) if span.start <= b.start < span.end]
    old = {b.start: b for b in load_buckets(conn, [device], metric, span.start, span.end)[device]}
    if {b.start: b for b in new} == old:
        return set()
    conn.execute(
        "DELETE FROM telemetry.energy_15m WHERE device_id = %s AND metric_id = %s"
        " AND bucket >= %s AND bucket < %s",
        (device, metric, span.start, span.end),
    )
    _insert(conn, device, metric, new)
    return {b.start for b in new if old.get(b.start) != b} | (set(old) - {b.start for b in new})


def _insert(conn: Connection[Any], device: int, metric: int, buckets: Sequence[BaseBucket]) -> None:
    with conn.cursor() as cur:
        cur.executemany(
            "INSERT INTO telemetry.energy_15m (device_id, metric_id, bucket, energy_mwh,"
            " samples, covered, flags) VALUES (%s, %s, %s, %s, %s, %s, %s)",
            [
                (device, metric, b.start, b.energy_mwh, b.samples, b.covered, sorted(b.flags))
                for b in buckets
            ],
        )


def load_buckets(
    conn: Connection[Any], devices: Sequence[int], metric: int, start: datetime, end: datetime
) -> dict[int, list[BaseBucket]]:
    """The stored buckets of ``devices`` x ``metric`` with ``start <= bucket < end``."""
    out: dict[int, list[BaseBucket]] = {d: [] for d in devices}
    for device, bucket, mwh, samples, covered, flags in conn.execute(
        "SELECT device_id, bucket, energy_mwh, samples, covered, flags FROM telemetry.energy_15m"
        " WHERE device_id = ANY(%s) AND metric_id = %s AND bucket >= %s AND bucket < %s"
        " ORDER BY device_id, bucket",
        (list(devices), metric, start, end),
    ).fetchall():
        out[device].append(
            BaseBucket(
                start=bucket,
                energy_mwh=mwh,
                samples=samples,
                covered=covered,
                flags=frozenset(EnergyFlag(f) for f in flags),
            )
        )
    return out


@dataclass(frozen=True)
class _Site:
    site_id: int
    region: str
    zone: ZoneInfo


def _sites_of(conn: Connection[Any], devices: Iterable[int]) -> dict[int, _Site]:
    """The site of each device that has one (ingest's copy of the gateway's site)."""
    return {
        device: _Site(site, region, ZoneInfo(zone))
        for device, site, region, zone in conn.execute(
            "SELECT k.device_id, g.site_id, g.region, g.time_zone FROM ingest.device_keys k"
            " JOIN ingest.gateways g USING (gateway_id)"
            " WHERE k.device_id = ANY(%s) AND g.site_id IS NOT NULL",
            (list(devices),),
        ).fetchall()
    }


def _announce(
    conn: Connection[Any], sites: dict[int, _Site], changed: dict[int, set[datetime]], now: datetime
) -> None:
    """``energy.revised`` per site for its changed local days that ended before ``now``."""
    by_site: dict[_Site, set[datetime]] = defaultdict(set)
    for device, starts in changed.items():
        if device in sites:
            by_site[sites[device]] |= starts
    events = []
    for site, starts in sorted(by_site.items(), key=lambda kv: kv[0].site_id):
        # The last local day that had ended REVISION_GRACE before now.
        last_closed = (now - REVISION_GRACE).astimezone(site.zone).date() - timedelta(days=1)
        days = [d for d in revised_days(starts, site.zone) if d <= last_closed]
        if days:
            revised = EnergyRevised(site_id=site.site_id, days=days)
            events.append(
                energy_revised_event(revised, site.region, occurred_at=now, source=SCHEMA)
            )
    emit_many(conn, SCHEMA, events)


# -- site days ---------------------------------------------------------------------------
def _refresh_changed_site_days(
    conn: Connection[Any], sites: dict[int, _Site], changed: dict[tuple[int, int], set[datetime]]
) -> None:
    days: dict[tuple[int, int], set[date]] = defaultdict(set)
    for (device, metric), starts in changed.items():
        if starts and device in sites:
            site = sites[device]
            days[(site.site_id, metric)].update(revised_days(starts, site.zone))
    for (site_id, metric), wanted in sorted(days.items()):
        for first, last in _day_runs(sorted(wanted)):
            refresh_site_days(conn, site_id, metric, first, last)


def _day_runs(days: Sequence[date]) -> list[tuple[date, date]]:
    """Sorted days as runs of consecutive days ``(first, last)``."""
    runs: list[tuple[date, date]] = []
    for d in days:
        if runs and d == runs[-1][1] + timedelta(days=1):
            runs[-1] = (runs[-1][0], d)
        else:
            runs.append((d, d))
    return runs


def refresh_site_days(
    conn: Connection[Any], site_id: int, metric: int, first_day: date, last_day: date
) -> int:
    """Store the site's local days ``first_day`` to ``last_day`` of ``metric`` as summed
    from the buckets of all its devices that count it; the days stored."""
    found = _site_devices(conn, site_id, metric, GatewayReach())
    if found is None:
        return 0
    zone, devices = found
    figures = _figures_in_sql(
        conn, devices, metric, zone, "day", local_periods(zone, first_day, last_day, "day")
    )
    with conn.cursor() as cur:
        cur.executemany(
            "INSERT INTO telemetry.energy_site_1d (site_id, metric_id, day, devices,"
            " energy_mwh, samples, covered, flags) VALUES (%s, %s, %s, %s, %s, %s, %s, %s)"
            " ON CONFLICT (site_id, metric_id, day) DO UPDATE SET devices = EXCLUDED.devices,"
            " energy_mwh = EXCLUDED.energy_mwh, samples = EXCLUDED.samples,"
            " covered = EXCLUDED.covered, flags = EXCLUDED.flags",
            [
                (
                    site_id,
                    metric,
                    f.period.day,
                    devices,
                    f.energy_mwh,
                    f.samples,
                    f.covered,
                    sorted(f.flags),
                )
                for f in figures
            ],
        )
    return len(figures)


def _site_devices(
    conn: Connection[Any], site_id: int, metric: int, reach: GatewayReach
) -> tuple[ZoneInfo, list[int]] | None:
    """The site's zone and its devices in ``reach`` that count ``metric`` (have ever had
    a bucket of it: a meter is no missing inverter); None when no device is in reach."""
    rows = conn.execute(
        "SELECT k.device_id, g.time_zone, EXISTS (SELECT 1 FROM telemetry.energy_15m e"
        " WHERE e.device_id = k.device_id AND e.metric_id = %(metric)s)"
        " FROM ingest.device_keys k JOIN ingest.gateways g USING (gateway_id)"
        " WHERE g.site_id = %(site)s AND " + gateway_reach_condition("g.region", "k.gateway_id"),
        {"site": site_id, "metric": metric, **reach.sql_params()},
    ).fetchall()
    if not rows:
        return None
    return ZoneInfo(rows[0][1]), sorted({int(r[0]) for r in rows if r[2]})


@dataclass(frozen=True)
class SiteEnergy:
    site_id: int
    time_zone: str
    metric_id: int
    figures: list[EnergyFigure]


def site_energy(
    conn: Connection[Any],
    site_id: int,
    metric: int,
    unit: PeriodUnit,
    first_day: date,
    last_day: date,
    *,
    reach: GatewayReach | None = None,
) -> SiteEnergy | None:
    """The site's energy of one counter per local ``unit`` (hour, day, month) from
    ``first_day`` to ``last_day`` (local dates, inclusive; months: the months holding
    them); None when the site has no device in ``reach``."""
    found = _site_devices(conn, site_id, metric, reach or GatewayReach())
    if found is None:
        return None
    zone, devices = found
    if unit == "month":
        first_day = first_day.replace(day=1)
    periods = local_periods(zone, first_day, last_day, unit)
    if not periods:
        return SiteEnergy(site_id, str(zone), metric, [])
    if unit == "hour":  # a fall-back night repeats a wall hour: periods keyed in Python
        per_device = load_buckets(conn, devices, metric, periods[0].start, periods[-1].end)
        figures = aggregate(site_buckets(per_device), periods)
    elif unit == "day":
        figures = _days(conn, site_id, devices, metric, zone, periods)
    else:
        last = periods[-1].day
        month_end = date(last.year, last.month, monthrange(last.year, last.month)[1])
        days = _days(
            conn, site_id, devices, metric, zone, local_periods(zone, first_day, month_end, "day")
        )
        figures = [
            _month(p, [d for d in days if _same_month(d.period.day, p.day)]) for p in periods
        ]
    return SiteEnergy(site_id, str(zone), metric, figures)


def _same_month(a: date, b: date) -> bool:
    return (a.year, a.month) == (b.year, b.month)


def _month(period: LocalPeriod, days: Sequence[EnergyFigure]) -> EnergyFigure:
    return EnergyFigure(
        period=period,
        energy_mwh=sum(d.energy_mwh for d in days),
        samples=sum(d.samples for d in days),
        covered=sum((d.covered for d in days), timedelta(0)),
        flags=frozenset().union(*(d.flags for d in days)),
    )


def _days(
    conn: Connection[Any],
    site_id: int,
    devices: list[int],
    metric: int,
    zone: ZoneInfo,
    periods: list[LocalPeriod],
) -> list[EnergyFigure]:
    """Local days from ``telemetry.energy_site_1d`` where a row of these very devices is
    stored; the others summed from the buckets."""
    stored = {
        day: (int(e), int(n), c, frozenset(EnergyFlag(f) for f in fs))
        for day, e, n, c, fs in conn.execute(
            "SELECT day, energy_mwh, samples, covered, flags FROM telemetry.energy_site_1d"
            " WHERE site_id = %s AND metric_id = %s AND day >= %s AND day <= %s"
            " AND devices = %s::int[]",
            (site_id, metric, periods[0].day, periods[-1].day, devices),
        ).fetchall()
    }
    missing = [p for p in periods if p.day not in stored]
    computed: dict[date, EnergyFigure] = {}
    by_day = {p.day: p for p in missing}
    for first, last in _day_runs([p.day for p in missing]):
        run = [by_day[first + timedelta(days=i)] for i in range((last - first).days + 1)]
        for f in _figures_in_sql(conn, devices, metric, zone, "day", run):
            computed[f.period.day] = f
    out = []
    for p in periods:
        if p.day in stored:
            energy, samples, covered, flags = stored[p.day]
            out.append(
                EnergyFigure(
                    period=p, energy_mwh=energy, samples=samples, covered=covered, flags=flags
                )
            )
        else:
            out.append(computed[p.day])
    return out


def _figures_in_sql(
    conn: Connection[Any],
    devices: list[int],
    metric: int,
    zone: ZoneInfo,
    unit: PeriodUnit,
    periods: list[LocalPeriod],
) -> list[EnergyFigure]:
    """Local days or months summed by the server (a year is 35,040 buckets per device):
    the same sums as :func:`aggregate` over :func:`site_buckets` — a site bucket's
    covered time is the least of its devices', none when one lacks the bucket — keyed by
    the local date of each bucket's start (a local day or month boundary is always a
    bucket boundary)."""
    key = (
        "date_trunc('month', bucket AT TIME ZONE %(zone)s)::date"
        if unit == "month"
        else ("(bucket AT TIME ZONE %(zone)s)::date")
    )
    params = {
        "devices": devices,
        "n": len(devices),
        "metric": metric,
        "zone": str(zone),
        "lo": periods[0].start,
        "hi": periods[-1].end,
    }
    where = (
        "device_id = ANY(%(devices)s) AND metric_id = %(metric)s"
        " AND bucket >= %(lo)s AND bucket < %(hi)s"
    )
    sums = conn.execute(
        f"WITH site AS (SELECT bucket, sum(energy_mwh) AS energy, sum(samples) AS samples,"
        f" CASE WHEN count(*) = %(n)s THEN min(covered) ELSE interval '0' END AS covered"
        f" FROM telemetry.energy_15m WHERE {where} GROUP BY bucket)"
        f" SELECT {key}, sum(energy), sum(samples), sum(covered) FROM site GROUP BY 1",
        params,
    ).fetchall()
    flags = conn.execute(
        f"SELECT {key}, array_agg(DISTINCT f) FROM telemetry.energy_15m, unnest(flags) AS f"
        f" WHERE {where} GROUP BY 1",
        params,
    ).fetchall()
    by_day = {d: (int(e), int(n), c) for d, e, n, c in sums}
    flags_by_day = {d: frozenset(EnergyFlag(f) for f in fs) for d, fs in flags}
    figures = []
    for p in periods:
        energy, samples, covered = by_day.get(p.day, (0, 0, timedelta(0)))
        figures.append(
            EnergyFigure(
                period=p,
                energy_mwh=energy,
                samples=samples,
                covered=covered,
                flags=flags_by_day.get(p.day, frozenset()),
            )
        )
    return figures
