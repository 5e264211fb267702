"""Running the config service: its construction from settings and its background loops.

:func:`run_config_service` is the whole service in one coroutine (a composition root
calls it with the settings and a stop event); :func:`create_config_service` and
:func:`run_config_loops` are its parts, for a process that already has a pool and a bus.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Mapping
from functools import partial
from typing import Any
from uuid import uuid4

from cloud.adapters.mqtt import MqttOptions, MqttPublisher
from cloud.adapters.postgres import Connection, ConnectionPool, DatabaseError, create_pool
from cloud.config.handlers import subscriptions
from cloud.config.keys import load_signing_key
from cloud.config.publishing import Publisher
from cloud.config.service import ConfigService, ServiceOptions
from cloud.config.tracker import SCHEMA, ConfigTracker
from cloud.events.bus import EventBus
from cloud.events.runtime import BusSettings, event_runtime
from cloud.settings import CloudSettings
from device_profiles import DeviceProfile, builtin_profiles

__all__ = [
    "create_config_service",
    "create_publisher",
    "create_tracker",
    "run_config_loops",
    "run_config_service",
]

log = logging.getLogger(__name__)


def create_config_service(
    settings: CloudSettings,
    pool: ConnectionPool[Connection[Any]],
    *,
    publisher: Publisher | None = None,
    profiles: Mapping[str, DeviceProfile] | None = None,
) -> ConfigService:
    """The service with the settings' signing key; raises
    :class:`~cloud.config.keys.SigningKeyError` (no key, or the demo key in production)."""
    key = load_signing_key(settings.signing_key_file, production=settings.env == "production")
    return ConfigService(
        pool,
        key,
        builtin_profiles() if profiles is None else profiles,
        publisher=publisher,
        options=ServiceOptions(
            command_lifetime_s=settings.command_lifetime_s,
            config_lifetime_s=settings.config_lifetime_s,
        ),
    )


def create_tracker(settings: CloudSettings, pool: ConnectionPool[Connection[Any]]) -> ConfigTracker:
    return ConfigTracker(pool, grace_s=settings.command_expiry_grace_s)


def create_publisher(settings: CloudSettings) -> MqttPublisher:
    """A not yet started publisher; a unique client id (clean session) per process."""
    endpoint = settings.mqtt
    return MqttPublisher(
        MqttOptions(
            host=endpoint.host,
            port=endpoint.port,
            client_id=f"{settings.config_mqtt_client_id}-{uuid4().hex[:8]}",
            protocol=settings.mqtt_protocol,
            username=endpoint.username,
            password=endpoint.password,
            keepalive_s=settings.mqtt_keepalive_s,
        ),
        publish_timeout_s=settings.config_publish_timeout_s,
    )


async def run_config_loops(
    service: ConfigService,
    tracker: ConfigTracker,
    stop: asyncio.Event,
    *,
    interval_s: float,
    kick: Callable[[], None] | None = None,
    refresh_margin_s: float | None = None,
) -> None:
    """Until ``stop``: publish what is unpublished, expire overdue commands and (given
    ``refresh_margin_s``) re-sign configs about to expire, every ``interval_s``; ``kick``
    wakes the outbox relay after expiries."""
    while not stop.is_set():
        try:
            published = await asyncio.to_thread(service.publish_pending)
            if published.commands or published.configs:
                log.info(
                    "republished %d commands, %d configs", published.commands, published.configs
                )
            if await asyncio.to_thread(tracker.expire_overdue) and kick is not None:
                kick()
            if refresh_margin_s is not None:
                refreshed = await asyncio.to_thread(
                    partial(service.refresh_expiring, margin_s=refresh_margin_s)
                )
                if refreshed:
                    log.info("re-signed %d configs before their not_after", refreshed)
        except DatabaseError as exc:
            # The database is away: the next round tries again, nothing is lost meanwhile.
            log.warning("config loop: %s: %s", type(exc).__name__, exc)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), interval_s)


async def run_config_service(
    settings: CloudSettings,
    stop: asyncio.Event,
    *,
    bus_settings: BusSettings | None = None,
    bus: EventBus | None = None,
    consume: bool = True,
) -> None:
    """The config service until ``stop``: MQTT publisher, republish and expiry loops, its
    outbox relay and (``consume``) its event consumers. Raises
    :class:`~cloud.config.keys.SigningKeyError` at once when the key is refused."""
    load_signing_key(settings.signing_key_file, production=settings.env == "production")
    pool = await asyncio.to_thread(
        create_pool,
        settings.database_url,
        name="config",
        statement_timeout_ms=settings.db_statement_timeout_ms,
    )
    publisher = create_publisher(settings)
    try:
        if not await asyncio.to_thread(publisher.start):
            log.warning(
                "config: broker %s not reachable yet; publishing when it is", settings.mqtt_url
            )
        service = create_config_service(settings, pool, publisher=publisher)
        tracker = create_tracker(settings, pool)
        subs = subscriptions(tracker) if consume else []
        async with event_runtime(
            bus_settings or BusSettings(), pool, outboxes=(SCHEMA,), subscriptions=subs, bus=bus
        ) as runtime:
            await run_config_loops(
                service,
                tracker,
                stop,
                interval_s=settings.config_republish_interval_s,
                kick=lambda: runtime.kick(SCHEMA),
                refresh_margin_s=settings.config_refresh_margin_s,
            )
    finally:
        await asyncio.to_thread(publisher.stop)
        await asyncio.to_thread(pool.close)
