"""Billable sites with real meter data, for the tests of cycles started from the portal
(REST, pages, the browser): written through the services (registry, customers) and the
telemetry store's own write path, then the refresher's energy buckets — the pieces a
cycle reads in production (see test_billing_cycle.py for the whole month).

A **metered** US site (plan ``us-ppa-esc29``, California, no grid meter: production is
billed) whose contract starts on ``start``: its system meter's forward register
(``import_wh``) rises by ``wh_per_hour`` every local hour from ``start``'s local midnight
for ``hours`` hours (15-minute samples, a quarter each). A **silent** US site whose meter
never reported: a cycle skips it, naming the meter.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from cloud.adapters.postgres import Connection, ConnectionPool
from cloud.bootstrap import link_site
from cloud.customers import AccountIn, CustomersService, InstallationIn
from cloud.registry import RegistryService, SiteIn
from cloud.telemetry import TelemetryStore
from cloud.telemetry.rollups import RollupRefresher
from contracts.metrics import metric
from contracts.topics import Region
from tests.integration.telemetry_world import add_devices, add_gateway

__all__ = ["LOS_ANGELES", "MeteredSite", "bucketed_mwh", "seed_metered_site", "seed_silent_site"]

Pool = ConnectionPool[Connection[Any]]
LOS_ANGELES = "America/Los_Angeles"
IMPORT_WH = metric("import_wh").id
Q = timedelta(minutes=15)


@dataclass(frozen=True)
class MeteredSite:
    site_id: int
    account_id: str
    serial: str
    device_id: int


def _site(pool: Pool, name: str, serial: str, installed_on: date) -> tuple[int, str]:
    registry, customers = RegistryService(pool), CustomersService(pool)
    site = registry.add_site(SiteIn(name=name, region=Region.US, time_zone=LOS_ANGELES))
    account = customers.add_account(
        Region.US, AccountIn(name=name, email="bills@example.com", plan_code="us-ppa-esc29")
    )
    link_site(registry, customers, site.id, account.id)
    record = {
        "pv_kwp": "6.6", "tilt_deg": "20", "azimuth_deg": "0", "battery_kwh": "0",
        "network_operator": "Grid Co", "tariff_zone": "CA",
        "installed_on": installed_on.isoformat(), "warranty_until": "2035-06-01",
        "billing_meter": serial, "grid_meter": None,
    }  # fmt: skip
    customers.put_installation(Region.US, site.id, InstallationIn.model_validate(record))
    return site.id, account.id


def seed_silent_site(pool: Pool, installed_on: date) -> tuple[int, str]:
    """A billable US site whose meter (its serial, returned) never reported."""
    serial = f"SYS-SILENT-{uuid.uuid4().hex[:6].upper()}"
    site_id, _ = _site(pool, f"silent {serial}", serial, installed_on)
    return site_id, serial


def seed_metered_site(
    pool: Pool, start: date, hours: int, wh_per_hour: int, device_id: int
) -> MeteredSite:
    """A billable US site with ``hours`` hours of its meter from ``start`` (local), its
    energy buckets refreshed. ``device_id``: unused by any other device of the database."""
    serial = f"SYS-US-{uuid.uuid4().hex[:6].upper()}"
    site_id, account = _site(pool, f"metered {serial}", serial, start)
    gateway = f"gw-bill-{uuid.uuid4().hex[:8]}"
    with pool.connection() as conn:
        add_gateway(conn, gateway, site_id, Region.US.value, LOS_ANGELES)
        add_devices(conn, gateway, {serial: device_id})
    first = datetime.combine(start, time(), ZoneInfo(LOS_ANGELES)).astimezone(UTC)
    rows = [
        (first + k * Q, device_id, IMPORT_WH, 5_000.0 + wh_per_hour / 4 * k, 0)
        for k in range(4 * hours + 1)
    ]
    backend = _backend(pool)
    store = TelemetryStore(
        pool, write_mode="copy" if backend == "plain" else "unnest", backend=backend
    )
    store.ensure_partitions({r[0].date() for r in rows}, today=start + timedelta(days=2))
    with pool.connection() as conn, conn.transaction():
        store.write_readings(conn, rows)
    with pool.connection() as conn:
        RollupRefresher(backend).catch_up(conn)
    return MeteredSite(site_id, account, serial, device_id)


def bucketed_mwh(pool: Pool, device_id: int) -> int:
    """The energy the refresher has put in the device's 15-minute buckets so far (mWh)."""
    with pool.connection() as conn:
        row = conn.execute(
            "SELECT coalesce(sum(energy_mwh), 0) FROM telemetry.energy_15m WHERE device_id = %s",
            (device_id,),
        ).fetchone()
    assert row is not None
    return int(row[0])


def _backend(pool: Pool) -> Any:
    with pool.connection() as conn:
        found = conn.execute("SELECT 1 FROM pg_extension WHERE extname = 'timescaledb'").fetchone()
    return "timescale" if found else "plain"
