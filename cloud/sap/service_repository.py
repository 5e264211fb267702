"""The ``sap`` schema's SQL for work orders: the service-order and confirmation queues
(filled by the ``workorder.*`` handlers; claimed and settled through
:mod:`cloud.sap.queue`), the delta poll's watermark and SAP's status. Functions over a
connection in the caller's transaction.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any
from uuid import UUID

from cloud.adapters.postgres import Connection, Jsonb
from cloud.events.outbox import Event, emit
from cloud.events.service_orders import (
    SERVICE_ORDER_CHANGED,
    ServiceOrderChanged,
    service_order_event_id,
)
from cloud.events.workorders import WorkOrderChanged, WorkOrderPartsUsed
from cloud.sap.queue import Queue
from cloud.sap.service_documents import (
    ServiceOrderRecord,
    confirmation_reference,
    labour_hours,
    service_order_reference,
)

__all__ = [
    "CONFIRMATIONS",
    "SERVICE_ORDERS",
    "ClaimedConfirmation",
    "ClaimedServiceOrder",
    "apply_sap_status",
    "confirmations_of_day",
    "queue_confirmation",
    "record_parts",
    "record_presence",
    "service_orders_of_day",
    "set_watermark",
    "upsert_service_order",
    "watermark",
]


@dataclass(frozen=True)
class ClaimedServiceOrder:
    reference: str
    region: str
    work_order_id: int
    description: str
    priority: str
    requested_start: datetime | None
    rejected: bool
    attempts: int
    lease_id: UUID
    outcome_unknown: bool
    #: The account's customer number in SAP; None when the work order names no account.
    sold_to: str | None


@dataclass(frozen=True)
class ClaimedConfirmation:
    reference: str
    region: str
    work_order_id: int
    description: str
    labour_hours: Decimal
    parts: list[dict[str, Any]]
    attempts: int
    lease_id: UUID
    outcome_unknown: bool
    sap_service_order: str
    sold_to: str


#: Service orders whose account's business partner SAP holds (the sold-to party), or
#: that name no account (the exporter dead-letters those). An export records SAP's
#: number, the first export's time, and the rejection it carried as SAP's status.
SERVICE_ORDERS = Queue(
    "service_orders",
    "reference",
    ("region", "work_order_id", "description", "priority", "requested_start", "rejected"),
    ClaimedServiceOrder,
    "sap_service_order = %(number)s, exported_at = COALESCE(exported_at, %(now)s),"
    " sap_status = CASE WHEN %(rejected)s THEN 'rejected' ELSE sap_status END",
    joined=(("sold_to", "p.sap_customer"),),
    join="LEFT JOIN sap.partners p ON p.account_id = q.account_id",
    condition="AND (q.account_id IS NULL OR p.sap_customer IS NOT NULL)",
)

#: Confirmations whose service order SAP holds already.
CONFIRMATIONS = Queue(
    "service_confirmations",
    "reference",
    ("region", "work_order_id", "description", "labour_hours", "parts"),
    ClaimedConfirmation,
    "sap_confirmation = %(number)s, exported_at = %(now)s",
    joined=(("sap_service_order", "s.sap_service_order"), ("sold_to", "p.sap_customer")),
    join="JOIN sap.service_orders s ON s.region = q.region"
    " AND s.work_order_id = q.work_order_id AND s.sap_service_order IS NOT NULL"
    " JOIN sap.partners p ON p.account_id = s.account_id AND p.sap_customer IS NOT NULL",
)


# -- filled by the event handlers ----------------------------------------------------
def upsert_service_order(conn: Connection[Any], changed: WorkOrderChanged) -> bool:
    """Make the work order's service order what SAP should hold, if this news is newer
    and changes something SAP holds (description, priority, rejection); True when
    something is to be sent."""
    title = (changed.title or f"{changed.type} site {changed.site_id}").strip()
    row = conn.execute(
        "INSERT INTO sap.service_orders (region, work_order_id, reference, account_id,"
        " description, priority, requested_start, rejected, desired_at)"
        " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)"
        " ON CONFLICT (region, work_order_id) DO UPDATE SET"
        "  description = EXCLUDED.description, priority = EXCLUDED.priority,"
        "  rejected = sap.service_orders.rejected OR EXCLUDED.rejected,"
        "  desired_at = EXCLUDED.desired_at, state = 'pending', attempts = 0,"
        "  next_attempt_at = now(), dead_reason = NULL, dead_at = NULL"
        " WHERE sap.service_orders.desired_at < EXCLUDED.desired_at"
        "  AND (sap.service_orders.description, sap.service_orders.priority,"
        "       sap.service_orders.rejected)"
        "   IS DISTINCT FROM (EXCLUDED.description, EXCLUDED.priority,"
        "       sap.service_orders.rejected OR EXCLUDED.rejected)"
        " RETURNING 1",
        (
            changed.region,
            changed.work_order_id,
            service_order_reference(changed.region, changed.work_order_id),
            changed.account_id,
            title[:40] or "work order",
            changed.priority,
            changed.appointment_start,
            changed.status == "cancelled",
            changed.at,
        ),
    ).fetchone()
    return row is not None


def record_presence(conn: Connection[Any], event_id: UUID, changed: WorkOrderChanged) -> None:
    """One sample of the work order's on-site state (labour time is summed from them)."""
    conn.execute(
        "INSERT INTO sap.service_time (event_id, region, work_order_id, at, on_site)"
        " VALUES (%s, %s, %s, %s, %s) ON CONFLICT (event_id) DO NOTHING",
        (event_id, changed.region, changed.work_order_id, changed.at, changed.on_site),
    )


def record_parts(conn: Connection[Any], used: WorkOrderPartsUsed) -> None:
    for part in used.parts:
        conn.execute(
            "INSERT INTO sap.service_parts (region, part_use_id, part_no, work_order_id,"
            " quantity, unit_value, currency) VALUES (%s, %s, %s, %s, %s, %s, %s)"
            " ON CONFLICT DO NOTHING",
            (used.region, used.part_use_id, part.part_no, used.work_order_id,
             part.quantity, part.unit_value, part.currency),
        )  # fmt: skip


def queue_confirmation(conn: Connection[Any], changed: WorkOrderChanged) -> bool:
    """Queue the confirmation of this completion: the on-site time and the parts not
    confirmed yet, which it then carries; False when it is queued already."""
    reference = confirmation_reference(changed.region, changed.work_order_id, changed.reopen_count)
    key = (changed.region, changed.work_order_id)
    samples = conn.execute(
        "SELECT at, on_site FROM sap.service_time WHERE region = %s AND work_order_id = %s"
        " AND confirmation IS NULL AND at <= %s",
        (*key, changed.at),
    ).fetchall()
    parts = conn.execute(
        "SELECT part_no, sum(quantity) FROM sap.service_parts WHERE region = %s"
        " AND work_order_id = %s AND confirmation IS NULL GROUP BY part_no ORDER BY part_no",
        key,
    ).fetchall()
    description = conn.execute(
        "SELECT description FROM sap.service_orders WHERE region = %s AND work_order_id = %s",
        key,
    ).fetchone()
    row = conn.execute(
        "INSERT INTO sap.service_confirmations (reference, region, work_order_id,"
        " description, labour_hours, parts) VALUES (%s, %s, %s, %s, %s, %s)"
        " ON CONFLICT (reference) DO NOTHING RETURNING 1",
        (
            reference,
            *key,
            description[0] if description else "work order",
            labour_hours([(at, on_site) for at, on_site in samples]),
            Jsonb([{"part_no": p, "quantity": int(q)} for p, q in parts]),
        ),
    ).fetchone()
    if row is None:
        return False
    conn.execute(
        "UPDATE sap.service_time SET confirmation = %s WHERE region = %s"
        " AND work_order_id = %s AND confirmation IS NULL AND at <= %s",
        (reference, *key, changed.at),
    )
    conn.execute(
        "UPDATE sap.service_parts SET confirmation = %s WHERE region = %s"
        " AND work_order_id = %s AND confirmation IS NULL",
        (reference, *key),
    )
    return True


# -- the delta poll ---------------------------------------------------------------------
def watermark(conn: Connection[Any], name: str) -> datetime | None:
    row = conn.execute("SELECT value FROM sap.watermarks WHERE name = %s", (name,)).fetchone()
    return row[0] if row else None


def set_watermark(conn: Connection[Any], name: str, value: datetime) -> None:
    """Move the watermark forward (never back)."""
    conn.execute(
        "INSERT INTO sap.watermarks (name, value) VALUES (%s, %s) ON CONFLICT (name)"
        " DO UPDATE SET value = GREATEST(sap.watermarks.value, EXCLUDED.value),"
        " updated_at = now()",
        (name, value),
    )


def apply_sap_status(conn: Connection[Any], record: ServiceOrderRecord) -> Event | None:
    """Record SAP's status of one of our service orders; emit ``service_order.changed``
    (in this transaction) when SAP's status moved and it was not our own doing — a
    rejection we sent is recorded as ours when it was exported. The event, or None."""
    row = conn.execute(
        "SELECT region, work_order_id, sap_status, rejected FROM sap.service_orders"
        " WHERE reference = %s FOR UPDATE",
        (record.reference,),
    ).fetchone()
    if row is None or row[2] == record.status:
        return None
    region, work_order_id, _, ours = row
    conn.execute(
        "UPDATE sap.service_orders SET sap_status = %s, sap_reason = %s, sap_changed_at = %s,"
        " sap_service_order = COALESCE(sap_service_order, %s) WHERE reference = %s",
        (record.status, record.reason or None, record.changed_at, record.service_order,
         record.reference),
    )  # fmt: skip
    if record.status == "rejected" and ours:
        return None  # our own rejection (a cancelled work order), read back before recorded
    changed_at = record.changed_at or datetime.now().astimezone()
    payload = ServiceOrderChanged(
        work_order_id=work_order_id,
        region=region,
        reference=record.reference,
        service_order=record.service_order,
        status=record.status,
        reason=record.reason,
        changed_at=changed_at,
    )
    event = Event(
        id=service_order_event_id(record.reference, record.status, changed_at),
        name=SERVICE_ORDER_CHANGED,
        region=region,
        source="sap",
        occurred_at=changed_at,
        payload=payload.model_dump(mode="json"),
    )
    emit(conn, "sap", event)
    return event


# -- reconciliation ---------------------------------------------------------------------
def service_orders_of_day(conn: Connection[Any], region: str, day: date) -> list[tuple[str, str]]:
    """(reference, SAP's number) of ``region``'s service orders first exported on UTC
    ``day``."""
    return _exported_on(conn, "service_orders", "sap_service_order", region, day)


def confirmations_of_day(conn: Connection[Any], region: str, day: date) -> list[tuple[str, str]]:
    return _exported_on(conn, "service_confirmations", "sap_confirmation", region, day)


def _exported_on(
    conn: Connection[Any], table: str, sap_column: str, region: str, day: date
) -> list[tuple[str, str]]:
    rows = conn.execute(
        f"SELECT reference, {sap_column} FROM sap.{table} WHERE region = %s"
        " AND (exported_at AT TIME ZONE 'UTC')::date = %s ORDER BY reference",
        (region, day),
    ).fetchall()
    return [(r[0], r[1]) for r in rows]
