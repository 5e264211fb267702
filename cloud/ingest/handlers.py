"""Events ingest consumes, from the registry: ``gateway.registered`` and
``gateway.updated`` keep ``ingest.gateways`` (region, site's time zone, enabled). They are the
only way ingest learns of gateways: no call into the registry (issue 11).

:func:`event_subscriptions` gives the bus subscriptions the composition root registers.
"""

from __future__ import annotations

import asyncio
from typing import Any

from cloud.adapters.postgres import Connection, ConnectionPool
from cloud.events.bus import Subscription, event_payload
from cloud.events.outbox import Event
from cloud.events.types import GATEWAY_REGISTERED, GATEWAY_UPDATED, GatewayRegistration
from cloud.ingest.gateways import GatewayRecords

__all__ = [
    "REGISTERED_CONSUMER",
    "UPDATED_CONSUMER",
    "GatewayRegistrationHandler",
    "event_subscriptions",
]

#: Ingest's queue for new gateways (``potr.ingest.gateway_registered`` on RabbitMQ).
REGISTERED_CONSUMER = "ingest.gateway_registered"
#: Ingest's queue for changed registrations (a site's new time zone …).
UPDATED_CONSUMER = "ingest.gateway_updated"


class GatewayRegistrationHandler:
    """``gateway.registered`` / ``gateway.updated`` → :class:`GatewayRecords` (in a thread)."""

    def __init__(self, records: GatewayRecords) -> None:
        self._records = records

    async def __call__(self, event: Event) -> None:
        reg = event_payload(event, GatewayRegistration)
        await asyncio.to_thread(
            self._records.apply_registration,
            event.id,
            reg.gateway_id,
            reg.region.value,
            reg.time_zone,
            event.occurred_at,
            enabled=reg.enabled,
            site_id=reg.site_id,
        )


def event_subscriptions(pool: ConnectionPool[Connection[Any]]) -> list[Subscription]:
    """Ingest's subscriptions: the registry's gateway news in every region."""
    handler = GatewayRegistrationHandler(GatewayRecords(pool))
    return [
        Subscription(REGISTERED_CONSUMER, f"*.registry.{GATEWAY_REGISTERED}", handler),
        Subscription(UPDATED_CONSUMER, f"*.registry.{GATEWAY_UPDATED}", handler),
    ]
