"""Closing local days (pure): day bounds across DST, when a day may be closed, which days
a round closes, and the event a device-day becomes. Expected figures are worked out by
hand from the zones' published DST rules."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from cloud.events.types import (
    DEVICE_DAY_COMPLETENESS,
    DeviceDayCompleteness,
    device_day_completeness_event,
)
from cloud.ingest.completeness import expected_samples, local_day_bounds
from cloud.ingest.dayclose import (
    GatewayWatermark,
    days_to_close,
    last_closable_day,
    plan_round,
)

SYDNEY = ZoneInfo("Australia/Sydney")
MADRID = ZoneInfo("Europe/Madrid")
HOUR = timedelta(hours=1)


def _utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


@pytest.mark.parametrize(
    ("day", "zone", "start", "end", "expected_5min"),
    [
        # Sydney: DST starts 2025-10-05 02:00 -> 03:00 (UTC+10 -> +11): 23 h.
        (date(2025, 10, 5), SYDNEY, _utc(2025, 10, 4, 14), _utc(2025, 10, 5, 13), 276),
        # Sydney: DST ends 2026-04-05 03:00 -> 02:00 (UTC+11 -> +10): 25 h.
        (date(2026, 4, 5), SYDNEY, _utc(2026, 4, 4, 13), _utc(2026, 4, 5, 14), 300),
        # Madrid: summer time starts 2026-03-29 02:00 -> 03:00 (UTC+1 -> +2): 23 h.
        (date(2026, 3, 29), MADRID, _utc(2026, 3, 28, 23), _utc(2026, 3, 29, 22), 276),
        # Madrid: summer time ends 2026-10-25 03:00 -> 02:00 (UTC+2 -> +1): 25 h.
        (date(2026, 10, 25), MADRID, _utc(2026, 10, 24, 22), _utc(2026, 10, 25, 23), 300),
        # An ordinary Madrid day: 24 h.
        (date(2026, 6, 1), MADRID, _utc(2026, 5, 31, 22), _utc(2026, 6, 1, 22), 288),
    ],
)
def test_a_local_day_spans_its_real_length_across_dst(
    day: date, zone: ZoneInfo, start: datetime, end: datetime, expected_5min: int
) -> None:
    assert local_day_bounds(day, zone) == (start, end)
    assert expected_samples(start, end, 300) == expected_5min


def test_a_day_is_closable_once_it_ended_plus_the_grace() -> None:
    # Madrid's 23-hour 2026-03-29 ends at 22:00 UTC; with a 1 h grace, at 23:00 UTC.
    assert last_closable_day(_utc(2026, 3, 29, 23) - timedelta(seconds=1), MADRID, 3600) == date(
        2026, 3, 28
    )
    assert last_closable_day(_utc(2026, 3, 29, 23), MADRID, 3600) == date(2026, 3, 29)
    # Sydney's 25-hour 2026-04-05 ends at 14:00 UTC; no grace.
    assert last_closable_day(_utc(2026, 4, 5, 14) - HOUR, SYDNEY, 0) == date(2026, 4, 4)
    assert last_closable_day(_utc(2026, 4, 5, 14), SYDNEY, 0) == date(2026, 4, 5)


def test_days_to_close_follow_the_watermark_oldest_first_and_bounded() -> None:
    through = date(2026, 3, 1)
    assert days_to_close(through, through, 7) == []
    assert days_to_close(through, date(2026, 3, 3), 7) == [date(2026, 3, 2), date(2026, 3, 3)]
    assert days_to_close(through, date(2026, 3, 31), 3) == [
        date(2026, 3, 2),
        date(2026, 3, 3),
        date(2026, 3, 4),
    ]


def _mark(gateway_id: str, tz: str | None, through: date | None) -> GatewayWatermark:
    return GatewayWatermark(gateway_id, "au", 7, tz, 300.0, through)


def test_a_round_starts_new_gateways_and_closes_the_furthest_behind_first() -> None:
    # 2026-06-10 15:00 UTC: Sydney (UTC+10) is at 01:00 on the 11th, Madrid (UTC+2) at
    # 17:00 on the 10th.
    now = _utc(2026, 6, 10, 15)
    started, due = plan_round(
        [
            _mark("gw-new", "Australia/Sydney", None),
            _mark("gw-syd", "Australia/Sydney", date(2026, 6, 8)),
            _mark("gw-mad", "Europe/Madrid", date(2026, 6, 8)),
            _mark("gw-mars", "Mars/Olympus", date(2026, 6, 1)),
        ],
        now,
        grace_s=0,
        max_days=7,
        max_gateways=2,
    )
    # First seen: its local today is never closed.
    assert started == {"gw-new": date(2026, 6, 11)}
    # An unknown zone reads as UTC (10th, 15:00: the 9th is the last ended day); it is
    # the furthest behind, so it comes first, with 7 of its 8 days. Madrid and Sydney
    # are both due from the 9th (Sydney's 10th ended too); ties go by id and only two
    # gateways fit: Sydney waits for the next round.
    assert [(d.gateway_id, d.time_zone, d.days) for d in due] == [
        ("gw-mars", "UTC", tuple(date(2026, 6, n) for n in range(2, 9))),
        ("gw-mad", "Europe/Madrid", (date(2026, 6, 9),)),
    ]
    _, everyone = plan_round(
        [_mark("gw-syd", "Australia/Sydney", date(2026, 6, 8))], now, grace_s=0, max_days=7
    )
    assert [d.days for d in everyone] == [(date(2026, 6, 9), date(2026, 6, 10))]


def test_a_device_day_event_is_one_per_gateway_device_and_day() -> None:
    payload = DeviceDayCompleteness(
        gateway_id="gw-1",
        device="SN-1",
        site_id=7,
        day=date(2026, 4, 5),
        time_zone="Australia/Sydney",
        expected=300,
        stored=225,
        percent=75.0,
    )
    at = _utc(2026, 4, 5, 15)
    event = device_day_completeness_event(payload, "au", occurred_at=at)
    again = device_day_completeness_event(payload, "au", occurred_at=at + HOUR)
    other = device_day_completeness_event(
        payload.model_copy(update={"device": "SN-2"}), "au", occurred_at=at
    )
    assert event.name == DEVICE_DAY_COMPLETENESS
    assert (event.source, event.routing_key) == ("ingest", "au.ingest.device.day_completeness")
    assert event.id == again.id != other.id
    assert event.payload["day"] == "2026-04-05"
    assert DeviceDayCompleteness.model_validate(event.payload) == payload
