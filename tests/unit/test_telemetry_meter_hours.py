"""A meter's hours from its 15-minute buckets, and which device a serial names: pure
rules, figures worked out by hand."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from cloud.telemetry.energy_models import BaseBucket, EnergyFlag
from cloud.telemetry.meter_hours import MAX_HOURS, hour_count, hour_figures
from cloud.telemetry.site_meters import (
    DeviceMatch,
    FoundDevice,
    SiteDevice,
    device_by_serial,
    is_position_key,
)

T = datetime(2026, 7, 1, 14, 0, tzinfo=UTC)
Q = timedelta(minutes=15)
H = timedelta(hours=1)
GAP = frozenset({EnergyFlag.GAP})


def _bucket(start: datetime, mwh: int, samples: int, covered: timedelta, gap: bool) -> BaseBucket:
    return BaseBucket(
        start=start,
        energy_mwh=mwh,
        samples=samples,
        covered=covered,
        flags=GAP if gap else frozenset(),
    )


def test_an_hour_sums_its_four_buckets() -> None:
    buckets = [_bucket(T + k * Q, 1_000 * (k + 1), 3, Q, gap=False) for k in range(5)]
    [hour] = hour_figures(buckets, T, T + H, device_id=7)
    assert (hour.energy_mwh, hour.covered, hour.complete) == (10_000, H, True)  # 1+2+3+4 Wh
    assert (hour.start, hour.end, hour.device_id) == (T, T + H, 7)


def test_a_gap_pair_landing_at_night_is_zero_not_no_data() -> None:
    # The gap pair's later sample closes the first bucket: the meter did not move.
    landed = _bucket(T, 0, 1, timedelta(0), gap=True)
    passed_over = [_bucket(T - k * Q, 0, 0, timedelta(0), gap=True) for k in range(1, 5)]
    before, after = hour_figures([landed, *passed_over], T - H, T + H, device_id=7)
    assert (before.energy_mwh, before.flags) == (None, GAP)
    assert (after.energy_mwh, after.flags, after.complete) == (0, GAP, False)


def test_a_counters_first_sample_is_no_data_for_its_hour() -> None:
    first = _bucket(T + 3 * Q, 0, 1, timedelta(0), gap=False)  # holds the first sample only
    [hour] = hour_figures([first], T, T + H, device_id=7)
    assert (hour.energy_mwh, hour.flags) == (None, frozenset())


def test_hours_start_where_the_range_does_adelaides_on_the_half_hour() -> None:
    adelaide = ZoneInfo("Australia/Adelaide")
    start = datetime(2026, 7, 2, 9, 0, tzinfo=adelaide)  # +09:30: 23:30Z
    buckets = [_bucket(start.astimezone(UTC) + k * Q, 250, 1, Q, gap=False) for k in range(8)]
    hours = hour_figures(buckets, start, start + 2 * H, device_id=7)
    assert [h.start.astimezone(adelaide).hour for h in hours] == [9, 10]
    assert [h.start.minute for h in hours] == [30, 30]
    assert [h.energy_mwh for h in hours] == [1_000, 1_000]


@pytest.mark.parametrize(
    ("start", "end", "why"),
    [
        (T.replace(tzinfo=None), T + H, "aware"),
        (T + timedelta(minutes=5), T + timedelta(minutes=65), "15-minute"),
        (T, T + H + Q, "whole hours"),
        (T, T, "whole hours"),
        (T + H, T, "whole hours"),
        (T, T + (MAX_HOURS + 1) * H, "at most"),
    ],
)
def test_a_range_not_of_whole_hours_on_bucket_boundaries_is_refused(
    start: datetime, end: datetime, why: str
) -> None:
    with pytest.raises(ValueError, match=why):
        hour_count(start, end)


def test_a_serial_names_its_own_device_else_the_one_meter_kept_by_position() -> None:
    system = SiteDevice("SYS-0001", 5, has_register=True)
    inverter = SiteDevice("INV-0001", 11, has_register=False)
    by_position = SiteDevice("rs485-u2", 7, has_register=True)
    assert device_by_serial([system, by_position], "SYS-0001") == FoundDevice(DeviceMatch.SERIAL, 5)
    assert device_by_serial([system, by_position], "GRID-1") == FoundDevice(DeviceMatch.POSITION, 7)
    # Another serial's device is another meter, whatever registers it has.
    assert device_by_serial([system, inverter], "GRID-1") == FoundDevice(DeviceMatch.NONE)
    two = [by_position, SiteDevice("site-u4", 9, has_register=True)]
    assert device_by_serial(two, "GRID-1") == FoundDevice(DeviceMatch.AMBIGUOUS)
    silent = SiteDevice("site-u4", 9, has_register=False)  # no such register: not a candidate
    assert device_by_serial([by_position, silent], "GRID-1").device_id == 7


@pytest.mark.parametrize(
    ("local_id", "by_position"),
    [("rs485-u2", True), ("site.a:1-u247", True), ("SYS-0001", False), ("INV-u", False)],
)
def test_the_agents_position_keys_are_told_from_serials(local_id: str, by_position: bool) -> None:
    assert is_position_key(local_id) is by_position
