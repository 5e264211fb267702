"""A monthly billing cycle (issue 19) beside the raw ledger SQL of the same sites in the
same run.

    .venv/bin/python -m bench.billing [--sites 100000] [--month 2026-11] [--json FILE]
                                      [--profile FILE] [--series N]

A fresh database (``bench.common.bench_database``) migrated for telemetry, ingest and
billing. ``--sites`` sites, 40 % AU (Sydney, Melbourne, Brisbane, Adelaide: monthly
plan ``au-ppa-tou``), 35 % US (California, New Jersey, Massachusetts, Arizona:
``us-ppa-esc29`` / ``us-ppa-fixed``), 25 % ES (peninsula and Canarias: ``es-ppa-20td`` /
``es-ppa-flat``); contracts started between 2024 and 2026, so the escalators apply.
Each site has a gateway, its system meter (``import_wh`` and ``export_wh``) and, in AU
and ES, a grid meter (``export_wh``), keyed by serial in ``ingest.device_keys``. Their
15-minute buckets in ``telemetry.energy_15m`` are generated in SQL (``INSERT … SELECT``
over ``generate_series``; the primary key rebuilt after the load) for the month, the 10
days before it and a day after: a solar curve in each site's local time, night battery delivery, the
battery charging from the grid after midnight, grid export at midday; one site in 25
has no data on the 14th (24 estimated hours).

Figures:
- cycle: ``BillingService.run_cycle`` for each region in turn (the month), with the
  sites through an in-process ``BillingSites`` (the port; the registry and customers
  are not measured) and the meters through ``cloud.bootstrap.meter_hours`` over the real
  ``MeterHourReader``: invoices per second over the three runs, and the share of the
  wall time spent in PostgreSQL — every ``execute``/``executemany``/``COPY`` and every
  commit and rollback, timed at the psycopg connection (round trip included);
- baseline, same run, after the cycle: per site, in one transaction each as the
  cycle does, one plain query summing the same registers' buckets into hours, the
  billable energy (forward less export, never below 0) and one invoice row at a flat
  price, and the same number of ledger lines written with ``COPY``, into copies of
  ``billing.invoices`` and ``billing.ledger_lines`` (same columns, indexes and the
  ledger's foreign keys): the I/O floor of a cycle with none of the service's rules.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import logging
import random
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import psycopg
from psycopg import sql
from psycopg_pool import ConnectionPool

from bench.common import bench_database
from cloud.billing import BillableSite, BillingService
from cloud.billing.readings import HISTORY_DAYS, local_midnight
from cloud.billing.service import period_of
from cloud.bootstrap import meter_hours, register_edges
from cloud.customers.zones import TARIFF_ZONES
from cloud.migrate import migrate
from cloud.telemetry import MeterHourReader
from contracts.metrics import metric
from contracts.topics import Region

IMPORT_WH, EXPORT_WH = metric("import_wh").id, metric("export_wh").id

#: region: (share, [(IANA zone, tariff zone, plans)])
FLEET: dict[Region, tuple[float, list[tuple[str, str, tuple[str, ...]]]]] = {
    Region.AU: (
        0.40,
        [
            ("Australia/Sydney", "NSW", ("au-ppa-tou",)),
            ("Australia/Melbourne", "VIC", ("au-ppa-tou",)),
            ("Australia/Brisbane", "QLD", ("au-ppa-tou",)),
            ("Australia/Adelaide", "SA", ("au-ppa-tou",)),
        ],
    ),
    Region.US: (
        0.35,
        [
            ("America/Los_Angeles", "CA", ("us-ppa-esc29", "us-ppa-fixed")),
            ("America/New_York", "NJ", ("us-ppa-esc29", "us-ppa-fixed")),
            ("America/New_York", "MA", ("us-ppa-esc29",)),
            ("America/Phoenix", "AZ", ("us-ppa-fixed",)),
        ],
    ),
    Region.ES: (
        0.25,
        [
            ("Europe/Madrid", "peninsula", ("es-ppa-20td", "es-ppa-flat")),
            ("Atlantic/Canary", "canarias", ("es-ppa-20td",)),
        ],
    ),
}
#: One site in this many has no data on the 14th of the month.
GAP_EVERY = 25
LOAD_CHUNK = 500  # sites per INSERT … SELECT of buckets


# -- the sites (the BillingSites port, in process) ----------------------------------------
@dataclass
class FleetSites:
    """The bench's sites, by region and site id: billing's ``BillingSites`` port."""

    by_region: dict[Region, list[BillableSite]] = field(default_factory=dict)
    #: Whose meter series a site reads (``--series``): the site itself unless shared.
    owner: dict[int, int] = field(default_factory=dict)

    def series_of(self, site: BillableSite) -> int:
        return self.owner.get(site.site_id, site.site_id)

    def billable_sites(self, region: Region) -> Sequence[BillableSite]:
        return self.by_region.get(region, [])

    def billable_site(self, region: Region, site_id: int) -> BillableSite | None:
        return next((s for s in self.by_region.get(region, []) if s.site_id == site_id), None)

    def all(self) -> list[BillableSite]:
        return [s for sites in self.by_region.values() for s in sites]


def share_series(fleet: FleetSites, series: int) -> None:
    """Let the sites read ``series`` meter series in all, each region its share: the
    k-th site of a region reads the series of the region's (k mod m)-th site. The
    reader's queries are the same (one device's buckets by its key); what shrinks is the
    data to load, so a fleet larger than the disk holds can be billed."""
    total = sum(len(s) for s in fleet.by_region.values())
    for sites in fleet.by_region.values():
        m = max(1, round(series * len(sites) / total))
        for k, site in enumerate(sites):
            fleet.owner[site.site_id] = sites[k % m].site_id


def make_sites(n: int, seed: int) -> FleetSites:
    rng = random.Random(seed)
    regions = list(FLEET)
    fleet = FleetSites({r: [] for r in regions})
    for site_id in range(1, n + 1):
        region = rng.choices(regions, weights=[FLEET[r][0] for r in regions])[0]
        zone, tariff_zone, plans = rng.choice(FLEET[region][1])
        fleet.by_region[region].append(
            BillableSite(
                region=region,
                site_id=site_id,
                account_id=f"acc_{site_id:032x}",
                plan_code=rng.choice(plans),
                tariff_zone=tariff_zone,
                time_zone=zone,
                contract_start=date(2024, 1, 1) + timedelta(days=rng.randint(0, 1000)),
                billing_meter=f"SYS-{site_id:07d}",
                grid_meter=None if region is Region.US else f"GRID-{site_id:07d}",
            )
        )
    return fleet


# -- SQL time, measured at the connection -------------------------------------------------
@dataclass
class SqlClock:
    """Seconds spent waiting on PostgreSQL, and the statements counted."""

    seconds: float = 0.0
    statements: int = 0
    #: seconds and count per statement (its first 60 characters), "commit" for commits
    by_statement: dict[str, list[float]] = field(default_factory=dict)

    def reset(self) -> None:
        self.seconds, self.statements = 0.0, 0
        self.by_statement.clear()

    def add(self, what: Any, since: float) -> None:
        took = time.perf_counter() - since
        self.seconds += took
        key = (what if isinstance(what, str) else repr(what))[:60]
        entry = self.by_statement.setdefault(key, [0.0, 0])
        entry[0] += took
        entry[1] += 1

    def top(self, n: int = 12) -> list[tuple[str, float, int]]:
        ranked = sorted(self.by_statement.items(), key=lambda kv: -kv[1][0])
        return [(k, v[0], int(v[1])) for k, v in ranked[:n]]


def timed_pool(url: str, clock: SqlClock, *, max_size: int = 4) -> ConnectionPool[Any]:
    """A pool like ``cloud.adapters.postgres.create_pool``'s whose connections add every
    statement's and every commit's wall time to ``clock``."""

    class TimedCursor(psycopg.Cursor[Any]):
        def execute(self, query: Any, *args: Any, **kwargs: Any) -> Any:
            t = time.perf_counter()
            try:
                return super().execute(query, *args, **kwargs)
            finally:
                clock.add(query, t)
                clock.statements += 1

        def executemany(self, query: Any, *args: Any, **kwargs: Any) -> None:
            t = time.perf_counter()
            try:
                super().executemany(query, *args, **kwargs)
            finally:
                clock.add(query, t)
                clock.statements += 1

        @contextmanager
        def copy(self, statement: Any, *args: Any, **kwargs: Any) -> Iterator[Any]:
            t = time.perf_counter()
            try:
                with super().copy(statement, *args, **kwargs) as copy:
                    yield copy
            finally:
                clock.add(statement, t)
                clock.statements += 1

    class TimedConnection(psycopg.Connection[Any]):
        def commit(self) -> None:
            t = time.perf_counter()
            try:
                super().commit()
            finally:
                clock.add("commit", t)

        def rollback(self) -> None:
            t = time.perf_counter()
            try:
                super().rollback()
            finally:
                clock.add("rollback", t)

    def configure(conn: psycopg.Connection[Any]) -> None:
        conn.cursor_factory = TimedCursor

    pool: ConnectionPool[Any] = ConnectionPool(
        url,
        min_size=1,
        max_size=max_size,
        name="bench-billing",
        timeout=30,
        kwargs={"prepare_threshold": 5},
        connection_class=TimedConnection,
        configure=configure,
        check=ConnectionPool.check_connection,
        open=False,
    )
    pool.open(wait=True, timeout=30)
    return pool


# -- the telemetry ------------------------------------------------------------------------
def load_fleet(url: str, fleet: FleetSites, month: date) -> int:
    """Gateways, device keys and every register's 15-minute buckets of the month and the
    10 days before it (history: 7 local days, plus margin for the zones); the count of
    buckets."""
    sites = fleet.all()
    start = datetime.combine(month, datetime.min.time(), UTC) - timedelta(days=HISTORY_DAYS + 3)
    end = datetime.combine(period_of(month, "monthly").last_day, datetime.min.time(), UTC)
    end += timedelta(days=2)
    gap_day = month.replace(day=14)
    with psycopg.connect(url, autocommit=True) as conn:
        with conn.cursor().copy(
            "COPY ingest.gateways (gateway_id, region, time_zone, updated_at, site_id) FROM STDIN"
        ) as copy:
            for s in sites:
                copy.write_row((_gateway(s), s.region.value, s.time_zone, start, s.site_id))
        if fleet.owner:  # shared series: several keys name one device (bench only)
            conn.execute("ALTER TABLE ingest.device_keys DROP CONSTRAINT device_keys_device_id_key")
        with conn.cursor().copy(
            "COPY ingest.device_keys (gateway_id, local_id, device_id) FROM STDIN"
        ) as copy:
            for s in sites:
                o = fleet.series_of(s)
                copy.write_row((_gateway(s), s.billing_meter, 2 * o - 1))
                if s.grid_meter is not None:
                    copy.write_row((_gateway(s), s.grid_meter, 2 * o))
        conn.execute("SELECT setval('ingest.device_key_seq', %s)", (2 * len(sites) + 1,))
        conn.execute(
            "CREATE TEMP TABLE registers (site_id int, device_id int, metric_id smallint,"
            " kind text, zone text, gap_from timestamptz, gap_to timestamptz)"
        )
        with conn.cursor().copy("COPY registers FROM STDIN") as copy:
            for s in sites:
                if fleet.series_of(s) != s.site_id:
                    continue  # it reads another site's series
                gap = s.site_id % GAP_EVERY == 0
                g0 = local_midnight(gap_day, ZoneInfo(s.time_zone)) if gap else None
                g1 = g0 + timedelta(days=1) if g0 is not None else None
                rows = [(2 * s.site_id - 1, IMPORT_WH, "forward")]
                if s.region is not Region.US:
                    rows += [(2 * s.site_id - 1, EXPORT_WH, "reverse")]
                    rows += [(2 * s.site_id, EXPORT_WH, "export")]
                for device, metric_id, kind in rows:
                    copy.write_row((s.site_id, device, metric_id, kind, s.time_zone, g0, g1))
        conn.execute("CREATE INDEX ON registers (site_id)")
        conn.execute("ALTER TABLE telemetry.energy_15m DROP CONSTRAINT energy_15m_pkey")
        t0 = time.perf_counter()
        for first in range(1, len(sites) + 1, LOAD_CHUNK):
            conn.execute(_BUCKETS_SQL, (start, end, first, first + LOAD_CHUNK - 1))
            done = min(first + LOAD_CHUNK - 1, len(sites))
            if done % (LOAD_CHUNK * 10) == 0 or done == len(sites):
                print(f"  buckets of {done:,} sites loaded, {time.perf_counter() - t0:.0f} s")
        print("  rebuilding the primary key ...")
        conn.execute(
            "ALTER TABLE telemetry.energy_15m ADD CONSTRAINT energy_15m_pkey"
            " PRIMARY KEY (device_id, metric_id, bucket)"
        )
        conn.execute("VACUUM ANALYZE telemetry.energy_15m")
        conn.execute("ANALYZE ingest.gateways")
        conn.execute("ANALYZE ingest.device_keys")
        row = conn.execute("SELECT count(*) FROM telemetry.energy_15m").fetchone()
    return int(row[0]) if row else 0


def _gateway(site: BillableSite) -> str:
    return f"gw-{site.site_id:07d}"


# Energy per 15 minutes in mWh, by the local hour h (fractional) of the bucket's middle:
# solar up to ~1.25 kWh a quarter (5 kW) between 6 and 18, night battery 25 Wh a quarter
# from 20 to 6; the battery charging from the grid 12.5 Wh a quarter from 0 to 2; grid
# export up to 0.4 kWh a quarter from 11 to 15. Each site's peak differs (device id).
_BUCKETS_SQL = """
INSERT INTO telemetry.energy_15m (device_id, metric_id, bucket, energy_mwh, samples, covered)
SELECT r.device_id, r.metric_id, b,
       CASE r.kind
         WHEN 'forward' THEN CASE WHEN h.h BETWEEN 6 AND 18
              THEN round((800000 + (r.device_id %% 997) * 450) * sin(pi() * (h.h - 6) / 12))
              WHEN h.h >= 20 OR h.h < 6 THEN 25000 ELSE 0 END
         WHEN 'reverse' THEN CASE WHEN h.h < 2 THEN 12500 ELSE 0 END
         ELSE CASE WHEN h.h BETWEEN 11 AND 15
              THEN round(400000 * sin(pi() * (h.h - 11) / 4)) ELSE 0 END
       END::bigint,
       1, interval '15 minutes'
FROM registers r
CROSS JOIN generate_series(%s::timestamptz, %s::timestamptz - interval '15 minutes',
                           interval '15 minutes') b
CROSS JOIN LATERAL (
    SELECT extract(epoch FROM (b + interval '450 seconds') AT TIME ZONE r.zone
                   - date_trunc('day', (b + interval '450 seconds') AT TIME ZONE r.zone))
           / 3600.0 AS h
) h
WHERE r.site_id BETWEEN %s AND %s
  AND NOT (r.gap_from IS NOT NULL AND b >= r.gap_from AND b < r.gap_to)
"""


# -- the cycle ----------------------------------------------------------------------------
def run_cycle(url: str, fleet: FleetSites, month: date, profile: Path | None) -> dict[str, Any]:
    clock = SqlClock()
    pool = timed_pool(url, clock)
    now = datetime.combine(month, datetime.min.time(), UTC) + timedelta(days=33)
    reader = MeterHourReader(pool)
    service = BillingService(  # as cloud.bootstrap.create_billing_service wires it
        pool,
        sites=fleet,
        meters=meter_hours(reader),
        edges=register_edges(reader),
        zones=TARIFF_ZONES,
        clock=lambda: now,
        progress_every=2000,
    )
    profiler = cProfile.Profile() if profile else None
    out: dict[str, Any] = {"regions": {}}
    try:
        clock.reset()
        t0 = time.perf_counter()
        if profiler:
            profiler.enable()
        for region in fleet.by_region:
            r0, s0 = time.perf_counter(), clock.seconds
            result = service.run_cycle(region, month, run_by="bench")
            out["regions"][region.value] = {
                "sites": len(fleet.by_region[region]),
                "invoices": len(result.numbers),
                "skipped": len(result.skipped),
                "seconds": time.perf_counter() - r0,
                "sql_seconds": clock.seconds - s0,
            }
            reasons = sorted({s.reason for s in result.skipped})[:3]
            print(f"  {region.value}: {out['regions'][region.value]} {reasons}")
        if profiler:
            profiler.disable()
        out["seconds"] = time.perf_counter() - t0
        out["sql_seconds"] = clock.seconds
        out["statements"] = clock.statements
        out["by_statement"] = clock.top()
        out["invoices"] = sum(r["invoices"] for r in out["regions"].values())
    finally:
        pool.close()
    if profiler and profile:
        profiler.dump_stats(str(profile))
    with psycopg.connect(url) as conn:
        row = conn.execute("SELECT count(*) FROM billing.ledger_lines").fetchone()
        out["ledger_lines"] = int(row[0]) if row else 0
    return out


# -- the baseline -------------------------------------------------------------------------
_HOURS_SQL = """
SELECT e.metric_id, e.device_id, date_bin('1 hour', e.bucket, %(origin)s) AS hour,
       sum(e.energy_mwh)::bigint
FROM telemetry.energy_15m e
WHERE e.device_id = ANY(%(devices)s) AND e.metric_id = ANY(%(metrics)s)
  AND e.bucket >= %(since)s AND e.bucket < %(end)s
GROUP BY 1, 2, 3 ORDER BY 3
"""


def run_baseline(
    url: str, fleet: FleetSites, month: date, sample: int | None = None
) -> dict[str, Any]:
    """Plain SQL per site (module docstring) into ``bench_raw``'s copies of the tables;
    with ``sample``, over every k-th site only (a rate per site, so a sample of the same
    sites gives it for a fleet whose full baseline would take as long as its cycle)."""
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("CREATE SCHEMA bench_raw")
        for table in ("invoices", "ledger_lines"):
            conn.execute(
                sql.SQL("CREATE TABLE {} (LIKE {} INCLUDING ALL)").format(
                    sql.Identifier("bench_raw", table), sql.Identifier("billing", table)
                )
            )
        # LIKE copies no foreign keys: the ledger's two, as billing's (a check per row).
        conn.execute(
            "ALTER TABLE bench_raw.ledger_lines"
            " ADD FOREIGN KEY (invoice_id) REFERENCES bench_raw.invoices (id),"
            " ADD FOREIGN KEY (superseded_by) REFERENCES bench_raw.ledger_lines (id)"
            " DEFERRABLE INITIALLY DEFERRED"
        )
    period = period_of(month, "monthly")
    clock = SqlClock()
    pool = timed_pool(url, clock, max_size=1)
    now = datetime.combine(month, datetime.min.time(), UTC) + timedelta(days=33)
    invoices = lines = 0
    try:
        t0 = time.perf_counter()
        every = fleet.all()
        step = max(1, len(every) // sample) if sample else 1
        for no, site in enumerate(every[::step], start=1):
            lines += _raw_site(
                pool, site, period.first_day, period.last_day, now, no, fleet.series_of(site)
            )
            invoices += 1
            if no % 5000 == 0:
                print(f"  baseline: {no:,} sites, {time.perf_counter() - t0:.0f} s")
        seconds = time.perf_counter() - t0
    finally:
        pool.close()
    return {
        "invoices": invoices,
        "ledger_lines": lines,
        "seconds": seconds,
        "sql_seconds": clock.seconds,
        "statements": clock.statements,
        "by_statement": clock.top(),
    }


def _raw_site(
    pool: ConnectionPool[Any],
    site: BillableSite,
    first: date,
    last: date,
    now: datetime,
    no: int,
    series: int,
) -> int:
    zone = ZoneInfo(site.time_zone)
    start, end = local_midnight(first, zone), local_midnight(last + timedelta(days=1), zone)
    since = local_midnight(first - timedelta(days=HISTORY_DAYS), zone)
    devices = [2 * series - 1] + ([2 * series] if site.grid_meter else [])
    with pool.connection() as conn:
        rows = conn.execute(
            _HOURS_SQL,
            {
                "origin": start,
                "devices": devices,
                "metrics": [IMPORT_WH, EXPORT_WH],
                "since": since,
                "end": end,
            },
        ).fetchall()
        forward: dict[datetime, int] = {}
        export: dict[datetime, int] = {}
        reverse: dict[datetime, int] = {}
        for metric_id, device, hour, mwh in rows:
            if metric_id == IMPORT_WH:
                forward[hour] = mwh
            elif device == devices[0]:
                reverse[hour] = mwh
            else:
                export[hour] = mwh
        hours = [start + timedelta(hours=k) for k in range((end - start) // timedelta(hours=1))]
        billable = {h: max(forward.get(h, 0) - export.get(h, 0), 0) for h in hours}
        net = round(sum(billable.values()) * 15 / 100_000_000, 2)  # 0.15 a kWh, 2 decimals
        row = conn.execute(
            "INSERT INTO bench_raw.invoices (number, kind, region, account_id, site_id,"
            " first_day, last_day, plan_code, tariff_zone, time_zone, contract_start,"
            " currency, net, tax, gross, issued_at, issue_date, due_date)"
            " VALUES (%s, 'invoice', %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, 0, %s, %s, %s,"
            " %s) RETURNING id",
            (
                f"{site.region.value.upper()}-{now.year}-{no:07d}",
                site.region.value,
                site.account_id,
                site.site_id,
                first,
                last,
                site.plan_code,
                site.tariff_zone,
                site.time_zone,
                site.contract_start,
                {"au": "AUD", "us": "USD", "es": "EUR"}[site.region.value],
                net,
                net,
                now,
                now.date(),
                now.date() + timedelta(days=14),
            ),
        ).fetchone()
        assert row is not None
        with conn.cursor().copy(
            "COPY bench_raw.ledger_lines (region, site_id, hour_start, hour_end, forward_mwh,"
            " reverse_mwh, export_mwh, pool_used_mwh, billable_mwh, estimated, billing_meter,"
            " billing_device, grid_meter, grid_device, invoice_id) FROM STDIN"
        ) as copy:
            for h in hours:
                copy.write_row(
                    (
                        site.region.value,
                        site.site_id,
                        h,
                        h + timedelta(hours=1),
                        forward.get(h, 0),
                        reverse.get(h, 0),
                        export.get(h, 0),
                        0,
                        billable[h],
                        False,
                        site.billing_meter,
                        devices[0],
                        site.grid_meter,
                        devices[1] if len(devices) > 1 else None,
                        row[0],
                    )
                )
    return len(hours)


# -- main ---------------------------------------------------------------------------------
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sites", type=int, default=100_000)
    parser.add_argument("--month", default="2026-11", help="YYYY-MM, the period billed")
    parser.add_argument("--seed", type=int, default=19)
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--profile", type=Path, default=None, help="cProfile of the cycle")
    parser.add_argument(
        "--series",
        type=int,
        default=None,
        help="meter series in all (default: one per site); fewer lets a fleet larger than"
        " the disk be billed, each series read by several sites",
    )
    parser.add_argument(
        "--baseline-sites",
        type=int,
        default=None,
        help="run the raw baseline over about this many of the sites (every k-th; default all)",
    )
    args = parser.parse_args()
    if isinstance(sys.stdout, io.TextIOWrapper):
        sys.stdout.reconfigure(line_buffering=True)  # progress shows up in a log file too
    logging.basicConfig(level=logging.INFO, format="  %(message)s")
    logging.getLogger("psycopg").setLevel(logging.WARNING)
    logging.getLogger("cloud.migrate").setLevel(logging.WARNING)
    month = date.fromisoformat(f"{args.month}-01")
    fleet = make_sites(args.sites, args.seed)
    if args.series is not None and args.series < args.sites:
        share_series(fleet, args.series)
    out: dict[str, Any] = {"sites": args.sites, "month": args.month, "series": args.series}
    with bench_database() as url:
        migrate(url, backend="plain", schemas={"telemetry", "ingest", "billing"})
        t = time.perf_counter()
        out["buckets"] = load_fleet(url, fleet, month)
        out["load_seconds"] = time.perf_counter() - t
        print(f"{out['buckets']:,} buckets of {args.sites:,} sites in {out['load_seconds']:.0f} s")
        print("billing cycle ...")
        out["cycle"] = run_cycle(url, fleet, month, args.profile)
        print("baseline ...")
        out["baseline"] = run_baseline(url, fleet, month, args.baseline_sites)
    _print(out)
    if args.json:
        args.json.write_text(json.dumps(out, indent=2) + "\n")


def _print(out: dict[str, Any]) -> None:
    cycle, raw = out["cycle"], out["baseline"]
    raw_rate = raw["invoices"] / raw["seconds"]
    rate = cycle["invoices"] / cycle["seconds"]
    print()
    print(f"{out['sites']:,} sites, month {out['month']}, {out['buckets']:,} buckets")
    for label, r, per in (("baseline: raw ledger SQL", raw, raw_rate), ("run_cycle", cycle, rate)):
        share = r["sql_seconds"] / r["seconds"]
        print(
            f"{label:<28} {per:>9,.1f} invoices/s  {per / raw_rate:5.2f}x of baseline"
            f"   {r['seconds']:8.1f} s, SQL {r['sql_seconds']:7.1f} s ({share:.0%}),"
            f" {r['statements']:,} statements, {r['ledger_lines']:,} ledger lines"
        )
    print("the cycle's database time by statement (s, count):")
    for what, seconds, count in cycle["by_statement"]:
        print(f"  {seconds:8.2f} {count:>9,}  {what}")


if __name__ == "__main__":
    main()
