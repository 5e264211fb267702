"""Dispatch in the web UI (issue 17): the MOSIE's phone screens — today's route and a
job's page with its lifecycle buttons, checklist, notes, photos, parts and the
customer's signature, and the grid-code push to the site (:mod:`grid_push`) — a job's
page for the operators' desk (assign, rebook to a
technician of the region with a reason, close, cancel; the board is in
:mod:`pages_dispatch_board`), and a customer's view of its own job (the timeline only).

Everything goes through :class:`cloud.dispatch.DispatchService` with the viewer's scope
(a MOSIE's reach: the jobs assigned to their employee number), so a job outside it is
not found (404). Every form carries an idempotency key made when the page was rendered:
a double tap or a browser's retry of the same form is applied once (the service answers
the stored result). The service's refusals become the job's page with the reason: the
lifecycle's or checklist's refusal 409 (422 when the request lacks something), a value
out of bounds 422 — never a 500.
"""

# No ``from __future__ import annotations``: the routes' dependencies are local to
# ``create_dispatch_pages`` and FastAPI resolves string annotations in the module's globals.

import base64
import binascii
import re
import secrets
from collections.abc import Callable, Collection
from datetime import date, datetime
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Depends, File, Form, Path, Request, UploadFile
from fastapi.responses import RedirectResponse, Response
from pydantic import AwareDatetime
from starlette.concurrency import run_in_threadpool

from cloud.dispatch import DispatchService
from cloud.dispatch.charges import MAX_CHARGE_NOTE, charge_refusal
from cloud.dispatch.checklists import Task
from cloud.dispatch.door_code import SHOWN_IN as DOOR_CODE_SHOWN_IN
from cloud.dispatch.errors import (
    AppointmentRefused,
    ConflictError,
    NotFoundError,
    RefusedError,
    TickRefused,
    TransitionRefused,
)
from cloud.dispatch.lifecycle import MAX_REASON, WorkOrderAction, WorkOrderStatus, allowed_actions
from cloud.dispatch.models import MAX_NOTE, PART_NO_PATTERN, WorkOrder
from cloud.identity import Role
from cloud.portal.web.csrf import check_csrf
from cloud.portal.web.grid_push import GridPushDesk
from cloud.portal.web.pages_door import DoorPanels
from cloud.portal.web.refusal_text import tick_refusal, transition_refusal
from cloud.portal.web.render import Renderer
from cloud.portal.web.session import PageRefused, Sessions, Viewer
from cloud.portal.web.site_data import SiteData
from cloud.registry import Site
from contracts.messages import ConfigResp
from contracts.timeutil import utc_now

__all__ = [
    "MOSIE_ACTIONS",
    "OPERATOR_ACTIONS",
    "UI_UPLOAD_PATH",
    "create_dispatch_pages",
    "new_form_key",
    "route",
    "tickable",
]

#: The job page's forms that carry an image (multipart): the portal's input guard reads
#: them up to the photo limit and leaves the image's bytes (NULs and all) to the route.
UI_UPLOAD_PATH = re.compile(
    r"^/ui/[a-z]{2}/workorders/[0-9]{1,19}/(?:photos|signature|checklist/[a-z0-9-]{1,64})$"
)
#: Room for a multipart form's fields and boundaries beside its image.
UPLOAD_FORM_SLACK = 1 << 20
WorkOrderId = Annotated[int, Path(ge=1, le=2**53 - 1)]
TaskIdPath = Annotated[str, Path(pattern=r"^[a-z][a-z0-9]*(?:-[a-z0-9]+)*$", max_length=64)]
FormKey = Annotated[str, Form(pattern=r"^[A-Za-z0-9_-]{8,90}$")]
#: A grid-code profile's id (``ConfigReq.profile``'s form).
GRID_CODE_PATTERN = r"^[a-z][a-z0-9.-]{0,63}$"
#: The buttons of a MOSIE's job page, in the order of the work.
MOSIE_ACTIONS = (
    WorkOrderAction.ACCEPT,
    WorkOrderAction.DECLINE,
    WorkOrderAction.START_TRAVEL,
    WorkOrderAction.ARRIVE,
    WorkOrderAction.RESOLVE,
    WorkOrderAction.HOLD,
    WorkOrderAction.CANNOT_COMPLETE,
)
#: What the operators' desk does from a job's page.
OPERATOR_ACTIONS = (
    WorkOrderAction.ASSIGN,
    WorkOrderAction.REASSIGN,
    WorkOrderAction.CLOSE,
    WorkOrderAction.CANCEL,
)
UiAction = Literal[
    "accept", "decline", "start_travel", "arrive", "hold", "cannot_complete", "resolve",
    "assign", "reassign", "close", "cancel",
]  # fmt: skip
_OFFICE = frozenset({Role.ADMIN, Role.OPERATOR, Role.SUPPORT})
_DESK = frozenset({Role.ADMIN, Role.OPERATOR})
#: Who marks a job chargeable to the customer: its MOSIE, or the dispatch desk.
_CHARGERS = frozenset({Role.ADMIN, Role.OPERATOR, Role.MOSIE})
#: Who chooses the visit's window on the job's page: the customer, or the office for them.
_BOOKERS = frozenset({Role.CUSTOMER, Role.ADMIN, Role.OPERATOR, Role.SUPPORT})
_DATA_URL = "data:image/png;base64,"
#: A drawn signature as a PNG data URL: a few tens of kB; at most 512 kB of image.
_MAX_DATA_URL = len(_DATA_URL) + 700_000


def new_form_key() -> str:
    """A fresh idempotency key for one rendered form (22 url-safe characters)."""
    return secrets.token_urlsafe(16)


def route(jobs: list[WorkOrder], zones: dict[int, str], now: datetime) -> list[WorkOrder]:
    """Today's route of a MOSIE: their jobs due to be reached by the end of today in the
    site's own zone (overdue ones included) or with no due time, in the service's order
    (the earliest arrive-by, then priority). ``zones``: site id → IANA zone."""

    def today(job: WorkOrder) -> bool:
        if job.arrive_by is None:
            return True
        zone = ZoneInfo(zones.get(job.site_id, "UTC"))
        local_today: date = now.astimezone(zone).date()
        return job.arrive_by.astimezone(zone).date() <= local_today

    return [job for job in jobs if today(job)]


def _actor(who: Viewer) -> str:
    """Who acts, as the API names them: the employee number (a MOSIE's always), else
    the identity user."""
    return who.caller.employee_no or who.caller.subject


def _mosie_no(who: Viewer) -> str | None:
    """A MOSIE's employee number (their reach); None for anyone else."""
    if who.role != Role.MOSIE:
        return None
    if not who.caller.employee_no:
        raise PageRefused(403, "a MOSIE signs in with their employee number")
    return who.caller.employee_no


def create_dispatch_pages(
    sessions: Sessions,
    renderer: Renderer,
    data: SiteData,
    service: DispatchService,
    *,
    clock: Callable[[], datetime] = utc_now,
    grid: GridPushDesk | None = None,
    doors: DoorPanels | None = None,
) -> APIRouter:
    """``grid``: the grid-code push of a MOSIE's open job (None: not offered, and its
    form answers 404); ``doors``: who is at the door (:mod:`pages_door`; None: not
    shown)."""
    router = APIRouter(prefix="/ui/{region}", include_in_schema=False)

    def viewer(route_key: str) -> Any:
        return Depends(sessions.viewer(route_key))

    def sites_of(who: Viewer) -> dict[int, Site]:
        return {s.id: s for s in data.sites(who.scope)}

    @router.get("/jobs", operation_id="ui.jobs")
    async def jobs(request: Request, who: Annotated[Viewer, viewer("ui.jobs")]) -> Response:
        employee_no = _mosie_no(who)
        assert employee_no is not None  # the route is the MOSIEs'

        def gather() -> dict[str, Any]:
            mine = service.list_for_technician(employee_no, scope=who.scope)
            sites = sites_of(who)
            zones = {i: s.time_zone for i, s in sites.items()}
            todays = route(mine, zones, clock())
            later = [j for j in mine if j not in todays]
            return {"today": todays, "later": later, "sites": sites}

        found = await run_in_threadpool(gather)
        return renderer.page(request, "jobs.html", language=who.language, viewer=who, **found)

    @router.get("/visits", operation_id="ui.visits")
    async def visits(request: Request, who: Annotated[Viewer, viewer("ui.visits")]) -> Response:
        """A customer's technician visits: its account's open jobs and where each one's
        appointment stands (a time to choose, or the one confirmed)."""

        def gather() -> dict[str, Any]:
            jobs = service.board(who.region, scope=who.scope)
            shown = [j for j in jobs if j.status in DOOR_CODE_SHOWN_IN]
            return {
                "jobs": jobs,
                "doors": {j.id: doors.panel(who, j.id) for j in shown} if doors else {},
                "appointments": {j.id: service.appointment(j.id, who.scope) for j in jobs},
                "sites": sites_of(who),
            }

        found = await run_in_threadpool(gather)
        return renderer.page(
            request, "visits.html", language=who.language, viewer=who, now=clock(), **found
        )

    async def job_page(
        request: Request, who: Viewer, order_id: int, refusal: str | None, status_code: int
    ) -> Response:
        mine = _mosie_no(who)

        def gather() -> dict[str, Any]:
            order = service.get(order_id, who.scope, assignee=mine)
            history = service.history(order_id, who.scope, assignee=mine)
            site = data.site(who.scope, order.site_id)
            found: dict[str, Any] = {"order": order, "site": site, "history": history}
            found["appointment"] = service.appointment(order_id, who.scope, assignee=mine)
            shown = doors is not None and order.status in DOOR_CODE_SHOWN_IN
            found["door"] = doors.panel(who, order_id) if doors is not None and shown else None
            if who.role == Role.CUSTOMER:
                # The job's steps only: who did what and why (and the history lines that
                # change no state) are the office's.
                found["history"] = [h for h in history if h.from_state != h.to_state]
                return found
            done = {t.task_id: t for t in service.ticks(order_id, who.scope, assignee=mine)}
            tasks = service.checklist(order.type)
            found |= {
                # What SAP says of the service order (decision 140): shown, never acted on.
                "sap": service.sap_status(order_id),
                "notes": service.notes(order_id, who.scope, assignee=mine),
                "photos": service.photos(order_id, who.scope, assignee=mine),
                "tasks": tasks,
                "done": done,
                "tickable": tickable(tasks, done),
            }
            if who.role in _DESK:  # whom the desk may (re)book the job to, and why
                found["technicians"] = service.technicians(order.region)
                found["candidates"] = service.candidates(order_id, who.scope)
            if mine is not None and grid is not None and grid.offered(order):
                found["grid"] = grid.panel(order, mine)
            on_site = mine is not None and order.status == WorkOrderStatus.ON_SITE
            stock = service.stock(order.region) if on_site else []
            return found | {"stock": [p for p in stock if p.quantity > 0]}

        try:
            found = await run_in_threadpool(gather)
        except NotFoundError:
            raise PageRefused(404, "no such work order") from None
        order: WorkOrder = found["order"]
        site = found["site"]
        fmt = who.formats.at(site.time_zone) if site is not None else who.formats
        role = who.role.value
        allowed = allowed_actions(order.state(), role) if who.role != Role.CUSTOMER else set()
        offered = MOSIE_ACTIONS if who.role == Role.MOSIE else OPERATOR_ACTIONS
        return renderer.page(
            request, "workorder.html", language=who.language, viewer=who, fmt=fmt,
            actions=[a.value for a in offered if a in allowed], refusal=refusal,
            status_code=status_code, new_key=new_form_key, max_reason=MAX_REASON,
            is_mosie=mine is not None, is_office=who.role in _OFFICE,
            may_book=who.role in _BOOKERS, now=clock(),
            may_charge=who.role in _CHARGERS and charge_refusal(order) is None,
            max_charge_note=MAX_CHARGE_NOTE,
            on_site=order.status == WorkOrderStatus.ON_SITE,
            **found,
        )  # fmt: skip

    @router.get("/workorders/{order_id}", operation_id="ui.workorder")
    async def job(
        request: Request, order_id: WorkOrderId, who: Annotated[Viewer, viewer("ui.workorder")]
    ) -> Response:
        return await job_page(request, who, order_id, None, 200)

    @router.get("/workorders/{order_id}/photos/{photo_id}", operation_id="ui.workorder.photo_get")
    async def photo_bytes(
        order_id: WorkOrderId,
        photo_id: WorkOrderId,
        who: Annotated[Viewer, viewer("ui.workorder.photo_get")],
    ) -> Response:
        mine = _mosie_no(who)
        try:
            photo, content = await run_in_threadpool(
                lambda: service.photo_content(order_id, photo_id, who.scope, assignee=mine)
            )
        except NotFoundError:
            raise PageRefused(404, "no such photo") from None
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

    async def change(
        request: Request, who: Viewer, order_id: int, work: Callable[[], object], to: str = ""
    ) -> Response:
        """Run ``work``; the service's refusals as the job's page with the reason, else
        post/redirect/get (a reload does not post again)."""
        _ = renderer.gettext(who.language)
        try:
            await run_in_threadpool(work)
        except NotFoundError:
            raise PageRefused(404, "no such work order") from None
        except (TransitionRefused, TickRefused) as exc:
            words = transition_refusal if isinstance(exc, TransitionRefused) else tick_refusal
            why = _("Not done: %(reason)s", reason=words(_, exc.code, exc.params, exc.reason))
            return await job_page(request, who, order_id, why, 422 if exc.invalid else 409)
        except AppointmentRefused as exc:
            why = _("Not done: %(reason)s", reason=exc.reason)
            return await job_page(request, who, order_id, why, 422 if exc.invalid else 409)
        except (ConflictError, RefusedError) as exc:
            why = _("Not done: %(reason)s", reason=str(exc))
            status = 409 if isinstance(exc, ConflictError) else 422
            return await job_page(request, who, order_id, why, status)
        base = f"/ui/{who.region.value}"
        return RedirectResponse(to or f"{base}/workorders/{order_id}", status_code=303)

    @router.post(
        "/workorders/{order_id}/act",
        operation_id="ui.workorder.act",
        dependencies=[Depends(check_csrf)],
    )
    async def act(
        request: Request,
        order_id: WorkOrderId,
        who: Annotated[Viewer, viewer("ui.workorder.act")],
        action: Annotated[UiAction, Form()],
        key: FormKey,
        reason: Annotated[str, Form(max_length=MAX_REASON)] = "",
        technician: Annotated[str, Form(pattern=r"^(E[0-9]{1,9})?$")] = "",
    ) -> Response:
        mine = _mosie_no(who)
        # A declined job is no longer the MOSIE's: back to their route.
        to = f"/ui/{who.region.value}/jobs" if mine and action == "decline" else ""
        return await change(
            request, who, order_id,
            lambda: service.act(
                order_id, action, _actor(who), who.role.value, idempotency_key=key,
                reason=reason.strip() or None, technician=technician or None, scope=who.scope,
            ),
            to,
        )  # fmt: skip

    @router.post(
        "/workorders/{order_id}/checklist/{task_id}",
        operation_id="ui.workorder.tick",
        dependencies=[Depends(check_csrf)],
    )
    async def tick(
        request: Request,
        order_id: WorkOrderId,
        task_id: TaskIdPath,
        who: Annotated[Viewer, viewer("ui.workorder.tick")],
        key: FormKey,
        photo: Annotated[UploadFile | None, File()] = None,
    ) -> Response:
        actor = _actor(who)
        content = await photo.read() if photo is not None and photo.filename else b""
        kind = photo.content_type or "" if photo is not None else ""

        def work() -> None:
            photo_key = None
            if content:
                stored = service.add_photo(
                    order_id, content, kind, actor, f"{key}-p", scope=who.scope
                )
                photo_key = stored.storage_key
            service.tick(order_id, task_id, actor, key, photo_key, scope=who.scope)

        return await change(request, who, order_id, work)

    @router.post(
        "/workorders/{order_id}/notes",
        operation_id="ui.workorder.note",
        dependencies=[Depends(check_csrf)],
    )
    async def note(
        request: Request,
        order_id: WorkOrderId,
        who: Annotated[Viewer, viewer("ui.workorder.note")],
        key: FormKey,
        text: Annotated[str, Form(min_length=1, max_length=MAX_NOTE)],
    ) -> Response:
        return await change(
            request, who, order_id,
            lambda: service.add_note(
                order_id, text, _actor(who), who.role.value, key, scope=who.scope
            ),
        )  # fmt: skip

    @router.post(
        "/workorders/{order_id}/photos",
        operation_id="ui.workorder.photo",
        dependencies=[Depends(check_csrf)],
    )
    async def add_photo(
        request: Request,
        order_id: WorkOrderId,
        who: Annotated[Viewer, viewer("ui.workorder.photo")],
        key: FormKey,
        photo: Annotated[UploadFile, File()],
    ) -> Response:
        content = await photo.read()
        kind = photo.content_type or ""
        actor = _actor(who)
        return await change(
            request, who, order_id,
            lambda: service.add_photo(order_id, content, kind, actor, key, scope=who.scope),
        )  # fmt: skip

    @router.post(
        "/workorders/{order_id}/parts",
        operation_id="ui.workorder.part",
        dependencies=[Depends(check_csrf)],
    )
    async def use_part(
        request: Request,
        order_id: WorkOrderId,
        who: Annotated[Viewer, viewer("ui.workorder.part")],
        key: FormKey,
        part_no: Annotated[str, Form(pattern=PART_NO_PATTERN)],
        quantity: Annotated[int, Form(ge=1, le=1000)],
    ) -> Response:
        return await change(
            request, who, order_id,
            lambda: service.use_part(
                order_id, part_no, quantity, _actor(who), key, scope=who.scope
            ),
        )  # fmt: skip

    @router.post(
        "/workorders/{order_id}/charge",
        operation_id="ui.workorder.charge",
        dependencies=[Depends(check_csrf)],
    )
    async def charge(
        request: Request,
        order_id: WorkOrderId,
        who: Annotated[Viewer, viewer("ui.workorder.charge")],
        key: FormKey,
        reason: Annotated[Literal["", "customer_damage", "customer_equipment"], Form()] = "",
        note: Annotated[str, Form(max_length=MAX_CHARGE_NOTE)] = "",
    ) -> Response:
        """Charge the customer for the job (a reason and a note), or not (no reason)."""
        return await change(
            request, who, order_id,
            lambda: service.set_charge(
                order_id, reason or None, note, _actor(who), who.role.value,
                idempotency_key=key, scope=who.scope,
            ),
        )  # fmt: skip

    @router.post(
        "/workorders/{order_id}/signature",
        operation_id="ui.workorder.sign",
        dependencies=[Depends(check_csrf)],
    )
    async def sign(
        request: Request,
        order_id: WorkOrderId,
        who: Annotated[Viewer, viewer("ui.workorder.sign")],
        key: FormKey,
        signer_name: Annotated[str, Form(min_length=1, max_length=200)],
        drawn: Annotated[str, Form(max_length=_MAX_DATA_URL)] = "",
        image: Annotated[UploadFile | None, File()] = None,
    ) -> Response:
        _ = renderer.gettext(who.language)
        if "\x00" in signer_name:  # the input guard leaves this form's fields to the route
            why = _("Something in the request was too long or not in the expected form.")
            return await job_page(request, who, order_id, why, 422)
        content, kind = await _signature_image(drawn, image)
        if not content:
            why = _("Draw the signature (or choose a picture of it) first.")
            return await job_page(request, who, order_id, why, 422)
        actor = _actor(who)
        return await change(
            request, who, order_id,
            lambda: service.sign(
                order_id, signer_name.strip(), content, actor, key, kind, scope=who.scope
            ),
        )  # fmt: skip

    @router.post(
        "/workorders/{order_id}/appointment",
        operation_id="ui.workorder.appointment",
        dependencies=[Depends(check_csrf)],
    )
    async def confirm_window(
        request: Request,
        order_id: WorkOrderId,
        who: Annotated[Viewer, viewer("ui.workorder.appointment")],
        key: FormKey,
        start: Annotated[AwareDatetime, Form()],  # the offered window's, with its offset
    ) -> Response:
        return await change(
            request, who, order_id,
            lambda: service.confirm_appointment(
                order_id, start, _actor(who), who.role.value, key, scope=who.scope
            ),
        )  # fmt: skip

    @router.post(
        "/workorders/{order_id}/appointment/reschedule",
        operation_id="ui.workorder.reschedule",
        dependencies=[Depends(check_csrf)],
    )
    async def reschedule(
        request: Request,
        order_id: WorkOrderId,
        who: Annotated[Viewer, viewer("ui.workorder.reschedule")],
        key: FormKey,
        reason: Annotated[str, Form(max_length=MAX_REASON)] = "",
    ) -> Response:
        return await change(
            request, who, order_id,
            lambda: service.reschedule_appointment(
                order_id, _actor(who), who.role.value, key,
                reason=reason.strip() or None, scope=who.scope,
            ),
        )  # fmt: skip

    @router.post(
        "/workorders/{order_id}/grid-code",
        operation_id="ui.workorder.grid_code",
        dependencies=[Depends(check_csrf)],
    )
    async def push_grid_code(
        request: Request,
        order_id: WorkOrderId,
        who: Annotated[Viewer, viewer("ui.workorder.grid_code")],
        key: FormKey,
        profile: Annotated[str, Form(pattern=GRID_CODE_PATTERN)],
    ) -> Response:
        """The job's technician puts a grid-code profile into effect on the job's site:
        accepted, back to the job (its pushes list the versions signed); refused, the job
        with the reason (409; 422 for a profile that does not exist)."""
        mine = _mosie_no(who)
        if grid is None or mine is None:
            raise PageRefused(404, "no grid-code push here")
        desk = grid

        def work() -> ConfigResp:
            order = service.get(order_id, who.scope, assignee=mine)
            return desk.push(who, order, profile, key)

        try:
            answer = await run_in_threadpool(work)
        except NotFoundError:
            raise PageRefused(404, "no such work order") from None
        if answer.ok:
            here = f"/ui/{who.region.value}/workorders/{order_id}"
            return RedirectResponse(f"{here}#grid-code", status_code=303)
        _ = renderer.gettext(who.language)
        why = _("Not pushed: %(reason)s", reason=answer.detail)
        status = 422 if answer.code in ("invalid", "unknown_profile") else 409
        return await job_page(request, who, order_id, why, status)

    return router


async def _signature_image(drawn: str, image: UploadFile | None) -> tuple[bytes, str]:
    """The signature's bytes and declared type: the canvas's PNG data URL, else the
    chosen file; empty when neither (or the data URL is not base64 PNG)."""
    if drawn.startswith(_DATA_URL):
        try:
            return base64.b64decode(drawn[len(_DATA_URL) :], validate=True), "image/png"
        except (binascii.Error, ValueError):
            return b"", ""
    if image is not None and image.filename:
        return await image.read(), image.content_type or ""
    return b"", ""


def tickable(tasks: tuple[Task, ...], done: Collection[str]) -> frozenset[str]:
    """The tasks the checklist lets be ticked now: the next safety task while the
    pre-start is not complete (in order), then any task of the work not done yet."""
    pending = [t for t in tasks if t.safety and t.id not in done]
    if pending:
        return frozenset({pending[0].id})
    return frozenset(t.id for t in tasks if t.id not in done)
