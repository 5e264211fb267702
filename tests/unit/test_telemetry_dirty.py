"""The write path's dirty ranges (``cloud.telemetry.dirty``): per device and UTC day the
first and last reading time, whatever the rows' order and however many metrics share a
reading's timestamp."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from cloud.telemetry.dirty import DirtyRange, dirty_ranges
from cloud.telemetry.rollups import Noted, split_open

T = datetime(2026, 12, 1, 23, 50, tzinfo=UTC)


def test_per_device_and_utc_day_the_first_and_last_time() -> None:
    later = T + timedelta(minutes=20)  # 00:10 the next UTC day
    rows = [
        (T + timedelta(minutes=5), 7, 1, 1.0, 0),
        (T + timedelta(minutes=5), 7, 2, 1.0, 0),  # same reading, another metric
        (T, 7, 1, 1.0, 0),  # earlier, arriving later
        (later, 7, 1, 1.0, 0),
        (T + timedelta(minutes=9), 3, 1, 1.0, 0),
    ]
    assert dirty_ranges(rows) == [
        DirtyRange(3, T + timedelta(minutes=9), T + timedelta(minutes=9)),
        DirtyRange(7, T, T + timedelta(minutes=5)),
        DirtyRange(7, later, later),
    ]


def test_a_readings_metrics_sharing_one_timestamp_object_count_once_and_right() -> None:
    stamp = T
    rows = [(stamp, 5, m, 0.0, 0) for m in range(16)]
    rows += [(stamp + timedelta(seconds=5), 5, m, 0.0, 0) for m in range(16)]
    rows += [(stamp, 6, 1, 0.0, 0)]  # the same object, another device
    assert dirty_ranges(rows) == [
        DirtyRange(5, stamp, stamp + timedelta(seconds=5)),
        DirtyRange(6, stamp, stamp),
    ]


# -- what the job computes now and what waits for its bucket to close ---------------------

NOW = datetime(2026, 12, 1, 12, 7, 40, tzinfo=UTC)
CUTOFF = datetime(2026, 12, 1, 12, 5, tzinfo=UTC)  # 12:07:10 floored to 5 min
WAIT = timedelta(minutes=5)


def _noted(i: int, device: int, lo: datetime, hi: datetime, noted: datetime) -> Noted:
    return Noted(i, DirtyRange(device, lo, hi), noted)


def test_closed_buckets_are_ready_open_ones_wait_merged_per_device() -> None:
    fresh = NOW - timedelta(seconds=10)
    rows = [
        _noted(1, 1, NOW - timedelta(days=7), NOW - timedelta(days=7), fresh),  # late data
        _noted(2, 2, CUTOFF - timedelta(minutes=1), CUTOFF + timedelta(minutes=1), fresh),
        _noted(3, 2, CUTOFF + timedelta(seconds=90), NOW, fresh - timedelta(seconds=20)),
        _noted(4, 3, CUTOFF + timedelta(seconds=1), CUTOFF + timedelta(seconds=2), fresh),
    ]
    split = split_open(rows, NOW, WAIT)
    tick = timedelta(microseconds=1)
    assert split.ready == [
        rows[0].range,
        DirtyRange(2, CUTOFF - timedelta(minutes=1), CUTOFF - tick),  # the closed part
    ]
    assert split.carried == [
        # Device 2's open parts joined; noted as early as the earliest of them.
        (DirtyRange(2, CUTOFF, NOW), fresh - timedelta(seconds=20)),
        (DirtyRange(3, CUTOFF + timedelta(seconds=1), CUTOFF + timedelta(seconds=2)), fresh),
    ]


def test_an_open_bucket_waits_at_most_the_wait_and_zero_means_no_wait() -> None:
    long_ago = NOW - WAIT
    rows = [_noted(1, 1, NOW, NOW, long_ago), _noted(2, 2, NOW, NOW, NOW)]
    assert split_open(rows, NOW, WAIT).ready == [rows[0].range]
    no_wait = split_open(rows, NOW, timedelta(0))
    assert no_wait.ready == [r.range for r in rows]
    assert no_wait.carried == []


def test_the_grace_keeps_a_just_ended_bucket_open() -> None:
    # 12:05:20: the 12:00 bucket ended 20 s ago, less than the grace: it still waits.
    now = CUTOFF + timedelta(seconds=20)
    row = _noted(1, 1, CUTOFF - timedelta(seconds=3), CUTOFF - timedelta(seconds=3), now)
    assert split_open([row], now, WAIT).ready == []
    assert split_open([row], CUTOFF + timedelta(seconds=30), WAIT).ready == [row.range]
