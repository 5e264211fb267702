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
    """Bring the energy buckets up to date with ``ranges`` in the caller's transaction;
    emit ``energy.revised`` for ended days that changed. The changed bucket starts per
    device."""
    rules = rules or CounterRules()
    changed: dict[int, set[datetime]] = defaultdict(set)
    for device, spans in _merged(ranges).items():
        for first, last in spans:
            for metric in _counters_in(conn, device, first, last):
                starts = _recompute_one(conn, device, metric, first, last, rules)
                changed[device] |= starts
    _announce(conn, {d: s for d, s in changed.items() if s}, now)
    return dict(changed)


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


def _announce(conn: Connection[Any], changed: dict[int, set[datetime]], now: datetime) -> None:
    """``energy.revised`` per site for its changed local days that ended before ``now``."""
    if not changed:
        return
    sites: dict[tuple[int, str, str], set[datetime]] = defaultdict(set)
    for device, site, region, zone in conn.execute(
        "SELECT k.device_id, g.site_id, g.region, g.time_zone FROM ingest.device_keys k"
        " JOIN ingest.gateways g USING (gateway_id)"
        " WHERE k.device_id = ANY(%s) AND g.site_id IS NOT NULL",
        (list(changed),),
    ).fetchall():
        sites[(site, region, zone)] |= changed[device]
    events = []
    for (site, region, zone), starts in sorted(sites.items()):
        tz = ZoneInfo(zone)
        # The last local day that had ended REVISION_GRACE before now.
        last_closed = (now - REVISION_GRACE).astimezone(tz).date() - timedelta(days=1)
        days = [d for d in revised_days(starts, tz) if d <= last_closed]
        if days:
            revised = EnergyRevised(site_id=site, days=days)
            events.append(energy_revised_event(revised, region, occurred_at=now, source=SCHEMA))
    emit_many(conn, SCHEMA, events)


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
    reach = reach or GatewayReach()
    rows = conn.execute(
        "SELECT k.device_id, g.time_zone FROM ingest.device_keys k"
        " JOIN ingest.gateways g USING (gateway_id) WHERE g.site_id = %(site)s AND "
        + gateway_reach_condition("g.region", "k.gateway_id"),
        {"site": site_id, **reach.sql_params()},
    ).fetchall()
    if not rows:
        return None
    zone = ZoneInfo(rows[0][1])
    if unit == "month":
        first_day = first_day.replace(day=1)
    periods = local_periods(zone, first_day, last_day, unit)
    if not periods:
        return SiteEnergy(site_id, str(zone), metric, [])
    devices = sorted({int(r[0]) for r in rows})
    if unit == "hour":  # a fall-back night repeats a wall hour: periods keyed in Python
        per_device = load_buckets(conn, devices, metric, periods[0].start, periods[-1].end)
        figures = aggregate(site_buckets(per_device), periods)
    else:
        figures = _figures_in_sql(conn, devices, metric, zone, unit, periods)
    return SiteEnergy(site_id, str(zone), metric, figures)


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
