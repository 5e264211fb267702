"""What a MOSIE reports from the field in the web UI (issue 17), beside the job pages of
:mod:`cloud.portal.web.pages_dispatch`: an incident found on site (the on-site job page's
form posts here), the location notice (read, acknowledge, withdraw), and the "share my
location" control of the jobs page, whose script (``location.js``) asks the browser for
its position only once the notice's current version is acknowledged.

Incidents and fixes go through :class:`cloud.dispatch.DispatchService` (the same checks
as the API: the MOSIE's own on-site job; on duty with the notice acknowledged); the
notice is the employees service's. Each form carries an idempotency key made when it was
rendered; the location script makes one per fix.
"""

# No ``from __future__ import annotations``: the routes' dependencies are local to
# ``create_field_pages`` and FastAPI resolves string annotations in the module's globals.

from datetime import datetime
from typing import Annotated, Any, get_args

from fastapi import APIRouter, Depends, Form, Path, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from cloud.dispatch import DispatchService
from cloud.dispatch.checklists import WorkOrderType
from cloud.dispatch.errors import ConflictError, LocationRefused, NotFoundError, RefusedError
from cloud.employees import EmployeeService
from cloud.employees import InvalidError as EmployeesInvalid
from cloud.employees import NotFoundError as EmployeesNotFound
from cloud.events.workorders import Priority
from cloud.identity import Role
from cloud.portal.web.csrf import check_csrf
from cloud.portal.web.pages_dispatch import new_form_key
from cloud.portal.web.render import Renderer
from cloud.portal.web.session import PageRefused, Sessions, Viewer

__all__ = ["INCIDENT_PRIORITIES", "INCIDENT_TYPES", "create_field_pages"]

#: What the incident form offers (the work-order types and priorities dispatch takes).
INCIDENT_TYPES: tuple[str, ...] = tuple(t.value for t in WorkOrderType)
INCIDENT_PRIORITIES: tuple[str, ...] = get_args(Priority)
WorkOrderId = Annotated[int, Path(ge=1, le=2**53 - 1)]
FormKey = Annotated[str, Form(pattern=r"^[A-Za-z0-9_-]{8,100}$")]


def _mosie(who: Viewer) -> str:
    if who.role != Role.MOSIE or not who.caller.employee_no:
        raise PageRefused(403, "a MOSIE signs in with their employee number")
    return who.caller.employee_no


def create_field_pages(
    sessions: Sessions,
    renderer: Renderer,
    service: DispatchService,
    employees: EmployeeService | None,
) -> APIRouter:
    router = APIRouter(prefix="/ui/{region}", include_in_schema=False)

    def viewer(route_key: str) -> Any:
        return Depends(sessions.viewer(route_key))

    # -- incidents ----------------------------------------------------------------------
    @router.post(
        "/workorders/{order_id}/incidents",
        operation_id="ui.workorder.incident",
        dependencies=[Depends(check_csrf)],
    )
    async def raise_incident(
        order_id: WorkOrderId,
        who: Annotated[Viewer, viewer("ui.workorder.incident")],
        key: FormKey,
        type: Annotated[WorkOrderType, Form()],
        priority: Annotated[Priority, Form()],
        title: Annotated[str, Form(min_length=3, max_length=200)],
        description: Annotated[str, Form(max_length=4000)] = "",
    ) -> Response:
        employee_no = _mosie(who)
        _ = renderer.gettext(who.language)
        try:
            await run_in_threadpool(
                lambda: service.raise_incident(
                    order_id, type, priority, title.strip(), description.strip(),
                    employee_no, key, scope=who.scope,
                )
            )  # fmt: skip
        except NotFoundError:
            raise PageRefused(404, "no such work order") from None
        except ConflictError as exc:
            raise PageRefused(409, _("Not done: %(reason)s", reason=str(exc))) from None
        except RefusedError as exc:
            raise PageRefused(422, _("Not done: %(reason)s", reason=str(exc))) from None
        # Back to the job on site: its history lists the incident raised.
        return RedirectResponse(f"/ui/{who.region.value}/workorders/{order_id}", 303)

    # -- the location notice --------------------------------------------------------------
    def directory() -> EmployeeService:
        if employees is None:
            raise PageRefused(503, "the staff records are not served here")
        return employees

    @router.get("/location-notice", operation_id="ui.location_notice")
    async def notice(
        request: Request, who: Annotated[Viewer, viewer("ui.location_notice")]
    ) -> Response:
        employee_no = _mosie(who)
        staff = directory()
        try:
            consent = await run_in_threadpool(
                lambda: staff.location_consent(
                    employee_no, region=who.region, language=who.language
                )
            )
        except EmployeesNotFound:
            raise PageRefused(404, "no staff record of yours in this region") from None
        return renderer.page(
            request, "location_notice.html", language=who.language, viewer=who,
            consent=consent, new_key=new_form_key,
        )  # fmt: skip

    async def change_notice(who: Viewer, acknowledge: bool, version: int) -> Response:
        employee_no = _mosie(who)
        staff = directory()
        try:
            if acknowledge:
                await run_in_threadpool(
                    lambda: staff.acknowledge_location_notice(
                        employee_no, version, region=who.region
                    )
                )
            else:
                await run_in_threadpool(
                    lambda: staff.withdraw_location_notice(employee_no, region=who.region)
                )
        except EmployeesNotFound:
            raise PageRefused(404, "no staff record of yours in this region") from None
        except EmployeesInvalid as exc:
            raise PageRefused(422, str(exc)) from None
        return RedirectResponse(f"/ui/{who.region.value}/jobs", 303)

    @router.post(
        "/location-notice",
        operation_id="ui.location_notice.acknowledge",
        dependencies=[Depends(check_csrf)],
    )
    async def acknowledge(
        who: Annotated[Viewer, viewer("ui.location_notice.acknowledge")],
        version: Annotated[int, Form(ge=1, le=10_000)],
    ) -> Response:
        return await change_notice(who, True, version)

    @router.post(
        "/location-notice/withdraw",
        operation_id="ui.location_notice.withdraw",
        dependencies=[Depends(check_csrf)],
    )
    async def withdraw(who: Annotated[Viewer, viewer("ui.location_notice.withdraw")]) -> Response:
        return await change_notice(who, False, 0)

    # -- sharing the location ---------------------------------------------------------------
    @router.get("/location/control", operation_id="ui.location.control")
    async def control(
        request: Request, who: Annotated[Viewer, viewer("ui.location.control")]
    ) -> Response:
        """The jobs page's location part (loaded into it): the share button once the
        notice's current version is acknowledged, else the way to read it."""
        employee_no = _mosie(who)
        consent = None
        if employees is not None:
            try:
                consent = await run_in_threadpool(
                    lambda: directory().location_consent(employee_no, region=who.region)
                )
            except EmployeesNotFound:
                consent = None
        return renderer.page(
            request, "_location_control.html", language=who.language, viewer=who,
            consent=consent,
        )  # fmt: skip

    @router.post("/location", operation_id="ui.location.record", dependencies=[Depends(check_csrf)])
    async def record(
        who: Annotated[Viewer, viewer("ui.location.record")],
        key: FormKey,
        latitude: Annotated[float, Form(ge=-90, le=90, allow_inf_nan=False)],
        longitude: Annotated[float, Form(ge=-180, le=180, allow_inf_nan=False)],
        accuracy_m: Annotated[float, Form(gt=0, le=100_000, allow_inf_nan=False)],
        at: Annotated[datetime, Form()],
    ) -> Response:
        """A fix from the browser's geolocation, answered as JSON for the script: 201
        recorded, else the refusal's code and reason (409, 422, 404) — nothing stored."""
        employee_no = _mosie(who)
        _ = renderer.gettext(who.language)
        # The browser may report a coarse fix (over 10 km): kept at the service's bound.
        accuracy = min(accuracy_m, 10_000.0)
        try:
            done = await run_in_threadpool(
                lambda: service.record_location(
                    employee_no, who.region, latitude, longitude, accuracy, at, key
                )
            )
        except LocationRefused as exc:
            words = {
                "notice_not_acknowledged": _(
                    "Acknowledge the location notice first: nothing was recorded."
                ),
                "off_duty": _("You are off duty: nothing was recorded."),
            }
            body = {"code": exc.code.value, "reason": words.get(exc.code.value, exc.reason)}
            return JSONResponse(body, status_code=409)
        except RefusedError as exc:
            return JSONResponse({"code": "invalid", "reason": str(exc)}, status_code=422)
        except NotFoundError as exc:
            return JSONResponse({"code": "not_found", "reason": str(exc)}, status_code=404)
        message = _("Location shared (%(duty)s).", duty=_duty_words(done.duty, _))
        return JSONResponse({"recorded": True, "message": message}, status_code=201)

    return router


def _duty_words(duty: str, _: Any) -> str:
    return str(_("on a job") if duty == "on_job" else _("in working hours"))
