"""Closing local days: one ``device.day_completeness`` per device and local day, once.

A gateway's local day (its site's time zone, from ``ingest.gateways``) is *closed* once
it has ended plus ``grace_s``: late data that arrives within the grace still counts, what
arrives after it is stored but not announced again (the read side,
:class:`cloud.ingest.completeness.CompletenessReader`, always shows the current figure).
Closing computes each device's completeness of the day with
:mod:`cloud.ingest.completeness` — one query counts the samples of every device of a
round — and emits ``device.day_completeness``
(:class:`cloud.events.types.DeviceDayCompleteness`) into ingest's outbox in the
transaction that moves the gateway's watermark (``ingest.days_closed.closed_through``),
under an advisory lock taken with ``try`` (a worker that does not get it skips the
round). The event id is derived from (gateway, device, day) too, so a rerun, a second
worker or a restart never announces a device-day twice.

Which days: those after the local day on which this job first saw the gateway (its first
message, to within one check round), so a new gateway — or every gateway when this job
is first deployed — gets no flood of empty days; from then on every day, so a gateway
that stays silent gets its devices' 0 % days. A revoked (disabled) gateway is not closed
and loses its watermark: re-enabled, it starts afresh rather than reporting the revoked
period as 0 %. A device counts for a day when ingest knew it before the day ended or it
stored samples in that day. At most ``max_days`` per gateway (oldest first) and
``max_gateways`` gateways (the furthest behind first) per round: a catch-up after an
outage takes several rounds, each a bounded transaction.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from cloud.adapters.postgres import Connection, ConnectionPool
from cloud.events.outbox import Event, emit_many
from cloud.events.types import DeviceDayCompleteness, device_day_completeness_event
from cloud.ingest.completeness import (
    day_completeness,
    had_day,
    local_day_bounds,
    site_zone,
    stored_samples,
)

__all__ = [
    "DAY_CLOSE_LOCK_KEY",
    "DayClosing",
    "GatewayDue",
    "GatewayWatermark",
    "close_days",
    "days_to_close",
    "last_closable_day",
    "plan_round",
]

log = logging.getLogger(__name__)
#: Arbitrary, fixed: the advisory lock of the day closing ("potrdayc").
DAY_CLOSE_LOCK_KEY = 0x706F747264617963
SOURCE = "ingest"
#: Gateways closed per round at most; the others wait for the next round.
MAX_GATEWAYS = 200


def last_closable_day(now: datetime, zone: ZoneInfo, grace_s: float) -> date:
    """The newest local day in ``zone`` that ended at least ``grace_s`` before ``now``."""
    return (now - timedelta(seconds=grace_s)).astimezone(zone).date() - timedelta(days=1)


def days_to_close(closed_through: date, last: date, max_days: int) -> list[date]:
    """The days after ``closed_through`` up to ``last``, oldest first, at most ``max_days``."""
    n = min((last - closed_through).days, max_days)
    return [closed_through + timedelta(days=i) for i in range(1, n + 1)]


@dataclass(frozen=True, slots=True)
class GatewayWatermark:
    """An enabled gateway ingest has heard from, and the last local day closed for it
    (None: this job has not seen it yet)."""

    gateway_id: str
    region: str
    site_id: int | None
    time_zone: str | None
    poll_interval_s: float | None
    closed_through: date | None


@dataclass(frozen=True, slots=True)
class GatewayDue:
    """A gateway with local days to close this round."""

    gateway_id: str
    region: str
    site_id: int | None
    zone: ZoneInfo
    time_zone: str
    poll_interval_s: float | None
    days: tuple[date, ...]


def plan_round(
    gateways: Iterable[GatewayWatermark],
    now: datetime,
    *,
    grace_s: float,
    max_days: int,
    max_gateways: int = MAX_GATEWAYS,
) -> tuple[dict[str, date], list[GatewayDue]]:
    """(watermarks of gateways seen for the first time: their local today, never closed;
    the gateways with days to close, furthest behind first, at most ``max_gateways``)."""
    started: dict[str, date] = {}
    due: list[GatewayDue] = []
    for g in gateways:
        zone, name = site_zone(g.time_zone)
        if g.closed_through is None:
            started[g.gateway_id] = now.astimezone(zone).date()
            continue
        days = days_to_close(g.closed_through, last_closable_day(now, zone, grace_s), max_days)
        if days:
            due.append(
                GatewayDue(
                    g.gateway_id, g.region, g.site_id, zone, name, g.poll_interval_s, tuple(days)
                )
            )
    due.sort(key=lambda d: (d.days[0], d.gateway_id))
    return started, due[:max_gateways]


@dataclass(frozen=True, slots=True)
class DayClosing:
    """What one round did: gateways first seen (watermark set), days closed per gateway,
    the events emitted (in outbox order)."""

    started: dict[str, date] = field(default_factory=dict)
    closed: dict[str, tuple[date, ...]] = field(default_factory=dict)
    events: tuple[Event, ...] = ()


def close_days(
    pool: ConnectionPool[Connection[Any]],
    now: datetime,
    *,
    grace_s: float,
    max_days: int = 7,
    max_gateways: int = MAX_GATEWAYS,
) -> DayClosing | None:
    """One round of the day closing at ``now``; None when another worker holds the lock."""
    with pool.connection() as conn:
        row = conn.execute("SELECT pg_try_advisory_xact_lock(%s)", (DAY_CLOSE_LOCK_KEY,)).fetchone()
        if not row or not row[0]:
            return None
        # A revoked gateway starts afresh if it is ever enabled again.
        conn.execute(
            "DELETE FROM ingest.days_closed d USING ingest.gateways g"
            " WHERE g.gateway_id = d.gateway_id AND NOT g.enabled"
        )
        started, due = plan_round(
            _watermarks(conn), now, grace_s=grace_s, max_days=max_days, max_gateways=max_gateways
        )
        events = _device_days(conn, due, now)
        marks = list(started.items())
        marks += [(g.gateway_id, g.days[-1]) for g in due]
        if marks:
            with conn.cursor() as cur:
                cur.executemany(
                    "INSERT INTO ingest.days_closed (gateway_id, closed_through, closed_at)"
                    " VALUES (%s, %s, %s) ON CONFLICT (gateway_id) DO UPDATE SET"
                    " closed_through = EXCLUDED.closed_through, closed_at = EXCLUDED.closed_at",
                    [(gw, day, now) for gw, day in marks],
                )
        emit_many(conn, SOURCE, events)
    for g in due:
        log.info("gateway %s: closed local day(s) %s", g.gateway_id, ", ".join(map(str, g.days)))
    return DayClosing(started, {g.gateway_id: g.days for g in due}, tuple(events))


def _watermarks(conn: Connection[Any]) -> list[GatewayWatermark]:
    return [
        GatewayWatermark(*r)
        for r in conn.execute(
            "SELECT g.gateway_id, g.region, g.site_id, g.time_zone, s.poll_interval_s,"
            " d.closed_through"
            " FROM ingest.sessions s JOIN ingest.gateways g USING (gateway_id)"
            " LEFT JOIN ingest.days_closed d USING (gateway_id)"
            " WHERE g.enabled AND s.last_message_at IS NOT NULL"
        ).fetchall()
    ]


def _device_days(conn: Connection[Any], due: Sequence[GatewayDue], now: datetime) -> list[Event]:
    """One event per device and day of ``due`` (days in order, then devices by local id)."""
    if not due:
        return []
    devices: dict[str, list[tuple[str, int, datetime | None]]] = {}
    for gw, local_id, device_id, first_seen in conn.execute(
        "SELECT gateway_id, local_id, device_id, CASE WHEN isfinite(created_at) THEN created_at END"
        " FROM ingest.device_keys WHERE gateway_id = ANY(%s) ORDER BY gateway_id, local_id",
        ([g.gateway_id for g in due],),
    ).fetchall():
        devices.setdefault(gw, []).append((local_id, device_id, first_seen))
    # One window per device over all its gateway's days: one query counts them all.
    windows: list[tuple[int, str, datetime, datetime]] = []
    for g in due:
        lo, _ = local_day_bounds(g.days[0], g.zone)
        _, hi = local_day_bounds(g.days[-1], g.zone)
        windows += [(d, g.zone.key, lo, hi) for _, d, _ in devices.get(g.gateway_id, [])]
    counts = stored_samples(conn, windows)
    events: list[Event] = []
    for g in due:
        for day in g.days:
            _, end = local_day_bounds(day, g.zone)
            for local_id, device_id, first_seen in devices.get(g.gateway_id, []):
                stored = counts.get((device_id, day), 0)
                if not had_day(first_seen, end, stored):
                    continue
                c = day_completeness(day, g.zone, g.poll_interval_s, stored, now)
                payload = DeviceDayCompleteness(
                    gateway_id=g.gateway_id,
                    device=local_id,
                    site_id=g.site_id,
                    day=day,
                    time_zone=g.time_zone,
                    expected=c.expected,
                    stored=c.stored,
                    percent=c.percent,
                )
                events.append(device_day_completeness_event(payload, g.region, occurred_at=now))
    return events
