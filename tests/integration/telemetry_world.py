"""The telemetry store on both backends, for its tests: ``plain`` on the real PostgreSQL
server (a private database per module), ``timescale`` on the session's PGlite (reset for
the module: one database, one session, one connection, nothing prepared). Rows go in
through the store's own write path (COPY; multi-row INSERT on PGlite, which has no
``COPY FROM STDIN``) and the maintenance job's refresher catches up."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

import pytest

from cloud.adapters.postgres import Connection, ConnectionPool, create_pool
from cloud.migrate import Backend, migrate
from cloud.telemetry import TelemetryStore
from cloud.telemetry.rollups import RollupRefresher
from cloud.telemetry.settings import WriteMode
from tests.integration.api_world import private_database

Pool = ConnectionPool[Connection[Any]]
Row = tuple[datetime, int, int, float, int]


@dataclass
class Store:
    pool: Pool
    backend: Backend

    @property
    def write_mode(self) -> WriteMode:
        return "copy" if self.backend == "plain" else "unnest"  # PGlite: no COPY FROM STDIN

    def write(self, rows: Sequence[Row], today: date) -> None:
        store = TelemetryStore(self.pool, write_mode=self.write_mode, backend=self.backend)
        store.ensure_partitions({r[0].date() for r in rows}, today=today)
        with self.pool.connection() as conn, conn.transaction():
            store.write_readings(conn, rows)

    def catch_up(self, now: datetime | None = None) -> int:
        with self.pool.connection() as conn:
            return RollupRefresher(self.backend).catch_up(conn, now=now)

    def reset(self) -> None:
        """Every table of the store (and ingest's) empty, the aggregates too."""
        with self.pool.connection() as conn:
            conn.autocommit = True
            conn.execute(
                "TRUNCATE telemetry.readings, telemetry.dirty, telemetry.energy_15m,"
                " telemetry.energy_site_1d, telemetry.meter_swaps, telemetry.site_meter_roles,"
                " telemetry.outbox,"
                " telemetry.inbox, ingest.gateways, ingest.device_keys"
            )
            for level in ("5m", "1h", "1d"):
                if self.backend == "plain":
                    conn.execute(f"TRUNCATE telemetry.rollup_{level}")
                else:  # the whole range refreshed: the aggregates empty again
                    conn.execute(
                        f"CALL refresh_continuous_aggregate('telemetry.rollup_{level}', NULL, NULL)"
                    )
            conn.autocommit = False


def backend_store(
    request: pytest.FixtureRequest, postgres_server_url: str, backend: Backend | None = None
) -> Iterator[Store]:
    """The body of a module-scoped fixture parametrized by backend name (or of one for
    ``backend``)."""
    if (backend or request.param) == "plain":
        with private_database(postgres_server_url) as url:
            yield from _migrated(url, "plain", max_size=2, prepare_threshold=5)
    else:
        pglite = request.getfixturevalue("pglite_server")
        pglite.reset()  # the module owns the one database until the next reset
        yield from _migrated(pglite.url, "timescale", max_size=1, prepare_threshold=None)


def _migrated(url: str, backend: Backend, **pool: Any) -> Iterator[Store]:
    migrate(url, backend=backend, schemas={"telemetry", "ingest"})
    made = create_pool(url, name=f"test-telemetry-{backend}", **pool)
    try:
        yield Store(made, backend)
    finally:
        made.close()


def add_gateway(conn: Connection[Any], gateway: str, site: int, region: str, zone: str) -> None:
    """Ingest's copy of a gateway registered at ``site`` (caller commits)."""
    conn.execute(
        "INSERT INTO ingest.gateways (gateway_id, region, time_zone, updated_at, site_id)"
        " VALUES (%s, %s, %s, now(), %s)",
        (gateway, region, zone, site),
    )


def add_devices(conn: Connection[Any], gateway: str, devices: Mapping[str, int]) -> None:
    """Ingest's keys of ``gateway``'s devices, local id -> device id (caller commits)."""
    conn.cursor().executemany(
        "INSERT INTO ingest.device_keys (gateway_id, local_id, device_id) VALUES (%s, %s, %s)",
        [(gateway, local, device) for local, device in devices.items()],
    )
