"""Events the telemetry store consumes, once per event id (the store's inbox commits
with the rows): the customers service's ``site.meter_replaced`` becomes a recorded meter
swap (:mod:`cloud.telemetry.meter_swaps`), and with ``site.installation_changed`` tells
which of a site's meters is the system's and which the grid's
(:mod:`cloud.telemetry.site_meters`): when that changes, the site's stored days of its
grid counters are summed again.

:func:`event_subscriptions` gives the bus subscriptions the composition root registers
where ingest's run (the store is ingest's).
"""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Any
from uuid import UUID

from cloud.adapters.postgres import Connection, ConnectionPool
from cloud.events.bus import PoisonEventError, Subscription, event_payload
from cloud.events.outbox import Event, handle_once
from cloud.events.types import (
    SITE_INSTALLATION_CHANGED,
    SITE_METER_REPLACED,
    InstallationChanged,
    MeterReplaced,
)
from cloud.telemetry.energy_store import SCHEMA, refresh_site_history
from cloud.telemetry.meter_swaps import RegisterError, SwapResult, record_meter_swap
from cloud.telemetry.site_meters import MeterRole, record_roles
from contracts.topics import Region

__all__ = [
    "INSTALLATION_CONSUMER",
    "METER_REPLACED_CONSUMER",
    "InstallationChangedHandler",
    "MeterReplacedHandler",
    "event_subscriptions",
]

#: The store's queue for meter swaps (``potr.telemetry.meter_replaced`` on RabbitMQ).
METER_REPLACED_CONSUMER = "telemetry.meter_replaced"
#: The store's queue for installation records (``potr.telemetry.installation_changed``).
INSTALLATION_CONSUMER = "telemetry.installation_changed"


def _learn_roles(
    conn: Connection[Any],
    site_id: int,
    region: Region,
    roles: dict[str, MeterRole],
    at: datetime,
) -> None:
    """Record the site's meter roles; re-sum its stored grid days when they changed."""
    if record_roles(conn, site_id, region, roles, at):
        refresh_site_history(conn, site_id)


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
            # Both serials are the site's billing meter, PoTR's system meter.
            roles = {s: MeterRole.SYSTEM for s in (replaced.old_serial, replaced.new_serial)}
            _learn_roles(conn, replaced.site_id, replaced.region, roles, replaced.replaced_at)
            return record_meter_swap(conn, replaced)


class InstallationChangedHandler:
    """``site.installation_changed`` → the site's meter roles (in a thread)."""

    def __init__(self, pool: ConnectionPool[Connection[Any]]) -> None:
        self._pool = pool

    async def __call__(self, event: Event) -> None:
        await asyncio.to_thread(self.apply, event.id, event_payload(event, InstallationChanged))

    def apply(self, event_id: UUID, changed: InstallationChanged) -> bool:
        """Record the roles once per event id; whether the event was new."""
        roles = {}
        if changed.billing_meter is not None:
            roles[changed.billing_meter] = MeterRole.SYSTEM
        if changed.grid_meter is not None:
            roles[changed.grid_meter] = MeterRole.GRID
        with self._pool.connection() as conn:
            if not handle_once(conn, SCHEMA, event_id):
                return False
            _learn_roles(conn, changed.site_id, changed.region, roles, changed.updated_at)
            return True


def event_subscriptions(pool: ConnectionPool[Connection[Any]]) -> list[Subscription]:
    """The store's subscriptions: meter swaps and installation records from the
    customers service, every region."""
    return [
        Subscription(
            METER_REPLACED_CONSUMER,
            f"*.customers.{SITE_METER_REPLACED}",
            MeterReplacedHandler(pool),
        ),
        Subscription(
            INSTALLATION_CONSUMER,
            f"*.customers.{SITE_INSTALLATION_CHANGED}",
            InstallationChangedHandler(pool),
        ),
    ]
