"""Rollups: 5 min, 1 h and 1 day per device x metric (avg, min, max, last, count), the
same relations and numbers on both backends (ARCHITECTURE decision 46).

``plain``: tables the job recomputes — 5 min from the readings, 1 h from 5 min, 1 day
from 1 h — for whole buckets around each dirty range (:mod:`cloud.telemetry.dirty`),
upserted in one transaction with the dirty rows it consumed. ``timescale``:
continuous aggregates (``schema/002_rollups.timescale.sql``); the job refreshes the same
windows with ``refresh_continuous_aggregate`` (which cannot run in a transaction, so the
rows are deleted after: a crash between costs a second refresh, never a missed one).

The formulas are one list here and in the migration: avg of a coarser bucket is
``sum(avg * count) / sum(count)``, its last the ``last`` of the greatest ``last_ts``.
Readings of quality bad (2) are in no rollup.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from cloud.adapters.postgres import Connection
from cloud.migrate import Backend
from cloud.telemetry.dirty import DirtyRange, mark_ranges, merge_spans
from cloud.telemetry.energy_store import recompute_energy
from contracts.metrics import CATALOG

__all__ = [
    "LEVELS",
    "OPEN_GRACE",
    "Level",
    "RollupRefresher",
    "bucket_windows",
    "floor_to",
    "split_open",
]

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


# Each window's rows are read by a LATERAL subquery: a parameterised index scan of the
# whole key per window, whatever the planner thinks of the windows' sizes (a plain join
# had it hash the day's partition, every run: ARCHITECTURE decision 58).
_FROM_READINGS = """
SELECT r.device_id, r.metric_id, a.*
FROM r CROSS JOIN LATERAL (
    SELECT date_bin(INTERVAL '{width}', x.ts, '2000-01-01 00:00+00'),
           avg(x.value), min(x.value), max(x.value),
           (array_agg(x.value ORDER BY x.ts DESC))[1], max(x.ts), count(*)
    FROM telemetry.readings x
    WHERE x.device_id = r.device_id AND x.metric_id = r.metric_id
      AND x.ts >= r.lo AND x.ts < r.hi AND x.quality < 2
    GROUP BY 1) a"""

_FROM_LEVEL = """
SELECT r.device_id, r.metric_id, a.*
FROM r CROSS JOIN LATERAL (
    SELECT date_bin(INTERVAL '{width}', x.bucket, '2000-01-01 00:00+00'),
           sum(x.avg * x.count) / sum(x.count), min(x.min), max(x.max),
           (array_agg(x.last ORDER BY x.last_ts DESC))[1], max(x.last_ts), sum(x.count)
    FROM {source} x
    WHERE x.device_id = r.device_id AND x.metric_id = r.metric_id
      AND x.bucket >= r.lo AND x.bucket < r.hi
    GROUP BY 1) a"""

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
#: The windows, one row per device window and catalog metric: every join then uses the
#: whole key (device, metric, time). With the device alone the index scan would read
#: every metric's rows of the device in the partition (a day of them for a 5-minute
#: window; its whole history in the 1 h and 1 day tables) to keep the window's.
_RANGES = (
    "WITH r AS (SELECT w.*, m.id AS metric_id FROM unnest(%s::int[], %s::timestamptz[],"
    " %s::timestamptz[]) AS w(device_id, lo, hi) CROSS JOIN unnest(%s::smallint[]) AS m(id))"
)
_METRICS = [m.id for m in CATALOG]


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


#: A 5-minute bucket counts as closed this long after its end: readings a few seconds
#: old at the boundary (the pipeline's latency) still land before it is computed.
OPEN_GRACE = timedelta(seconds=30)
#: The job's statements are many small index probes that the planner costs as one large
#: plan: JIT compilation took longer (≈ 115 ms a statement) than running them.
_NO_JIT = "SET LOCAL jit = off"
#: The last instant before a bucket boundary, for ranges that are inclusive.
_TICK = timedelta(microseconds=1)


@dataclass(frozen=True)
class Noted:
    """A dirty row as the job took it: its range and when the write path noted it."""

    id: int
    range: DirtyRange
    noted_at: datetime


@dataclass(frozen=True)
class Split:
    ready: list[DirtyRange]
    #: Per device, the open buckets' part to note again (one range), with the earliest noted_at of
    #: the rows it came from (so the wait is bounded from the first reading's batch).
    carried: list[tuple[DirtyRange, datetime]]


def split_open(rows: Sequence[Noted], now: datetime, open_wait: timedelta) -> Split:
    """The part of ``rows`` the job computes now, and the part that waits.

    A reading in a 5-minute bucket that is still open (ended less than
    :data:`OPEN_GRACE` ago) waits until the bucket closes, unless its row was noted
    ``open_wait`` or longer before ``now``: at saturation a device's open bucket gets a
    reading every few milliseconds, and recomputing it at every run would read its rows
    again and again (``docs/benchmarks.md``). Late data (any closed bucket) is ready at
    once. ``open_wait`` zero: everything is ready."""
    if not open_wait:
        return Split([r.range for r in rows], [])
    cutoff = floor_to(now - OPEN_GRACE, LEVELS[0].step)
    ready: list[DirtyRange] = []
    waiting: dict[int, list[tuple[datetime, datetime, datetime]]] = defaultdict(list)
    for row in rows:
        r = row.range
        if r.to_ts < cutoff or now - row.noted_at >= open_wait:
            ready.append(r)
            continue
        if r.from_ts < cutoff:
            ready.append(DirtyRange(r.device_id, r.from_ts, cutoff - _TICK))
        waiting[r.device_id].append((max(r.from_ts, cutoff), r.to_ts, row.noted_at))
    # One row a device: its open parts all lie in the buckets from the cutoff on, which
    # are recomputed whole anyway.
    carried = [
        (
            DirtyRange(device, min(p[0] for p in parts), max(p[1] for p in parts)),
            min(p[2] for p in parts),
        )
        for device, parts in sorted(waiting.items())
    ]
    return Split(ready, carried)


@dataclass(frozen=True)
class RefreshReport:
    dirty_rows: int
    #: Per level, the windows recomputed (plain: device windows; timescale: time windows).
    windows: dict[str, int]
    #: Ranges of still-open buckets noted again for a later run.
    carried: int = 0


class RollupRefresher:
    """Consumes dirty ranges and brings the rollups up to date with them, on the
    connection it is given (the maintenance job's, which holds its advisory lock).

    ``open_wait``: how long readings of a still-open 5-minute bucket may wait for it to
    close (:func:`split_open`); zero (the default) computes everything noted."""

    def __init__(self, backend: Backend, *, open_wait: timedelta = timedelta(0)) -> None:
        self._backend = backend
        self._open_wait = open_wait

    def run_once(
        self,
        conn: Connection[Any],
        *,
        limit: int = 5_000,
        now: datetime | None = None,
        up_to_id: int | None = None,
    ) -> RefreshReport:
        """Up to ``limit`` dirty rows (oldest first, ids up to ``up_to_id``): rollups,
        then energy (:func:`~cloud.telemetry.energy_store.recompute_energy`, which
        announces ended days that changed as of ``now``); an empty report when none."""
        now = now or datetime.now(UTC)
        if self._backend == "plain":
            return _plain(conn, limit, now, self._open_wait, up_to_id)
        return _timescale(conn, limit, now, self._open_wait, up_to_id)

    def catch_up(
        self, conn: Connection[Any], *, limit: int = 5_000, now: datetime | None = None
    ) -> int:
        """Run until every row noted before the call is consumed (what waits for its
        bucket to close is noted again, after them); the rows consumed."""
        with conn.transaction():  # no transaction left open: timescale needs autocommit
            row = conn.execute("SELECT max(id) FROM telemetry.dirty").fetchone()
        up_to = row[0] if row else None
        if up_to is None:
            return 0
        total = 0
        while (report := self.run_once(conn, limit=limit, now=now, up_to_id=up_to)).dirty_rows:
            total += report.dirty_rows
        return total


def _plain(
    conn: Connection[Any], limit: int, now: datetime, open_wait: timedelta, up_to: int | None
) -> RefreshReport:
    """Recompute the tables and energy, in one transaction with the rows consumed."""
    with conn.transaction():
        conn.execute(_NO_JIT)
        taken = _take(conn, limit, up_to, lock=True)
        if not taken:
            return RefreshReport(0, {})
        split = split_open(taken, now, open_wait)
        counts: dict[str, int] = {}
        for level in LEVELS:
            windows = bucket_windows(split.ready, level.step)
            counts[level.name] = sum(len(w) for w in windows.values())
            _recompute(conn, level, windows)
        recompute_energy(conn, split.ready, now)
        _consume(conn, taken, split.carried)
    return RefreshReport(len(taken), counts, len(split.carried))


def _timescale(
    conn: Connection[Any], limit: int, now: datetime, open_wait: timedelta, up_to: int | None
) -> RefreshReport:
    """Refresh the continuous aggregates' windows, then delete the rows consumed. The
    connection must be idle: refresh_continuous_aggregate refuses a transaction."""
    autocommit = conn.autocommit
    conn.autocommit = True
    try:
        taken = _take(conn, limit, up_to, lock=False)
        if not taken:
            return RefreshReport(0, {})
        split = split_open(taken, now, open_wait)
        counts: dict[str, int] = {}
        for level in LEVELS:
            windows = _time_windows(split.ready, level.step)
            counts[level.name] = len(windows)
            for lo, hi in windows:
                conn.execute(
                    "CALL refresh_continuous_aggregate(%s::regclass, %s, %s)",
                    (level.relation, lo, hi),
                )
        with conn.transaction():
            conn.execute(_NO_JIT)
            recompute_energy(conn, split.ready, now)
            _consume(conn, taken, split.carried)
    finally:
        conn.autocommit = autocommit
    return RefreshReport(len(taken), counts, len(split.carried))


def _take(conn: Connection[Any], limit: int, up_to: int | None, *, lock: bool) -> list[Noted]:
    """The oldest dirty rows (ids up to ``up_to``). ``lock``: held until the caller's
    transaction ends, skipped by another runner meanwhile."""
    rows = conn.execute(
        "SELECT id, device_id, from_ts, to_ts, noted_at FROM telemetry.dirty"
        " WHERE id <= %s ORDER BY id LIMIT %s" + (" FOR UPDATE SKIP LOCKED" if lock else ""),
        (up_to if up_to is not None else 2**62, limit),
    ).fetchall()
    return [Noted(r[0], DirtyRange(r[1], r[2], r[3]), r[4]) for r in rows]


def _consume(
    conn: Connection[Any], taken: Sequence[Noted], carried: Sequence[tuple[DirtyRange, datetime]]
) -> None:
    """Delete the rows taken and note again what waits, in the caller's transaction: a
    crash between the two is impossible, so no reading escapes."""
    conn.execute("DELETE FROM telemetry.dirty WHERE id = ANY(%s)", ([t.id for t in taken],))
    mark_ranges(conn, [r for r, _ in carried], [noted for _, noted in carried])


def _recompute(
    conn: Connection[Any], level: Level, windows: dict[int, list[tuple[datetime, datetime]]]
) -> None:
    flat = [(device, lo, hi) for device, ws in windows.items() for lo, hi in ws]
    if not flat:
        return
    params = ([f[0] for f in flat], [f[1] for f in flat], [f[2] for f in flat], _METRICS)
    # An upsert, no delete: readings are only ever added (a repeat is ignored), so a
    # recomputed window holds every bucket it held before, and more.
    conn.execute(
        f"{_RANGES} INSERT INTO {level.relation} {_COLUMNS} {level.select}"
        " ON CONFLICT (device_id, metric_id, bucket) DO UPDATE SET avg = EXCLUDED.avg,"
        " min = EXCLUDED.min, max = EXCLUDED.max, last = EXCLUDED.last,"
        " last_ts = EXCLUDED.last_ts, count = EXCLUDED.count",
        params,
    )
