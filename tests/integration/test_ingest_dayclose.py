"""Closing a local day on real PostgreSQL: readings of two devices of a Sydney gateway go
through the real pipeline; the day closing, run with its clock moved past local midnight
plus the grace, puts one ``device.day_completeness`` per device in ingest's outbox with
the hand-counted figures — and a rerun puts nothing more."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from cloud.adapters.postgres import Connection, ConnectionPool, create_pool
from cloud.ingest.dayclose import close_days
from cloud.ingest.pipeline import IngestPipeline
from contracts.timeutil import to_wire, utc_now
from tests.integration.test_cloud_ingest import GW, _query, registry
from tests.integration.test_ingest_scale import _message, pipeline

pytestmark = pytest.mark.integration
__all__ = ["pipeline", "registry"]  # fixtures used here

SYDNEY = ZoneInfo("Australia/Sydney")
#: Every 6 hours: a 24-hour day expects 4 samples.
POLL_S = 6 * 3600.0
GRACE_S = 3600.0


@pytest.fixture
def pool(database_url: str) -> Iterator[ConnectionPool[Connection[Any]]]:
    p = create_pool(database_url, max_size=2, name="test-dayclose")
    yield p
    p.close()


def _plain_day() -> date:
    """A recent past Sydney day of 24 hours (no DST change: same UTC offset at both
    midnights), so 4 samples of 6 hours are expected."""
    day = utc_now().astimezone(SYDNEY).date() - timedelta(days=3)
    while SYDNEY.utcoffset(_midnight(day)) != SYDNEY.utcoffset(_midnight(day + timedelta(days=1))):
        day -= timedelta(days=1)
    return day


def _midnight(day: date) -> datetime:
    return datetime(day.year, day.month, day.day)


def _local(day: date, hour: int, minute: int = 0) -> datetime:
    return datetime(day.year, day.month, day.day, hour, minute, tzinfo=SYDNEY).astimezone(UTC)


def _birth(stream: uuid.UUID) -> dict[str, Any]:
    return {
        "v": 1,
        "gateway_id": GW,
        "region": "au",
        "agent_version": "test",
        "stream_id": str(stream),
        "boot_id": "boot-1",
        "poll_interval_s": POLL_S,
        "publish_interval_s": 300,
        "devices": [
            {"device": d, "endpoint": "e", "unit_id": u, "models": [1, 103], "status": "online"}
            for u, d in enumerate(("SN-A", "SN-B"), start=1)
        ],
        "ts": to_wire(utc_now()),
    }


def _telemetry(stream: uuid.UUID, seq: int, readings: list[tuple[str, datetime]]) -> dict[str, Any]:
    return {
        "v": 1,
        "stream_id": str(stream),
        "seq": seq,
        "readings": [
            {"device": d, "ts": to_wire(ts), "values": {"pv_w": 1.0, "pv_hz": 50.0}}
            for d, ts in readings
        ],
    }


def _day_events(database_url: str) -> list[dict[str, Any]]:
    rows = _query(
        database_url,
        "SELECT payload FROM ingest.outbox WHERE name = 'device.day_completeness' ORDER BY id",
    )
    return [r[0] for r in rows]


def test_a_closed_local_day_announces_each_device_once_with_its_completeness(
    pipeline: IngestPipeline, pool: ConnectionPool[Connection[Any]], database_url: str
) -> None:
    day = _plain_day()
    after = day + timedelta(days=1)
    stream = uuid.uuid4()
    pipeline.process([_message("birth", _birth(stream))])
    # SN-A: 00:00, 06:00 and 12:00 (18:00 missing) -> 3 of 4; SN-B: 06:00 only, twice
    # (a repeat is one sample) -> 1 of 4. The minute before and the midnight after the
    # day belong to the neighbouring days.
    pipeline.process(
        [
            _message(
                "telemetry",
                _telemetry(
                    stream,
                    1,
                    [
                        ("SN-A", _local(day - timedelta(days=1), 23, 59)),
                        ("SN-A", _local(day, 0)),
                        ("SN-A", _local(day, 6)),
                        ("SN-B", _local(day, 6)),
                    ],
                ),
            ),
            _message(
                "telemetry",
                _telemetry(
                    stream,
                    2,
                    [
                        ("SN-A", _local(day, 12)),
                        ("SN-B", _local(day, 6)),
                        ("SN-B", _local(after, 0)),
                    ],
                ),
            ),
        ]
    )
    [(site_id,)] = _query(database_url, "SELECT site_id FROM ingest.gateways")

    # The day before: the job first sees the gateway; that day is its first, never closed.
    first = close_days(pool, _local(day - timedelta(days=1), 12), grace_s=GRACE_S)
    assert first is not None
    assert (first.started, first.closed, first.events) == ({GW: day - timedelta(days=1)}, {}, ())

    # Midnight plus the grace, less a second: the day is still open for late data.
    end = _local(after, 0)
    early = close_days(pool, end + timedelta(seconds=GRACE_S - 1), grace_s=GRACE_S)
    assert early is not None
    assert early.events == ()

    closing = end + timedelta(seconds=GRACE_S)
    closed = close_days(pool, closing, grace_s=GRACE_S)
    assert closed is not None
    assert closed.closed == {GW: (day,)}
    common = {
        "gateway_id": GW,
        "site_id": site_id,
        "day": day.isoformat(),
        "time_zone": "Australia/Sydney",
        "expected": 4,
    }
    assert _day_events(database_url) == [
        common | {"device": "SN-A", "stored": 3, "percent": 75.0},
        common | {"device": "SN-B", "stored": 1, "percent": 25.0},
    ]
    [(occurred_at, region, source)] = _query(
        database_url,
        "SELECT DISTINCT occurred_at, region, source FROM ingest.outbox"
        " WHERE name = 'device.day_completeness'",
    )
    assert (occurred_at, region, source) == (closing, "au", "ingest")

    # Rerun at the same time, and a moment later (the next day not over): nothing more.
    again = close_days(pool, closing, grace_s=GRACE_S)
    later = close_days(pool, closing + timedelta(hours=1), grace_s=GRACE_S)
    assert again is not None
    assert later is not None
    assert (again.events, later.events) == ((), ())
    assert len(_day_events(database_url)) == 2
    assert _query(database_url, "SELECT gateway_id, closed_through FROM ingest.days_closed") == [
        (GW, day)
    ]
