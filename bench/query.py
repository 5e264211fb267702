"""The portal's telemetry queries on a fleet-sized store (issue 14), each beside the same
answer computed from raw rows (or, for a year, from the 15-minute energy table) in the
same run, the answers compared.

    .venv/bin/python -m bench.query                       # acceptance sizes (long: ~tens of min)
    .venv/bin/python -m bench.query --sites 10 --runs 50  # quick

Data (a fresh bench database, ``migrate``; plain backend):
- ``--sites`` sites (default 100), one gateway each in ``ingest.gateways`` (region au, us,
  es in turn, with their zones), ``--devices`` devices per site (10) in
  ``ingest.device_keys``, 15 catalog metrics per device (pv_w, pv_wh, grid_w, import_wh,
  export_wh and ten gauges);
- raw rows: ``--samples`` (1,344) per device and metric at a 5-minute cadence from a UTC
  midnight (4 days 16 h ending yesterday): 20.2 M rows at the defaults, generated
  server-side (``INSERT … SELECT … generate_series``) into the day partitions
  ``TelemetryStore.ensure_partitions`` made; counters are integer Wh, monotonic;
- the raw window's rollups and energy by the real code path: one ``telemetry.dirty`` row
  per device and UTC day, then ``RollupRefresher("plain").run_once`` until none is left
  (as ``catch_up``), timed: the maintenance cost of those rows;
- a year: ``rollup_1h`` and ``rollup_1d`` of every device x metric, and ``energy_15m`` of
  pv_wh, for the 364 days before the raw window, generated server-side (plausible values;
  indexes rebuilt after the load, as a bulk load would).

Queries (``--runs`` each, random site/device/day from ``--seed``; p50/p99 in ms of the
call as the portal makes it, including fetching the rows into Python):
- site day curve: the 5-minute pv_w of a site's devices for one local day inside the raw
  window, from ``rollup_5m`` | baseline: grouped from raw rows (within 1e-9);
- site month energy: ``site_energy(unit="day")`` of pv_wh for 30 local days ending on a day
  inside the raw window | baseline: raw counter differences per local day (exact, on the
  days wholly inside the raw window);
- site year by month: ``site_energy(unit="month")`` of pv_wh over 365 local days |
  baseline: ``energy_15m`` summed per local month in SQL (raw rows are not kept a year);
- fleet latest per region: newest pv_w per device of a region in the last 24 h of data
  (LATERAL probe of the primary key, as ``queries.fleet_latest`` on branch i14-query) |
  baseline: ``DISTINCT ON`` over the raw rows of the same 24 h;
- device raw page: 1,000 rows of one device x metric after a cursor (``ts > cursor``) |
  baseline: the same page by ``OFFSET``.
"""

from __future__ import annotations

import argparse
import math
import random
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import psycopg

from bench.common import bench_database
from cloud.adapters.postgres import create_pool
from cloud.migrate import migrate
from cloud.scope import GatewayReach
from cloud.telemetry import TelemetryStore, queries
from cloud.telemetry.energy_store import refresh_site_days, site_energy
from cloud.telemetry.rollups import RollupRefresher
from contracts.metrics import BY_ID
from contracts.topics import Region

#: pv_w, pv_va, pv_var, pv_pf_pct, pv_ac_a, pv_l1_v, pv_hz, pv_wh, pv_dc_w, pv_cabinet_c,
#: grid_w, grid_l1_v, grid_hz, import_wh, export_wh.
METRICS = (1, 2, 3, 4, 5, 6, 9, 10, 11, 12, 40, 48, 51, 52, 53)
PV_W, PV_WH = 1, 10
REGIONS = (("au", "Australia/Sydney"), ("us", "America/Los_Angeles"), ("es", "Europe/Madrid"))
STEP = timedelta(minutes=5)
HOUR, DAY = timedelta(hours=1), timedelta(days=1)
ORIGIN = "2000-01-01 00:00+00"

# One value per (device d, metric m, time t) for the raw rows and the year's rollups:
# a clear-sky PV curve on the site's local solar noon (roughly: UTC hour shifted by the
# region), counters as integer Wh that grow k Wh per 5 minutes (monotonic over the year),
# gauges around a per-metric level.
_SUN = "greatest(0.0, sin(pi() * (mod(extract(epoch FROM {t}) / 3600.0 + d.shift, 24) - 6) / 12))"
_PV = f"round((4000.0 * {_SUN} * (0.8 + mod(d.id, 40) / 100.0))::numeric, 1)::float8"
_STEPS = "floor(extract(epoch FROM {t} - %(raw_start)s::timestamptz) / 300)"
_VALUE = f"""CASE m.id
    WHEN 1 THEN {_PV}
    WHEN 10 THEN 30000000 + d.id * 1000 + {_STEPS} * d.k
    WHEN 52 THEN 30000000 + d.id * 500 + {_STEPS} * (mod(d.id, 3) + 1) * 5
    WHEN 53 THEN 30000000 + d.id * 300 + {_STEPS} * (mod(d.id, 4) + 1) * 7
    WHEN 40 THEN 1500.0 - {_PV}
    ELSE m.id * 10.0 + sin(extract(epoch FROM {{t}}) / 3000.0 + d.id)
END"""
_DEVICES = (
    "SELECT k.device_id AS id, (mod(k.device_id, 5) + 1) * 20 AS k,"
    " CASE g.region WHEN 'au' THEN 10 WHEN 'us' THEN -8 ELSE 1 END AS shift"
    " FROM ingest.device_keys k JOIN ingest.gateways g USING (gateway_id)"
    " WHERE k.device_id >= %(d_lo)s AND k.device_id < %(d_hi)s"
)


@dataclass(frozen=True)
class Shape:
    sites: int
    devices: int
    samples: int
    year_days: int

    @property
    def device_count(self) -> int:
        return self.sites * self.devices

    @property
    def raw_rows(self) -> int:
        return self.device_count * len(METRICS) * self.samples


@dataclass(frozen=True)
class Site:
    site_id: int
    region: str
    zone: ZoneInfo
    devices: tuple[int, ...]


@dataclass(frozen=True)
class Window:
    """The raw window: samples at raw_start + i·STEP for i < samples."""

    raw_start: datetime
    raw_last: datetime
    year_start: datetime


def log(msg: str, t0: float) -> None:
    print(f"[{time.perf_counter() - t0:7.1f} s] {msg}", flush=True)


# -- data ----------------------------------------------------------------------------------
def make_fleet(conn: psycopg.Connection[Any], shape: Shape) -> list[Site]:
    sites = []
    for s in range(1, shape.sites + 1):
        region, zone = REGIONS[(s - 1) % len(REGIONS)]
        gateway = f"bench-gw-{s:04d}"
        first = (s - 1) * shape.devices + 1
        devices = tuple(range(first, first + shape.devices))
        conn.execute(
            "INSERT INTO ingest.gateways (gateway_id, region, time_zone, updated_at, site_id)"
            " VALUES (%s, %s, %s, now(), %s)",
            (gateway, region, zone, s),
        )
        conn.execute(
            "INSERT INTO ingest.device_keys (gateway_id, local_id, device_id)"
            " SELECT %s, 'dev-' || d, d FROM unnest(%s::int[]) d",
            (gateway, list(devices)),
        )
        sites.append(Site(s, region, ZoneInfo(zone), devices))
    return sites


def window_of(shape: Shape, now: datetime) -> Window:
    today = datetime(now.year, now.month, now.day, tzinfo=UTC)
    span = STEP * (shape.samples - 1)
    raw_start = today - DAY * math.ceil((span + STEP) / DAY)
    return Window(raw_start, raw_start + span, raw_start - DAY * shape.year_days)


def load_raw(url: str, conn: psycopg.Connection[Any], shape: Shape, w: Window, t0: float) -> None:
    """Raw rows per UTC day partition and device chunk, server-side."""
    pool = create_pool(url, max_size=1, name="bench-partitions")
    try:
        days = {(w.raw_start + DAY * i).date() for i in range((w.raw_last - w.raw_start).days + 1)}
        TelemetryStore(pool).ensure_partitions(days)
    finally:
        pool.close()
    chunk = 100
    day = w.raw_start
    done = 0
    while day <= w.raw_last:
        hi = min(day + DAY - STEP, w.raw_last)
        for d_lo in range(1, shape.device_count + 1, chunk):
            cur = conn.execute(
                f"WITH d AS ({_DEVICES})"
                " INSERT INTO telemetry.readings (ts, device_id, metric_id, value, quality)"
                f" SELECT t.ts, d.id, m.id, {_VALUE.format(t='t.ts')}, 0"
                " FROM d CROSS JOIN unnest(%(metrics)s::smallint[]) m(id)"
                " CROSS JOIN generate_series(%(lo)s::timestamptz, %(hi)s::timestamptz,"
                " '5 minutes') t(ts)",
                {
                    "d_lo": d_lo,
                    "d_hi": min(d_lo + chunk, shape.device_count + 1),
                    "metrics": list(METRICS),
                    "lo": day,
                    "hi": hi,
                    "raw_start": w.raw_start,
                },
            )
            done += cur.rowcount
        log(f"raw rows {done:,} / {shape.raw_rows:,} (through {hi:%Y-%m-%d %H:%M} UTC)", t0)
        day += DAY
    # One dirty row per device and UTC day, as the write path records them.
    ranges = []
    day = w.raw_start
    while day <= w.raw_last:
        ranges.append((day, min(day + DAY - STEP, w.raw_last)))
        day += DAY
    devices = range(1, shape.device_count + 1)
    conn.execute(
        "INSERT INTO telemetry.dirty (device_id, from_ts, to_ts)"
        " SELECT d, r.lo, r.hi FROM unnest(%s::int[]) d"
        " CROSS JOIN unnest(%s::timestamptz[], %s::timestamptz[]) r(lo, hi) ORDER BY d, r.lo",
        (list(devices), [r[0] for r in ranges], [r[1] for r in ranges]),
    )
    conn.execute("VACUUM ANALYZE telemetry.readings")


def refresh(conn: psycopg.Connection[Any], shape: Shape, t0: float, limit: int) -> float:
    """RollupRefresher.catch_up, run as its loop so progress shows; seconds taken."""
    (dirty,) = conn.execute("SELECT count(*) FROM telemetry.dirty").fetchone() or (0,)
    refresher = RollupRefresher("plain")
    start = time.perf_counter()
    consumed = 0
    while (report := refresher.run_once(conn, limit=limit)).dirty_rows:
        consumed += report.dirty_rows
        log(f"maintenance: {consumed:,} / {dirty:,} dirty rows consumed", t0)
    return time.perf_counter() - start


def _indexes(conn: psycopg.Connection[Any], table: str) -> list[str]:
    """Drop ``table``'s indexes and primary key; the statements that remake them."""
    remake = []
    for name, is_pk, definition, condef in conn.execute(
        "SELECT i.relname, x.indisprimary, pg_get_indexdef(x.indexrelid),"
        " pg_get_constraintdef(c.oid)"
        " FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid"
        " LEFT JOIN pg_constraint c ON c.conindid = x.indexrelid AND c.contype = 'p'"
        " WHERE x.indrelid = %s::regclass",
        (table,),
    ).fetchall():
        if is_pk:
            conn.execute(f"ALTER TABLE {table} DROP CONSTRAINT {name}")
            remake.append(f"ALTER TABLE {table} ADD CONSTRAINT {name} {condef}")
        else:
            conn.execute(f"DROP INDEX telemetry.{name}")
            remake.append(definition)
    return remake


def load_year(conn: psycopg.Connection[Any], shape: Shape, w: Window, t0: float) -> None:
    """The year before the raw window: rollup_1h, rollup_1d (every device x metric) and
    energy_15m of pv_wh, 28 days a statement, indexes rebuilt at the end."""
    remake = [
        s
        for t in ("telemetry.rollup_1h", "telemetry.rollup_1d", "telemetry.energy_15m")
        for s in _indexes(conn, t)
    ]
    rollup = (
        "WITH d AS ({devices}) INSERT INTO telemetry.{table}"
        " (device_id, metric_id, bucket, avg, min, max, last, last_ts, count)"
        " SELECT d.id, m.id, b.t, v.v, v.v * 0.9, v.v * 1.1, v.v, b.t + %(last)s::interval, %(n)s"
        " FROM d CROSS JOIN unnest(%(metrics)s::smallint[]) m(id)"
        " CROSS JOIN generate_series(%(lo)s::timestamptz, %(hi)s::timestamptz, %(step)s::interval)"
        " b(t) CROSS JOIN LATERAL (SELECT {value} AS v) v"
    )
    energy = (
        "WITH d AS ({devices}) INSERT INTO telemetry.energy_15m"
        " (device_id, metric_id, bucket, energy_mwh, samples, covered, flags)"
        " SELECT d.id, %(pv_wh)s, b.t, d.k * 3000, 3, '15 minutes', '{{}}'"
        " FROM d CROSS JOIN generate_series(%(lo)s::timestamptz, %(hi)s::timestamptz,"
        " '15 minutes') b(t)"
    )
    every = {"d_lo": 1, "d_hi": shape.device_count + 1, "raw_start": w.raw_start}
    start = w.year_start
    while start < w.raw_start:
        end = min(start + DAY * 28, w.raw_start)
        value = _VALUE.format(t="b.t")
        for table, step, last, n in (("rollup_1h", HOUR, "55 minutes", 12),):
            conn.execute(
                rollup.format(devices=_DEVICES, table=table, value=value),
                {
                    **every,
                    "metrics": list(METRICS),
                    "lo": start,
                    "hi": end - step,
                    "step": step,
                    "last": last,
                    "n": n,
                },
            )
        conn.execute(
            rollup.format(devices=_DEVICES, table="rollup_1d", value=value),
            {
                **every,
                "metrics": list(METRICS),
                "lo": start,
                "hi": end - DAY,
                "step": DAY,
                "last": "23 hours 55 minutes",
                "n": 288,
            },
        )
        # Buckets up to the chunk's end; the one ending at raw_start holds the raw window's
        # first sample, so the maintenance above made it.
        last_bucket = end - timedelta(minutes=30 if end == w.raw_start else 15)
        conn.execute(
            energy.format(devices=_DEVICES),
            {**every, "pv_wh": PV_WH, "lo": start, "hi": last_bucket},
        )
        log(f"year: rollup_1h, rollup_1d, energy_15m through {end:%Y-%m-%d}", t0)
        start = end
    conn.execute("SET maintenance_work_mem = '1GB'")
    for statement in remake:
        conn.execute(statement)
        log(f"year: {statement[:70]}…", t0)
    for t in ("rollup_5m", "rollup_1h", "rollup_1d", "energy_15m"):
        conn.execute(f"VACUUM ANALYZE telemetry.{t}")
    log("year: vacuumed and analysed", t0)


def sizes(conn: psycopg.Connection[Any], raw_rows: int) -> None:
    (readings_bytes,) = conn.execute(
        "SELECT pg_total_relation_size('telemetry.readings'::regclass)"
        " + coalesce(sum(pg_total_relation_size(inhrelid)), 0) FROM pg_inherits"
        " WHERE inhparent = 'telemetry.readings'::regclass"
    ).fetchone() or (0,)
    (counted,) = conn.execute("SELECT count(*) FROM telemetry.readings").fetchone() or (0,)
    print("\nState                          rows (exact/≈)      bytes on disk   bytes/row")
    print(
        f"{'telemetry.readings (all days)':<30} {counted:>15,}  {readings_bytes:>15,}"
        f"   {readings_bytes / max(counted, 1):8.1f}"
    )
    for t in ("rollup_5m", "rollup_1h", "rollup_1d", "energy_15m", "energy_site_1d"):
        rows, size = conn.execute(
            "SELECT reltuples::bigint, pg_total_relation_size(oid) FROM pg_class"
            " WHERE oid = %s::regclass",
            (f"telemetry.{t}",),
        ).fetchone() or (0, 0)
        print(f"{'telemetry.' + t:<30} {rows:>14,}≈  {size:>15,}   {size / max(rows, 1):8.1f}")
    assert counted == raw_rows, f"stored {counted} raw rows, generated {raw_rows}"
    print(f"bytes per raw reading (readings with their indexes): {readings_bytes / counted:.1f}")


# -- the queries and their baselines -----------------------------------------------------------
_SITE_DEVICES = (
    "SELECT DISTINCT k.device_id FROM ingest.device_keys k JOIN ingest.gateways g"
    " USING (gateway_id) WHERE g.site_id = %(site)s"
)


def day_curve(conn: Any, site: Site, day: date) -> dict[tuple[int, datetime], float]:
    lo, hi = _local_day(site.zone, day)
    rows = conn.execute(
        f"WITH d AS ({_SITE_DEVICES}) SELECT r.device_id, r.bucket, r.avg"
        " FROM d JOIN telemetry.rollup_5m r ON r.device_id = d.device_id"
        " WHERE r.metric_id = %(metric)s AND r.bucket >= %(lo)s AND r.bucket < %(hi)s"
        " ORDER BY 1, 2",
        {"site": site.site_id, "metric": PV_W, "lo": lo, "hi": hi},
    ).fetchall()
    return {(r[0], r[1]): r[2] for r in rows}


def day_curve_raw(conn: Any, site: Site, day: date) -> dict[tuple[int, datetime], float]:
    lo, hi = _local_day(site.zone, day)
    rows = conn.execute(
        f"WITH d AS ({_SITE_DEVICES}) SELECT x.device_id,"
        f" date_bin('5 minutes', x.ts, '{ORIGIN}') b, avg(x.value)"
        " FROM d JOIN telemetry.readings x ON x.device_id = d.device_id"
        " WHERE x.metric_id = %(metric)s AND x.ts >= %(lo)s AND x.ts < %(hi)s"
        " AND x.quality < 2 GROUP BY 1, 2 ORDER BY 1, 2",
        {"site": site.site_id, "metric": PV_W, "lo": lo, "hi": hi},
    ).fetchall()
    return {(r[0], r[1]): r[2] for r in rows}


def month_energy(conn: Any, site: Site, last: date) -> dict[date, int]:
    got = site_energy(conn, site.site_id, PV_WH, "day", last - timedelta(days=29), last)
    assert got is not None
    return {f.period.local_start.date(): f.energy_mwh for f in got.figures}


def month_energy_raw(conn: Any, site: Site, last: date) -> dict[date, int]:
    """Per local day, the sum over the site's devices of the counter's rises between
    consecutive raw samples whose later one lies in the day ((start, end], mWh)."""
    lo, _ = _local_day(site.zone, last - timedelta(days=29))
    _, hi = _local_day(site.zone, last)
    rows = conn.execute(
        f"WITH d AS ({_SITE_DEVICES}), x AS ("
        " SELECT r.ts, round(r.value::numeric, 3) v,"
        " lag(round(r.value::numeric, 3)) OVER (PARTITION BY r.device_id ORDER BY r.ts) p"
        " FROM d JOIN telemetry.readings r ON r.device_id = d.device_id"
        " WHERE r.metric_id = %(metric)s AND r.ts >= %(lo)s AND r.ts <= %(hi)s"
        " AND r.quality < 2 AND r.value >= 0)"
        " SELECT ((ts - interval '1 microsecond') AT TIME ZONE %(zone)s)::date,"
        " (sum(v - p) * 1000)::bigint FROM x WHERE p IS NOT NULL AND v >= p GROUP BY 1",
        {"site": site.site_id, "metric": PV_WH, "lo": lo, "hi": hi, "zone": str(site.zone)},
    ).fetchall()
    return {r[0]: r[1] for r in rows}


def year_months(conn: Any, site: Site, last: date) -> dict[date, int]:
    got = site_energy(conn, site.site_id, PV_WH, "month", last - timedelta(days=364), last)
    assert got is not None
    return {f.period.local_start.date(): f.energy_mwh for f in got.figures}


def year_months_sql(conn: Any, site: Site, last: date) -> dict[date, int]:
    first = (last - timedelta(days=364)).replace(day=1)
    after = (last.replace(day=1) + timedelta(days=32)).replace(day=1)
    lo, _ = _local_day(site.zone, first)
    hi, _ = _local_day(site.zone, after)
    rows = conn.execute(
        f"WITH d AS ({_SITE_DEVICES})"
        " SELECT date_trunc('month', e.bucket AT TIME ZONE %(zone)s)::date,"
        " sum(e.energy_mwh)::bigint"
        " FROM d JOIN telemetry.energy_15m e ON e.device_id = d.device_id"
        " WHERE e.metric_id = %(metric)s AND e.bucket >= %(lo)s AND e.bucket < %(hi)s"
        " GROUP BY 1 ORDER BY 1",
        {"site": site.site_id, "metric": PV_WH, "lo": lo, "hi": hi, "zone": str(site.zone)},
    ).fetchall()
    out = {}
    m = first
    while m < after:
        out[m] = 0
        m = (m + timedelta(days=32)).replace(day=1)
    out.update({r[0]: r[1] for r in rows})
    return out


def fleet_latest(conn: Any, region: str, since: datetime) -> list[tuple[Any, ...]]:
    """The portal's query (``cloud.telemetry.queries.fleet_latest``, the route
    ``GET /latest``): one backward probe of the primary key per device of the region."""
    values, _ = queries.fleet_latest(
        conn, BY_ID[PV_W], GatewayReach(Region(region)), since, after=0, limit=1001
    )
    return [(v.device_id, v.ts, v.value) for v in values]


def fleet_latest_raw(conn: Any, region: str, since: datetime) -> list[tuple[Any, ...]]:
    rows = conn.execute(
        "SELECT DISTINCT ON (r.device_id) r.device_id, r.ts, r.value"
        " FROM telemetry.readings r JOIN ingest.device_keys k ON k.device_id = r.device_id"
        " JOIN ingest.gateways g USING (gateway_id)"
        " WHERE g.region = %(region)s AND r.metric_id = %(metric)s AND r.ts >= %(since)s"
        " ORDER BY r.device_id, r.ts DESC LIMIT %(n)s",
        {"region": region, "metric": PV_W, "since": since, "n": 1001},
    ).fetchall()
    return [tuple(r) for r in rows]


def raw_page(conn: Any, device: int, metric: int, w: Window, page: int) -> list[tuple[Any, ...]]:
    # The cursor of page k is the last instant of page k-1 (year 1 for the first page).
    after = w.raw_start + STEP * (page * 1000 - 1) if page else datetime(1, 1, 1, tzinfo=UTC)
    rows = conn.execute(
        "SELECT ts, value, quality FROM telemetry.readings"
        " WHERE device_id = %s AND metric_id = %s AND ts >= %s AND ts < %s AND ts > %s"
        " ORDER BY ts LIMIT %s",
        (device, metric, w.raw_start, w.raw_last + STEP, after, 1001),
    ).fetchall()
    return [tuple(r) for r in rows[:1000]]


def raw_page_offset(
    conn: Any, device: int, metric: int, w: Window, page: int
) -> list[tuple[Any, ...]]:
    rows = conn.execute(
        "SELECT ts, value, quality FROM telemetry.readings"
        " WHERE device_id = %s AND metric_id = %s AND ts >= %s AND ts < %s"
        " ORDER BY ts OFFSET %s LIMIT %s",
        (device, metric, w.raw_start, w.raw_last + STEP, page * 1000, 1001),
    ).fetchall()
    return [tuple(r) for r in rows[:1000]]


def _local_day(zone: ZoneInfo, day: date) -> tuple[datetime, datetime]:
    start = datetime(day.year, day.month, day.day, tzinfo=zone)
    end = start.replace(tzinfo=None) + DAY
    return start.astimezone(UTC), end.replace(tzinfo=zone).astimezone(UTC)


def full_days(zone: ZoneInfo, w: Window) -> list[date]:
    """Local days wholly inside the raw window (a sample at both ends)."""
    day = w.raw_start.astimezone(zone).date()
    out = []
    while day <= w.raw_last.astimezone(zone).date():
        lo, hi = _local_day(zone, day)
        if lo >= w.raw_start and hi <= w.raw_last:
            out.append(day)
        day += DAY
    return out


# -- measuring -------------------------------------------------------------------------------
@dataclass
class Figure:
    name: str
    runs: int = 0
    ms: list[float] | None = None
    base_ms: list[float] | None = None
    mismatches: int = 0
    note: str = ""


def _pct(values: Sequence[float], q: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, max(0, math.ceil(q * len(s)) - 1))]


def measure(
    name: str,
    runs: int,
    budget_s: float,
    pick: Callable[[random.Random], tuple[Any, ...]],
    query: Callable[..., Any],
    baseline: Callable[..., Any],
    same: Callable[[Any, Any, tuple[Any, ...]], bool],
    conn: Any,
    rng: random.Random,
) -> Figure:
    """Alternate the query and its baseline on the same random arguments."""
    fig = Figure(name, ms=[], base_ms=[])
    assert fig.ms is not None
    assert fig.base_ms is not None
    started = time.perf_counter()
    for i in range(runs):
        args = pick(rng)
        t = time.perf_counter()
        got = query(conn, *args)
        fig.ms.append(1000 * (time.perf_counter() - t))
        t = time.perf_counter()
        want = baseline(conn, *args)
        fig.base_ms.append(1000 * (time.perf_counter() - t))
        if not same(got, want, args):
            fig.mismatches += 1
        fig.runs = i + 1
        if time.perf_counter() - started > budget_s:
            fig.note = f"stopped at the {budget_s:g} s budget"
            break
    return fig


def _curves_equal(a: dict[Any, float], b: dict[Any, float], _: Any) -> bool:
    return a.keys() == b.keys() and all(math.isclose(a[k], b[k], rel_tol=1e-9) for k in a)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sites", type=int, default=100)
    parser.add_argument("--devices", type=int, default=10, help="per site")
    parser.add_argument("--samples", type=int, default=1344, help="per device x metric, 5 min")
    parser.add_argument("--year-days", type=int, default=364, help="rollups before the raw")
    parser.add_argument("--runs", type=int, default=200, help="per query")
    parser.add_argument("--budget", type=float, default=180.0, help="s per query at most")
    parser.add_argument("--limit", type=int, default=500, help="dirty rows per maintenance run")
    parser.add_argument("--seed", type=int, default=14)
    args = parser.parse_args()
    shape = Shape(args.sites, args.devices, args.samples, args.year_days)
    w = window_of(shape, datetime.now(UTC))
    t0 = time.perf_counter()
    print(
        f"{shape.sites} sites x {shape.devices} devices x {len(METRICS)} metrics;"
        f" raw {shape.samples:,} samples each at 5 min = {shape.raw_rows:,} rows"
        f" ({w.raw_start:%Y-%m-%d %H:%M} .. {w.raw_last:%Y-%m-%d %H:%M} UTC);"
        f" a year of rollups from {w.year_start:%Y-%m-%d}",
        flush=True,
    )
    with bench_database() as url:
        migrate(url)
        with psycopg.connect(url, autocommit=True) as conn:
            sites = make_fleet(conn, shape)
            t = time.perf_counter()
            load_raw(url, conn, shape, w, t0)
            log(f"raw load {shape.raw_rows / (time.perf_counter() - t):,.0f} rows/s", t0)
            maint_s = refresh(conn, shape, t0, args.limit)
            load_year(conn, shape, w, t0)
            days_s = load_site_days(conn, sites, w, t0)
            print(
                f"\nMaintenance (RollupRefresher plain, the real path) over the raw window:"
                f" {maint_s:.1f} s for {shape.raw_rows:,} rows"
                f" = {shape.raw_rows / maint_s:,.0f} raw rows/s"
                f" ({1e6 * maint_s / shape.raw_rows:.2f} µs per reading)"
            )
            print(
                f"Site days (refresh_site_days, a year and the raw window of pv_wh):"
                f" {days_s:.1f} s for {len(sites)} sites"
                f" ({1000 * days_s / len(sites):.0f} ms a site-year)"
            )
            sizes(conn, shape.raw_rows)
            figures = run_queries(conn, sites, shape, w, args)
    print_figures(figures)


def run_queries(
    conn: Any, sites: list[Site], shape: Shape, w: Window, args: argparse.Namespace
) -> list[Figure]:
    rng = random.Random(args.seed)
    days = {s.zone.key: full_days(s.zone, w) for s in sites}
    since = w.raw_last - DAY

    def site_day(r: random.Random) -> tuple[Any, ...]:
        site = r.choice(sites)
        return (site, r.choice(days[site.zone.key]))

    def compare_full_days(got: dict[date, int], want: dict[date, int], a: tuple[Any, ...]) -> bool:
        inside = [d for d in days[a[0].zone.key] if d <= a[1]]
        return bool(inside) and all(got.get(d) == want.get(d) for d in inside)

    def page(r: random.Random) -> tuple[Any, ...]:
        return (
            r.randint(1, shape.device_count),
            r.choice(METRICS),
            w,
            r.randint(0, max(0, shape.samples // 1000 - 1)),
        )

    plan = [
        ("site day curve (5 min pv_w, rollup_5m)", site_day, day_curve, day_curve_raw,
         _curves_equal),
        ("site month energy (site_energy day x 30)", site_day, month_energy, month_energy_raw,
         compare_full_days),
        ("site year by month (site_energy month)", site_day, year_months, year_months_sql,
         lambda a, b, _: a == b),
        ("fleet latest pv_w per region (LATERAL)",
         lambda r: (r.choice([x[0] for x in REGIONS]), since), fleet_latest, fleet_latest_raw,
         lambda a, b, _: a == b and len(a) > 0),
        ("device raw page (1,000 rows, cursor)", page, raw_page, raw_page_offset,
         lambda a, b, _: a == b and len(a) > 0),
    ]  # fmt: skip
    figures = []
    for name, pick, query, baseline, same in plan:
        fig = measure(name, args.runs, args.budget, pick, query, baseline, same, conn, rng)
        print(
            f"{name:<44} p50 {_pct(fig.ms or [], 0.5):8.2f} ms  p99 {_pct(fig.ms or [], 0.99):8.2f}"
            f" ms | baseline p50 {_pct(fig.base_ms or [], 0.5):8.2f}  p99"
            f" {_pct(fig.base_ms or [], 0.99):8.2f} ms | {fig.runs} runs,"
            f" {fig.mismatches} answers differ {fig.note}",
            flush=True,
        )
        figures.append(fig)
    return figures


def load_site_days(conn: Any, sites: list[Site], w: Window, t0: float) -> float:
    """Each site's local days of pv_wh over the year and the raw window, as the job keeps
    them (``refresh_site_days``, the job's own function): the year's buckets were bulk
    loaded after the maintenance, which made only the raw window's days. Seconds taken."""
    t = time.perf_counter()
    for n, site in enumerate(sites, 1):
        first = w.year_start.astimezone(site.zone).date()
        last = w.raw_last.astimezone(site.zone).date()
        refresh_site_days(conn, [(site.site_id, PV_WH, first, last)])
        if n % 10 == 0 or n == len(sites):
            log(f"site days: {n}/{len(sites)} sites", t0)
    conn.execute("VACUUM ANALYZE telemetry.energy_site_1d")
    return time.perf_counter() - t


def print_figures(figures: list[Figure]) -> None:
    print("\n| query | p50 ms | p99 ms | baseline p50 ms | baseline p99 ms | runs | equal |")
    print("|---|---:|---:|---:|---:|---:|---|")
    for f in figures:
        ms, base = f.ms or [0.0], f.base_ms or [0.0]
        print(
            f"| {f.name} | {_pct(ms, 0.5):.2f} | {_pct(ms, 0.99):.2f} | {_pct(base, 0.5):.2f}"
            f" | {_pct(base, 0.99):.2f} | {f.runs} |"
            f" {'all' if not f.mismatches else f'{f.mismatches} differ'} |"
        )
    slow = [f.name for f in figures if _pct(f.ms or [0.0], 0.99) >= 100]
    print("target p99 < 100 ms:", "met by every query" if not slow else f"MISSED by {slow}")
    print("mean of medians", statistics.mean(_pct(f.ms or [0.0], 0.5) for f in figures))


if __name__ == "__main__":
    main()
