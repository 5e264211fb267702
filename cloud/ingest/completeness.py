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

from collections.abc import Iterable, Sequence
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, NamedTuple
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, Field

from cloud.adapters.postgres import Connection, ConnectionPool
from cloud.scope import GatewayReach, gateway_reach_condition
from contracts.topics import Region

MAX_DAYS = 366
#: Devices a region's summary reads at most (see :meth:`CompletenessReader.region_yesterday`).
REGION_SAMPLE = 2_000
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


class RegionCompleteness(BaseModel):
    """Yesterday's completeness across a region's devices: each device's last whole
    local day (in its site's time zone), averaged over the devices that expected
    samples that day."""

    region: str
    days: list[date] = Field(
        description="the local dates summarised (one, unless the region's zones straddle midnight)"
    )
    devices: int = Field(description="devices in the region (within the caller's reach)")
    device_days: int = Field(description="device-days averaged: those that expected samples")
    average_percent: float | None = Field(description="mean of their percents (None: none)")
    sampled: bool = Field(description="true when only a sample of the region's devices was read")


def local_day_bounds(day: date, zone: ZoneInfo) -> tuple[datetime, datetime]:
    """[local midnight, next local midnight) of ``day`` as UTC instants."""
    start = datetime.combine(day, time(), zone).astimezone(UTC)
    end = datetime.combine(day + timedelta(days=1), time(), zone).astimezone(UTC)
    return start, end


def expected_samples(start: datetime, end: datetime, poll_interval_s: float | None) -> int:
    if not poll_interval_s or end <= start:
        return 0
    return int((end - start).total_seconds() // poll_interval_s)


def day_completeness(
    day: date, zone: ZoneInfo, poll_interval_s: float | None, stored: int, now: datetime
) -> DayCompleteness:
    """One local day of one device: expected up to ``now`` at most, stored capped at it."""
    lo, hi = local_day_bounds(day, zone)
    expected = expected_samples(lo, min(hi, now), poll_interval_s)
    percent = round(100 * min(stored, expected) / expected, 2) if expected else None
    return DayCompleteness(day=day, expected=expected, stored=stored, percent=percent)


def had_day(first_seen: datetime | None, day_end: datetime, stored: int = 0) -> bool:
    """Whether a device had the local day ending at ``day_end``: ingest knew it before
    then (None: a key from before that was recorded), or it stored samples in it (a
    backlog a new device uploads later)."""
    return first_seen is None or first_seen < day_end or stored > 0


def average_percent(days: Iterable[DayCompleteness]) -> tuple[int, float | None]:
    """(device-days that expected samples, the mean of their percents rounded to 0.01)."""
    percents = [d.percent for d in days if d.percent is not None]
    if not percents:
        return 0, None
    return len(percents), round(sum(percents) / len(percents), 2)


def site_zone(name: str | None) -> tuple[ZoneInfo, str]:
    """The zone named (UTC when unknown or not in the zone database) and its name."""
    try:
        return ZoneInfo(name or "UTC"), name or "UTC"
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC"), "UTC"


#: Devices ingest knows: key, gateway, its site's time zone, the declared poll interval and
#: when ingest first saw the device (NULL for keys from before that was recorded); callers
#: add conditions on ``k`` (``device_keys``) and ``g`` (``gateways``).
_DEVICE_COLUMNS = (
    "k.device_id, k.gateway_id, g.time_zone, s.poll_interval_s,"
    " CASE WHEN isfinite(k.created_at) THEN k.created_at END"
)
_DEVICES_FROM = (
    " FROM ingest.device_keys k"
    " LEFT JOIN ingest.sessions s USING (gateway_id)"
    " LEFT JOIN ingest.gateways g USING (gateway_id)"
)


class _DeviceDay(NamedTuple):
    device_id: int
    zone: ZoneInfo
    day: date
    start: datetime
    end: datetime
    poll_interval_s: float | None


def stored_samples(
    conn: Connection[Any], windows: Sequence[tuple[int, str, datetime, datetime]]
) -> dict[tuple[int, date], int]:
    """Distinct sample timestamps per (device, local date) within each
    (device, zone, from, to) window."""
    if not windows:
        return {}
    devices, zones, lows, highs = (list(c) for c in zip(*windows, strict=True))
    rows = conn.execute(
        "SELECT w.device_id, (r.ts AT TIME ZONE w.zone)::date, count(DISTINCT r.ts)"
        " FROM unnest(%s::int[], %s::text[], %s::timestamptz[], %s::timestamptz[])"
        " AS w(device_id, zone, lo, hi)"
        " JOIN telemetry.readings r ON r.device_id = w.device_id AND r.ts >= w.lo AND r.ts < w.hi"
        " GROUP BY 1, 2",
        (devices, zones, lows, highs),
    ).fetchall()
    return {(int(dev), d): int(n) for dev, d, n in rows}


def _yesterday(
    device_id: int, tz_name: str | None, poll: float | None, now: datetime
) -> _DeviceDay:
    """The device's local day before ``now``'s, with its bounds."""
    zone, _ = site_zone(tz_name)
    day = now.astimezone(zone).date() - timedelta(days=1)
    return _DeviceDay(device_id, zone, day, *local_day_bounds(day, zone), poll)


class CompletenessReader:
    """Read side: completeness of one device over local days, or of a region's devices
    yesterday."""

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
                f"SELECT {_DEVICE_COLUMNS}{_DEVICES_FROM} WHERE k.device_id = %(device)s AND "
                + gateway_reach_condition("g.region", "k.gateway_id"),
                {"device": device_id, **reach.sql_params()},
            ).fetchone()
            if row is None:
                return None
            _, gateway_id, tz_name, poll, _ = row
            zone, tz_name = site_zone(tz_name)
            start, _ = local_day_bounds(first, zone)
            _, end = local_day_bounds(last, zone)
            counts = stored_samples(conn, [(device_id, zone.key, start, min(end, now))])
        days: list[DayCompleteness] = []
        day = first
        while day <= last:
            days.append(day_completeness(day, zone, poll, counts.get((device_id, day), 0), now))
            day += timedelta(days=1)
        return DeviceCompleteness(
            device_id=device_id,
            gateway_id=gateway_id,
            time_zone=tz_name,
            poll_interval_s=poll,
            days=days,
        )

    def region_yesterday(
        self,
        region: Region,
        *,
        now: datetime | None = None,
        reach: GatewayReach = _EVERYWHERE,
        sample: int = REGION_SAMPLE,
    ) -> RegionCompleteness:
        """Each device's previous local day, for the devices of ``region``'s enabled
        gateways within ``reach`` (none outside it).

        Counting a day of raw readings costs per device, so a region of more than
        ``sample`` devices is estimated from ``sample`` of them, picked by a hash of
        the device key (the same ones every time: the figure moves with the data, not
        the draw). ``ValueError`` for a ``sample`` below 1."""
        if sample < 1:
            raise ValueError(f"sample: {sample} is below 1")
        now = now or datetime.now(UTC)
        with self._pool.connection() as conn:
            rows = conn.execute(
                f"SELECT count(*) OVER (), {_DEVICE_COLUMNS}{_DEVICES_FROM}"
                " WHERE g.region = %(region)s AND g.enabled AND "
                + gateway_reach_condition("g.region", "k.gateway_id")
                + " ORDER BY hashint4(k.device_id), k.device_id LIMIT %(sample)s",
                {"region": region.value, "sample": sample, **reach.sql_params()},
            ).fetchall()
            wanted = [
                day
                for day, first_seen in ((_yesterday(r[1], r[3], r[4], now), r[5]) for r in rows)
                # A device first seen after that day had no such day.
                if had_day(first_seen, day.end)
            ]
            counts = stored_samples(
                conn, [(w.device_id, w.zone.key, w.start, w.end) for w in wanted]
            )
        days = [
            day_completeness(
                w.day, w.zone, w.poll_interval_s, counts.get((w.device_id, w.day), 0), now
            )
            for w in wanted
        ]
        counted, average = average_percent(days)
        total = int(rows[0][0]) if rows else 0
        return RegionCompleteness(
            region=region.value,
            days=sorted({d.day for d in days}),
            devices=total,
            device_days=counted,
            average_percent=average,
            sampled=total > len(rows),
        )
