"""Work orders as notifications: which of dispatch's ``workorder.*`` events tell whom
(pure, :func:`plan_workorder_notices`), and notify's memory of who each work order was
last with (:func:`last_assignee`, :func:`remember_assignee`).

An event is judged by the state the work order entered *and* the action that took it
there: an SLA breach re-announces the current state (``workorder.assigned`` with action
``sla``), and that must not tell a technician again that the job is theirs.

* **The technician** (the user whose employee number is the event's ``assignee``, in
  the event's region): a job assigned or reassigned to them (``job_assigned``), a job of
  theirs cancelled (``job_cancelled``). Through notify's memory of the previous
  technician: a job taken from them by a reassignment (``job_reassigned``) and a job
  they did reopened because the fault came back (``job_reopened``; the reopened job
  has no technician any more).
* **The site's customer** (the account's users, as alarm notices): a technician is
  being arranged — on creation and again on a reopen (``visit_arranged``); the
  technician is on the way (``technician_on_the_way``); the visit could not be
  completed, so access must be arranged again (``visit_not_completed``); the repair is
  done and being watched (``repair_done``); the repair is confirmed by the site's own
  data (``repair_confirmed``, on ``verified``: closing after it is the company's
  bookkeeping); the visit is cancelled (``visit_cancelled``). Accepted, on site, on
  hold, closed, rescheduling and SLA breaches tell the customer nothing.
* **Appointments** (``workorder.appointment_*``, no state of their own): the customer
  hears of the windows offered (``appointment_offered``: how many and the earliest),
  the window confirmed (``appointment_confirmed``) and each reminder
  (``appointment_reminder``), linked to the job's portal page where they choose or
  reschedule; the assigned technician hears of the confirmed window
  (``job_appointment``). These carry the window as moments (shown in the reader's zone).
* **The region's operators**: a job that needs a dispatcher again
  (``job_needs_dispatch``) — declined by its technician, on hold waiting for parts,
  not completable on site, or reopened.

Each notification's id derives from the event's id and the audience, so a redelivered
event tells nobody twice. Messages carry no times: a work order's event has no site
zone, and what happened is news enough — except appointments, whose point is the time.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from cloud.adapters.postgres import Connection
from cloud.events.outbox import Event
from cloud.events.workorders import (
    WORKORDER_APPOINTMENT_CONFIRMED,
    WORKORDER_APPOINTMENT_OFFERED,
    WORKORDER_APPOINTMENT_REMINDER,
    WORKORDER_CREATED,
    WorkOrderChanged,
)
from cloud.notify.models import ACCOUNT_ID_PATTERN, Category, LocalText, Notification, Severity

__all__ = [
    "WorkOrderNotice",
    "job_words",
    "last_assignee",
    "plan_workorder_notices",
    "previous_technician",
    "remember_assignee",
]

#: Namespace of notification ids derived from work-order event ids.
_NOTIFICATION_NS = uuid.UUID("0f3e7d52-3c1a-4f4e-9a0b-5d2c8e1b7a64")
#: A job's type as a customer reads it (dispatch's ``WorkOrderType`` values).
_JOB_WORDS: dict[str, LocalText] = {
    "isolator_fault": LocalText(en="DC isolator fault", es="Avería del seccionador de CC"),
    "inverter_fault": LocalText(en="Inverter fault", es="Avería del inversor"),
    "battery_fault": LocalText(en="Battery fault", es="Avería de la batería"),
    "production_shortfall": LocalText(
        en="Production below expectation", es="Producción inferior a la esperada"
    ),
    "meter_replacement": LocalText(en="Meter replacement", es="Sustitución del contador"),
    "inspection": LocalText(en="Inspection", es="Inspección"),
}
#: Why a job is back on the operators' desk, by the action that put it there.
_DISPATCH_REASONS: dict[str, LocalText] = {
    "decline": LocalText(
        en="The technician declined it; it has nobody assigned.",
        es="El técnico la rechazó; no tiene a nadie asignado.",
    ),
    "hold": LocalText(
        en="It is on hold, waiting for parts.",
        es="Está en espera de piezas.",
    ),
    "cannot_complete": LocalText(
        en="The technician could not complete it (no access to the site).",
        es="El técnico no pudo completarla (sin acceso a la instalación).",
    ),
    "reopen": LocalText(
        en="The fault came back after the repair: it was reopened and needs a technician.",
        es="La avería volvió tras la reparación: se reabrió y necesita un técnico.",
    ),
}
_STAFF_SEVERITY = {"P1": Severity.URGENT, "P2": Severity.WARNING}
_CONTROL = re.compile(r"[\x00-\x1f\x7f]+")


@dataclass(frozen=True)
class WorkOrderNotice:
    """One notification a work order's event makes and whom it goes to: the users of
    ``account_id``, the region's people of ``roles``, or the technician ``employee_no``."""

    audience: str
    notification: Notification
    account_id: str | None = None
    roles: tuple[str, ...] = ()
    employee_no: str | None = None


def job_words(work_type: str) -> LocalText:
    """``work_type`` in plain words; a type this list does not know yet, as its name."""
    known = _JOB_WORDS.get(work_type)
    if known is not None:
        return known
    plain = _CONTROL.sub(" ", work_type).replace("_", " ").strip()[:100] or "-"
    return LocalText(en=plain.capitalize(), es=plain.capitalize())


def plan_workorder_notices(
    event: Event, order: WorkOrderChanged, before: str | None, now: datetime
) -> list[WorkOrderNotice]:
    """The notifications of ``event`` (a ``workorder.*`` event with payload ``order``)
    made at ``now``. ``before``: the technician the work order was last with before this
    event, as notify remembers it (None: nobody, or not known)."""
    region = event.region
    account = order.account_id
    if account is not None and re.fullmatch(ACCOUNT_ID_PATTERN, account) is None:
        account = None  # not an account notify's users belong to: nobody to tell there
    site = LocalText(en=f"site {order.site_id}", es=f"instalación {order.site_id}")
    params: dict[str, Any] = {
        "work_order": str(order.work_order_id),
        "job": job_words(order.type),
        "site": site,
        "priority": order.priority,
    }
    staff_link = f"/ui/{region.value}/workorders/{order.work_order_id}"
    customer_link = f"/ui/{region.value}/sites/{order.site_id}"
    notices: list[WorkOrderNotice] = []

    def notification(audience: str, kind: str, link: str, **extra: Any) -> Notification:
        staff = audience != "customer"
        return Notification(
            id=uuid.uuid5(_NOTIFICATION_NS, f"{event.id}/{audience}"),
            kind=kind,
            category=Category.NOTICE,
            severity=_STAFF_SEVERITY.get(order.priority, Severity.INFO) if staff else Severity.INFO,
            region=region,
            account_id=account,
            link=link,
            params=params | extra,
            created_at=now,
        )

    def to_customer(kind: str, link: str = customer_link, **extra: Any) -> None:
        if account is not None:
            n = notification("customer", kind, link, **extra)
            notices.append(WorkOrderNotice("customer", n, account_id=account))

    def to_technician(audience: str, kind: str, employee_no: str | None, **extra: Any) -> None:
        if employee_no:
            n = notification(audience, kind, staff_link, **extra)
            notices.append(WorkOrderNotice(audience, n, employee_no=employee_no))

    window: dict[str, Any] = {}
    if order.appointment_start is not None and order.appointment_end is not None:
        window = {"window_start": order.appointment_start, "window_end": order.appointment_end}
    if event.name == WORKORDER_APPOINTMENT_OFFERED and order.offered:
        first = order.offered[0]
        choose = {"windows": len(order.offered), "first_start": first.start}
        to_customer("appointment_offered", staff_link, **choose, first_end=first.end)
        return notices
    if event.name == WORKORDER_APPOINTMENT_CONFIRMED and window:
        to_customer("appointment_confirmed", staff_link, **window)
        to_technician("assignee", "job_appointment", order.assignee, **window)
        return notices
    if event.name == WORKORDER_APPOINTMENT_REMINDER and window:
        to_customer("appointment_reminder", staff_link, **window)
        return notices
    if event.name in (
        WORKORDER_APPOINTMENT_OFFERED,
        WORKORDER_APPOINTMENT_CONFIRMED,
        WORKORDER_APPOINTMENT_REMINDER,
    ):
        return notices  # no window to tell of

    def to_operators(action: str) -> None:
        reason = _DISPATCH_REASONS[action]
        n = notification("operators", "job_needs_dispatch", staff_link, reason=reason)
        notices.append(WorkOrderNotice("operators", n, roles=("operator",)))

    status, action = order.status, order.action
    if event.name == WORKORDER_CREATED:
        to_customer("visit_arranged")
    elif status == "assigned" and action in ("assign", "reassign"):
        to_technician("assignee", "job_assigned", order.assignee)
        if action == "reassign" and before is not None and before != order.assignee:
            to_technician("previous", "job_reassigned", before)
    elif status == "en_route" and action == "start_travel":
        to_customer("technician_on_the_way")
    elif status == "cannot_complete" and action == "cannot_complete":
        to_operators(action)
        to_customer("visit_not_completed")
    elif (status, action) in (("on_hold", "hold"), ("scheduled", "decline")):
        assert action is not None
        to_operators(action)
    elif status == "scheduled" and action == "reopen":
        to_operators(action)
        to_technician("previous", "job_reopened", before)
        to_customer("visit_arranged")
    elif status == "resolved" and action == "resolve":
        to_customer("repair_done")
    elif status == "verified" and action == "verify":
        to_customer("repair_confirmed")
    elif status == "cancelled" and action == "cancel":
        to_technician("assignee", "job_cancelled", order.assignee)
        to_customer("visit_cancelled")
    return notices


# -- who a work order was last with (notify.work_orders) ---------------------------------
def last_assignee(
    conn: Connection[Any], region: str, work_order_id: int
) -> tuple[str, datetime] | None:
    """The technician notify last knew ``work_order_id`` with and when that was said."""
    row = conn.execute(
        "SELECT assignee, assignee_at FROM notify.work_orders"
        " WHERE region = %s AND work_order_id = %s FOR UPDATE",
        (region, work_order_id),
    ).fetchone()
    return (row[0], row[1]) if row is not None else None


def previous_technician(
    remembered: tuple[str, datetime] | None, order: WorkOrderChanged
) -> str | None:
    """Whom ``order``'s event took the job from: the remembered technician, unless an
    event newer than this one named them (a late event judges nothing)."""
    if remembered is None or remembered[1] > order.at:
        return None
    return remembered[0]


def remember_assignee(conn: Connection[Any], region: str, order: WorkOrderChanged) -> None:
    """Keep ``order``'s technician as the one it is with, unless a newer event named
    another (events that clear the technician — decline, reopen — keep the last one)."""
    if order.assignee is None:
        return
    conn.execute(
        "INSERT INTO notify.work_orders (region, work_order_id, assignee, assignee_at)"
        " VALUES (%s, %s, %s, %s) ON CONFLICT (region, work_order_id) DO UPDATE"
        " SET assignee = excluded.assignee, assignee_at = excluded.assignee_at"
        " WHERE notify.work_orders.assignee_at <= excluded.assignee_at",
        (region, order.work_order_id, order.assignee, order.at),
    )
