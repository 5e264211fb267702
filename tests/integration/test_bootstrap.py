"""Process builders of ``cloud.bootstrap`` not covered by the service tests: the
``potr ingest`` supervisor's events."""

from __future__ import annotations

import pytest

from cloud.bootstrap import ingest_events
from cloud.config import ConfigSettings
from cloud.events.runtime import BusSettings
from cloud.events.types import gateway_birth_event
from cloud.registry import RegistryService
from contracts.topics import Region
from tests.integration.test_event_bus import Pool, _birth, _devices, _emit, pool, registry
from tests.waiting import until

pytestmark = pytest.mark.integration
__all__ = ["pool", "registry"]  # fixtures used here


def _config_devices(pool: Pool, gateway_id: str) -> int:
    with pool.connection() as conn:
        row = conn.execute(
            "SELECT count(*) FROM config.devices WHERE gateway_id = %s", (gateway_id,)
        ).fetchone()
    assert row is not None
    return int(row[0])


async def test_the_ingest_supervisor_relays_births_to_the_registry_and_the_config_service(
    database_url: str, pool: Pool, registry: RegistryService
) -> None:
    settings = ConfigSettings(database_url=database_url)
    bus = BusSettings(amqp_url=None, outbox_poll_ms=50)  # in-process, whatever the env says
    async with ingest_events(settings, bus_settings=bus):
        _emit(pool, [gateway_birth_event(Region.AU, _birth("gw-002", devices=2))])
        await until(lambda: _devices(registry) == 2, 30, "the birth's devices in the registry")
        await until(lambda: _config_devices(pool, "gw-002") == 2, 10, "and in the config service")
