"""What the support service takes and gives: bounded pydantic models (the API's too)."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from enum import StrEnum
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

from cloud.support.lifecycle import Kind, Priority, State
from contracts.topics import Region

__all__ = [
    "PLAN_CODE_PATTERN",
    "Change",
    "Link",
    "LinkKind",
    "QueueFilter",
    "Sla",
    "StaffMove",
    "Ticket",
    "TicketDetail",
    "TicketEvent",
    "TicketIn",
    "TicketRate",
]

PLAN_CODE_PATTERN = r"^[a-z0-9][a-z0-9_-]{0,31}$"
#: A link's reference: a site id, a document number (INV-…), a work order id.
REF_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_./-]{0,63}$"
Subject = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
Text = Annotated[str, StringConstraints(strip_whitespace=True, max_length=4000)]
Note = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=4000)]
PersonId = Annotated[str, StringConstraints(min_length=1, max_length=64)]


class Change(StrEnum):
    """What a change request asks for."""

    PLAN_CHANGE = "plan_change"
    MOVE = "move"
    ADD_BATTERY = "add_battery"


class LinkKind(StrEnum):
    SITE = "site"
    INVOICE = "invoice"
    WORK_ORDER = "work_order"


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Link(_Model):
    kind: LinkKind
    ref: Annotated[str, Field(pattern=REF_PATTERN)]


class TicketIn(_Model):
    """A new ticket as the customer (or staff for them) raises it. A fault report names
    the site; a plan change the plan and the date it starts."""

    kind: Kind
    change: Change | None = None
    priority: Priority = Priority.NORMAL
    subject: Subject
    description: Text = ""
    site_id: int | None = Field(default=None, ge=1, le=2**62)
    invoice_number: Annotated[str | None, Field(pattern=REF_PATTERN)] = None
    plan_code: Annotated[str | None, Field(pattern=PLAN_CODE_PATTERN)] = None
    plan_from: date | None = Field(default=None, ge=date(2000, 1, 1), le=date(2100, 1, 1))
    language: Literal["en", "es"] = "en"

    @model_validator(mode="after")
    def _consistent(self) -> TicketIn:
        if (self.kind == Kind.CHANGE_REQUEST) != (self.change is not None):
            raise ValueError("change is required for a change_request, and only there")
        plan = self.change == Change.PLAN_CHANGE
        if plan != (self.plan_code is not None and self.plan_from is not None):
            raise ValueError("a plan_change needs plan_code and plan_from (and only it)")
        if self.kind == Kind.FAULT_REPORT and self.site_id is None:
            raise ValueError("a fault_report names the site (site_id)")
        return self


class StaffMove(_Model):
    """A state change by staff; a complaint's resolution carries outcome and reasons."""

    state: State
    note: Text = ""
    outcome: Text = ""
    reasons: Text = ""


class TicketEvent(_Model):
    """One line of a ticket's history."""

    at: datetime
    actor: str
    actor_role: str
    action: str
    from_state: State | None
    to_state: State | None
    note: str
    visible_to_customer: bool


class Sla(_Model):
    """One SLA clock: due time (None while paused), when met, business seconds used,
    target, breached."""

    due: datetime | None
    met_at: datetime | None
    used_s: int
    target_s: int
    breached: bool


class Ticket(_Model):
    id: int
    region: Region
    account_id: str
    jurisdiction: str
    language: str
    kind: Kind
    change: Change | None
    priority: Priority
    state: State
    subject: str
    description: str
    created_by: str
    assignee: str | None
    plan_code: str | None
    plan_from: date | None
    approved_at: datetime | None
    approved_by: str | None
    work_order_id: int | None
    work_requested_at: datetime | None
    outcome: str | None
    reasons: str | None
    created_at: datetime
    first_response_at: datetime | None
    resolved_at: datetime | None
    closed_at: datetime | None
    first_response_due: datetime | None
    resolution_due: datetime | None
    updated_at: datetime


class TicketDetail(_Model):
    """A ticket with its links, its history (a customer: only the lines meant for it)
    and its SLA clocks at the time of asking."""

    ticket: Ticket
    links: list[Link]
    history: list[TicketEvent]
    first_response: Sla
    resolution: Sla


class QueueFilter(_Model):
    """The staff queue's filters (None: any)."""

    state: State | None = None
    kind: Kind | None = None
    priority: Priority | None = None
    assignee: PersonId | None = None
    account_id: PersonId | None = None
    open_only: bool = True


class TicketRate(_Model):
    """Tickets of a kind (``all``: every kind) raised in a local month (``YYYY-MM``) per
    1,000 of the region's customers at its end (:mod:`cloud.support.metrics`; None
    without customers)."""

    month: Annotated[str, Field(pattern=r"^[0-9]{4}-[0-9]{2}$", max_length=7)]
    kind: Annotated[str, Field(max_length=32)]
    tickets: Annotated[int, Field(ge=0)]
    customers: Annotated[int, Field(ge=0)]
    per_thousand: Decimal | None
