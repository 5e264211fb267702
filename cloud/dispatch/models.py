"""The dispatch service's records, as it stores and answers them.

Bounds repeat ``schema/001_dispatch.sql``'s CHECKs; inputs are validated before any SQL
runs, and a value out of bounds is a :class:`~cloud.dispatch.errors.RefusedError`.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Annotated, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from cloud.dispatch.checklists import TaskId, WorkOrderType
from cloud.dispatch.lifecycle import (
    ActorRole,
    OrderState,
    SlaTimer,
    WorkOrderAction,
    WorkOrderStatus,
)
from cloud.dispatch.photos import ContentType
from cloud.events.workorders import ChargeReason, Priority
from contracts.topics import Region

__all__ = [
    "AppointmentView",
    "BookedWindow",
    "HistoryEntry",
    "IdempotencyKey",
    "KnownSite",
    "LocationRecorded",
    "Note",
    "OfferedSlot",
    "PartNo",
    "PartStock",
    "PartUse",
    "Performance",
    "Photo",
    "ReorderCount",
    "Signature",
    "Tick",
    "WorkOrder",
    "WorkOrderIn",
    "WorkOrderOrigin",
]

#: A client's idempotency key: a UUID fits, and so does any 8-100 url-safe characters.
IDEMPOTENCY_KEY_PATTERN = r"^[A-Za-z0-9_-]{8,100}$"
IdempotencyKey = Annotated[str, Field(pattern=IDEMPOTENCY_KEY_PATTERN)]
PersonId = Annotated[str, Field(min_length=1, max_length=64)]
#: A part number (also the stock table's CHECK).
PART_NO_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"
PartNo = Annotated[str, Field(pattern=PART_NO_PATTERN)]
Title = Annotated[str, Field(min_length=3, max_length=200)]
Description = Annotated[str, Field(max_length=4000)]
#: Characters of a note (a job's, a tick's).
MAX_NOTE = 2000
NoteText = Annotated[str, Field(min_length=1, max_length=MAX_NOTE)]
SignerName = Annotated[str, Field(min_length=1, max_length=200, pattern=r"^\S(?:.*\S)?$")]
#: Where a work order came from: by hand (the office), an alert policy, or an incident a
#: MOSIE found on site during another job.
WorkOrderOrigin = Literal["hand", "policy", "incident", "support"]
#: Each region's currency: the parts stock's valuation is in it.
CURRENCIES: dict[Region, str] = {Region.AU: "AUD", Region.US: "USD", Region.ES: "EUR"}
#: A unit's valuation: cents, at most a billion.
UnitValue = Annotated[Decimal, Field(ge=0, le=1_000_000_000, decimal_places=2)]
#: A part's reorder level or reorder quantity (also the stock table's CHECKs).
MAX_REORDER = 1_000_000
ReorderCount = Annotated[int, Field(ge=0, le=MAX_REORDER)]


class _Record(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class WorkOrderIn(_Record):
    """What a new work order is given (by an alert policy, an operator or a MOSIE)."""

    region: Region
    site_id: int = Field(ge=1, le=2**63 - 1)
    type: WorkOrderType
    priority: Priority
    title: Title
    description: Description = ""
    created_by: PersonId
    alarm_id: int | None = Field(default=None, ge=1, le=2**63 - 1)
    arrive_by: AwareDatetime | None = None
    resolve_by: AwareDatetime | None = None
    origin: WorkOrderOrigin = "hand"
    #: The job an incident was found on (``origin`` incident only).
    found_on: int | None = Field(default=None, ge=1, le=2**63 - 1)
    #: The support ticket it was raised for (``origin`` support only).
    ticket_id: int | None = Field(default=None, ge=1, le=2**63 - 1)


class WorkOrder(_Record):
    """A work order as stored: what it is, its lifecycle state, its SLA due times and
    ``version`` (+ 1 on every change: optimistic concurrency)."""

    id: int
    region: Region
    site_id: int
    account_id: str | None
    type: WorkOrderType
    priority: Priority
    title: str
    description: str
    status: WorkOrderStatus
    assignee: str | None
    visits: int
    reopen_count: int
    verified_at: datetime | None
    sla_breached: frozenset[SlaTimer]
    alarm_id: int | None
    created_by: str
    created_at: datetime
    updated_at: datetime
    arrive_by: datetime | None
    resolve_by: datetime | None
    version: int
    origin: WorkOrderOrigin = "hand"
    found_on: int | None = None
    #: Why the customer pays for this job's parts and labour (None: PoTR's own cost),
    #: with the note of whoever marked it; ``charge_billed_at`` once the completion was
    #: sent to billing (the mark is final then).
    charge_reason: ChargeReason | None = None
    charge_note: str = ""
    charge_billed_at: datetime | None = None
    ticket_id: int | None = None

    def state(self) -> OrderState:
        """The lifecycle's part of it."""
        return OrderState(
            status=self.status,
            assignee=self.assignee,
            visits=self.visits,
            reopen_count=self.reopen_count,
            verified_at=self.verified_at,
            sla_breached=self.sla_breached,
        )


class HistoryEntry(_Record):
    """One transition of a work order (the lifecycle's audit record, stored)."""

    id: int
    work_order_id: int
    at: datetime
    actor: str
    role: ActorRole
    action: WorkOrderAction | str
    from_state: WorkOrderStatus | None
    to_state: WorkOrderStatus
    reason: str | None
    assignee: str | None


class Tick(_Record):
    """A checklist task done on a visit."""

    work_order_id: int
    visit: int
    task_id: TaskId
    by: str
    at: datetime
    photo_key: str | None = None
    note: str | None = None


class Note(_Record):
    id: int
    work_order_id: int
    by: str
    role: ActorRole
    at: datetime
    text: str


class Photo(_Record):
    """A photo's metadata; its bytes are in the photo storage under ``storage_key``."""

    id: int
    work_order_id: int
    storage_key: str
    content_type: ContentType
    bytes: int
    sha256: str
    by: str
    at: datetime


class PartStock(_Record):
    """A part of the region's stock; ``unit_value`` its valuation per unit in
    ``currency`` (the region's), where known."""

    region: Region
    part_no: str
    description: str
    quantity: int
    unit_value: Decimal | None = None
    currency: str | None = None
    #: At or below this many on hand the part is reordered (a use crossing it says so).
    reorder_level: int = 0
    #: How many to reorder; 0: the part is not reordered (no notice).
    reorder_quantity: int = 0


class PartUse(_Record):
    """Parts taken from the region's stock for a job; ``stock_left`` after it."""

    id: int
    work_order_id: int
    region: Region
    part_no: str
    quantity: int
    by: str
    at: datetime
    stock_left: int
    unit_value: Decimal | None = None
    currency: str | None = None


class Signature(_Record):
    """The customer's signature on a visit; the image is in the photo storage."""

    work_order_id: int
    visit: int
    signer_name: str
    storage_key: str
    content_type: ContentType
    bytes: int
    sha256: str
    by: str
    at: datetime


class KnownSite(_Record):
    """A site as the registry announced it, with its enabled gateways."""

    site_id: int
    region: Region
    account_id: str | None
    latitude: float | None
    longitude: float | None
    gateway_ids: tuple[str, ...]


class Performance(_Record):
    """Jobs of a region (one technician's when ``employee_no``) over [since, until):
    resolves (``jobs_done``), those with a due time (``sla_measured``) and those resolved
    by it (``sla_met``); verifications (``verified``) and those of a job with one visit
    and no reopen (``first_time_fixes``; the rate None when nothing was verified)."""

    region: Region
    employee_no: str | None
    since: datetime
    until: datetime
    jobs_done: int
    sla_measured: int
    sla_met: int
    verified: int
    first_time_fixes: int
    first_time_fix_rate: float | None


class OfferedSlot(_Record):
    """An arrival window offered, [starts, ends), in the site's zone; ``confirm_by``: the
    last instant it can be confirmed."""

    starts: AwareDatetime
    ends: AwareDatetime
    label: str
    past_sla: bool
    confirm_by: AwareDatetime


class BookedWindow(_Record):
    """The confirmed arrival window and who confirmed it when."""

    starts: AwareDatetime
    ends: AwareDatetime
    label: str
    confirmed_at: AwareDatetime
    confirmed_by: str
    role: str


class AppointmentView(_Record):
    """A work order's appointment: the live offer (None before any; ``offer_expires_at``
    past: expired) and the confirmed window, if any."""

    work_order_id: int
    offer_id: int | None = None
    offered_at: AwareDatetime | None = None
    offer_expires_at: AwareDatetime | None = None
    windows: list[OfferedSlot] = Field(default_factory=list)
    appointment: BookedWindow | None = None


class LocationRecorded(_Record):
    """A location fix stored: whose, when it was taken and arrived, and why they were on
    duty (``working_hours``, or ``on_job`` with the job). The coordinates are not
    repeated (the answer is kept with the idempotency key)."""

    employee_no: str
    at: datetime
    received_at: datetime
    duty: Literal["working_hours", "on_job"]
    work_order_id: int | None = None
