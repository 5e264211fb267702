"""Ingest's own record of registered gateways (``ingest.gateways``), kept by the
registry's events, so accepting a message never asks the registry (issue 11).

:class:`GatewayRecords` applies ``gateway.registered`` / ``gateway.updated`` once per
event id (ingest's inbox commits with the row); the pipeline reads the table (through a
short-lived :class:`GatewayCache`) and completeness joins it for the site's time zone.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from cloud.adapters.postgres import Connection, ConnectionPool
from cloud.events.outbox import handle_once
from cloud.ingest import repository as repo

log = logging.getLogger(__name__)

#: Ingest's PostgreSQL schema (outbox, inbox).
SCHEMA = "ingest"


class GatewayRecords:
    """Writes ``ingest.gateways`` from the registry's events (thread-safe: pooled)."""

    def __init__(self, pool: ConnectionPool[Connection[Any]]) -> None:
        self._pool = pool

    def apply_registration(
        self,
        event_id: UUID,
        gateway_id: str,
        region: str,
        time_zone: str,
        occurred_at: datetime,
        *,
        enabled: bool = True,
        site_id: int | None = None,
    ) -> bool:
        """Record a gateway's registration as of ``occurred_at``, once per event id;
        False when the event was handled before (an older registration than the one
        recorded is handled but changes nothing)."""
        with self._pool.connection() as conn:
            if not handle_once(conn, SCHEMA, event_id):
                return False
            if repo.upsert_gateway(
                conn, gateway_id, region, time_zone, occurred_at, enabled, site_id
            ):
                log.info(
                    "gateway %s: region %s, time zone %s, %s",
                    gateway_id,
                    region,
                    time_zone,
                    "enabled" if enabled else "DISABLED (its messages are refused)",
                )
            return True


@dataclass(frozen=True, slots=True)
class KnownGateway:
    """What a batch needs of a registered gateway."""

    region: str
    enabled: bool


class GatewayCache:
    """Known gateways, each trusted ``ttl_s`` (monotonic seconds) before it is read again.

    Unknown gateways are never remembered (sprayed ids must not fill it, and a gateway is
    accepted as soon as its ``gateway.registered`` is handled); known ones are bounded by
    the registry, and by ``max_entries`` all the same. ``ttl_s`` is how long a worker may
    still accept a gateway after it was disabled.
    """

    def __init__(self, ttl_s: float, max_entries: int = 100_000) -> None:
        self._ttl_s = ttl_s
        self._max = max_entries
        self._data: dict[str, tuple[KnownGateway, float]] = {}

    def get(self, gateway_id: str, now: float) -> KnownGateway | None:
        hit = self._data.get(gateway_id)
        return hit[0] if hit is not None and hit[1] > now else None

    def put(self, gateway_id: str, known: KnownGateway, now: float) -> None:
        if self._ttl_s <= 0:
            return
        if len(self._data) >= self._max:
            self._data = {k: v for k, v in self._data.items() if v[1] > now}
            if len(self._data) >= self._max:
                self._data.clear()
        self._data[gateway_id] = (known, now + self._ttl_s)
