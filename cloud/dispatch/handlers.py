"""Events the dispatch service consumes: the registry's ``gateway.registered`` /
``gateway.updated`` keep ``dispatch.sites`` and ``dispatch.site_gateways`` (a site's
region, account, location and gateways), parsed with the registry's model.

:func:`event_subscriptions` gives the bus subscriptions the composition root registers.
"""

from __future__ import annotations

import asyncio

from cloud.dispatch.service import DispatchService
from cloud.events.bus import Subscription, event_payload
from cloud.events.outbox import Event
from cloud.events.types import GATEWAY_REGISTERED, GATEWAY_UPDATED, GatewayRegistration

__all__ = [
    "REGISTERED_CONSUMER",
    "UPDATED_CONSUMER",
    "GatewayRegistrationHandler",
    "event_subscriptions",
]

#: The dispatch service's queues (``potr.dispatch.*`` on RabbitMQ).
REGISTERED_CONSUMER = "dispatch.gateway_registered"
UPDATED_CONSUMER = "dispatch.gateway_updated"


class GatewayRegistrationHandler:
    """``gateway.registered`` / ``gateway.updated`` → the site's record."""

    def __init__(self, service: DispatchService) -> None:
        self._service = service

    async def __call__(self, event: Event) -> None:
        reg = event_payload(event, GatewayRegistration)
        await asyncio.to_thread(self._service.record_gateway, event.id, reg, event.occurred_at)


def event_subscriptions(service: DispatchService) -> list[Subscription]:
    """The dispatch service's subscriptions, every region."""
    handler = GatewayRegistrationHandler(service)
    return [
        Subscription(REGISTERED_CONSUMER, f"*.registry.{GATEWAY_REGISTERED}", handler),
        Subscription(UPDATED_CONSUMER, f"*.registry.{GATEWAY_UPDATED}", handler),
    ]
