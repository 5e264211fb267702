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
    buckets_of_rows,
    local_periods,
    revised_days,
    revision_span,
    site_buckets,
)
from cloud.telemetry.energy_models import (
    BaseBucket,
    CounterRules,
    EnergyFigure,
    EnergyFlag,
    LocalPeriod,
    MeterSwap,
    PeriodUnit,
)
from cloud.telemetry.site_meters import (
    SiteDevice,
    is_grid_metric,
    meter_roles,
    summed_devices,
)
from contracts.metrics import BY_ID, CATALOG, MetricKind

__all__ = [
    "ENERGY_METRICS",
    "REVISION_GRACE",
    "SCHEMA",
    "SiteEnergy",
    "load_buckets",
    "recompute_energy",
    "refresh_site_days",
    "refresh_site_history",
    "site_energy",
]

SCHEMA = "telemetry"
#: The counters energy is reckoned for: every Wh counter of the catalog.
ENERGY_METRICS: tuple[int, ...] = tuple(
    m.id for m in CATALOG if m.kind == MetricKind.COUNTER and m.unit == "Wh"
)
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
    device.

    A handful of statements for all the ranges together, not per device and counter:
    at saturation a run covers thousands of them (``docs/benchmarks.md``)."""
    rules = rules or CounterRules()
    jobs = _with_samples_range(conn, _jobs(conn, _merged(ranges)))
    changed: dict[tuple[int, int], set[datetime]] = defaultdict(set)
    if jobs:
        samples = _samples(conn, jobs)
        swaps = _swaps(conn, jobs)
        old = _old_buckets(conn, jobs)
        replaced: list[tuple[_Job, list[BaseBucket]]] = []
        for k, job in enumerate(jobs):
            got = buckets_of_rows(
                samples.get(k, []), swaps.get((job.device, job.metric), []), rules
            )
            new = [b for b in got if job.start <= b.start < job.end]
            before = old.get(k, {})
            if {b.start: b for b in new} != before:
                replaced.append((job, new))
                starts = {b.start for b in new}
                changed[(job.device, job.metric)] |= {
                    b.start for b in new if before.get(b.start) != b
                } | (set(before) - starts)
        _replace(conn, replaced)
    per_device: dict[int, set[datetime]] = defaultdict(set)
    for (device, _), starts in changed.items():
        per_device[device] |= starts
    per_device = {d: s for d, s in per_device.items() if s}
    if per_device:
        sites = _sites_of(conn, per_device)
        _refresh_changed_site_days(conn, sites, changed)
        _announce(conn, sites, per_device, now)
    return per_device


@dataclass(frozen=True)
class _Job:
    """One counter's buckets ``[start, end)`` to recompute from its samples ``lo..hi``."""

    device: int
    metric: int
    start: datetime
    end: datetime
    lo: datetime = datetime.min
    hi: datetime = datetime.max


def _valid(alias: str) -> str:
    return f"{alias}.quality < 2 AND {alias}.value >= 0 AND {alias}.value < 'Infinity'"


def _unnest(columns: str, types: str) -> str:
    """A CTE ``q`` of parallel arrays, numbered ``k`` from 1."""
    arrays = ", ".join(f"%s::{t}[]" for t in types.split())
    return f"WITH q AS (SELECT * FROM unnest({arrays}) WITH ORDINALITY AS q({columns}, k))"


def _jobs(conn: Connection[Any], spans: dict[int, list[tuple[datetime, datetime]]]) -> list[_Job]:
    """Per device range and Wh counter with a reading in it, the buckets its readings can
    change (:func:`~cloud.telemetry.energy.revision_span`, every reading of the range
    taken as possibly new); a counter's overlapping spans joined."""
    flat = [(d, a, b) for d, ss in spans.items() for a, b in ss]
    if not flat:
        return []
    rows = conn.execute(
        "WITH r AS (SELECT * FROM unnest(%s::int[], %s::timestamptz[], %s::timestamptz[])"
        " AS r(device_id, a, b))"
        " SELECT r.device_id, m.id, r.a, r.b,"
        " (SELECT x.ts FROM telemetry.readings x WHERE x.device_id = r.device_id"
        f"  AND x.metric_id = m.id AND x.ts < r.a AND {_valid('x')} ORDER BY x.ts DESC LIMIT 1),"
        " (SELECT x.ts FROM telemetry.readings x WHERE x.device_id = r.device_id"
        f"  AND x.metric_id = m.id AND x.ts > r.b AND {_valid('x')} ORDER BY x.ts LIMIT 1)"
        " FROM r CROSS JOIN unnest(%s::smallint[]) AS m(id)"
        " WHERE EXISTS (SELECT 1 FROM telemetry.readings x WHERE x.device_id = r.device_id"
        "  AND x.metric_id = m.id AND x.ts >= r.a AND x.ts <= r.b)",
        ([f[0] for f in flat], [f[1] for f in flat], [f[2] for f in flat], list(ENERGY_METRICS)),
    ).fetchall()
    by_counter: dict[tuple[int, int], list[tuple[datetime, datetime]]] = defaultdict(list)
    for device, metric, first, last, before, after in rows:
        span = revision_span(first, last, before, after)
        by_counter[(device, int(metric))].append((span.start, span.end))
    return [
        _Job(device, metric, start, end)
        for (device, metric), found in sorted(by_counter.items())
        for start, end in merge_spans(found)
    ]


def _with_samples_range(conn: Connection[Any], jobs: list[_Job]) -> list[_Job]:
    """Each job with its samples' range: from the last valid sample at or before its
    start to the first at or after its end."""
    if not jobs:
        return []
    rows = conn.execute(
        _unnest("device_id, metric_id, s, e", "int int timestamptz timestamptz") + " SELECT q.k,"
        " (SELECT x.ts FROM telemetry.readings x WHERE x.device_id = q.device_id"
        f"  AND x.metric_id = q.metric_id AND x.ts <= q.s AND {_valid('x')}"
        "  ORDER BY x.ts DESC LIMIT 1),"
        " (SELECT x.ts FROM telemetry.readings x WHERE x.device_id = q.device_id"
        f"  AND x.metric_id = q.metric_id AND x.ts >= q.e AND {_valid('x')}"
        "  ORDER BY x.ts LIMIT 1)"
        " FROM q ORDER BY q.k",
        _columns(jobs, "start", "end"),
    ).fetchall()
    return [
        _Job(j.device, j.metric, j.start, j.end, lo or j.start, hi or j.end)
        for j, (_, lo, hi) in zip(jobs, rows, strict=True)
    ]


def _columns(jobs: Sequence[_Job], a: str, b: str) -> tuple[list[Any], ...]:
    return (
        [j.device for j in jobs],
        [j.metric for j in jobs],
        [getattr(j, a) for j in jobs],
        [getattr(j, b) for j in jobs],
    )


def _samples(conn: Connection[Any], jobs: list[_Job]) -> dict[int, list[tuple[datetime, float]]]:
    """Each job's stored samples (quality not bad), by job index, in time order."""
    out: dict[int, list[tuple[datetime, float]]] = defaultdict(list)
    # Binary results: a timestamp decodes several times faster than from its text.
    with conn.cursor(binary=True) as cur:
        cur.execute(
            _unnest("device_id, metric_id, lo, hi", "int int timestamptz timestamptz")
            + " SELECT q.k, x.ts, x.value FROM q CROSS JOIN LATERAL (SELECT ts, value"
            " FROM telemetry.readings x WHERE x.device_id = q.device_id"
            " AND x.metric_id = q.metric_id AND x.ts >= q.lo AND x.ts <= q.hi"
            " AND x.quality < 2 ORDER BY x.ts) x ORDER BY q.k, x.ts",
            _columns(jobs, "lo", "hi"),
        )
        for k, ts, value in cur:
            out[k - 1].append((ts, value))
    return out


def _swaps(conn: Connection[Any], jobs: list[_Job]) -> dict[tuple[int, int], list[MeterSwap]]:
    out: dict[tuple[int, int], list[MeterSwap]] = defaultdict(list)
    for device, metric, at, old, new in conn.execute(
        "SELECT device_id, metric_id, replaced_at, old_register_wh, new_register_wh"
        " FROM telemetry.meter_swaps WHERE device_id = ANY(%s) ORDER BY replaced_at",
        (sorted({j.device for j in jobs}),),
    ):
        out[(device, int(metric))].append(
            MeterSwap(replaced_at=at, old_register_wh=old, new_register_wh=new)
        )
    return out


def _old_buckets(conn: Connection[Any], jobs: list[_Job]) -> dict[int, dict[datetime, BaseBucket]]:
    """The buckets stored in each job's span, by job index."""
    out: dict[int, dict[datetime, BaseBucket]] = defaultdict(dict)
    for k, bucket, mwh, samples, covered, flags in conn.execute(
        _unnest("device_id, metric_id, s, e", "int int timestamptz timestamptz")
        + " SELECT q.k, e.bucket, e.energy_mwh, e.samples, e.covered, e.flags FROM q"
        " CROSS JOIN LATERAL (SELECT * FROM telemetry.energy_15m e"
        " WHERE e.device_id = q.device_id AND e.metric_id = q.metric_id"
        " AND e.bucket >= q.s AND e.bucket < q.e) e",
        _columns(jobs, "start", "end"),
    ):
        out[k - 1][bucket] = _bucket(bucket, mwh, samples, covered, flags)
    return out


def _bucket(start: datetime, mwh: int, samples: int, covered: Any, flags: list[str]) -> BaseBucket:
    return BaseBucket(
        start=start,
        energy_mwh=mwh,
        samples=samples,
        covered=covered,
        flags=frozenset(EnergyFlag(f) for f in flags),
    )


def _replace(conn: Connection[Any], replaced: list[tuple[_Job, list[BaseBucket]]]) -> None:
    """The jobs' spans emptied and refilled with their new buckets (two statements)."""
    if not replaced:
        return
    jobs = [job for job, _ in replaced]
    conn.execute(
        _unnest("device_id, metric_id, s, e", "int int timestamptz timestamptz")
        # By row address: a TID scan of exactly the rows the index found, never a scan
        # of the table the planner might choose for an IN (...).
        + " DELETE FROM telemetry.energy_15m WHERE ctid = ANY(ARRAY(SELECT e.ctid FROM q"
        " CROSS JOIN LATERAL (SELECT ctid FROM telemetry.energy_15m e"
        " WHERE e.device_id = q.device_id AND e.metric_id = q.metric_id"
        " AND e.bucket >= q.s AND e.bucket < q.e) e))",
        _columns(jobs, "start", "end"),
    )
    rows = [(job, b) for job, new in replaced for b in new]
    if rows:
        # Flags travel as one comma-joined text a row (arrays of arrays must be square).
        conn.execute(
            "INSERT INTO telemetry.energy_15m (device_id, metric_id, bucket, energy_mwh,"
            " samples, covered, flags) SELECT d, m, b, e, n, c,"
            " CASE WHEN f = '' THEN '{}'::text[] ELSE string_to_array(f, ',') END"
            " FROM unnest(%s::int[], %s::smallint[], %s::timestamptz[], %s::bigint[],"
            " %s::int[], %s::interval[], %s::text[]) AS u(d, m, b, e, n, c, f)",
            (
                [j.device for j, _ in rows],
                [j.metric for j, _ in rows],
                [b.start for _, b in rows],
                [b.energy_mwh for _, b in rows],
                [b.samples for _, b in rows],
                [b.covered for _, b in rows],
                [",".join(sorted(b.flags)) for _, b in rows],
            ),
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
        out[device].append(_bucket(bucket, mwh, samples, covered, flags))
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
    refresh_site_days(
        conn,
        [
            (site_id, metric, first, last)
            for (site_id, metric), wanted in sorted(days.items())
            for first, last in _day_runs(sorted(wanted))
        ],
    )


def _day_runs(days: Sequence[date]) -> list[tuple[date, date]]:
    """Sorted days as runs of consecutive days ``(first, last)``."""
    runs: list[tuple[date, date]] = []
    for d in days:
        if runs and d == runs[-1][1] + timedelta(days=1):
            runs[-1] = (runs[-1][0], d)
        else:
            runs.append((d, d))
    return runs


#: Each wanted (site, counter, first day, last day, number k): the devices the site's
#: figure adds up (``d``: k → device, found by :func:`_summed_for`), their buckets
#: summed per bucket (covered: the least of the devices', none when one lacks the
#: bucket, as the readers do), then per local day with the day's distinct flags.
#: Buckets are fetched a day beyond each end and kept by their local day, as
#: :func:`_days_in_sql` keys them.
_SITE_DAYS = """
WITH want AS (
    SELECT * FROM unnest(%s::int[], %s::int[], %s::date[], %s::date[])
        WITH ORDINALITY AS w(site_id, metric_id, first_day, last_day, k)),
devs AS (
    SELECT w.site_id, w.metric_id, w.first_day, w.last_day, d.device_id, d.tz AS time_zone
    FROM want w JOIN unnest(%s::bigint[], %s::int[], %s::text[]) AS d(k, device_id, tz)
        ON d.k = w.k),
s AS (
    SELECT site_id, metric_id, first_day, last_day, min(time_zone) AS tz, count(*) AS n,
           array_agg(device_id ORDER BY device_id) AS devices
    FROM devs GROUP BY 1, 2, 3, 4),
b AS (
    SELECT s.site_id, s.metric_id, s.first_day, s.last_day, s.devices,
           (e.bucket AT TIME ZONE s.tz)::date AS day,
           sum(e.energy_mwh) AS energy, sum(e.samples) AS samples,
           CASE WHEN count(*) = min(s.n) THEN min(e.covered) ELSE interval '0' END AS covered,
           string_agg(array_to_string(e.flags, ','), ',') AS flags
    FROM s JOIN devs d USING (site_id, metric_id, first_day, last_day)
    CROSS JOIN LATERAL (SELECT * FROM telemetry.energy_15m e
        WHERE e.device_id = d.device_id AND e.metric_id = s.metric_id
          AND e.bucket >= ((s.first_day - 1)::timestamp AT TIME ZONE s.tz)
          AND e.bucket < ((s.last_day + 2)::timestamp AT TIME ZONE s.tz)) e
    GROUP BY s.site_id, s.metric_id, s.first_day, s.last_day, s.devices, s.tz, e.bucket)
INSERT INTO telemetry.energy_site_1d
    (site_id, metric_id, day, devices, energy_mwh, samples, covered, flags)
SELECT site_id, metric_id, day, devices, sum(energy), sum(samples), sum(covered),
       ARRAY(SELECT DISTINCT f FROM unnest(string_to_array(string_agg(flags, ','), ',')) f
             WHERE f <> '' ORDER BY f)
FROM b WHERE day BETWEEN first_day AND last_day
GROUP BY site_id, metric_id, day, devices
ON CONFLICT (site_id, metric_id, day) DO UPDATE SET devices = EXCLUDED.devices,
    energy_mwh = EXCLUDED.energy_mwh, samples = EXCLUDED.samples,
    covered = EXCLUDED.covered, flags = EXCLUDED.flags"""


def refresh_site_days(conn: Connection[Any], wanted: Sequence[tuple[int, int, date, date]]) -> int:
    """Store each wanted site's local days ``(site, metric, first_day, last_day)`` as
    summed from the buckets of the devices its figure adds up (every region's; the
    meter rule of :func:`~cloud.telemetry.site_meters.summed_devices`), in three
    statements for all of them; a day without buckets is left without a row (readers
    sum its buckets: none). The days stored."""
    if not wanted:
        return 0
    columns = tuple([w[i] for w in wanted] for i in range(4))
    conn.execute(
        "DELETE FROM telemetry.energy_site_1d t USING unnest(%s::int[], %s::int[],"
        " %s::date[], %s::date[]) AS w(site_id, metric_id, first_day, last_day)"
        " WHERE t.site_id = w.site_id AND t.metric_id = w.metric_id"
        " AND t.day BETWEEN w.first_day AND w.last_day",
        columns,
    )
    ks, devices, zones = _summed_for(conn, [(w[0], w[1]) for w in wanted])
    return max(conn.execute(_SITE_DAYS, (*columns, ks, devices, zones)).rowcount, 0)


def _summed_for(
    conn: Connection[Any], wanted: Sequence[tuple[int, int]]
) -> tuple[list[int], list[int], list[str]]:
    """For each wanted (site, metric), numbered k from 1, the devices its figure adds
    up, with the site's zone: three parallel columns (k, device, zone)."""
    rows = conn.execute(
        "SELECT w.k, k.device_id, k.local_id, g.time_zone"
        " FROM unnest(%s::int[], %s::int[]) WITH ORDINALITY AS w(site_id, metric_id, k)"
        " JOIN ingest.gateways g ON g.site_id = w.site_id"
        " JOIN ingest.device_keys k ON k.gateway_id = g.gateway_id"
        " WHERE EXISTS (SELECT 1 FROM telemetry.energy_15m e"
        "  WHERE e.device_id = k.device_id AND e.metric_id = w.metric_id)",
        ([w[0] for w in wanted], [w[1] for w in wanted]),
    ).fetchall()
    per_k: dict[int, list[SiteDevice]] = defaultdict(list)
    zone_of: dict[int, str] = {}
    for k, device, local_id, zone in rows:
        per_k[int(k)].append(SiteDevice(local_id, int(device), True))
        zone_of[int(k)] = zone
    roles = meter_roles(conn, {site for site, _ in wanted})
    out: tuple[list[int], list[int], list[str]] = ([], [], [])
    for k, devices in sorted(per_k.items()):
        site, metric = wanted[k - 1]
        grid = is_grid_metric(BY_ID[metric].name)
        for device in summed_devices(devices, roles[site], grid_metric=grid):
            out[0].append(k)
            out[1].append(device)
            out[2].append(zone_of[k])
    return out


def refresh_site_history(conn: Connection[Any], site_id: int) -> int:
    """Every stored local day of the site's grid counters again (its meter roles
    changed, so the devices its figures add up did); the days stored."""
    rows = conn.execute(
        "SELECT e.metric_id, min(e.bucket), max(e.bucket), min(g.time_zone)"
        " FROM ingest.gateways g JOIN ingest.device_keys k USING (gateway_id)"
        " JOIN telemetry.energy_15m e ON e.device_id = k.device_id"
        " WHERE g.site_id = %s AND e.metric_id = ANY(%s) GROUP BY e.metric_id",
        (site_id, [m for m in ENERGY_METRICS if is_grid_metric(BY_ID[m].name)]),
    ).fetchall()
    wanted = [
        (site_id, int(metric), lo.astimezone(zone).date(), hi.astimezone(zone).date())
        for metric, lo, hi, tz in rows
        for zone in [ZoneInfo(tz)]
    ]
    return refresh_site_days(conn, wanted)


def _site_devices(
    conn: Connection[Any], site_id: int, metric: int, reach: GatewayReach
) -> tuple[ZoneInfo, list[int]] | None:
    """The site's zone and its devices in ``reach`` that count ``metric`` (have ever had
    a bucket of it: a meter is no missing inverter) and that its figure adds up (never
    the system meter; a grid metric from the grid meter:
    :func:`~cloud.telemetry.site_meters.summed_devices`); None when no device is in
    reach."""
    rows = conn.execute(
        "SELECT k.device_id, k.local_id, g.time_zone, EXISTS (SELECT 1 FROM"
        " telemetry.energy_15m e WHERE e.device_id = k.device_id AND e.metric_id = %(metric)s)"
        " FROM ingest.device_keys k JOIN ingest.gateways g USING (gateway_id)"
        " WHERE g.site_id = %(site)s AND " + gateway_reach_condition("g.region", "k.gateway_id"),
        {"site": site_id, "metric": metric, **reach.sql_params()},
    ).fetchall()
    if not rows:
        return None
    devices = [SiteDevice(local_id, int(d), bool(has)) for d, local_id, _, has in rows]
    roles = meter_roles(conn, [site_id])[site_id]
    grid = is_grid_metric(BY_ID[metric].name)
    return ZoneInfo(rows[0][2]), summed_devices(devices, roles, grid_metric=grid)


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
        figures = _months(conn, site_id, devices, metric, zone, periods)
    return SiteEnergy(site_id, str(zone), metric, figures)


def _months(
    conn: Connection[Any],
    site_id: int,
    devices: list[int],
    metric: int,
    zone: ZoneInfo,
    months: list[LocalPeriod],
) -> list[EnergyFigure]:
    """Local months: the stored days (``energy_site_1d`` rows of these very devices)
    summed by the server per month, plus the days not stored — today, days the job has
    not reached — summed from the buckets like :func:`_days`. Days outside the devices'
    first and last bucket hold nothing and are not looked at, so a year view of a new
    site, or of an old one whose days are all stored, builds no per-day objects."""
    first, last = months[0].day, _month_end(months[-1].day)
    span = (site_id, metric, first, last, devices)
    where = (
        " WHERE site_id = %s AND metric_id = %s AND day >= %s AND day <= %s AND devices = %s::int[]"
    )
    sums = conn.execute(
        "SELECT date_trunc('month', day)::date, sum(energy_mwh), sum(samples), sum(covered),"
        f" array_agg(day) FROM telemetry.energy_site_1d{where} GROUP BY 1",
        span,
    ).fetchall()
    flagged = conn.execute(
        "SELECT date_trunc('month', day)::date, array_agg(DISTINCT f)"
        f" FROM telemetry.energy_site_1d, unnest(flags) AS f{where} GROUP BY 1",
        span,
    ).fetchall()
    per_month: dict[date, tuple[int, int, timedelta, frozenset[EnergyFlag]]] = {
        m: (int(e), int(n), c, frozenset()) for m, e, n, c, _ in sums
    }
    for m, fs in flagged:
        e, n, c, _ = per_month[m]
        per_month[m] = (e, n, c, frozenset(EnergyFlag(f) for f in fs))
    stored = {d for *_, days in sums for d in days}
    for figure in _unstored_days(conn, devices, metric, zone, first, last, stored):
        key = figure.period.day.replace(day=1)
        e, n, c, fs = per_month.get(key, (0, 0, timedelta(0), frozenset()))
        per_month[key] = (
            e + figure.energy_mwh,
            n + figure.samples,
            c + figure.covered,
            fs | figure.flags,
        )
    return [
        EnergyFigure(period=p, energy_mwh=e, samples=n, covered=c, flags=fs)
        for p in months
        for e, n, c, fs in [per_month.get(p.day, (0, 0, timedelta(0), frozenset()))]
    ]


def _unstored_days(
    conn: Connection[Any],
    devices: list[int],
    metric: int,
    zone: ZoneInfo,
    first: date,
    last: date,
    stored: set[date],
) -> list[EnergyFigure]:
    """The days from ``first`` to ``last`` not in ``stored``, within the devices'
    buckets, summed from the buckets (:func:`_days_in_sql`), a run of days at a time."""
    bounds = conn.execute(
        "SELECT min(bucket), max(bucket) FROM telemetry.energy_15m"
        " WHERE device_id = ANY(%s) AND metric_id = %s",
        (devices, metric),
    ).fetchone()
    if bounds is None or bounds[0] is None:
        return []
    lo = max(first, bounds[0].astimezone(zone).date())
    hi = min(last, bounds[1].astimezone(zone).date())
    missing = [
        lo + timedelta(days=i)
        for i in range((hi - lo).days + 1)
        if lo + timedelta(days=i) not in stored
    ]
    found: list[EnergyFigure] = []
    for run_first, run_last in _day_runs(missing):
        run = local_periods(zone, run_first, run_last, "day")
        found += _days_in_sql(conn, devices, metric, zone, run)
    return found


def _month_end(first: date) -> date:
    return date(first.year, first.month, monthrange(first.year, first.month)[1])


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
        for f in _days_in_sql(conn, devices, metric, zone, run):
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


def _days_in_sql(
    conn: Connection[Any],
    devices: list[int],
    metric: int,
    zone: ZoneInfo,
    periods: list[LocalPeriod],
) -> list[EnergyFigure]:
    """Local days summed by the server from the buckets: the same sums as
    :func:`aggregate` over :func:`site_buckets` — a site bucket's covered time is the
    least of its devices', none when one lacks the bucket — keyed by the local date of
    each bucket's start (a local day's boundary is always a bucket boundary)."""
    key = "(bucket AT TIME ZONE %(zone)s)::date"
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
