"""Telemetry store (plain PostgreSQL backend): partitions, batch writes, reads.

Writes take the caller's connection so ingest can commit readings together with its
stream bookkeeping; reads use the store's own pool.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Iterable, Sequence
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from cloud.adapters.postgres import Connection, ConnectionPool, UniqueViolation, ping, sql
from cloud.migrate import Backend, schema_backend
from cloud.scope import GatewayReach
from cloud.telemetry import queries
from cloud.telemetry.dirty import mark_dirty
from cloud.telemetry.energy_models import PeriodUnit
from cloud.telemetry.energy_store import site_energy
from cloud.telemetry.models import (
    EnergyPoint,
    FleetLatest,
    LatestValue,
    ReadingSeries,
    RollupSeries,
    SiteEnergyOut,
    SiteLatest,
    SiteReadings,
    UnknownMetricError,
)
from cloud.telemetry.rollups import Level
from cloud.telemetry.settings import WriteMode
from cloud.telemetry.site_meters import SiteDevice, is_grid_metric, meter_roles, summed_devices
from contracts.metrics import BY_NAME, CATALOG, Metric

_COLUMNS = "(ts, device_id, metric_id, value, quality)"
_COPY_TYPES = ["timestamptz", "int4", "int2", "float8", "int2"]
#: A row in column order (ts, device_id, metric_id, value, quality): a
#: :class:`ReadingRow` or a plain tuple, which the hot path builds more cheaply.
RowTuple = tuple[datetime, int, int, float, int]
#: Days before today for which a partition may be created (ingest quarantines older
#: readings: ``POTR_INGEST_PARTITION_PAST_DAYS``); days after today, likewise.
PARTITION_PAST_DAYS = 400
PARTITION_FUTURE_DAYS = 2
_PARTITION_LOCK_KEY = 0x706F747270617274
log = logging.getLogger(__name__)


def store_backend(conn: Connection[Any]) -> Backend:
    """The backend the telemetry schema was migrated for."""
    return schema_backend(conn, "telemetry") or "plain"


def partition_name(day: date) -> str:
    return f"readings_{day:%Y%m%d}"


def partition_names(conn: Connection[Any]) -> list[str]:
    """The readings' partitions (the default one included)."""
    rows = conn.execute(
        "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid"
        " WHERE i.inhparent = 'telemetry.readings'::regclass"
    ).fetchall()
    return [r[0] for r in rows]


def partition_days(
    timestamps: Iterable[datetime],
    today: date,
    *,
    past_days: int = PARTITION_PAST_DAYS,
    future_days: int = PARTITION_FUTURE_DAYS,
) -> set[date]:
    """UTC days that deserve their own partition (inside the creation window)."""
    lo = today - timedelta(days=past_days)
    hi = today + timedelta(days=future_days)
    days = {ts.astimezone(UTC).date() for ts in timestamps}
    return {d for d in days if lo <= d <= hi}


class TelemetryStore:
    """Readings in ``telemetry.readings``; ``write_mode`` 'copy' needs server COPY support."""

    def __init__(
        self,
        pool: ConnectionPool[Connection[Any]],
        *,
        write_mode: WriteMode = "copy",
        past_days: int = PARTITION_PAST_DAYS,
        future_days: int = PARTITION_FUTURE_DAYS,
        backend: Backend | None = None,
    ) -> None:
        self._pool = pool
        self._write_mode: WriteMode = write_mode
        #: None until first needed: then read from the schema (``store_backend``).
        self._backend = backend
        self._known_partitions: set[date] = set()
        #: The window partitions may be created in, in days around today (UTC).
        self._past_days = past_days
        self._future_days = future_days

    def ping(self) -> None:
        ping(self._pool)

    @property
    def backend(self) -> Backend:
        if self._backend is None:
            with self._pool.connection() as conn:
                self._backend = store_backend(conn)
        return self._backend

    # -- maintenance -------------------------------------------------------------
    def sync_catalog(self) -> None:
        """Upsert the metric catalog from :mod:`contracts.metrics` (ids never change)."""
        with self._pool.connection() as conn, conn.cursor() as cur:
            cur.executemany(
                "INSERT INTO telemetry.metrics (id, name, unit, kind, description)"
                " VALUES (%s, %s, %s, %s, %s) ON CONFLICT (id) DO UPDATE SET"
                " name = EXCLUDED.name, unit = EXCLUDED.unit, kind = EXCLUDED.kind,"
                " description = EXCLUDED.description",
                [(m.id, m.name, m.unit, m.kind.value, m.description) for m in CATALOG],
            )

    def ensure_partitions(self, days: Iterable[date], *, today: date | None = None) -> list[date]:
        """Create missing day partitions (own short transaction); return those created.

        Never outside the window around ``today`` (default: the UTC date now): a forged
        timestamp must not create tables. Such days are skipped and logged; their rows,
        if written, would land in the default partition.
        """
        if self.backend == "timescale":
            return []  # TimescaleDB makes the chunks itself
        today = today or datetime.now(UTC).date()
        lo = today - timedelta(days=self._past_days)
        hi = today + timedelta(days=self._future_days)
        wanted = set(days)
        outside = sorted(d for d in wanted if not lo <= d <= hi)
        if outside:
            log.warning(
                "no partition for %d day(s) outside %s..%s (first %s)",
                len(outside),
                lo,
                hi,
                outside[0],
            )
        missing = sorted(wanted - set(outside) - self._known_partitions)
        if not missing:
            return []
        created: list[date] = []
        with self._pool.connection() as conn:
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (_PARTITION_LOCK_KEY,))
            existing = set(partition_names(conn))
            for day in missing:
                if partition_name(day) not in existing:
                    start = datetime.combine(day, time(), UTC)
                    conn.execute(
                        sql.SQL(
                            "CREATE TABLE telemetry.{} PARTITION OF telemetry.readings"
                            " FOR VALUES FROM ({}) TO ({}) WITH (fillfactor = 100)"
                        ).format(
                            sql.Identifier(partition_name(day)),
                            sql.Literal(start),
                            sql.Literal(start + timedelta(days=1)),
                        )
                    )
                    created.append(day)
        self._known_partitions.update(missing)
        return created

    def create_ahead(self, today: date) -> list[date]:
        """The maintenance step: partitions for today and the window's days ahead."""
        return self.ensure_partitions(
            (today + timedelta(days=i) for i in range(self._future_days + 1)), today=today
        )

    # -- writes ------------------------------------------------------------------
    def write_readings(self, conn: Connection[Any], rows: Sequence[RowTuple]) -> int:
        """Insert rows in the caller's transaction, ignoring repeats; return rows added.

        The same transaction marks the devices' time ranges dirty for the rollups and
        energy (:mod:`cloud.telemetry.dirty`), so no stored reading escapes them."""
        if not rows:
            return 0
        if self._write_mode == "copy":
            added = self._write_copy(conn, rows)
        else:
            added = self._write_unnest(conn, rows)
        mark_dirty(conn, rows)
        return added

    @classmethod
    def _write_copy(cls, conn: Connection[Any], rows: Sequence[RowTuple]) -> int:
        """Binary ``COPY`` straight into the keyed table under a savepoint; when a row is
        already there (a redelivery, an overlapping backfill), roll back to the savepoint
        and dedupe through a staging table with ``ON CONFLICT DO NOTHING``.

        New rows are the common case and the direct path stores them about twice as fast as
        the staging path (``docs/benchmarks.md``); both leave exactly one row per key.
        """
        try:
            with conn.transaction(), conn.cursor() as cur:
                cls._copy(cur, f"COPY telemetry.readings {_COLUMNS} FROM STDIN", rows)
            return len(rows)
        except UniqueViolation:
            pass
        conn.execute(
            "CREATE TEMP TABLE IF NOT EXISTS readings_stage"
            " (ts timestamptz, device_id int, metric_id smallint, value float8,"
            " quality smallint) ON COMMIT DELETE ROWS"
        )
        with conn.cursor() as cur:
            cls._copy(cur, f"COPY readings_stage {_COLUMNS} FROM STDIN", rows)
            cur.execute(
                f"INSERT INTO telemetry.readings {_COLUMNS}"
                f" SELECT {_COLUMNS[1:-1]} FROM readings_stage ON CONFLICT DO NOTHING"
            )
            added = cur.rowcount
        return max(added, 0)

    @staticmethod
    def _copy(cur: Any, statement: str, rows: Sequence[RowTuple]) -> None:
        with cur.copy(statement + " (FORMAT BINARY)") as copy:
            copy.set_types(_COPY_TYPES)
            write = copy.write_row
            for row in rows:
                write(row)

    @staticmethod
    def _write_unnest(conn: Connection[Any], rows: Sequence[RowTuple]) -> int:
        cur = conn.execute(
            "INSERT INTO telemetry.readings (ts, device_id, metric_id, value, quality)"
            " SELECT * FROM unnest(%s::timestamptz[], %s::int[], %s::smallint[],"
            " %s::float8[], %s::smallint[]) ON CONFLICT DO NOTHING",
            (
                [r[0] for r in rows],
                [r[1] for r in rows],
                [r[2] for r in rows],
                [r[3] for r in rows],
                [r[4] for r in rows],
            ),
        )
        return max(cur.rowcount, 0)


#: Internal callers reach every gateway; the portal's routes pass their caller's reach.
_EVERYWHERE = GatewayReach()


class TelemetryReader:
    """Read side used by the API: series of a device or a site, newest values; every
    query filtered by the caller's reach (:mod:`cloud.telemetry.queries`)."""

    def __init__(self, pool: ConnectionPool[Connection[Any]]) -> None:
        self._pool = pool

    def ping(self) -> None:
        ping(self._pool)

    def device_exists(self, device_id: int, reach: GatewayReach = _EVERYWHERE) -> bool:
        """Whether ingest ever keyed this device behind a gateway in ``reach``: the
        store's own answer, so a device is readable as soon as its first batch commits
        (the registry hears of it a relay round later). A gateway's region is ingest's
        copy of it (``ingest.gateways``)."""
        with self._pool.connection() as conn:
            return queries.device_in_reach(conn, device_id, reach)

    def readings(
        self,
        device_id: int,
        metric: str,
        from_: datetime,
        to: datetime,
        *,
        limit: int = 1000,
        level: Level | None = None,
        after: datetime | None = None,
    ) -> ReadingSeries | RollupSeries:
        """Samples with ``from_ <= ts < to`` (``level`` None) or the level's buckets
        overlapping the window, in time order, at most ``limit``, after ``after``."""
        m = _metric(metric)
        with self._pool.connection() as conn:
            return queries.series(conn, device_id, m, (from_, to), level, limit=limit, after=after)

    def site_readings(
        self,
        site_id: int,
        metric: str,
        window: tuple[datetime, datetime],
        level: Level | None,
        *,
        limit: int,
        reach: GatewayReach = _EVERYWHERE,
    ) -> SiteReadings | None:
        """One series per device of the site in reach (first pages, ``limit`` each);
        None when no gateway of the site is in reach."""
        m = _metric(metric)
        with self._pool.connection() as conn:
            if not queries.site_in_reach(conn, site_id, reach):
                return None
            devices = queries.site_devices(conn, site_id, reach)
            found = [queries.series(conn, d, m, window, level, limit=limit) for d in devices]
        return SiteReadings(
            site_id=site_id,
            metric=m.name,
            unit=m.unit,
            resolution=level.name if level else "raw",
            series=found,
        )

    def site_latest(
        self,
        site_id: int,
        since: datetime,
        *,
        metric: str | None = None,
        reach: GatewayReach = _EVERYWHERE,
        summed: bool = False,
    ) -> SiteLatest | None:
        """The newest sample per device and metric (or of ``metric``) of the site since
        ``since``; None when no gateway of the site is in reach. ``summed``: only the
        devices a site-level figure adds up, per metric (never PoTR's system meter; a
        grid metric from the grid meter: :func:`summed_devices`), so the values of a
        metric sum to the site's."""
        ids = [_metric(metric).id] if metric is not None else None
        with self._pool.connection() as conn:
            if not queries.site_in_reach(conn, site_id, reach):
                return None
            values = queries.site_latest(conn, site_id, reach, since, ids)
            if summed:
                values = _summed_values(conn, site_id, values)
        return SiteLatest(site_id=site_id, since=since, values=values)

    def site_energy(
        self,
        site_id: int,
        metric: str,
        unit: PeriodUnit,
        first_day: date,
        last_day: date,
        *,
        reach: GatewayReach = _EVERYWHERE,
    ) -> SiteEnergyOut | None:
        """The site's energy of Wh counter ``metric`` per local ``unit`` over the local
        days ``first_day`` to ``last_day``; None when no gateway of the site is in reach."""
        m = _metric(metric)
        with self._pool.connection() as conn:
            found = site_energy(conn, site_id, m.id, unit, first_day, last_day, reach=reach)
        if found is None:
            return None
        return SiteEnergyOut(
            site_id=site_id,
            metric=m.name,
            unit=unit,
            time_zone=found.time_zone,
            periods=[
                EnergyPoint(
                    start=f.period.start,
                    end=f.period.end,
                    label=f.period.label,
                    energy_wh=f.energy_wh,
                    samples=f.samples,
                    covered_s=f.covered.total_seconds(),
                    complete=f.complete,
                    flags=sorted(f.flags),
                )
                for f in found.figures
            ],
        )

    def fleet_latest(
        self,
        metric: str,
        since: datetime,
        *,
        after: int = 0,
        limit: int = 100,
        reach: GatewayReach = _EVERYWHERE,
    ) -> FleetLatest:
        """The newest sample of ``metric`` since ``since`` per device in reach, by device
        id above ``after``, ``limit`` devices a page."""
        m = _metric(metric)
        with self._pool.connection() as conn:
            values, next_after = queries.fleet_latest(
                conn, m, reach, since, after=after, limit=limit
            )
        return FleetLatest(
            metric=m.name, unit=m.unit, since=since, values=values, next_after=next_after
        )


def _metric(name: str) -> Metric:
    try:
        return BY_NAME[name]
    except KeyError:
        raise UnknownMetricError(f"unknown metric {name!r}") from None


def _summed_values(
    conn: Connection[Any], site_id: int, values: list[LatestValue]
) -> list[LatestValue]:
    """``values`` (one site's newest samples) of the devices its figures add up."""
    keys = dict(
        conn.execute(
            "SELECT device_id, local_id FROM ingest.device_keys WHERE device_id = ANY(%s)",
            (sorted({v.device_id for v in values}),),
        ).fetchall()
    )
    roles = meter_roles(conn, [site_id])[site_id]
    by_metric: dict[str, set[int]] = defaultdict(set)
    for v in values:
        by_metric[v.metric].add(v.device_id)
    kept = {
        name: set(
            summed_devices(
                [SiteDevice(keys.get(d, ""), d, True) for d in devices],
                roles,
                grid_metric=is_grid_metric(name),
            )
        )
        for name, devices in by_metric.items()
    }
    return [v for v in values if v.device_id in kept[v.metric]]
