"""The write path's dirty ranges (``cloud.telemetry.dirty``): per device and UTC day the
first and last reading time, whatever the rows' order and however many metrics share a
reading's timestamp."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from cloud.telemetry.dirty import DirtyRange, dirty_ranges

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
