"""Completeness arithmetic (pure): one device's local day, up to now, across a DST
change, and the average a region's summary gives."""

from __future__ import annotations

from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

from cloud.ingest.completeness import (
    DayCompleteness,
    average_percent,
    day_completeness,
    site_zone,
)

SYDNEY = ZoneInfo("Australia/Sydney")
#: Sydney leaves daylight saving on 2026-04-05 (03:00 becomes 02:00): a 25-hour day.
LONG_DAY = date(2026, 4, 5)
AFTER = datetime(2026, 5, 1, tzinfo=UTC)


def test_a_day_expects_samples_over_its_real_length() -> None:
    assert day_completeness(date(2026, 4, 6), SYDNEY, 3600, 24, AFTER) == DayCompleteness(
        day=date(2026, 4, 6), expected=24, stored=24, percent=100.0
    )
    assert day_completeness(LONG_DAY, SYDNEY, 3600, 20, AFTER) == DayCompleteness(
        day=LONG_DAY, expected=25, stored=20, percent=80.0
    )


def test_today_expects_samples_only_up_to_now() -> None:
    # 06:00 local (UTC+10 in May) is 20:00 UTC the day before.
    now = datetime(2026, 5, 10, 20, 0, tzinfo=UTC)
    found = day_completeness(date(2026, 5, 11), SYDNEY, 900, 12, now)
    assert (found.expected, found.percent) == (24, 50.0)


def test_more_samples_than_expected_count_as_complete_and_none_expected_is_none() -> None:
    assert day_completeness(date(2026, 4, 6), SYDNEY, 3600, 30, AFTER).percent == 100.0
    assert day_completeness(date(2026, 4, 6), SYDNEY, None, 5, AFTER).percent is None


def test_the_average_leaves_out_days_that_expected_nothing() -> None:
    days = [
        DayCompleteness(day=LONG_DAY, expected=24, stored=12, percent=50.0),
        DayCompleteness(day=LONG_DAY, expected=24, stored=6, percent=25.0),
        DayCompleteness(day=LONG_DAY, expected=0, stored=3, percent=None),
    ]
    assert average_percent(days) == (2, 37.5)
    assert average_percent([]) == (0, None)


def test_an_unknown_zone_reads_as_utc() -> None:
    assert site_zone("Mars/Olympus") == (ZoneInfo("UTC"), "UTC")
    assert site_zone(None) == (ZoneInfo("UTC"), "UTC")
    assert site_zone("Europe/Madrid") == (ZoneInfo("Europe/Madrid"), "Europe/Madrid")
