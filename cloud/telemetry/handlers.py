"""Events the telemetry store consumes: the customers service's ``site.meter_replaced``
becomes a recorded meter swap (:mod:`cloud.telemetry.meter_swaps`), once per event id
(the store's inbox commits with the row).

:func:`event_subscriptions` gives the bus subscriptions the composition root registers
where ingest's run (the store is ingest's).
"""

from __future__ import annotations

import asyncio
from typing import Any
from uuid import UUID

from cloud.adapters.postgres import Connection, ConnectionPool
from cloud.events.bus import PoisonEventError, Subscription, event_payload
from cloud.events.outbox import Event, handle_once
from cloud.events.types import SITE_METER_REPLACED, MeterReplaced
from cloud.telemetry.energy_store import SCHEMA
from cloud.telemetry.meter_swaps import RegisterError, SwapResult, record_meter_swap

__all__ = ["METER_REPLACED_CONSUMER", "MeterReplacedHandler", "event_subscriptions"]

#: The store's queue for meter swaps (``potr.telemetry.meter_replaced`` on RabbitMQ).
METER_REPLACED_CONSUMER = "telemetry.meter_replaced"


class MeterReplacedHandler:
    """``site.meter_replaced`` → :func:`record_meter_swap` (in a thread)."""

    def __init__(self, pool: ConnectionPool[Connection[Any]]) -> None:
        self._pool = pool

    async def __call__(self, event: Event) -> None:
        replaced = event_payload(event, MeterReplaced)
        try:
            await asyncio.to_thread(self.apply, event.id, replaced)
        except RegisterError as exc:
            raise PoisonEventError(str(exc)) from exc

    def apply(self, event_id: UUID, replaced: MeterReplaced) -> SwapResult | None:
        """Record the swap once per event id; None when the event was handled before."""
        with self._pool.connection() as conn:
            if not handle_once(conn, SCHEMA, event_id):
                return None
            return record_meter_swap(conn, replaced)


def event_subscriptions(pool: ConnectionPool[Connection[Any]]) -> list[Subscription]:
    """The store's subscriptions: meter swaps from the customers service, every region."""
    return [
        Subscription(
            METER_REPLACED_CONSUMER,
            f"*.customers.{SITE_METER_REPLACED}",
            MeterReplacedHandler(pool),
        )
    ]
