"""The support service's events (``ticket.*``): names and payloads, shared by producer
and consumers like :mod:`cloud.events.workorders`. Support emits them; dispatch (a fault
report's work order), customers (an approved plan change, which billing then rates) and
notify (the outcome letter of a resolved ticket) parse them, importing nothing of support.

* ``ticket.work_requested`` (:class:`TicketWorkRequested`): staff asked for a work order
  for a fault report; dispatch raises it (``origin`` support, ``ticket_id`` set) and its
  ``workorder.created`` tells support the work order's id.
* ``ticket.plan_change_approved`` (:class:`PlanChangeApproved`): staff approved a plan
  change; customers records the account's new plan from ``effective_from``.
* ``ticket.resolved`` (:class:`TicketResolved`): the outcome (and for a complaint its
  reasons) to write to the customer, in its language, with the jurisdiction whose
  ombudsman text applies.

Ids are derived from the ticket and the step (:func:`ticket_event_id`), so a retried
request that emits again stores one event.
"""

from __future__ import annotations

from datetime import date, datetime
from uuid import UUID, uuid5

from pydantic import BaseModel, ConfigDict

from cloud.events.outbox import Event
from cloud.events.workorders import Priority
from contracts.topics import Region

__all__ = [
    "SOURCE",
    "TICKET_PLAN_CHANGE_APPROVED",
    "TICKET_RESOLVED",
    "TICKET_WORK_REQUESTED",
    "PlanChangeApproved",
    "TicketResolved",
    "TicketWorkRequested",
    "ticket_event",
    "ticket_event_id",
]

TICKET_WORK_REQUESTED = "ticket.work_requested"
TICKET_PLAN_CHANGE_APPROVED = "ticket.plan_change_approved"
TICKET_RESOLVED = "ticket.resolved"
#: The emitting service (the ``source`` of its events).
SOURCE = "support"
_NAMESPACE = UUID("6a0f3c52-9b7e-4d3e-8f0a-2c1d5e7b9a41")


class _Payload(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    ticket_id: int
    region: Region
    account_id: str
    at: datetime


class TicketWorkRequested(_Payload):
    """A work order wanted at ``site_id`` for fault report ``ticket_id``."""

    site_id: int
    priority: Priority
    title: str
    description: str
    requested_by: str


class PlanChangeApproved(_Payload):
    """Account ``account_id`` moves to plan ``plan_code`` from ``effective_from``."""

    plan_code: str
    effective_from: date
    approved_by: str


class TicketResolved(_Payload):
    """What to write to the customer on resolution."""

    kind: str
    subject: str
    language: str
    jurisdiction: str
    outcome: str
    reasons: str


def ticket_event_id(ticket_id: int, step: str) -> UUID:
    """The id of ticket ``ticket_id``'s event for ``step`` (``resolved-3``: the third
    resolution): the same step emits the same id."""
    return uuid5(_NAMESPACE, f"{ticket_id}:{step}")


def ticket_event(name: str, payload: _Payload, step: str) -> Event:
    return Event(
        id=ticket_event_id(payload.ticket_id, step),
        name=name,
        region=payload.region,
        source=SOURCE,
        occurred_at=payload.at,
        payload=payload.model_dump(mode="json"),
    )
