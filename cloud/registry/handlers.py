"""Events the registry consumes, both from ingest, which owns the device keys:
``gateway.birth`` upserts a gateway's devices, ``device.discovered`` records a device first
seen outside a birth. They are the only way the registry learns of devices.

:func:`subscriptions` gives the bus subscriptions the composition root registers; each
handler applies its effect once per event id (the registry's inbox).
"""

from __future__ import annotations

import asyncio
import logging

from cloud.events.bus import PoisonEventError, Subscription, event_payload
from cloud.events.outbox import Event
from cloud.events.types import (
    DEVICE_DISCOVERED,
    GATEWAY_BIRTH,
    DeviceDiscovered,
    GatewayBirth,
)
from cloud.registry.service import NotFoundError, RegistryService

__all__ = [
    "BIRTH_CONSUMER",
    "DISCOVERED_CONSUMER",
    "DeviceDiscoveredHandler",
    "GatewayBirthHandler",
    "subscriptions",
]

log = logging.getLogger(__name__)

#: The registry's queue for births (``potr.registry.gateway_birth`` on RabbitMQ).
BIRTH_CONSUMER = "registry.gateway_birth"
#: The registry's queue for devices ingest keyed outside a birth.
DISCOVERED_CONSUMER = "registry.device_discovered"


class GatewayBirthHandler:
    """``gateway.birth`` → :meth:`RegistryService.apply_gateway_birth` (in a thread)."""

    def __init__(self, registry: RegistryService) -> None:
        self._registry = registry

    async def __call__(self, event: Event) -> None:
        birth = event_payload(event, GatewayBirth)
        try:
            applied = await asyncio.to_thread(
                self._registry.apply_gateway_birth,
                event.id,
                birth.gateway_id,
                birth.devices,
                birth.device_ids,
            )
        except (NotFoundError, ValueError) as exc:
            # Ingest only emits births of registered gateways: this one was removed since.
            raise PoisonEventError(str(exc)) from exc
        if applied:
            log.info("gateway %s birth: %d devices recorded", birth.gateway_id, len(birth.devices))


class DeviceDiscoveredHandler:
    """``device.discovered`` → :meth:`RegistryService.apply_device_discovered`."""

    def __init__(self, registry: RegistryService) -> None:
        self._registry = registry

    async def __call__(self, event: Event) -> None:
        found = event_payload(event, DeviceDiscovered)
        try:
            applied = await asyncio.to_thread(
                self._registry.apply_device_discovered,
                event.id,
                found.gateway_id,
                found.device,
                found.device_id,
            )
        except NotFoundError as exc:
            raise PoisonEventError(str(exc)) from exc
        if applied:
            log.info("gateway %s: device %s is %d", found.gateway_id, found.device, found.device_id)


def subscriptions(registry: RegistryService) -> list[Subscription]:
    """The registry's subscriptions: ingest's device news in every region."""
    return [
        Subscription(BIRTH_CONSUMER, f"*.ingest.{GATEWAY_BIRTH}", GatewayBirthHandler(registry)),
        Subscription(
            DISCOVERED_CONSUMER, f"*.ingest.{DEVICE_DISCOVERED}", DeviceDiscoveredHandler(registry)
        ),
    ]
