"""Events the registry consumes: ``gateway.birth`` (from ingest) upserts the devices.

:func:`subscriptions` gives the bus subscriptions the composition root registers; each
handler applies its effect once per event id (the registry's inbox).
"""

from __future__ import annotations

import asyncio
import logging

from pydantic import ValidationError

from cloud.events.bus import PoisonEventError, Subscription
from cloud.events.outbox import Event
from cloud.events.types import GATEWAY_BIRTH, GatewayBirth
from cloud.registry.service import NotFoundError, RegistryService

__all__ = ["BIRTH_CONSUMER", "GatewayBirthHandler", "subscriptions"]

log = logging.getLogger(__name__)

#: The registry's queue for births (``potr.registry.gateway_birth`` on RabbitMQ).
BIRTH_CONSUMER = "registry.gateway_birth"


class GatewayBirthHandler:
    """``gateway.birth`` → :meth:`RegistryService.apply_gateway_birth` (in a thread)."""

    def __init__(self, registry: RegistryService) -> None:
        self._registry = registry

    async def __call__(self, event: Event) -> None:
        try:
            birth = GatewayBirth.model_validate(event.payload)
        except ValidationError as exc:
            raise PoisonEventError(f"gateway.birth payload: {exc.error_count()} errors") from exc
        try:
            applied = await asyncio.to_thread(
                self._registry.apply_gateway_birth, event.id, birth.gateway_id, birth.devices
            )
        except NotFoundError as exc:
            # Ingest only emits births of registered gateways: this one was removed since.
            raise PoisonEventError(str(exc)) from exc
        if applied:
            log.info("gateway %s birth: %d devices recorded", birth.gateway_id, len(birth.devices))


def subscriptions(registry: RegistryService) -> list[Subscription]:
    """The registry's subscriptions: births from ingest in every region."""
    return [
        Subscription(BIRTH_CONSUMER, f"*.ingest.{GATEWAY_BIRTH}", GatewayBirthHandler(registry))
    ]
