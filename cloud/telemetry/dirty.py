"""Dirty ranges: what the write path stored, for the rollups and energy to catch up on.

Every batch the store writes also records, in the same transaction, per device and UTC
day the first and last reading time it carried (``telemetry.dirty``). The maintenance
job (:mod:`cloud.telemetry.rollups`) takes rows in id order, recomputes what they cover
and deletes them in its own transaction: a reading committed is always covered by a
dirty row until its rollups are, whatever crashes in between, and late data (a gateway
back after a week) is covered the same way as live data. Per day, not per batch, so a
batch mixing live and week-old readings of one device does not make the job recompute
the days between them.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any, NamedTuple

from cloud.adapters.postgres import Connection

__all__ = ["DirtyRange", "dirty_ranges", "mark_dirty", "mark_ranges", "merge_spans"]


class DirtyRange(NamedTuple):
    device_id: int
    from_ts: datetime
    to_ts: datetime


def dirty_ranges(rows: Iterable[Sequence[Any]]) -> list[DirtyRange]:
    """Per device and UTC day of ``rows`` (``(ts, device_id, ...)`` tuples, ``ts`` in
    UTC), the first and last time; in (device, time) order.

    On the ingest hot path: a reading's metrics come as consecutive rows sharing one
    ``ts`` object, so a row like the one before is skipped by identity, and the day is
    the date's ordinal (no epoch arithmetic)."""
    spans: dict[tuple[int, int], list[datetime]] = {}
    last_ts: object = None
    last_device: object = None
    for row in rows:
        ts, device = row[0], row[1]
        if ts is last_ts and device == last_device:
            continue
        last_ts, last_device = ts, device
        key = (device, ts.toordinal())
        span = spans.get(key)
        if span is None:
            spans[key] = [ts, ts]
        elif ts < span[0]:
            span[0] = ts
        elif ts > span[1]:
            span[1] = ts
    return [DirtyRange(dev, lo, hi) for (dev, _), (lo, hi) in sorted(spans.items())]


def mark_dirty(conn: Connection[Any], rows: Sequence[Sequence[Any]]) -> int:
    """Record ``rows``' dirty ranges in the caller's transaction; the number recorded."""
    ranges = dirty_ranges(rows)
    mark_ranges(conn, ranges)
    return len(ranges)


def mark_ranges(
    conn: Connection[Any],
    ranges: Sequence[DirtyRange],
    noted_at: Sequence[datetime] | None = None,
) -> None:
    """Record ``ranges`` as they are, in the caller's transaction (a change that is no
    batch of readings: a recorded meter swap; what the job notes again for a later run,
    with when each was first noted). ``noted_at`` None: now."""
    if ranges:
        conn.execute(
            "INSERT INTO telemetry.dirty (device_id, from_ts, to_ts, noted_at)"
            " SELECT d, f, t, coalesce(n, now()) FROM unnest(%s::int[], %s::timestamptz[],"
            " %s::timestamptz[], %s::timestamptz[]) AS u(d, f, t, n)",
            (
                [r.device_id for r in ranges],
                [r.from_ts for r in ranges],
                [r.to_ts for r in ranges],
                list(noted_at) if noted_at is not None else [None] * len(ranges),
            ),
        )


def merge_spans(spans: Iterable[tuple[datetime, datetime]]) -> list[tuple[datetime, datetime]]:
    """Overlapping or touching ``(lo, hi)`` spans joined, in time order."""
    merged: list[tuple[datetime, datetime]] = []
    for lo, hi in sorted(spans):
        if merged and lo <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(hi, merged[-1][1]))
        else:
            merged.append((lo, hi))
    return merged
