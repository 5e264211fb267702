"""A site's billing meter swapped (issue 14): the customers service's ``site.meter_replaced``
reaches the telemetry store's handler through the bus as ``potr ingest`` wires it, the
swap is recorded once however often the event comes, and the maintenance job recomputes
the energy across it from readings that were stored before the event."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from cloud.adapters.postgres import create_pool
from cloud.bootstrap import cloud_events
from cloud.customers import CustomersService, MeterReplacementIn
from cloud.events.bus import InProcessBus
from cloud.events.relay import OutboxRelay
from cloud.events.types import MeterReplaced
from cloud.migrate import migrate
from cloud.telemetry.energy_models import EnergyFlag
from cloud.telemetry.energy_store import load_buckets
from cloud.telemetry.meter_swaps import SwapOutcome, SwapResult, record_meter_swap
from contracts.metrics import metric
from contracts.topics import Region
from tests.integration.api_world import installation_in, private_database
from tests.integration.telemetry_world import Store, add_devices, add_gateway

pytestmark = pytest.mark.integration

IMPORT_WH, PV_WH = metric("import_wh").id, metric("pv_wh").id
SITE, GATEWAY = 5, "gw-swap-1"
METER, INVERTER = 7, 11
Q = timedelta(minutes=15)
T = datetime(2026, 11, 30, 10, 0, tzinfo=UTC)
SWAPPED_AT = T + timedelta(minutes=7)


@pytest.fixture(scope="module")
def world(postgres_server_url: str) -> Iterator[Store]:
    with private_database(postgres_server_url) as url:
        migrate(url, backend="plain", schemas={"telemetry", "ingest", "customers"})
        pool = create_pool(url, max_size=4, name="test-meter-swaps")
        try:
            yield Store(pool, "plain")
        finally:
            pool.close()


@pytest.fixture
def site(world: Store) -> Store:
    """A clean store; an ES site whose gateway keys its meter by position (the agent's
    ``<endpoint>-u<unit>`` when no serial is read) and its inverter by serial."""
    world.reset()
    with world.pool.connection() as conn:
        conn.execute("TRUNCATE customers.meter_replacements, customers.installations CASCADE")
        conn.execute("TRUNCATE customers.outbox")
        add_gateway(conn, GATEWAY, SITE, "es", "Europe/Madrid")
        add_devices(conn, GATEWAY, {"rs485-u2": METER, "INV-0001": INVERTER})
    return world


async def test_a_swap_heard_from_the_bus_twice_recounts_the_stored_energy_once(
    site: Store,
) -> None:
    # The old meter reads 999.7, then 999.9 kWh; it is replaced at 10:07 at 1,000.000
    # kWh by one that starts at 0.500 kWh and reads 0.650, then 0.900 kWh.
    meter = [(T - Q, 999_700.0), (T, 999_900.0), (T + Q, 650.0), (T + 2 * Q, 900.0)]
    site.write(
        [(ts, METER, IMPORT_WH, wh, 0) for ts, wh in meter]
        + [(ts, INVERTER, PV_WH, 10.0 * i, 0) for i, (ts, _) in enumerate(meter)],
        T.date(),
    )
    site.catch_up(now=T + 3 * Q)
    assert _import_buckets(site)[T] == (650_000, frozenset({EnergyFlag.RESET}))  # not yet known

    customers = CustomersService(site.pool, clock=lambda: T + 3 * Q)
    customers.put_installation(Region.ES, SITE, installation_in(Region.ES, "MTR-0001"))
    swap = MeterReplacementIn.model_validate(
        {
            "old_serial": "MTR-0001",
            "new_serial": "MTR-0002",
            "replaced_at": SWAPPED_AT.isoformat(),
            "old_register_kwh": "1000.000",
            "new_register_kwh": "0.500",
        }
    )
    customers.record_meter_replacement(Region.ES, SITE, swap)
    bus = InProcessBus()
    async with cloud_events(site.pool, ingest=True, outboxes=(), bus=bus):
        # The customers outbox relayed onto the bus this process wired; publish returns
        # once the handlers are done. Then the same event again, as after a lost ack.
        # Two events: the installation record, then the swap.
        relay = OutboxRelay(site.pool, "customers", bus)
        assert await relay.relay_once() == 2
        with site.pool.connection() as conn:
            conn.execute("UPDATE customers.outbox SET published_at = NULL")
        assert await relay.relay_once() == 2
        assert bus.dead_letters == []

    with site.pool.connection() as conn:
        swaps = conn.execute(
            "SELECT device_id, metric_id, replaced_at, old_register_wh, new_register_wh"
            " FROM telemetry.meter_swaps"
        ).fetchall()
    assert swaps == [(METER, IMPORT_WH, SWAPPED_AT, Decimal("1000000.000"), Decimal("500.000"))]

    site.catch_up(now=T + 3 * Q)
    # (10:00, 10:15]: the old meter's last 100 Wh plus the new one's first 150 Wh.
    across = (Decimal(1_000_000) - Decimal(999_900)) + (Decimal(650) - Decimal(500))
    buckets = _import_buckets(site)
    assert buckets[T] == (int(across * 1000), frozenset({EnergyFlag.METER_SWAP}))
    assert buckets[T - Q] == (200_000, frozenset())
    assert buckets[T + Q] == (250_000, frozenset())


def test_a_new_meter_keyed_by_its_own_serial_needs_no_swap(site: Store) -> None:
    with site.pool.connection() as conn:
        add_devices(conn, GATEWAY, {"MTR-0001": 15, "MTR-0002": 19})
        replaced = MeterReplaced(
            replacement_id=1,
            site_id=SITE,
            region=Region.ES,
            old_serial="MTR-0001",
            new_serial="MTR-0002",
            replaced_at=SWAPPED_AT,
            old_register_kwh=Decimal("1000.000"),
            new_register_kwh=Decimal("0.500"),
        )
        assert record_meter_swap(conn, replaced) == SwapResult(SwapOutcome.SEPARATE_DEVICES)
        assert conn.execute("SELECT count(*) FROM telemetry.meter_swaps").fetchone() == (0,)


def _import_buckets(site: Store) -> dict[datetime, tuple[int, frozenset[EnergyFlag]]]:
    with site.pool.connection() as conn:
        got = load_buckets(conn, [METER], IMPORT_WH, T - 4 * Q, T + 4 * Q)[METER]
    return {b.start: (b.energy_mwh, b.flags) for b in got}
