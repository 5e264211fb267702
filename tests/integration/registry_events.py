"""Events between ingest and the registry, for tests that run ingest without a bus
runtime: each side's outbox goes through the real relay and an in-process bus to the
other side's own handlers, exactly as ``cloud_events`` wires them.

* ingest → registry (devices): :func:`relay_ingest_events`, :func:`deliver_ingest_events`;
* registry → ingest (gateways): :func:`deliver_registry_events` (from
  :func:`cloud.bootstrap.deliver_registry_events`), :func:`deliver_gateway_events`.
"""

from __future__ import annotations

import asyncio
from typing import Any

from cloud.adapters.postgres import Connection, ConnectionPool
from cloud.bootstrap import deliver_registry_events
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


def deliver_gateway_events(pool: ConnectionPool[Connection[Any]]) -> int:
    """The registry's pending events (``gateway.registered`` …) to ingest, from
    synchronous code: ingest knows the gateways when this returns."""
    return asyncio.run(deliver_registry_events(pool))


__all__ = [
    "deliver_gateway_events",
    "deliver_ingest_events",
    "deliver_registry_events",
    "relay_ingest_events",
]
