"""The dispatch service's events (``workorder.*``): names and the payload, shared by
producer and consumer like :mod:`cloud.events.alerts`. Dispatch builds them; alerts (a
site under a technician's work is out of service for alarms), config (remote commands
and config pushes to a site are held while a technician is on it), notify, support,
billing and SAP parse them with :class:`WorkOrderChanged`, importing nothing of dispatch.

One event per recorded transition, named after the state the work order entered
(``workorder.on_site``, ``workorder.closed`` …), plus ``workorder.created``; the payload
carries the work order after the transition, so a consumer that missed nothing knows
its whole state, and one that cares only about being on site reads :attr:`on_site`.

Appointments are not transitions: the work order's state does not change when the
customer is offered windows, confirms one or is reminded of it. Those events are named
after what happened to the appointment (``workorder.appointment_offered``,
``workorder.appointment_confirmed``, ``workorder.appointment_reminder``), their payload
is the work order as it stands (``status`` and ``from_status`` both its current state,
``action`` ``offer``/``reschedule``/``confirm``/``remind``) plus the appointment fields,
so a consumer that follows the state (holds, out of service) reads nothing new.

Parts used on a job are not transitions either: ``workorder.parts_used``
(:class:`WorkOrderPartsUsed`) is the work order as it stands (action ``parts_used``) plus
the parts taken from the region's stock — part numbers, quantities and, where the stock
carries one, the unit valuation in the region's currency — for billing and SAP. One event
per recorded use, emitted in its transaction: a retried request (same idempotency key)
records nothing and emits nothing again.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

__all__ = [
    "APPOINTMENT_EVENTS",
    "CHARGE_REASONS",
    "WORKORDER_APPOINTMENT_CONFIRMED",
    "WORKORDER_APPOINTMENT_OFFERED",
    "WORKORDER_APPOINTMENT_REMINDER",
    "WORKORDER_CHARGEABLE_COMPLETED",
    "WORKORDER_CREATED",
    "WORKORDER_PARTS_USED",
    "WORKORDER_PREFIX",
    "ChargeReason",
    "ChargedPart",
    "OfferedWindow",
    "Priority",
    "UsedPart",
    "WorkOrderChanged",
    "WorkOrderChargeable",
    "WorkOrderPartsUsed",
    "workorder_event_name",
]

#: Every dispatch event's name starts so (``*.dispatch.workorder.*`` subscribes to all).
WORKORDER_PREFIX = "workorder."
#: A work order was raised (by an alert policy, by hand, or as a MOSIE's incident).
WORKORDER_CREATED = "workorder.created"
#: The customer was offered arrival windows (on assignment, by the sweep, or rescheduled).
WORKORDER_APPOINTMENT_OFFERED = "workorder.appointment_offered"
#: The customer (or staff on their behalf) confirmed one of the windows.
WORKORDER_APPOINTMENT_CONFIRMED = "workorder.appointment_confirmed"
#: A reminder of the confirmed window is due (once per lead: a day, an hour before).
WORKORDER_APPOINTMENT_REMINDER = "workorder.appointment_reminder"
#: Parts were taken from the region's stock for the job (:class:`WorkOrderPartsUsed`).
WORKORDER_PARTS_USED = "workorder.parts_used"
#: A work order chargeable to the customer was completed (:class:`WorkOrderChargeable`):
#: billing invoices its parts and labour. Once per work order, in the resolve's
#: transaction; its status is the resolve's (``resolved``), its action ``chargeable``.
WORKORDER_CHARGEABLE_COMPLETED = "workorder.chargeable_completed"
#: Why a customer pays for a job (business.md §6: PoTR's system is PoTR's cost).
ChargeReason = Literal["customer_damage", "customer_equipment"]
CHARGE_REASONS: tuple[ChargeReason, ...] = ("customer_damage", "customer_equipment")
#: The appointment events: no state of their own (see the module's docstring).
APPOINTMENT_EVENTS = frozenset(
    {WORKORDER_APPOINTMENT_OFFERED, WORKORDER_APPOINTMENT_CONFIRMED, WORKORDER_APPOINTMENT_REMINDER}
)

#: P1 (safety, within hours) … P4 (planned).
Priority = Literal["P1", "P2", "P3", "P4"]


def workorder_event_name(status: str) -> str:
    """The event of a transition into ``status`` (``on_site`` → ``workorder.on_site``)."""
    return f"{WORKORDER_PREFIX}{status}"


class OfferedWindow(BaseModel):
    """An arrival window offered to the customer, [start, end); ``label`` in the site's
    local time (for people)."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    start: datetime
    end: datetime
    label: str
    past_sla: bool = False


class WorkOrderChanged(BaseModel):
    """Payload of every ``workorder.*`` event: the work order after the transition and
    the transition itself (``action`` and ``from_status``; None for ``created``)."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    work_order_id: int
    region: str
    site_id: int
    #: The site's gateways as dispatch knows them (the registry's): what holds apply to.
    gateway_ids: list[str] = Field(default_factory=list)
    account_id: str | None = None
    type: str
    priority: Priority
    #: The work order's title (what SAP's service order description shows); None from
    #: producers older than it.
    title: str | None = None
    status: str
    from_status: str | None = None
    action: str | None = None
    #: Who acted: an employee number, a user id, or ``system``.
    actor: str | None = None
    at: datetime
    #: The technician's employee number, once assigned.
    assignee: str | None = None
    #: True while a technician is working on the site (the lifecycle's on-site states):
    #: alarms of the site are out of service, remote commands and config pushes held.
    on_site: bool = False
    #: The alarm that raised it (alert policies), if any.
    alarm_id: int | None = None
    #: Where it came from: ``hand`` (the office), ``policy`` (an alert policy) or
    #: ``incident`` (a MOSIE found it on site during the job ``found_on``).
    origin: str | None = None
    found_on: int | None = None
    #: The support ticket it was raised for (``origin`` support), if any.
    ticket_id: int | None = None
    visits: int = 0
    reopen_count: int = 0
    #: The confirmed arrival window, if any (the booked window).
    appointment_start: datetime | None = None
    appointment_end: datetime | None = None
    #: The windows of the live offer (on ``workorder.appointment_offered``).
    offered: list[OfferedWindow] = Field(default_factory=list)
    #: The reminder's lead in seconds (on ``workorder.appointment_reminder``).
    reminder_lead_s: int | None = None


class UsedPart(BaseModel):
    """Parts of one number taken for a job; ``unit_value`` (per part) and ``value`` (all
    of them) in ``currency``, the region's stock valuation when the use was recorded —
    None where the stock carries no valuation."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    part_no: str
    quantity: int
    unit_value: Decimal | None = None
    value: Decimal | None = None
    currency: str | None = None


class ChargedPart(BaseModel):
    """A part used on a chargeable job, at the unit cost recorded when it was used (one
    entry per use: the same part used twice is two entries)."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    part_no: str = Field(min_length=1, max_length=64)
    description: str = Field(default="", max_length=200)
    quantity: int = Field(ge=1, le=100_000)
    #: The stock's recorded cost per unit then (None: the stock had no cost for it).
    unit_cost: Decimal | None = Field(default=None, ge=0, le=999_999, decimal_places=2)
    currency: Literal["AUD", "USD", "EUR"] | None = None


class WorkOrderChargeable(WorkOrderChanged):
    """Payload of ``workorder.chargeable_completed``: the work order as resolved plus what
    the customer is charged for — the reason and its note, every part used on the job at
    its recorded unit cost, and the labour: whole minutes the technician was on site
    (arrive to leave, every visit, from the work order's history)."""

    reason: ChargeReason
    note: str = Field(default="", max_length=500)
    parts: list[ChargedPart] = Field(default_factory=list, max_length=500)
    labour_minutes: int = Field(ge=0, le=100_000)
    completed_at: datetime


class WorkOrderPartsUsed(WorkOrderChanged):
    """Payload of ``workorder.parts_used``: the work order as it stands (``status`` and
    ``from_status`` its current state, ``action`` ``parts_used``) plus the use
    (``part_use_id``, dispatch's id of the record: billing's and SAP's dedupe key) and
    its parts."""

    part_use_id: int
    parts: list[UsedPart] = Field(default_factory=list)
