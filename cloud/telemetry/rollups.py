"""Rollups: 5 min, 1 h and 1 day per device x metric (avg, min, max, last, count), the
same relations and numbers on both backends (ARCHITECTURE decision 46).

``plain``: tables the job recomputes — 5 min from the readings, 1 h from 5 min, 1 day
from 1 h — for whole buckets around each dirty range (:mod:`cloud.telemetry.dirty`),
delete-and-insert in one transaction with the dirty rows it consumed. ``timescale``:
continuous aggregates (``schema/002_rollups.timescale.sql``); the job refreshes the same
windows with ``refresh_continuous_aggregate`` (which cannot run in a transaction, so the
rows are deleted after: a crash between costs a second refresh, never a missed one).

The formulas are one list here and in the migration: avg of a coarser bucket is
``sum(avg * count) / sum(count)``, its last the ``last`` of the greatest ``last_ts``.
Readings of quality bad (2) are in no rollup.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from cloud.adapters.postgres import Connection
from cloud.migrate import Backend
from cloud.telemetry.dirty import DirtyRange, merge_spans
from cloud.telemetry.energy_store import recompute_energy

__all__ = ["LEVELS", "Level", "RollupRefresher", "bucket_windows", "floor_to"]

log = logging.getLogger(__name__)

#: Buckets are aligned to this instant (TimescaleDB's time_bucket origin for these widths).
ORIGIN = datetime(2000, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class Level:
    name: str
    step: timedelta
    relation: str
    #: SQL of the level's rows over ``r`` (device_id, lo, hi): from the readings or the
    #: finer level, with the level's own bucket width.
    select: str


_FROM_READINGS = """
SELECT x.device_id, x.metric_id, date_bin(INTERVAL '{width}', x.ts, '2000-01-01 00:00+00'),
       avg(x.value), min(x.value), max(x.value),
       (array_agg(x.value ORDER BY x.ts DESC))[1], max(x.ts), count(*)
FROM r JOIN telemetry.readings x
  ON x.device_id = r.device_id AND x.ts >= r.lo AND x.ts < r.hi
WHERE x.quality < 2
GROUP BY 1, 2, 3"""

_FROM_LEVEL = """
SELECT x.device_id, x.metric_id, date_bin(INTERVAL '{width}', x.bucket, '2000-01-01 00:00+00'),
       sum(x.avg * x.count) / sum(x.count), min(x.min), max(x.max),
       (array_agg(x.last ORDER BY x.last_ts DESC))[1], max(x.last_ts), sum(x.count)
FROM r JOIN {source} x
  ON x.device_id = r.device_id AND x.bucket >= r.lo AND x.bucket < r.hi
GROUP BY 1, 2, 3"""

LEVELS: tuple[Level, ...] = (
    Level(
        "5m",
        timedelta(minutes=5),
        "telemetry.rollup_5m",
        _FROM_READINGS.format(width="5 minutes"),
    ),
    Level(
        "1h",
        timedelta(hours=1),
        "telemetry.rollup_1h",
        _FROM_LEVEL.format(width="1 hour", source="telemetry.rollup_5m"),
    ),
    Level(
        "1d",
        timedelta(days=1),
        "telemetry.rollup_1d",
        _FROM_LEVEL.format(width="1 day", source="telemetry.rollup_1h"),
    ),
)
_COLUMNS = "(device_id, metric_id, bucket, avg, min, max, last, last_ts, count)"
_RANGES = (
    "WITH r AS (SELECT * FROM unnest(%s::int[], %s::timestamptz[], %s::timestamptz[])"
    " AS r(device_id, lo, hi))"
)


def floor_to(ts: datetime, step: timedelta) -> datetime:
    """The start of ``ts``'s bucket of width ``step``."""
    return ts - (ts - ORIGIN) % step


def _whole_buckets(r: DirtyRange, step: timedelta) -> tuple[datetime, datetime]:
    return floor_to(r.from_ts, step), floor_to(r.to_ts, step) + step


def bucket_windows(
    ranges: Iterable[DirtyRange], step: timedelta
) -> dict[int, list[tuple[datetime, datetime]]]:
    """Per device, the whole buckets of ``step`` that ``ranges`` touch, as merged,
    non-overlapping ``[lo, hi)`` windows in time order (so a join over them never counts
    a reading twice)."""
    by_device: dict[int, list[tuple[datetime, datetime]]] = {}
    for r in ranges:
        by_device.setdefault(r.device_id, []).append(_whole_buckets(r, step))
    return {device: merge_spans(windows) for device, windows in by_device.items()}


def _time_windows(ranges: Iterable[DirtyRange], step: timedelta) -> list[tuple[datetime, datetime]]:
    """Whole buckets of ``step`` touched by any device's range, merged across devices (a
    continuous aggregate refreshes a time window for every device at once)."""
    return merge_spans(_whole_buckets(r, step) for r in ranges)


@dataclass(frozen=True)
class RefreshReport:
    dirty_rows: int
    #: Per level, the windows recomputed (plain: device windows; timescale: time windows).
    windows: dict[str, int]


class RollupRefresher:
    """Consumes dirty ranges and brings the rollups up to date with them, on the
    connection it is given (the maintenance job's, which holds its advisory lock)."""

    def __init__(self, backend: Backend) -> None:
        self._backend = backend

    def run_once(
        self, conn: Connection[Any], *, limit: int = 5_000, now: datetime | None = None
    ) -> RefreshReport:
        """Up to ``limit`` dirty rows (oldest first): rollups, then energy
        (:func:`~cloud.telemetry.energy_store.recompute_energy`, which announces ended
        days that changed as of ``now``); an empty report when none."""
        now = now or datetime.now(UTC)
        if self._backend == "plain":
            return _plain(conn, limit, now)
        return _timescale(conn, limit, now)

    def catch_up(
        self, conn: Connection[Any], *, limit: int = 5_000, now: datetime | None = None
    ) -> int:
        """Run until no dirty row is left; the rows consumed."""
        total = 0
        while (report := self.run_once(conn, limit=limit, now=now)).dirty_rows:
            total += report.dirty_rows
        return total


def _plain(conn: Connection[Any], limit: int, now: datetime) -> RefreshReport:
    """Recompute the tables and energy, in one transaction with the rows consumed."""
    with conn.transaction():
        ids, ranges = _take(conn, limit, lock=True)
        if not ids:
            return RefreshReport(0, {})
        counts: dict[str, int] = {}
        for level in LEVELS:
            windows = bucket_windows(ranges, level.step)
            counts[level.name] = sum(len(w) for w in windows.values())
            _recompute(conn, level, windows)
        recompute_energy(conn, ranges, now)
        conn.execute("DELETE FROM telemetry.dirty WHERE id = ANY(%s)", (ids,))
    return RefreshReport(len(ids), counts)


def _timescale(conn: Connection[Any], limit: int, now: datetime) -> RefreshReport:
    """Refresh the continuous aggregates' windows, then delete the rows consumed. The
    connection must be idle: refresh_continuous_aggregate refuses a transaction."""
    autocommit = conn.autocommit
    conn.autocommit = True
    try:
        ids, ranges = _take(conn, limit, lock=False)
        if not ids:
            return RefreshReport(0, {})
        counts: dict[str, int] = {}
        for level in LEVELS:
            windows = _time_windows(ranges, level.step)
            counts[level.name] = len(windows)
            for lo, hi in windows:
                conn.execute(
                    "CALL refresh_continuous_aggregate(%s::regclass, %s, %s)",
                    (level.relation, lo, hi),
                )
        with conn.transaction():
            recompute_energy(conn, ranges, now)
            conn.execute("DELETE FROM telemetry.dirty WHERE id = ANY(%s)", (ids,))
    finally:
        conn.autocommit = autocommit
    return RefreshReport(len(ids), counts)


def _take(conn: Connection[Any], limit: int, *, lock: bool) -> tuple[list[int], list[DirtyRange]]:
    """The oldest dirty rows. ``lock``: held until the caller's transaction ends, skipped
    by another runner meanwhile."""
    rows = conn.execute(
        "SELECT id, device_id, from_ts, to_ts FROM telemetry.dirty ORDER BY id LIMIT %s"
        + (" FOR UPDATE SKIP LOCKED" if lock else ""),
        (limit,),
    ).fetchall()
    return [r[0] for r in rows], [DirtyRange(r[1], r[2], r[3]) for r in rows]


def _recompute(
    conn: Connection[Any], level: Level, windows: dict[int, list[tuple[datetime, datetime]]]
) -> None:
    flat = [(device, lo, hi) for device, ws in windows.items() for lo, hi in ws]
    if not flat:
        return
    params = ([f[0] for f in flat], [f[1] for f in flat], [f[2] for f in flat])
    conn.execute(
        f"{_RANGES} DELETE FROM {level.relation} t USING r"
        " WHERE t.device_id = r.device_id AND t.bucket >= r.lo AND t.bucket < r.hi",
        params,
    )
    conn.execute(f"{_RANGES} INSERT INTO {level.relation} {_COLUMNS} {level.select}", params)
