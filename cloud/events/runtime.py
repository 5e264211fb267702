"""One process's event plumbing: the bus, its subscriptions and an outbox relay per schema.

Generic (no service imported): :mod:`cloud.bootstrap` says which services' handlers
and outboxes a process runs.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from cloud.adapters.postgres import Connection, ConnectionPool
from cloud.events.bus import EventBus, InProcessBus, Subscription
from cloud.events.relay import MetricsHook, OutboxRelay, claim_slots

__all__ = ["BusSettings", "EventRuntime", "create_bus", "event_runtime", "region_relays"]

log = logging.getLogger(__name__)


class BusSettings(BaseSettings):
    """Event bus and outbox relay settings (prefix ``POTR_``)."""

    #: Errors never echo values: ``amqp_url`` may carry a password.
    model_config = SettingsConfigDict(env_prefix="POTR_", extra="ignore", hide_input_in_errors=True)

    #: ``amqp://user:pass@host:5672/vhost``: RabbitMQ; unset: the in-process bus.
    amqp_url: str | None = None
    #: Per-subscription queue of the in-process bus (publishers wait when it is full).
    bus_queue_max: int = Field(default=1_000, ge=1)
    #: RabbitMQ: unacknowledged events a consumer holds.
    bus_prefetch: int = Field(default=64, ge=1, le=65_535)
    #: RabbitMQ: deliveries of one event (crash loops) before it is dead-lettered.
    bus_delivery_limit: int = Field(default=10, ge=1)
    #: RabbitMQ: the topic exchange events go through (its dead letters: ``<it>.dlx``),
    #: and what every consumer's queue name starts with. One per deployment; tests
    #: sharing a broker take names of their own.
    bus_exchange: str = Field(default="potr.events", pattern=r"^[A-Za-z0-9_.\-]{1,100}$")
    bus_queue_prefix: str = Field(default="potr.", pattern=r"^[A-Za-z0-9_.\-]{1,100}$")
    outbox_batch_max: int = Field(default=500, ge=1)
    outbox_poll_ms: int = Field(default=200, ge=1)
    outbox_publish_timeout_s: float = Field(default=10.0, gt=0)
    outbox_retention_s: float = Field(default=86_400.0, gt=0)


def create_bus(settings: BusSettings) -> EventBus:
    """RabbitMQ when ``amqp_url`` is set, else the in-process bus."""
    if settings.amqp_url:
        from cloud.events.amqp import RabbitBus

        return RabbitBus(
            settings.amqp_url,
            exchange=settings.bus_exchange,
            queue_prefix=settings.bus_queue_prefix,
            prefetch=settings.bus_prefetch,
            delivery_limit=settings.bus_delivery_limit,
        )
    return InProcessBus(queue_max=settings.bus_queue_max)


@dataclass
class EventRuntime:
    bus: EventBus
    relays: dict[str, OutboxRelay] = field(default_factory=dict)

    def kick(self, schema: str) -> None:
        """Wake ``schema``'s relay now (after committing events) instead of at its poll."""
        relay = self.relays.get(schema)
        if relay is not None:
            relay.kick()


@asynccontextmanager
async def event_runtime(
    settings: BusSettings,
    pool: ConnectionPool[Connection[Any]],
    *,
    outboxes: Sequence[str] = (),
    subscriptions: Sequence[Subscription] = (),
    bus: EventBus | None = None,
    metrics: MetricsHook | None = None,
) -> AsyncIterator[EventRuntime]:
    """Start the bus, subscribe the handlers, relay each schema's outbox; stop all on exit.

    Subscriptions are registered before any relay runs, so no event is published before
    its consumers' queues exist. Neither a missing broker nor a missing database stops
    this from starting: the bus reconnects and the relays wait.
    """
    bus = bus if bus is not None else create_bus(settings)
    await bus.start()
    stop = asyncio.Event()
    tasks: list[asyncio.Task[None]] = []
    try:
        for sub in subscriptions:
            await bus.subscribe(sub)
        runtime = EventRuntime(bus)
        slots = claim_slots(pool)
        for schema in outboxes:
            relay = _relay(pool, schema, bus, settings, metrics, claim_slots=slots)
            runtime.relays[schema] = relay
            tasks.append(asyncio.create_task(relay.run(stop), name=f"relay:{schema}"))
        log.info(
            "events: %s bus, relays %s, consumers %s",
            type(bus).__name__,
            list(outboxes),
            [s.consumer for s in subscriptions],
        )
        yield runtime
    finally:
        stop.set()
        await asyncio.gather(*tasks, return_exceptions=True)
        await bus.close()


@asynccontextmanager
async def region_relays(
    settings: BusSettings,
    pool: ConnectionPool[Connection[Any]],
    schema: str,
    buses: Mapping[str, str | EventBus],
    *,
    metrics: MetricsHook | None = None,
) -> AsyncIterator[dict[str, OutboxRelay]]:
    """Relay ``schema``'s outbox to each region's own bus: ``buses`` maps a region to its
    broker's AMQP URL (a RabbitBus on ``settings.bus_exchange`` is made) or to a bus.

    One :class:`OutboxRelay` per region claims only that region's rows and marks them
    published once its bus confirmed them, so a region whose broker is away keeps its
    events pending (retried with back-off) while the other regions' flow. Rows of a
    region not in ``buses`` are never claimed. Nothing is subscribed: these buses only
    publish. Yields the relays by region; stops them and closes the buses on exit."""
    own: dict[str, EventBus] = {}
    for region, bus in buses.items():
        own[region] = (
            create_bus(settings.model_copy(update={"amqp_url": bus}))
            if isinstance(bus, str)
            else bus
        )
    stop = asyncio.Event()
    tasks: list[asyncio.Task[None]] = []
    started: list[EventBus] = []
    try:
        relays: dict[str, OutboxRelay] = {}
        for region, bus in own.items():
            await bus.start()
            started.append(bus)
            relay = _relay(pool, schema, bus, settings, metrics, region=region)
            relays[region] = relay
            tasks.append(asyncio.create_task(relay.run(stop), name=f"relay:{schema}/{region}"))
        log.info("events: %s outbox relayed to the buses of %s", schema, sorted(relays))
        yield relays
    finally:
        stop.set()
        await asyncio.gather(*tasks, return_exceptions=True)
        for bus in started:
            await bus.close()


def _relay(
    pool: ConnectionPool[Connection[Any]],
    schema: str,
    bus: EventBus,
    settings: BusSettings,
    metrics: MetricsHook | None,
    **options: Any,
) -> OutboxRelay:
    """``schema``'s outbox relay to ``bus`` with the settings' batch, poll, timeout and
    retention (``options``: the relay's own, e.g. ``claim_slots``, ``region``)."""
    return OutboxRelay(
        pool,
        schema,
        bus,
        batch_max=settings.outbox_batch_max,
        poll_s=settings.outbox_poll_ms / 1000,
        publish_timeout_s=settings.outbox_publish_timeout_s,
        retention_s=settings.outbox_retention_s,
        metrics=metrics,
        **options,
    )
