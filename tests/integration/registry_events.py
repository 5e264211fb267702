"""How the registry learns of devices, for tests that run ingest without a bus runtime:
ingest's outbox goes through the real relay and an in-process bus to the registry's own
handlers (``cloud.registry.subscriptions``), exactly as ``cloud_events`` wires them."""

from __future__ import annotations

import asyncio
from typing import Any

from cloud.adapters.postgres import Connection, ConnectionPool
from cloud.events.bus import InProcessBus
from cloud.events.relay import OutboxRelay
from cloud.registry import RegistryService
from cloud.registry import subscriptions as registry_subscriptions


async def relay_ingest_events(
    pool: ConnectionPool[Connection[Any]], registry: RegistryService
) -> int:
    """Relay everything in ``ingest.outbox`` to the registry; the number of events.

    The in-process bus returns from ``publish`` once every handler is done, so the
    registry has applied them when this returns; a handler's refusal fails the test.
    """
    async with InProcessBus() as bus:
        for sub in registry_subscriptions(registry):
            await bus.subscribe(sub)
        relay = OutboxRelay(pool, "ingest", bus)
        total = 0
        while published := await relay.relay_once():
            total += published
        assert bus.dead_letters == [], bus.dead_letters
    return total


def deliver_ingest_events(pool: ConnectionPool[Connection[Any]], registry: RegistryService) -> int:
    """:func:`relay_ingest_events` from synchronous code."""
    return asyncio.run(relay_ingest_events(pool, registry))
