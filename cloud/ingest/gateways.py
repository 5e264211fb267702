"""Ingest's own record of registered gateways (``ingest.gateways``), kept by the
registry's events, so accepting a message never asks the registry (issue 11).

:class:`GatewayRecords` applies ``gateway.registered`` / ``gateway.updated`` once per
event id (ingest's inbox commits with the row); the pipeline reads the table in its
own transaction and completeness joins it for the site's time zone.
"""

from __future__ import annotations

import logging
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
    ) -> bool:
        """Record a gateway's registration as of ``occurred_at``, once per event id;
        False when the event was handled before (an older registration than the one
        recorded is handled but changes nothing)."""
        with self._pool.connection() as conn:
            if not handle_once(conn, SCHEMA, event_id):
                return False
            if repo.upsert_gateway(conn, gateway_id, region, time_zone, occurred_at):
                log.info("gateway %s: region %s, time zone %s", gateway_id, region, time_zone)
            return True
