"""Which level answers a reading query, and the page cursor: hand-counted windows."""

from __future__ import annotations

import base64
import re
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cloud.telemetry.resolution import (
    CURSOR_PATTERN,
    CursorError,
    bucket_count,
    choose_level,
    decode_cursor,
    encode_cursor,
    level_named,
)

DAY = datetime(2026, 3, 1, tzinfo=UTC)
WEEK = (DAY, DAY + timedelta(days=7))


def _name(level: object) -> str:
    return getattr(level, "name", "raw")


def test_bucket_count_counts_every_bucket_the_window_touches() -> None:
    hour = timedelta(hours=1)
    assert bucket_count(DAY, DAY + hour, hour) == 1  # exactly one bucket, end excluded
    assert bucket_count(DAY, DAY + hour + timedelta(microseconds=1), hour) == 2
    # 00:30 to 02:10 touches the buckets of 00:00, 01:00 and 02:00.
    assert bucket_count(DAY + hour / 2, DAY + 2 * hour + timedelta(minutes=10), hour) == 3
    assert bucket_count(*WEEK, timedelta(days=1)) == 7
    assert bucket_count(*WEEK, timedelta(minutes=5)) == 7 * 288


@pytest.mark.parametrize(
    ("points", "level"),
    [
        (1, "1d"),
        (7, "1d"),  # a week has 7 days: enough
        (8, "1h"),  # 7 are too few; a week has 168 hours
        (168, "1h"),
        (169, "5m"),  # 2016 five-minute buckets
        (2016, "5m"),
        (2017, "raw"),  # even 5 min buckets are too few: the samples
    ],
)
def test_auto_picks_the_coarsest_level_with_enough_points(points: int, level: str) -> None:
    assert _name(choose_level("auto", *WEEK, points)) == level


def test_an_explicit_resolution_is_kept_whatever_the_points() -> None:
    for name in ("raw", "5m", "1h", "1d"):
        assert _name(choose_level(name, *WEEK, 5000)) == name
    assert level_named("raw") is None


def test_a_cursor_round_trips_its_instant_to_the_microsecond() -> None:
    at = datetime(2026, 3, 1, 2, 0, 0, 123456, tzinfo=UTC)
    for level in (None, level_named("5m"), level_named("1d")):
        assert decode_cursor(encode_cursor(level, at), level) == at


@given(st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2099, 12, 31)))
def test_every_cursor_matches_the_pattern_and_decodes(at: datetime) -> None:
    at = at.replace(tzinfo=UTC)
    cursor = encode_cursor(level_named("1h"), at)
    assert re.fullmatch(CURSOR_PATTERN, cursor)
    assert decode_cursor(cursor, level_named("1h")) == at


def _b64(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).rstrip(b"=").decode()


@pytest.mark.parametrize(
    "garbage",
    [
        "x",  # not base64 of anything
        "AAAA",  # base64 of NULs
        _b64("raw"),  # no instant
        _b64("raw:"),
        _b64("raw:1_000"),  # what int() takes but we never write
        _b64("raw: 12"),
        _b64("2h:1000"),  # no such level
        _b64("raw:99999999999999999999999"),  # beyond any datetime
        "//8",  # not UTF-8
    ],
)
def test_garbage_is_not_a_cursor(garbage: str) -> None:
    with pytest.raises(CursorError):
        decode_cursor(garbage, None)


def test_a_cursor_of_another_resolution_is_refused() -> None:
    cursor = encode_cursor(level_named("1h"), DAY)
    with pytest.raises(CursorError, match="1h"):
        decode_cursor(cursor, None)
    with pytest.raises(CursorError):
        decode_cursor(cursor, level_named("5m"))
