"""Read-side figures of the ingest service (stored readings per region)."""

from __future__ import annotations

from typing import Any

from cloud.adapters.postgres import Connection, ConnectionPool


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
