"""SAP's word on a work order: ``service_order.changed`` (an SAP user rejected or
completed the work order's service order in SAP) recorded beside the work order.

Deliberately minimal and safe: the status is **shown** with the work order (who looks
at the job sees "rejected in SAP" and SAP's reason), and nothing of the lifecycle moves
— a rejection in SAP does not cancel a job a technician may be driving to, and a
completion in SAP does not close a job the site's telemetry has not verified. The
newest change (SAP's stamp) wins; a redelivered or older event changes nothing.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any
from uuid import UUID

from pydantic import BaseModel, ConfigDict

from cloud.adapters.postgres import Connection
from cloud.events.outbox import handle_once
from cloud.events.service_orders import ServiceOrderChanged

__all__ = ["SapStatusView", "get_sap_status", "record_sap_status"]

log = logging.getLogger(__name__)


class SapStatusView(BaseModel):
    """What SAP says of the work order's service order."""

    model_config = ConfigDict(frozen=True)

    service_order: str
    status: str
    reason: str | None
    changed_at: datetime


def record_sap_status(
    conn: Connection[Any], schema: str, event_id: UUID, changed: ServiceOrderChanged
) -> bool:
    """Record SAP's status once per event (the newer stamp wins); True when recorded.
    A work order this region does not hold is logged and dropped (not ours to keep)."""
    if not handle_once(conn, schema, event_id):
        return False
    known = conn.execute(
        "SELECT 1 FROM dispatch.work_orders WHERE id = %s AND region = %s",
        (changed.work_order_id, changed.region),
    ).fetchone()
    if known is None:
        log.warning("SAP status for unknown work order %s", changed.reference)
        return False
    row = conn.execute(
        "INSERT INTO dispatch.sap_status (work_order_id, service_order, status, reason,"
        " changed_at) VALUES (%s, %s, %s, %s, %s) ON CONFLICT (work_order_id) DO UPDATE SET"
        " service_order = EXCLUDED.service_order, status = EXCLUDED.status,"
        " reason = EXCLUDED.reason, changed_at = EXCLUDED.changed_at, recorded_at = now()"
        " WHERE dispatch.sap_status.changed_at < EXCLUDED.changed_at RETURNING 1",
        (changed.work_order_id, changed.service_order, changed.status,
         changed.reason or None, changed.changed_at),
    ).fetchone()  # fmt: skip
    return row is not None


def get_sap_status(conn: Connection[Any], work_order_id: int) -> SapStatusView | None:
    row = conn.execute(
        "SELECT service_order, status, reason, changed_at FROM dispatch.sap_status"
        " WHERE work_order_id = %s",
        (work_order_id,),
    ).fetchone()
    if row is None:
        return None
    return SapStatusView(service_order=row[0], status=row[1], reason=row[2], changed_at=row[3])
