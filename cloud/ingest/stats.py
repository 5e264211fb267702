"""Read-side figures of the ingest service: stored readings per region (the demo's
progress line) and a region's ingest health (the staff's fleet screen).

Readings keep no receipt time (a column on the hottest table, paid by every write), so
"readings in the last hour" counts readings *timestamped* in it: a backfill after an
outage shows under its own hours, not now. When ingest last stored anything is what
``ingest.device_last_seen.received_at`` says (written with every batch's readings).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from pydantic import BaseModel, Field

from cloud.adapters.postgres import Connection, ConnectionPool
from cloud.ingest.deadletters import source_sql
from cloud.scope import GatewayReach, gateway_reach_condition
from contracts.topics import Region

__all__ = ["IngestHealth", "ingest_health", "stored_readings_by_region"]

RECENT = timedelta(minutes=5)
HOUR = timedelta(hours=1)


class IngestHealth(BaseModel):
    """How a region's ingest is doing at ``at``, within the caller's reach."""

    region: str
    at: datetime = Field(description="when the figures were read")
    readings_last_5m: int = Field(description="readings timestamped in the 5 min up to `at`")
    readings_last_hour: int = Field(description="readings timestamped in the hour up to `at`")
    dead_letters_last_hour: int = Field(
        description="distinct refused messages (topic + payload) received in the last hour,"
        " first or again, from the region's gateway topics"
    )
    newest_reading_at: datetime | None = Field(description="the newest reading's timestamp")
    newest_reading_age_s: float | None = Field(
        description="seconds from it to `at` (0 for a reading stamped ahead of `at`)"
    )
    last_stored_at: datetime | None = Field(
        description="when ingest last stored a batch with readings"
    )


def stored_readings_by_region(pool: ConnectionPool[Connection[Any]]) -> dict[str, int]:
    """Stored readings (one per device, metric and timestamp) per gateway region."""
    with pool.connection() as conn:
        rows = conn.execute(
            "SELECT s.region, count(*) FROM telemetry.readings r"
            " JOIN ingest.device_keys k ON k.device_id = r.device_id"
            " JOIN ingest.sessions s ON s.gateway_id = k.gateway_id"
            " GROUP BY s.region"
        ).fetchall()
    return {str(region): int(n) for region, n in rows}


def ingest_health(
    conn: Connection[Any], region: Region, reach: GatewayReach, now: datetime
) -> IngestHealth:
    """``region``'s figures at ``now`` for the gateways in ``reach`` (all zero and None
    outside it)."""
    params = {
        "region": region.value,
        "now": now,
        "recent": now - RECENT,
        "hour": now - HOUR,
        **reach.sql_params(),
    }
    in_reach = "g.region = %(region)s AND " + gateway_reach_condition("g.region", "g.gateway_id")
    recent, hour = _one(
        conn,
        "SELECT count(*) FILTER (WHERE r.ts >= %(recent)s), count(*)"
        " FROM telemetry.readings r JOIN ingest.device_keys k ON k.device_id = r.device_id"
        " JOIN ingest.gateways g ON g.gateway_id = k.gateway_id"
        f" WHERE r.ts >= %(hour)s AND r.ts <= %(now)s AND {in_reach}",
        params,
    )
    newest, stored = _one(
        conn,
        "SELECT max(l.last_ts), max(l.received_at) FROM ingest.device_last_seen l"
        f" JOIN ingest.gateways g ON g.gateway_id = l.gateway_id WHERE {in_reach}",
        params,
    )
    dl_region, dl_gateway = source_sql("d.topic")
    (dead,) = _one(
        conn,
        "SELECT count(*) FROM ingest.dead_letters d WHERE d.last_received_at >= %(hour)s"
        f" AND {dl_region} = %(region)s AND {gateway_reach_condition(dl_region, dl_gateway)}",
        params,
    )
    return IngestHealth(
        region=region.value,
        at=now,
        readings_last_5m=recent,
        readings_last_hour=hour,
        dead_letters_last_hour=dead,
        newest_reading_at=newest,
        newest_reading_age_s=max(0.0, (now - newest).total_seconds()) if newest else None,
        last_stored_at=stored,
    )


def _one(conn: Connection[Any], query: str, params: dict[str, Any]) -> tuple[Any, ...]:
    row = conn.execute(query, params).fetchone()
    assert row is not None, "an aggregate returns one row"
    return tuple(row)
