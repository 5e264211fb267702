"""Which events a cloud process handles and relays: the cloud's composition of the bus.

A process that runs ingest and the registry (the demo, ``potr ingest``) enters
``cloud_events(...)`` once: the registry's handlers subscribe (``gateway.birth``), the
config service's too when a ``config`` tracker is given (``gateway.birth``,
``command.acked``, ``config.reported``), and the ingest, registry and config outboxes
are relayed. Services emit with
:func:`cloud.events.outbox.emit` in their own transactions and never see the bus.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any

from cloud.adapters.postgres import Connection, ConnectionPool
from cloud.config import ConfigTracker
from cloud.config import subscriptions as config_subscriptions
from cloud.events.bus import EventBus
from cloud.events.relay import MetricsHook
from cloud.events.runtime import BusSettings, EventRuntime, event_runtime
from cloud.registry import RegistryService
from cloud.registry import subscriptions as registry_subscriptions

__all__ = ["EMITTING_SCHEMAS", "cloud_events"]

#: Service schemas with an outbox.
EMITTING_SCHEMAS = ("ingest", "registry", "config")


@asynccontextmanager
async def cloud_events(
    pool: ConnectionPool[Connection[Any]],
    *,
    registry: RegistryService | None = None,
    config: ConfigTracker | None = None,
    outboxes: Sequence[str] = EMITTING_SCHEMAS,
    settings: BusSettings | None = None,
    bus: EventBus | None = None,
    metrics: MetricsHook | None = None,
) -> AsyncIterator[EventRuntime]:
    """Bus + relays for ``outboxes`` + the registry's consumers when ``registry`` is given
    + the config service's consumers when ``config`` is given.

    With several processes (ingest workers), relay in all of them (claims skip each
    other's rows) and consume where convenient: consumers with one name share a queue.
    """
    subs = registry_subscriptions(registry) if registry is not None else []
    if config is not None:
        subs += config_subscriptions(config)
    async with event_runtime(
        settings or BusSettings(),
        pool,
        outboxes=outboxes,
        subscriptions=subs,
        bus=bus,
        metrics=metrics,
    ) as runtime:
        yield runtime
