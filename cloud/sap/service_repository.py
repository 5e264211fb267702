"""The ``sap`` schema's SQL for work orders: the service-order and confirmation queues
(filled by the ``workorder.*`` handlers), their claims and outcomes, the delta poll's
watermark and SAP's status. Functions over a connection in the caller's transaction.

Claims and outcomes follow :mod:`cloud.sap.repository`: a claim leases rows under a
fresh ``lease_id``; an outcome is recorded only while that lease is still the row's.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any
from uuid import UUID, uuid4

from cloud.adapters.postgres import Connection, Jsonb
from cloud.events.outbox import Event, emit
from cloud.events.service_orders import (
    SERVICE_ORDER_CHANGED,
    ServiceOrderChanged,
    service_order_event_id,
)
from cloud.events.workorders import WorkOrderChanged, WorkOrderPartsUsed
from cloud.sap.service_documents import (
    ServiceOrderRecord,
    confirmation_reference,
    labour_hours,
    service_order_reference,
)

__all__ = [
    "ClaimedConfirmation",
    "ClaimedServiceOrder",
    "apply_sap_status",
    "claim_confirmations",
    "claim_service_orders",
    "confirmation_exported",
    "confirmations_of_day",
    "mark_dead",
    "mark_retry",
    "queue_confirmation",
    "record_parts",
    "record_presence",
    "service_order_exported",
    "service_orders_of_day",
    "service_queue_counts",
    "set_watermark",
    "upsert_service_order",
    "watermark",
]

#: The tables of this module's queues, each keyed by its ``reference``.
_TABLES = frozenset({"service_orders", "service_confirmations"})


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


# -- claims ---------------------------------------------------------------------------
def claim_service_orders(
    conn: Connection[Any], now: datetime, lease_s: float, limit: int
) -> list[ClaimedServiceOrder]:
    """Due service orders whose account's business partner SAP holds (the sold-to
    party), or that name no account (the exporter dead-letters those)."""
    lease = uuid4()
    rows = conn.execute(
        "UPDATE sap.service_orders s SET lease_id = %s, lease_until = %s"
        " FROM (SELECT s2.reference, p.sap_customer FROM sap.service_orders s2"
        "  LEFT JOIN sap.partners p ON p.account_id = s2.account_id"
        "  WHERE s2.state = 'pending' AND s2.next_attempt_at <= %s"
        "  AND (s2.lease_until IS NULL OR s2.lease_until < %s)"
        "  AND (s2.account_id IS NULL OR p.sap_customer IS NOT NULL)"
        "  ORDER BY s2.next_attempt_at LIMIT %s FOR UPDATE OF s2 SKIP LOCKED) due"
        " WHERE s.reference = due.reference"
        " RETURNING s.reference, s.region, s.work_order_id, s.description, s.priority,"
        "  s.requested_start, s.rejected, s.attempts, s.outcome_unknown, due.sap_customer",
        (lease, now + timedelta(seconds=lease_s), now, now, limit),
    ).fetchall()
    return [
        ClaimedServiceOrder(
            reference=r[0],
            region=r[1],
            work_order_id=r[2],
            description=r[3],
            priority=r[4],
            requested_start=r[5],
            rejected=r[6],
            attempts=r[7],
            lease_id=lease,
            outcome_unknown=r[8],
            sold_to=r[9],
        )
        for r in sorted(rows, key=lambda r: r[0])
    ]


def claim_confirmations(
    conn: Connection[Any], now: datetime, lease_s: float, limit: int
) -> list[ClaimedConfirmation]:
    """Due confirmations whose service order SAP holds already."""
    lease = uuid4()
    rows = conn.execute(
        "UPDATE sap.service_confirmations c SET lease_id = %s, lease_until = %s"
        " FROM (SELECT c2.reference, s.sap_service_order, p.sap_customer"
        "  FROM sap.service_confirmations c2"
        "  JOIN sap.service_orders s ON s.region = c2.region"
        "   AND s.work_order_id = c2.work_order_id AND s.sap_service_order IS NOT NULL"
        "  JOIN sap.partners p ON p.account_id = s.account_id AND p.sap_customer IS NOT NULL"
        "  WHERE c2.state = 'pending' AND c2.next_attempt_at <= %s"
        "  AND (c2.lease_until IS NULL OR c2.lease_until < %s)"
        "  ORDER BY c2.next_attempt_at LIMIT %s FOR UPDATE OF c2 SKIP LOCKED) due"
        " WHERE c.reference = due.reference"
        " RETURNING c.reference, c.region, c.work_order_id, c.description, c.labour_hours,"
        "  c.parts, c.attempts, c.outcome_unknown, due.sap_service_order, due.sap_customer",
        (lease, now + timedelta(seconds=lease_s), now, now, limit),
    ).fetchall()
    return [
        ClaimedConfirmation(
            reference=r[0],
            region=r[1],
            work_order_id=r[2],
            description=r[3],
            labour_hours=r[4],
            parts=r[5],
            attempts=r[6],
            lease_id=lease,
            outcome_unknown=r[7],
            sap_service_order=r[8],
            sold_to=r[9],
        )
        for r in sorted(rows, key=lambda r: r[0])
    ]


# -- outcomes (only while the lease is still ours) --------------------------------------
def service_order_exported(
    conn: Connection[Any], claim: ClaimedServiceOrder, sap_service_order: str, now: datetime
) -> bool:
    """SAP holds the order as the claim wanted it (rejected too, if it was to be)."""
    cur = conn.execute(
        "UPDATE sap.service_orders SET state = 'exported', sap_service_order = %s,"
        " exported_at = COALESCE(exported_at, %s), outcome_unknown = false, last_error = NULL,"
        " lease_id = NULL, lease_until = NULL,"
        " sap_status = CASE WHEN %s THEN 'rejected' ELSE sap_status END"
        " WHERE reference = %s AND lease_id = %s",
        (sap_service_order, now, claim.rejected, claim.reference, claim.lease_id),
    )
    return cur.rowcount == 1


def confirmation_exported(
    conn: Connection[Any], claim: ClaimedConfirmation, sap_confirmation: str, now: datetime
) -> bool:
    cur = conn.execute(
        "UPDATE sap.service_confirmations SET state = 'exported', sap_confirmation = %s,"
        " exported_at = %s, outcome_unknown = false, last_error = NULL, lease_id = NULL,"
        " lease_until = NULL WHERE reference = %s AND lease_id = %s",
        (sap_confirmation, now, claim.reference, claim.lease_id),
    )
    return cur.rowcount == 1


def mark_retry(
    conn: Connection[Any],
    table: str,
    reference: str,
    lease_id: UUID,
    error: str,
    *,
    unknown: bool,
    next_at: datetime,
) -> bool:
    assert table in _TABLES  # names from this package only, never input
    cur = conn.execute(
        f"UPDATE sap.{table} SET attempts = attempts + 1, last_error = %s,"
        " outcome_unknown = outcome_unknown OR %s, next_attempt_at = %s, lease_id = NULL,"
        " lease_until = NULL WHERE reference = %s AND lease_id = %s",
        (error[:1000], unknown, next_at, reference, lease_id),
    )
    return cur.rowcount == 1


def mark_dead(
    conn: Connection[Any],
    table: str,
    reference: str,
    lease_id: UUID,
    reason: str,
    now: datetime,
    *,
    attempted: bool = True,
) -> bool:
    assert table in _TABLES
    cur = conn.execute(
        f"UPDATE sap.{table} SET state = 'dead', dead_reason = %s, dead_at = %s,"
        " attempts = attempts + %s, last_error = %s, lease_id = NULL, lease_until = NULL"
        " WHERE reference = %s AND lease_id = %s",
        (reason[:1000], now, int(attempted), reason[:1000], reference, lease_id),
    )
    return cur.rowcount == 1


def service_queue_counts(conn: Connection[Any]) -> dict[str, dict[str, int]]:
    """``{"service_orders": {"exported": n, ...}, "service_confirmations": {...}}``."""
    out: dict[str, dict[str, int]] = {}
    for table in sorted(_TABLES):
        rows = conn.execute(f"SELECT state, count(*) FROM sap.{table} GROUP BY state").fetchall()
        out[table] = {state: int(n) for state, n in rows}
    return out


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
    rows = conn.execute(
        "SELECT reference, sap_service_order FROM sap.service_orders WHERE region = %s"
        " AND (exported_at AT TIME ZONE 'UTC')::date = %s ORDER BY reference",
        (region, day),
    ).fetchall()
    return [(r[0], r[1]) for r in rows]


def confirmations_of_day(conn: Connection[Any], region: str, day: date) -> list[tuple[str, str]]:
    rows = conn.execute(
        "SELECT reference, sap_confirmation FROM sap.service_confirmations WHERE region = %s"
        " AND (exported_at AT TIME ZONE 'UTC')::date = %s ORDER BY reference",
        (region, day),
    ).fetchall()
    return [(r[0], r[1]) for r in rows]
