"""The read queries behind the API: series of a device (raw samples or rollup buckets,
paged by cursor), the devices of a site, and the newest sample per device and metric.

Every query that names a device, a site or the fleet is filtered in SQL by the caller's
:class:`~cloud.scope.GatewayReach` through ingest's key map (``ingest.device_keys`` ⋈
``ingest.gateways``, which also carries each gateway's site): the store never reads the
registry. The relations and columns are the same on both backends (rollup tables, or
continuous aggregates), so is this SQL.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from cloud.adapters.postgres import Connection
from cloud.scope import GatewayReach, gateway_reach_condition
from cloud.telemetry.models import (
    QUALITY_NAMES,
    LatestValue,
    ReadingBucket,
    ReadingPoint,
    ReadingSeries,
    RollupSeries,
)
from cloud.telemetry.resolution import encode_cursor
from cloud.telemetry.rollups import Level, floor_to
from contracts.metrics import BY_ID, CATALOG, Metric

__all__ = [
    "MAX_SITE_DEVICES",
    "device_in_reach",
    "fleet_latest",
    "series",
    "site_devices",
    "site_in_reach",
    "site_latest",
]

#: Devices a site query answers for (a site has a handful; this only bounds the answer).
MAX_SITE_DEVICES = 64
#: A device id is ingest's key of one (gateway, local id): unique in device_keys (its
#: unique index also walks the fleet in id order), so no DISTINCT is needed.
_REACHED = "ingest.device_keys k JOIN ingest.gateways g USING (gateway_id)"
_IN_REACH = gateway_reach_condition("g.region", "k.gateway_id")
_CATALOG_IDS = [m.id for m in CATALOG]


def device_in_reach(conn: Connection[Any], device_id: int, reach: GatewayReach) -> bool:
    row = conn.execute(
        f"SELECT 1 FROM {_REACHED} WHERE k.device_id = %(device)s AND {_IN_REACH} LIMIT 1",
        {"device": device_id, **reach.sql_params()},
    ).fetchone()
    return row is not None


def site_in_reach(conn: Connection[Any], site_id: int, reach: GatewayReach) -> bool:
    """Whether a gateway of the site is in reach: a site ingest knows no gateway of is
    not there for the store (as a device it never keyed)."""
    row = conn.execute(
        "SELECT 1 FROM ingest.gateways g WHERE g.site_id = %(site)s AND "
        + gateway_reach_condition("g.region", "g.gateway_id")
        + " LIMIT 1",
        {"site": site_id, **reach.sql_params()},
    ).fetchone()
    return row is not None


def site_devices(conn: Connection[Any], site_id: int, reach: GatewayReach) -> list[int]:
    """The site's devices behind gateways in reach, by id (at most MAX_SITE_DEVICES)."""
    rows = conn.execute(
        f"SELECT k.device_id FROM {_REACHED}"
        f" WHERE g.site_id = %(site)s AND {_IN_REACH} ORDER BY 1 LIMIT %(n)s",
        {"site": site_id, "n": MAX_SITE_DEVICES, **reach.sql_params()},
    ).fetchall()
    return [r[0] for r in rows]


def series(
    conn: Connection[Any],
    device_id: int,
    metric: Metric,
    window: tuple[datetime, datetime],
    level: Level | None,
    *,
    limit: int,
    after: datetime | None = None,
) -> ReadingSeries | RollupSeries:
    """One device's samples (``level`` None) with ``from <= ts < to``, or the level's
    buckets overlapping the window, in time order, at most ``limit``, strictly after
    ``after`` (a cursor's instant) when given."""
    start, end = window
    if level is None:
        return _raw(conn, device_id, metric, window, limit, after)
    rows = conn.execute(
        "SELECT bucket, avg, min, max, last, last_ts, count"
        f" FROM {level.relation} WHERE device_id = %s AND metric_id = %s"
        " AND bucket >= %s AND bucket < %s AND bucket > %s ORDER BY bucket LIMIT %s",
        (device_id, metric.id, floor_to(start, level.step), end, _after(after), limit + 1),
    ).fetchall()
    buckets = [
        ReadingBucket(
            bucket=r[0].astimezone(UTC),
            avg=r[1],
            min=r[2],
            max=r[3],
            last=r[4],
            last_ts=r[5].astimezone(UTC),
            count=r[6],
        )
        for r in rows[:limit]
    ]
    more = len(rows) > limit
    return RollupSeries(
        device_id=device_id,
        metric=metric.name,
        unit=metric.unit,
        from_=start,
        to=end,
        resolution=level.name,
        buckets=buckets,
        truncated=more,
        next_cursor=encode_cursor(level, buckets[-1].bucket) if more else None,
    )


def _raw(
    conn: Connection[Any],
    device_id: int,
    metric: Metric,
    window: tuple[datetime, datetime],
    limit: int,
    after: datetime | None,
) -> ReadingSeries:
    start, end = window
    rows = conn.execute(
        "SELECT ts, value, quality FROM telemetry.readings"
        " WHERE device_id = %s AND metric_id = %s AND ts >= %s AND ts < %s AND ts > %s"
        " ORDER BY ts LIMIT %s",
        (device_id, metric.id, start, end, _after(after), limit + 1),
    ).fetchall()
    points = [
        ReadingPoint(ts=ts.astimezone(UTC), value=value, quality=QUALITY_NAMES.get(q, "bad"))
        for ts, value, q in rows[:limit]
    ]
    more = len(rows) > limit
    return ReadingSeries(
        device_id=device_id,
        metric=metric.name,
        unit=metric.unit,
        from_=start,
        to=end,
        points=points,
        truncated=more,
        next_cursor=encode_cursor(None, points[-1].ts) if more else None,
    )


def _after(after: datetime | None) -> datetime:
    # The year 1 for no cursor keeps one statement (and one plan) for every page.
    return after if after is not None else datetime.min.replace(tzinfo=UTC)


# The newest sample per (device, metric): one backward probe of the primary key
# (device_id, metric_id, ts) per pair, through LATERAL ... ORDER BY ts DESC LIMIT 1,
# instead of a DISTINCT ON or max() over every row of the window. `ts >= since` bounds
# the probe to recent partitions (plain) or chunks (timescale): older ones are pruned at
# planning, so a device silent for months costs no scan of its history.
_NEWEST = """
CROSS JOIN LATERAL (
    SELECT r.ts, r.value, r.quality FROM telemetry.readings r
    WHERE r.device_id = d.device_id AND r.metric_id = m.id AND r.ts >= %(since)s
    ORDER BY r.ts DESC LIMIT 1
) l"""


def site_latest(
    conn: Connection[Any],
    site_id: int,
    reach: GatewayReach,
    since: datetime,
    metric_ids: list[int] | None = None,
) -> list[LatestValue]:
    """Per device of the site (in reach) and metric (the catalog's, or ``metric_ids``),
    the newest sample at or after ``since``; pairs without one are left out."""
    rows = conn.execute(
        "WITH d AS (SELECT k.device_id FROM " + _REACHED + " WHERE g.site_id = %(site)s"
        " AND " + _IN_REACH + " ORDER BY 1 LIMIT %(n)s)"
        " SELECT d.device_id, m.id, l.ts, l.value, l.quality"
        " FROM d CROSS JOIN unnest(%(metrics)s::smallint[]) AS m(id)" + _NEWEST + " ORDER BY 1, 2",
        {
            "site": site_id,
            "n": MAX_SITE_DEVICES,
            "metrics": metric_ids if metric_ids is not None else _CATALOG_IDS,
            "since": since,
            **reach.sql_params(),
        },
    ).fetchall()
    return [_latest(*r) for r in rows]


def fleet_latest(
    conn: Connection[Any],
    metric: Metric,
    reach: GatewayReach,
    since: datetime,
    *,
    after: int,
    limit: int,
) -> tuple[list[LatestValue], int | None]:
    """The newest sample of ``metric`` at or after ``since`` per device in reach with id
    above ``after``, by device id, at most ``limit``; and the id to continue after when
    more may follow. Devices without one are skipped (the nested loop stops at
    ``limit`` found)."""
    rows = conn.execute(
        "WITH d AS (SELECT k.device_id FROM " + _REACHED + " WHERE k.device_id > %(after)s"
        " AND " + _IN_REACH + ")"
        " SELECT d.device_id, m.id, l.ts, l.value, l.quality"
        " FROM d CROSS JOIN (SELECT %(metric)s::smallint AS id) m" + _NEWEST + " ORDER BY 1"
        " LIMIT %(n)s",
        {
            "after": after,
            "metric": metric.id,
            "since": since,
            "n": limit + 1,
            **reach.sql_params(),
        },
    ).fetchall()
    values = [_latest(*r) for r in rows[:limit]]
    return values, values[-1].device_id if len(rows) > limit else None


def _latest(device_id: int, metric_id: int, ts: datetime, value: float, q: int) -> LatestValue:
    m = BY_ID[metric_id]
    return LatestValue(
        device_id=device_id,
        metric=m.name,
        unit=m.unit,
        ts=ts.astimezone(UTC),
        value=value,
        quality=QUALITY_NAMES.get(q, "bad"),
    )
