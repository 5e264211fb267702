"""Delta polling: service orders changed **in SAP** come back to PoTR.

A periodic read of ``A_ServiceOrder`` filtered on SAP's change stamp from the stored
watermark (inclusive: changes in the same millisecond are not lost; re-reading one
changes nothing), all pages. For each of our orders whose SAP status (open, rejected,
completed) moved and was not our own doing, ``service_order.changed`` goes into the
``sap`` outbox — in the transaction that records the status and moves the watermark, so
a crash between them re-reads and re-decides, and an event is never emitted twice for
one change (the status comparison; the event id is derived from the change as well).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from cloud.adapters.postgres import Connection, ConnectionPool
from cloud.events.outbox import Event
from cloud.sap import service_repository as repo
from cloud.sap.service_documents import ServiceGateway
from cloud.sap.settings import SapSettings

__all__ = ["REFERENCE_PREFIX", "WATERMARK", "poll_service_orders", "run_delta_polling"]

log = logging.getLogger(__name__)

WATERMARK = "service_orders"
#: Every service order PoTR creates carries a reference so (others are not ours).
REFERENCE_PREFIX = "POTR-"


def poll_service_orders(
    pool: ConnectionPool[Connection[Any]], gateway: ServiceGateway
) -> list[Event]:
    """One poll (blocking); the events emitted. SAP's errors propagate (nothing moves)."""
    with pool.connection() as conn:
        since = repo.watermark(conn, WATERMARK)
    records = gateway.service_orders_changed_since(since, REFERENCE_PREFIX)
    events: list[Event] = []
    with pool.connection() as conn:
        for record in records:
            event = repo.apply_sap_status(conn, record)
            if event is not None:
                events.append(event)
        stamps = [r.changed_at for r in records if r.changed_at is not None]
        if stamps:
            repo.set_watermark(conn, WATERMARK, max(stamps))
    for event in events:
        log.info("SAP changed %s: %s", event.payload["reference"], event.payload["status"])
    return events


async def run_delta_polling(
    pool: ConnectionPool[Connection[Any]],
    gateway: ServiceGateway,
    settings: SapSettings,
    stop: asyncio.Event,
) -> None:
    """Poll every ``delta_poll_s`` until ``stop``; a failed poll (SAP away) is logged and
    tried at the next."""
    while not stop.is_set():
        try:
            await asyncio.to_thread(poll_service_orders, pool, gateway)
        except Exception:
            log.exception("SAP service order delta poll failed")
        try:
            await asyncio.wait_for(stop.wait(), settings.delta_poll_s)
        except TimeoutError:
            continue
