"""Completeness % per device and local day: samples stored ÷ samples expected.

A sample is one reading of the device (one timestamp, any number of metrics). Expected
samples come from the poll interval the gateway declared in its latest ``birth``; the
local day is the site's (IANA time zone in ``ingest.gateways``, kept current by the
registry's ``gateway.registered`` / ``gateway.updated`` events; UTC when unknown). A day
is counted from its local midnight to the next one (23 or 25 h across a DST change), and
today only up to now.
Open gaps and ``data_dropped`` events (:class:`contracts.events.DataDropped`: seq ranges,
batches, readings and time span lost at the gateway) explain a shortfall.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, Field

from cloud.adapters.postgres import Connection, ConnectionPool
from cloud.scope import GatewayReach, gateway_reach_condition

MAX_DAYS = 366
#: Internal callers reach every gateway; the portal's route passes its caller's reach.
_EVERYWHERE = GatewayReach()


class DayCompleteness(BaseModel):
    day: date = Field(description="local date in the site's time zone")
    expected: int = Field(description="samples expected from the declared poll interval")
    stored: int = Field(description="distinct sample timestamps stored")
    percent: float | None = Field(description="100 * stored / expected (None: none expected)")


class DeviceCompleteness(BaseModel):
    device_id: int
    gateway_id: str
    time_zone: str
    poll_interval_s: float | None
    days: list[DayCompleteness]


def local_day_bounds(day: date, zone: ZoneInfo) -> tuple[datetime, datetime]:
    """[local midnight, next local midnight) of ``day`` as UTC instants."""
    start = datetime.combine(day, time(), zone).astimezone(UTC)
    end = datetime.combine(day + timedelta(days=1), time(), zone).astimezone(UTC)
    return start, end


def expected_samples(start: datetime, end: datetime, poll_interval_s: float | None) -> int:
    if not poll_interval_s or end <= start:
        return 0
    return int((end - start).total_seconds() // poll_interval_s)


class CompletenessReader:
    """Read side: completeness of one device over local days."""

    def __init__(self, pool: ConnectionPool[Connection[Any]]) -> None:
        self._pool = pool

    def device(
        self,
        device_id: int,
        first: date,
        last: date,
        *,
        now: datetime | None = None,
        reach: GatewayReach = _EVERYWHERE,
    ) -> DeviceCompleteness | None:
        """Days ``first``..``last`` (inclusive, local); None for a device ingest never
        saw, or behind a gateway outside ``reach``."""
        now = now or datetime.now(UTC)
        with self._pool.connection() as conn:
            row = conn.execute(
                "SELECT k.gateway_id, g.time_zone, s.poll_interval_s FROM ingest.device_keys k"
                " LEFT JOIN ingest.sessions s USING (gateway_id)"
                " LEFT JOIN ingest.gateways g USING (gateway_id) WHERE k.device_id = %(device)s"
                " AND " + gateway_reach_condition("g.region", "k.gateway_id"),
                {"device": device_id, **reach.sql_params()},
            ).fetchone()
            if row is None:
                return None
            gateway_id, tz_name, poll = row
            try:
                zone = ZoneInfo(tz_name or "UTC")
            except (ZoneInfoNotFoundError, ValueError):
                zone, tz_name = ZoneInfo("UTC"), "UTC"
            start, _ = local_day_bounds(first, zone)
            _, end = local_day_bounds(last, zone)
            counts = {
                d: int(n)
                for d, n in conn.execute(
                    "SELECT (ts AT TIME ZONE %s)::date, count(DISTINCT ts)"
                    " FROM telemetry.readings WHERE device_id = %s AND ts >= %s AND ts < %s"
                    " GROUP BY 1",
                    (zone.key, device_id, start, min(end, now)),
                ).fetchall()
            }
        days: list[DayCompleteness] = []
        day = first
        while day <= last:
            lo, hi = local_day_bounds(day, zone)
            expected = expected_samples(lo, min(hi, now), poll)
            stored = counts.get(day, 0)
            percent = round(100 * min(stored, expected) / expected, 2) if expected else None
            days.append(DayCompleteness(day=day, expected=expected, stored=stored, percent=percent))
            day += timedelta(days=1)
        return DeviceCompleteness(
            device_id=device_id,
            gateway_id=gateway_id,
            time_zone=tz_name or "UTC",
            poll_interval_s=poll,
            days=days,
        )
