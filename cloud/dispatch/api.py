"""Dispatch REST routes, relative to the portal's regional prefix ``/api/v1/{region}``:
work orders (the operators' board, a MOSIE's jobs, a customer's view), their lifecycle
actions, what a MOSIE records on site, the region's parts stock and a technician's
performance.

Every route takes its caller's :class:`~cloud.scope.Access` from the portal's one
authorisation dependency (``access(route_key)``; the key is the route's
``operationId``); the scope goes to the service, which filters in SQL: staff reach the
URL's region, a customer its account's sites, and a MOSIE — whose identity is the
employee number their token carries (employee number + PIN sign-in) — only the jobs
assigned to them. Anything outside reads as absent (404), so ids cannot be probed.

Every change from a phone carries an ``Idempotency-Key`` header: the service applies a
request once per (caller, key) and answers a retry with the stored answer. Lifecycle
refusals answer 409 with the lifecycle's ``code`` and ``reason`` (422 when the request
itself lacks something: a reason, the technician). Photos are a raw body whose
``Content-Type`` is the image's (415 for any other type, 413 above the configured size,
counted while the body streams in: the portal's input guard leaves these paths to this
router, :data:`UPLOAD_PATH`).
"""

# No ``from __future__ import annotations``: the routes' ``Annotated`` dependencies are
# local to ``create_router`` and FastAPI resolves string annotations in the module's
# globals only.

import base64
import binascii
import re
from collections.abc import Callable
from datetime import date
from decimal import Decimal
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from fastapi import APIRouter, Depends, Header, HTTPException, Path, Query, Request, status
from fastapi.responses import Response
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from cloud.apitypes import Instant
from cloud.dispatch.charges import MAX_CHARGE_NOTE
from cloud.dispatch.checklists import WorkOrderType
from cloud.dispatch.lifecycle import MAX_REASON, WorkOrderStatus
from cloud.dispatch.models import (
    IDEMPOTENCY_KEY_PATTERN,
    MAX_NOTE,
    MAX_REORDER,
    PART_NO_PATTERN,
    AppointmentView,
    HistoryEntry,
    LocationRecorded,
    Note,
    PartStock,
    PartUse,
    Performance,
    Photo,
    Signature,
    Tick,
    WorkOrder,
)
from cloud.dispatch.photos import CONTENT_TYPES, ContentType
from cloud.dispatch.sap_status import SapStatusView
from cloud.dispatch.service import MAX_PAGE, DispatchService
from cloud.dispatch.stock import StockValue
from cloud.events.workorders import ChargeReason, Priority
from cloud.scope import Access
from contracts.topics import Region

__all__ = ["IDEMPOTENCY_KEY_PATTERN", "UPLOAD_PATH", "create_router"]

#: The photo upload paths (full, under the portal's prefix): the portal's input guard
#: passes their bodies through unread, and the route bounds them while they stream.
UPLOAD_PATH = re.compile(r"^/api/v1/[a-z]{2}/workorders/[0-9]{1,19}/photos$")
_INT4 = 2**31 - 1
#: Ids a JSON client (a phone's JavaScript) holds exactly, and the service's request
#: fingerprint (canonical JSON) accepts: 2^53 - 1.
_ID_MAX = 2**53 - 1
EMPLOYEE_NO_PATTERN = r"^E[0-9]{1,9}$"
#: A signature image as base64: a few tens of kB from a canvas; 512 kB at most.
MAX_SIGNATURE_BASE64 = 700_000

WorkOrderIdPath = Annotated[int, Path(ge=1, le=_ID_MAX, description="the work order's id")]
PhotoIdPath = Annotated[int, Path(ge=1, le=_ID_MAX, description="the photo's id")]
TaskIdPath = Annotated[str, Path(pattern=r"^[a-z][a-z0-9]*(?:-[a-z0-9]+)*$", max_length=64)]
EmployeeNoPath = Annotated[str, Path(pattern=EMPLOYEE_NO_PATTERN, examples=["E00042"])]
IdempotencyKey = Annotated[
    str,
    Header(
        pattern=IDEMPOTENCY_KEY_PATTERN,
        description="the client's key for this change (8-100 of A-Z a-z 0-9 _ -; a UUID"
        " fits): a retry with the same key applies once and answers the same",
    ),
]
OptionalIdempotencyKey = Annotated[
    str | None, Header(pattern=IDEMPOTENCY_KEY_PATTERN, description="as for the actions")
]

Responses = dict[int | str, dict[str, Any]]
_ALWAYS: Responses = {
    401: {"description": "no valid bearer token"},
    403: {
        "description": "the caller's role may not do this (or a MOSIE token without an"
        " employee number)"
    },
    404: {
        "description": "no such work order (or item) in the caller's reach: another"
        " region's, another account's, or for a MOSIE one not assigned to them"
    },
    422: {
        "description": "a header, path, query or body field out of its bounds (detail"
        " names it), or a value the service refuses (detail: field, limit, reason)"
    },
}


def _answers(**extra: str) -> Responses:
    """:data:`_ALWAYS` plus ``{status: description}`` given as ``s409="..."``."""
    return {**_ALWAYS, **{int(k[1:]): {"description": v} for k, v in extra.items()}}


_KEY_REUSE = "; 422 also for an idempotency key reused with another request"
_ON_SITE = "the job is not on site (the MOSIE arrives first)"


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class DoorCodeOut(BaseModel):
    """A job's door code now: ``code`` (six digits) until ``valid_until`` (UTC), for the
    MOSIE's ``visit`` to the site."""

    code: str = Field(pattern=r"^[0-9]{6}$")
    valid_until: AwareDatetime
    visit: int = Field(ge=1)


class WorkOrderCreate(_Body):
    """A work order raised by hand for a site of the URL's region."""

    site_id: int = Field(ge=1, le=_INT4)
    type: WorkOrderType
    priority: Priority
    title: str = Field(min_length=3, max_length=200)
    description: str = Field(default="", max_length=4000)
    alarm_id: int | None = Field(default=None, ge=1, le=_ID_MAX)
    arrive_by: AwareDatetime | None = None
    resolve_by: AwareDatetime | None = None


#: What people do through the API; ``verify``, ``reopen`` and ``sla`` are the system's.
ApiAction = Literal[
    "schedule",
    "assign",
    "reassign",
    "cancel",
    "close",
    "accept",
    "decline",
    "start_travel",
    "arrive",
    "hold",
    "cannot_complete",
    "resolve",
]


class ActionIn(_Body):
    """A lifecycle action: operators schedule, assign (``technician``), reassign, cancel
    and close; the assigned MOSIE accepts, declines, starts travel, arrives, holds, cannot
    complete and resolves. ``expected_version``: refused (409) unless the job is still
    at that version."""

    action: ApiAction
    reason: str | None = Field(default=None, min_length=1, max_length=MAX_REASON)
    technician: str | None = Field(default=None, pattern=EMPLOYEE_NO_PATTERN)
    expected_version: int | None = Field(default=None, ge=1, le=_INT4)


class TickIn(_Body):
    """``photo_key``: the ``storage_key`` of a photo of this job (a task that needs one)."""

    photo_key: str | None = Field(default=None, max_length=100)
    note: str | None = Field(default=None, min_length=1, max_length=MAX_NOTE)


class NoteIn(_Body):
    text: str = Field(min_length=1, max_length=MAX_NOTE)


class PartUseIn(_Body):
    part_no: str = Field(pattern=PART_NO_PATTERN)
    quantity: int = Field(ge=1, le=1000)


class ChargeIn(_Body):
    """The job chargeable to the customer for ``reason`` with ``note`` saying what the
    customer caused or owns; ``reason`` null: PoTR's own cost again (no note)."""

    reason: ChargeReason | None
    note: str = Field(default="", max_length=MAX_CHARGE_NOTE)


class StockIn(_Body):
    """``quantity``: how many more (0: only the part's settings change); ``unit_value``:
    the part's unit cost in the region's currency from now on (told to billing and SAP
    with each use, kept on each use); ``reorder_level`` and ``reorder_quantity``: a use
    leaving at most ``reorder_level`` on hand asks the office for ``reorder_quantity``
    more (0: never). Each setting omitted: unchanged (0 for a new part)."""

    part_no: str = Field(pattern=PART_NO_PATTERN)
    # Strict: JSON's false is not a count of 0 (pydantic's lax mode would take it).
    quantity: int = Field(ge=0, le=100_000, strict=True)
    description: str | None = Field(default=None, max_length=200)
    unit_value: Decimal | None = Field(default=None, ge=0, le=1_000_000_000, decimal_places=2)
    reorder_level: int | None = Field(default=None, ge=0, le=MAX_REORDER, strict=True)
    reorder_quantity: int | None = Field(default=None, ge=0, le=MAX_REORDER, strict=True)


class PartValue(BaseModel):
    """A part of the region's stock valued: ``value`` = ``quantity`` x ``unit_value``
    (None: no unit cost known); ``low``: at or below its reorder level (reordered)."""

    part_no: str
    description: str
    quantity: int
    unit_value: Decimal | None
    value: Decimal | None
    reorder_level: int
    reorder_quantity: int
    low: bool


class StockValuation(BaseModel):
    """The region's stock valued in ``currency``: ``total`` of the valued parts, exact to
    the cent; ``unvalued`` how many parts carry no unit cost (left out of the total)."""

    currency: str
    total: Decimal
    unvalued: int
    parts: list[PartValue]


def _valuation(stock: StockValue) -> StockValuation:
    parts = [
        PartValue(
            part_no=v.line.part_no, description=v.line.description, quantity=v.line.quantity,
            unit_value=v.line.unit_value, value=v.value, reorder_level=v.line.reorder_level,
            reorder_quantity=v.line.reorder_quantity, low=v.low,
        )
        for v in stock.lines
    ]  # fmt: skip
    return StockValuation(
        currency=stock.currency, total=stock.total, unvalued=stock.unvalued, parts=parts
    )


class IncidentIn(_Body):
    """Something found on site that needs its own work order (a damaged roof tile, a
    second faulty device): its type, priority, a title and what was found."""

    type: WorkOrderType
    priority: Priority
    title: str = Field(min_length=3, max_length=200)
    description: str = Field(default="", max_length=4000)


class LocationIn(_Body):
    """A location fix from the phone (the browser's geolocation): degrees (WGS 84), the
    accuracy radius in metres, and when it was taken (at most 15 minutes ago)."""

    latitude: float = Field(ge=-90, le=90, allow_inf_nan=False)
    longitude: float = Field(ge=-180, le=180, allow_inf_nan=False)
    accuracy_m: float = Field(gt=0, le=10_000, allow_inf_nan=False)
    at: AwareDatetime


class SignatureIn(_Body):
    """The customer's signature: their name and the image (PNG, JPEG or WebP) as base64."""

    signer_name: str = Field(min_length=1, max_length=200, pattern=r"^\S(?:.*\S)?$")
    content_type: ContentType = "image/png"
    image_base64: str = Field(min_length=4, max_length=MAX_SIGNATURE_BASE64)


class ConfirmIn(_Body):
    """The window chosen: its start, as offered (any offset; compared as an instant)."""

    start: AwareDatetime


class RescheduleIn(_Body):
    reason: str | None = Field(default=None, min_length=1, max_length=MAX_REASON)


class StatusChange(BaseModel):
    """One step of a job's timeline, as a customer may see it."""

    at: AwareDatetime
    from_state: WorkOrderStatus | None
    to_state: WorkOrderStatus


class WorkOrderDetail(BaseModel):
    """A work order with its timeline; for staff and the assigned MOSIE also its full
    history (who, why), the current visit's checklist ticks, the photos' metadata and
    the notes — None for a customer, who sees the job and when its state changed."""

    work_order: WorkOrder
    timeline: list[StatusChange]
    history: list[HistoryEntry] | None = None
    ticks: list[Tick] | None = None
    photos: list[Photo] | None = None
    notes: list[Note] | None = None
    #: What SAP says of the work order's service order (rejected or completed there by
    #: an SAP user, with SAP's reason); staff and the MOSIE only, None until SAP spoke.
    sap: SapStatusView | None = None


def _region(who: Access) -> Region:
    """The URL's region: the portal narrows every scope to it."""
    assert who.scope.region is not None, "the portal narrows every scope to the URL's region"
    return who.scope.region


def _mosie(who: Access) -> str | None:
    """A MOSIE's employee number (their reach: their own jobs); None for anyone else."""
    if who.role != "mosie":
        return None
    if who.employee_no is None:
        raise HTTPException(
            status.HTTP_403_FORBIDDEN, "a MOSIE signs in with their employee number"
        )
    return who.employee_no


def _actor(who: Access) -> str:
    """Who acts, in history and idempotency keys: the employee number for staff who
    have one (a MOSIE always), else the identity user."""
    return _mosie(who) or who.employee_no or who.subject


def _zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise HTTPException(422, f"unknown time zone {name!r}") from None


async def _bounded_body(request: Request, max_bytes: int) -> bytes:
    """The body, refused with 413 as soon as it passes ``max_bytes`` (by its declared
    length before reading anything, then by what arrives): a phone on a slow link may
    not make the server hold more than one photo's worth."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > max_bytes:
        raise HTTPException(413, f"the photo is larger than {max_bytes} bytes")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > max_bytes:
            raise HTTPException(413, f"the photo is larger than {max_bytes} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def _timeline(history: list[HistoryEntry]) -> list[StatusChange]:
    return [StatusChange(at=h.at, from_state=h.from_state, to_state=h.to_state) for h in history]


_IMAGE_BODY = {
    "requestBody": {
        "required": True,
        "description": "the photo's bytes; Content-Type is the image's",
        "content": {t: {"schema": {"type": "string", "format": "binary"}} for t in CONTENT_TYPES},
    }
}
_IMAGE_ANSWER: Responses = {
    200: {
        "description": "the image's bytes, with its own content type",
        "content": {t: {"schema": {"type": "string", "format": "binary"}} for t in CONTENT_TYPES},
    }
}


def create_router(
    service: DispatchService,
    *,
    access: Callable[[str], Callable[..., Any]],
    employee_in_region: Callable[[Region, str], bool] | None = None,
) -> APIRouter:
    """Routes under ``/workorders``, ``/me/jobs``, ``/parts`` and
    ``/employees/{employee_no}/performance``; ``access(key)`` authorises;
    ``employee_in_region(region, employee_no)`` (blocking; run in a thread) says whether
    the employee is on the region's staff (None: anyone is)."""
    router = APIRouter(tags=["dispatch"])
    max_photo = service.max_photo_bytes

    # -- work orders ----------------------------------------------------------------------
    @router.post(
        "/workorders",
        response_model=WorkOrder,
        status_code=status.HTTP_201_CREATED,
        operation_id="workorders.create",
        summary="Raise a work order by hand for a site of the region",
        description="Starts `scheduled`. With an `Idempotency-Key` a retry creates it once.",
        responses=_answers(s404="no such site in this region"),
    )
    async def create(
        who: Annotated[Access, Depends(access("workorders.create"))],
        body: WorkOrderCreate,
        idempotency_key: OptionalIdempotencyKey = None,
    ) -> WorkOrder:
        return await run_in_threadpool(
            service.create,
            _region(who),
            body.site_id,
            body.type,
            body.priority,
            body.title,
            body.description,
            _actor(who),
            body.alarm_id,
            idempotency_key,
            role=who.role,
            arrive_by=body.arrive_by,
            resolve_by=body.resolve_by,
        )

    @router.get(
        "/workorders",
        response_model=list[WorkOrder],
        operation_id="workorders.list",
        summary="The dispatch board",
        description="The region's work orders, the most urgent first (by arrive-by, then "
        "priority); default: every active one. A customer's: its account's; a MOSIE's: "
        "their own.",
        responses=_answers(),
    )
    async def board(
        who: Annotated[Access, Depends(access("workorders.list"))],
        status_: Annotated[
            list[WorkOrderStatus] | None,
            Query(alias="status", max_length=11, description="only these states"),
        ] = None,
        assignee: Annotated[str | None, Query(pattern=EMPLOYEE_NO_PATTERN)] = None,
        site_id: Annotated[int | None, Query(ge=1, le=_INT4)] = None,
        limit: Annotated[int, Query(ge=1, le=MAX_PAGE, description="page size")] = 100,
        offset: Annotated[int, Query(ge=0, le=_INT4, description="rows to skip")] = 0,
    ) -> list[WorkOrder]:
        mine = _mosie(who)
        if mine is not None and assignee not in (None, mine):
            return []  # a MOSIE's board holds their own jobs only
        return await run_in_threadpool(
            service.board,
            _region(who),
            status_,
            scope=who.scope,
            assignee=mine or assignee,
            site_id=site_id,
            limit=limit,
            offset=offset,
        )

    @router.get(
        "/workorders/{work_order_id}",
        response_model=WorkOrderDetail,
        operation_id="workorders.get",
        summary="One work order with its timeline (staff: history, ticks, photos, notes)",
        responses=_answers(),
    )
    async def get(
        who: Annotated[Access, Depends(access("workorders.get"))],
        work_order_id: WorkOrderIdPath,
    ) -> WorkOrderDetail:
        reach: dict[str, Any] = {"assignee": _mosie(who)}
        order = await run_in_threadpool(service.get, work_order_id, who.scope, **reach)
        history = await run_in_threadpool(service.history, order.id, who.scope, **reach)
        detail = WorkOrderDetail(work_order=order, timeline=_timeline(history))
        if who.role == "customer":
            return detail  # the job and its steps; who did what and why is the office's
        ticks = await run_in_threadpool(service.ticks, order.id, who.scope, **reach)
        photos = await run_in_threadpool(service.photos, order.id, who.scope, **reach)
        notes = await run_in_threadpool(service.notes, order.id, who.scope, **reach)
        sap = await run_in_threadpool(service.sap_status, order.id)
        return detail.model_copy(
            update={
                "history": history,
                "ticks": ticks,
                "photos": photos,
                "notes": notes,
                "sap": sap,
            }
        )

    @router.post(
        "/workorders/{work_order_id}/actions",
        response_model=WorkOrder,
        operation_id="workorders.act",
        summary="A lifecycle action (accept, arrive, resolve … / assign, cancel, close …)",
        description="Answers the work order after it. 409: the lifecycle refused it "
        "(detail: `code`, `reason`), or `expected_version` is stale. 422: the action lacks "
        "its reason or technician (detail: `code`, `reason`).",
        responses=_answers(
            s409="the lifecycle refuses the action in the job's state or for this role"
            " (detail.code, detail.reason), or expected_version is stale",
            s422="as always" + _KEY_REUSE + "; reason_required, assignee_required",
        ),
    )
    async def act(
        who: Annotated[Access, Depends(access("workorders.act"))],
        work_order_id: WorkOrderIdPath,
        body: ActionIn,
        idempotency_key: IdempotencyKey,
    ) -> WorkOrder:
        return await run_in_threadpool(
            lambda: service.act(
                work_order_id,
                body.action,
                _actor(who),
                who.role,
                idempotency_key=idempotency_key,
                reason=body.reason,
                technician=body.technician,
                expected_version=body.expected_version,
                scope=who.scope,
            )
        )

    # -- appointments (the customer's visit) ----------------------------------------------
    @router.get(
        "/workorders/{work_order_id}/appointment",
        response_model=AppointmentView,
        operation_id="appointments.get",
        summary="The windows offered for the visit and the one confirmed",
        responses=_answers(),
    )
    async def get_appointment(
        who: Annotated[Access, Depends(access("appointments.get"))],
        work_order_id: WorkOrderIdPath,
    ) -> AppointmentView:
        return await run_in_threadpool(
            lambda: service.appointment(work_order_id, who.scope, assignee=_mosie(who))
        )

    @router.post(
        "/workorders/{work_order_id}/appointment",
        response_model=AppointmentView,
        operation_id="appointments.confirm",
        summary="Confirm one of the offered windows (the customer, or the office for them)",
        description="409 (detail.code): `offer_expired`, `too_late` (past the window's "
        "confirm-by), `no_offer`, `not_bookable` (the technician is under way or done). "
        "422: `not_offered` (no offered window starts then).",
        responses=_answers(
            s409="offer_expired, too_late, no_offer or not_bookable (detail.code)",
            s422="as always" + _KEY_REUSE + "; not_offered",
        ),
    )
    async def confirm_appointment(
        who: Annotated[Access, Depends(access("appointments.confirm"))],
        work_order_id: WorkOrderIdPath,
        body: ConfirmIn,
        idempotency_key: IdempotencyKey,
    ) -> AppointmentView:
        return await run_in_threadpool(
            lambda: service.confirm_appointment(
                work_order_id, body.start, _actor(who), who.role, idempotency_key, scope=who.scope
            )
        )

    @router.post(
        "/workorders/{work_order_id}/appointment/reschedule",
        response_model=AppointmentView,
        operation_id="appointments.reschedule",
        summary="Give up the confirmed window (or the offer) for new windows",
        description="The new offer overlaps neither the old window nor, with none "
        "confirmed, the windows turned down. 409: `not_bookable`.",
        responses=_answers(s409="not_bookable"),
    )
    async def reschedule_appointment(
        who: Annotated[Access, Depends(access("appointments.reschedule"))],
        work_order_id: WorkOrderIdPath,
        body: RescheduleIn,
        idempotency_key: IdempotencyKey,
    ) -> AppointmentView:
        return await run_in_threadpool(
            lambda: service.reschedule_appointment(
                work_order_id,
                _actor(who),
                who.role,
                idempotency_key,
                reason=body.reason,
                scope=who.scope,
            )
        )

    # -- the MOSIE on site ----------------------------------------------------------------
    @router.get(
        "/me/jobs",
        response_model=list[WorkOrder],
        operation_id="jobs.mine",
        summary="My jobs still to do (with `day`: that day's route, overdue ones included)",
        responses=_answers(),
    )
    async def my_jobs(
        who: Annotated[Access, Depends(access("jobs.mine"))],
        day: Annotated[date | None, Query(ge=date(2000, 1, 1), le=date(2099, 12, 31))] = None,
        tz: Annotated[
            str,
            Query(
                pattern=r"^[A-Za-z][A-Za-z0-9_+-]*(?:/[A-Za-z0-9_+-]+){0,2}$",
                max_length=64,
                description="the technician's IANA time zone",
            ),
        ] = "UTC",
    ) -> list[WorkOrder]:
        employee_no = _actor(who)
        zone = _zone(tz)
        return await run_in_threadpool(
            lambda: service.list_for_technician(employee_no, day, zone=zone, scope=who.scope)
        )

    @router.post(
        "/workorders/{work_order_id}/checklist/{task_id}",
        response_model=Tick,
        status_code=status.HTTP_201_CREATED,
        operation_id="checklist.tick",
        summary="Tick a checklist task of the current visit",
        responses=_answers(
            s409=f"{_ON_SITE}, or the checklist refuses (detail.code: out_of_order, done …)",
            s422="as always" + _KEY_REUSE + "; unknown_task, photo_required",
        ),
    )
    async def tick(
        who: Annotated[Access, Depends(access("checklist.tick"))],
        work_order_id: WorkOrderIdPath,
        task_id: TaskIdPath,
        body: TickIn,
        idempotency_key: IdempotencyKey,
    ) -> Tick:
        return await run_in_threadpool(
            lambda: service.tick(
                work_order_id,
                task_id,
                _actor(who),
                idempotency_key,
                body.photo_key,
                body.note,
                scope=who.scope,
            )
        )

    @router.post(
        "/workorders/{work_order_id}/notes",
        response_model=Note,
        status_code=status.HTTP_201_CREATED,
        operation_id="notes.create",
        summary="A note on the job (the assigned MOSIE, or staff)",
        responses=_answers(s422="as always" + _KEY_REUSE),
    )
    async def add_note(
        who: Annotated[Access, Depends(access("notes.create"))],
        work_order_id: WorkOrderIdPath,
        body: NoteIn,
        idempotency_key: IdempotencyKey,
    ) -> Note:
        return await run_in_threadpool(
            lambda: service.add_note(
                work_order_id, body.text, _actor(who), who.role, idempotency_key, scope=who.scope
            )
        )

    @router.post(
        "/workorders/{work_order_id}/photos",
        response_model=Photo,
        status_code=status.HTTP_201_CREATED,
        operation_id="photos.create",
        summary="A photo of the job (the assigned MOSIE, on site): the raw image as the body",
        description="JPEG, PNG or WebP; the bytes must be what `Content-Type` says.",
        openapi_extra=_IMAGE_BODY,
        responses=_answers(
            s409=_ON_SITE,
            s413="the photo is larger than the configured limit",
            s415="Content-Type is not image/jpeg, image/png or image/webp",
            s422="as always" + _KEY_REUSE + "; the bytes are not the declared image type",
        ),
    )
    async def add_photo(
        who: Annotated[Access, Depends(access("photos.create"))],
        work_order_id: WorkOrderIdPath,
        request: Request,
        idempotency_key: IdempotencyKey,
    ) -> Photo:
        declared = request.headers.get("content-type", "")
        if declared.split(";", 1)[0].strip().lower() not in CONTENT_TYPES:
            raise HTTPException(
                status.HTTP_415_UNSUPPORTED_MEDIA_TYPE,
                f"Content-Type must be one of {', '.join(CONTENT_TYPES)}",
            )
        actor = _actor(who)
        content = await _bounded_body(request, max_photo)
        return await run_in_threadpool(
            lambda: service.add_photo(
                work_order_id, content, declared, actor, idempotency_key, scope=who.scope
            )
        )

    @router.get(
        "/workorders/{work_order_id}/photos/{photo_id}",
        operation_id="photos.get",
        summary="A photo's bytes (staff, and the assigned MOSIE)",
        response_class=Response,
        responses={**_answers(), **_IMAGE_ANSWER},
    )
    async def get_photo(
        who: Annotated[Access, Depends(access("photos.get"))],
        work_order_id: WorkOrderIdPath,
        photo_id: PhotoIdPath,
    ) -> Response:
        photo, content = await run_in_threadpool(
            lambda: service.photo_content(work_order_id, photo_id, who.scope, assignee=_mosie(who))
        )
        return Response(
            content,
            media_type=photo.content_type,
            headers={
                # The stored type is the sniffed one; the browser must not guess another.
                "X-Content-Type-Options": "nosniff",
                "Content-Security-Policy": "default-src 'none'; sandbox",
                "Cache-Control": "private, max-age=3600",
            },
        )

    @router.get(
        "/workorders/{work_order_id}/door-code",
        response_model=DoorCodeOut,
        operation_id="workorders.door_code",
        summary="The door code of a job on its way or on site (its customer and its MOSIE)",
        description="The customer checks that the technician at the door is PoTR's: both "
        "apps show this code, which changes every two minutes, with a new visit and with "
        "another MOSIE. Only the job's customer and its assigned MOSIE get it, and only while "
        "the job is `en_route` or `on_site`; to anyone else, and in any other state, 404 as "
        "for no job. Never cached.",
        responses=_answers(s404="no such job in reach, or no code now (not en route or on site)"),
    )
    async def door_code(
        who: Annotated[Access, Depends(access("workorders.door_code"))],
        work_order_id: WorkOrderIdPath,
        response: Response,
    ) -> DoorCodeOut:
        found = await run_in_threadpool(
            lambda: service.door_code(work_order_id, who.scope, assignee=_mosie(who))
        )
        response.headers["Cache-Control"] = "no-store"
        return DoorCodeOut(code=found.code, valid_until=found.valid_until, visit=found.visit)

    @router.post(
        "/workorders/{work_order_id}/charge",
        response_model=WorkOrder,
        operation_id="workorders.charge",
        summary="Charge the customer for the job's parts and labour (or not), before completion",
        description="Under a PPA the system's upkeep is PoTR's cost; only damage the customer "
        "caused (`customer_damage`) or equipment the customer owns (`customer_equipment`) is "
        "billed. Resolving a job so marked sends its parts and on-site minutes to billing, "
        "once; the mark is final from then.",
        responses=_answers(
            s409="the job is resolved, closed or cancelled, or its charge was already billed",
            s422="as always" + _KEY_REUSE + "; a reason without a note",
        ),
    )
    async def charge(
        who: Annotated[Access, Depends(access("workorders.charge"))],
        work_order_id: WorkOrderIdPath,
        body: ChargeIn,
        idempotency_key: IdempotencyKey,
    ) -> WorkOrder:
        return await run_in_threadpool(
            lambda: service.set_charge(
                work_order_id,
                body.reason,
                body.note,
                _actor(who),
                who.role,
                idempotency_key=idempotency_key,
                scope=who.scope,
            )
        )

    @router.post(
        "/workorders/{work_order_id}/parts",
        response_model=PartUse,
        status_code=status.HTTP_201_CREATED,
        operation_id="parts_used.create",
        summary="Parts used on the job, taken from the region's stock",
        responses=_answers(
            s404="no such work order in reach, or the region does not stock the part",
            s409=f"{_ON_SITE}, or fewer in stock than asked",
            s422="as always" + _KEY_REUSE,
        ),
    )
    async def use_part(
        who: Annotated[Access, Depends(access("parts_used.create"))],
        work_order_id: WorkOrderIdPath,
        body: PartUseIn,
        idempotency_key: IdempotencyKey,
    ) -> PartUse:
        return await run_in_threadpool(
            lambda: service.use_part(
                work_order_id,
                body.part_no,
                body.quantity,
                _actor(who),
                idempotency_key,
                scope=who.scope,
            )
        )

    @router.post(
        "/workorders/{work_order_id}/signature",
        response_model=Signature,
        status_code=status.HTTP_201_CREATED,
        operation_id="signatures.create",
        summary="The customer's signature on this visit (once per visit)",
        responses=_answers(
            s409=f"{_ON_SITE}, or the customer has signed for this visit already",
            s422="as always" + _KEY_REUSE + "; not base64, or not the declared image type",
        ),
    )
    async def sign(
        who: Annotated[Access, Depends(access("signatures.create"))],
        work_order_id: WorkOrderIdPath,
        body: SignatureIn,
        idempotency_key: IdempotencyKey,
    ) -> Signature:
        try:
            image = base64.b64decode(body.image_base64, validate=True)
        except (binascii.Error, ValueError):
            raise HTTPException(422, "image_base64: not base64") from None
        actor = _actor(who)
        return await run_in_threadpool(
            lambda: service.sign(
                work_order_id,
                body.signer_name,
                image,
                actor,
                idempotency_key,
                body.content_type,
                scope=who.scope,
            )
        )

    @router.post(
        "/workorders/{work_order_id}/incidents",
        response_model=WorkOrder,
        status_code=status.HTTP_201_CREATED,
        operation_id="incidents.create",
        summary="Raise an incident found on site: a new work order of the job's site",
        description="The assigned MOSIE, while the job is on site. The new work order is "
        "`origin` incident with `found_on` the job; it gets its SLA due times and goes to "
        "the best eligible technician, or stays scheduled with why in its history.",
        responses=_answers(s409=_ON_SITE, s422="as always" + _KEY_REUSE),
    )
    async def raise_incident(
        who: Annotated[Access, Depends(access("incidents.create"))],
        work_order_id: WorkOrderIdPath,
        body: IncidentIn,
        idempotency_key: IdempotencyKey,
    ) -> WorkOrder:
        return await run_in_threadpool(
            lambda: service.raise_incident(
                work_order_id,
                body.type,
                body.priority,
                body.title,
                body.description,
                _actor(who),
                idempotency_key,
                scope=who.scope,
            )
        )

    @router.post(
        "/me/location",
        response_model=LocationRecorded,
        status_code=status.HTTP_201_CREATED,
        operation_id="location.record",
        summary="Record where I am (only on duty, with the location notice acknowledged)",
        description="Stored only when the MOSIE acknowledged the location notice's current "
        "version (`GET /me/location-notice`) and is on duty: inside their working hours, or "
        "on a job accepted, en route or on site. Otherwise 409 with `detail.code` "
        "`notice_not_acknowledged` or `off_duty`, and nothing is stored. The answer "
        "repeats no coordinates.",
        responses=_answers(
            s404="the caller is not on the region's staff",
            s409="notice_not_acknowledged or off_duty (detail.code): nothing stored",
            s422="as always" + _KEY_REUSE + "; a fix older than 15 minutes",
        ),
    )
    async def record_location(
        who: Annotated[Access, Depends(access("location.record"))],
        body: LocationIn,
        idempotency_key: IdempotencyKey,
    ) -> LocationRecorded:
        employee_no = _mosie(who)
        assert employee_no is not None  # the route is the MOSIEs'
        return await run_in_threadpool(
            lambda: service.record_location(
                employee_no,
                _region(who),
                body.latitude,
                body.longitude,
                body.accuracy_m,
                body.at,
                idempotency_key,
            )
        )

    # -- parts stock ------------------------------------------------------------------------
    @router.get(
        "/parts",
        response_model=list[PartStock],
        operation_id="parts.list",
        summary="The region's parts stock",
        responses=_answers(),
    )
    async def stock(who: Annotated[Access, Depends(access("parts.list"))]) -> list[PartStock]:
        return await run_in_threadpool(service.stock, _region(who))

    @router.get(
        "/parts/value",
        response_model=StockValuation,
        operation_id="parts.value",
        summary="The region's parts stock valued (quantity x unit cost per part, and in"
        " total) with the parts to reorder",
        responses=_answers(),
    )
    async def stock_value(
        who: Annotated[Access, Depends(access("parts.value"))],
    ) -> StockValuation:
        value = await run_in_threadpool(service.stock_value, _region(who))
        return _valuation(value)

    @router.post(
        "/parts",
        response_model=PartStock,
        operation_id="parts.create",
        summary="Add to the region's stock of a part, or change its unit cost and reorder"
        " settings (a new part number starts a line)",
        responses=_answers(s422="as always: a value out of bounds"),
    )
    async def add_stock(
        who: Annotated[Access, Depends(access("parts.create"))], body: StockIn
    ) -> PartStock:
        return await run_in_threadpool(
            lambda: service.add_stock(
                _region(who),
                body.part_no,
                body.quantity,
                body.description,
                unit_value=body.unit_value,
                reorder_level=body.reorder_level,
                reorder_quantity=body.reorder_quantity,
            )
        )

    # -- performance ------------------------------------------------------------------------
    @router.get(
        "/employees/{employee_no}/performance",
        response_model=Performance,
        operation_id="performance.get",
        summary="A technician's jobs done, SLA met and first-time fix rate over [since, until)",
        description="A MOSIE sees only their own.",
        responses=_answers(s422="as always; until not after since"),
    )
    async def performance(
        who: Annotated[Access, Depends(access("performance.get"))],
        employee_no: EmployeeNoPath,
        since: Annotated[Instant, Query(description="from, with its offset")],
        until: Annotated[Instant, Query(description="to (excluded)")],
    ) -> Performance:
        region = _region(who)
        mine = _mosie(who)
        known = mine == employee_no if mine is not None else True
        if known and mine is None and employee_in_region is not None:
            known = await run_in_threadpool(employee_in_region, region, employee_no)
        if not known:
            raise HTTPException(404, f"no employee {employee_no} in {region.value}")
        return await run_in_threadpool(
            lambda: service.performance(region, employee_no, since=since, until=until)
        )

    return router
