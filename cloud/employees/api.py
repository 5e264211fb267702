"""Employees REST routes, relative to the portal's regional prefix ``/api/v1/{region}``.

Every route takes its caller's :class:`~cloud.scope.Access` from the portal's one
authorisation dependency (``access(route_key)``; the key is the route's ``operationId``)
and passes the scope's region (the URL's) to the service, which filters staff by home
region in SQL: an employee of another region is not found (404).

The service's refusals propagate to the portal's handlers: ``NotFoundError`` 404,
``ConflictError`` 409, ``InvalidError`` 422. Every route lists every status it answers.
"""

# No ``from __future__ import annotations``: the routes' ``Annotated`` dependencies are
# local to ``create_router`` and FastAPI resolves string annotations in the module's
# globals only.

from collections.abc import Callable
from datetime import date
from typing import Annotated, Any

from fastapi import (
    APIRouter,
    Body,
    Depends,
    HTTPException,
    Path,
    Query,
    Request,
    Response,
    status,
)
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from cloud.calendars import JURISDICTION_PATTERN, MAX_SPAN_DAYS
from cloud.employees.catalogue import LICENCE_KIND_PATTERN, SKILL_PATTERN
from cloud.employees.models import (
    EMPLOYEE_NO_PATTERN,
    MAX_DAY,
    MIN_DAY,
    Absence,
    AbsenceIn,
    BusinessDays,
    Employee,
    EmployeeIn,
    EmployeePatch,
    Licence,
    LicenceIn,
    LocationConsent,
)
from cloud.employees.photos import BADGE_TYPES, MAX_BADGE_BYTES
from cloud.employees.service import EmployeeService
from cloud.scope import Access
from contracts.topics import Region

Limit = Annotated[int, Query(ge=1, le=500, description="page size")]
Offset = Annotated[int, Query(ge=0, le=1_000_000, description="rows to skip")]
EmployeeNo = Annotated[str, Path(pattern=EMPLOYEE_NO_PATTERN, examples=["E00042"])]
RowId = Annotated[int, Path(ge=1, le=2**63 - 1)]
Jurisdiction = Annotated[
    str | None,
    Query(pattern=JURISDICTION_PATTERN, description="ISO 3166-2 code (or the country)"),
]
First = Annotated[date, Query(alias="from", ge=MIN_DAY, le=MAX_DAY, description="first day")]
Last = Annotated[date, Query(alias="to", ge=MIN_DAY, le=MAX_DAY, description="last day, included")]

#: Statuses every route answers: the authorisation dependencies' and validation's.
_AUTH: dict[int | str, dict[str, Any]] = {
    401: {"description": "no valid bearer token"},
    403: {"description": "the token's role may not do this"},
    422: {"description": "a field unknown or out of bounds (the answer names it)"},
}
_NOT_FOUND: dict[int | str, dict[str, Any]] = {404: {"description": "no such employee (or item)"}}
_CONFLICT: dict[int | str, dict[str, Any]] = {409: {"description": "conflicts with a record"}}


_BADGE_BODY = {
    "requestBody": {
        "required": True,
        "description": "the photo's bytes; Content-Type is the image's",
        "content": {t: {"schema": {"type": "string", "format": "binary"}} for t in BADGE_TYPES},
    }
}


def _region(who: Access) -> Region:
    """The URL's region: the portal narrows every scope to it."""
    assert who.scope.region is not None, "the portal narrows every scope to the URL's region"
    return who.scope.region


class NoticeAck(BaseModel):
    """The version of the location notice the employee read and acknowledges."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    version: int = Field(ge=1, le=10_000)


def _me(who: Access) -> str:
    """The caller's own employee number (their token's); 403 for a token without one."""
    if who.employee_no is None:
        raise HTTPException(status.HTTP_403_FORBIDDEN, "sign in with your employee number")
    return who.employee_no


def create_router(
    service: EmployeeService, *, access: Callable[[str], Callable[..., Any]]
) -> APIRouter:
    """Routes under ``/employees``, ``/calendar`` and ``/me/location-notice`` (the
    signed-in employee's own); ``access(key)`` authorises."""
    router = APIRouter(tags=["employees"])

    @router.get(
        "/employees",
        response_model=list[Employee],
        operation_id="employees.list",
        summary="List employees",
        description="By employee number; optionally only active ones, one home "
        "jurisdiction, or holders of one skill.",
        responses=_AUTH,
    )
    async def list_employees(
        who: Annotated[Access, Depends(access("employees.list"))],
        active: bool | None = None,
        jurisdiction: Jurisdiction = None,
        skill: Annotated[str | None, Query(pattern=SKILL_PATTERN)] = None,
        limit: Limit = 100,
        offset: Offset = 0,
    ) -> list[Employee]:
        return await run_in_threadpool(
            service.list_employees,
            active=active,
            jurisdiction=jurisdiction,
            skill=skill,
            limit=limit,
            offset=offset,
            region=_region(who),
        )

    @router.post(
        "/employees",
        response_model=Employee,
        status_code=status.HTTP_201_CREATED,
        operation_id="employees.create",
        summary="Add an employee",
        responses=_AUTH | _CONFLICT,
    )
    async def add_employee(
        who: Annotated[Access, Depends(access("employees.create"))], employee: EmployeeIn
    ) -> Employee:
        return await run_in_threadpool(service.add, employee, region=_region(who))

    @router.get(
        "/available-employees",
        response_model=list[Employee],
        operation_id="employees.available",
        summary="Who can take a job",
        description="Active staff at work at `at` (hours, absences, holidays) holding "
        "every `licence` kind and `skill` named, valid for work in `jurisdiction` that day.",
        responses=_AUTH,
    )
    async def available(
        who: Annotated[Access, Depends(access("employees.available"))],
        at: Annotated[AwareDatetime, Query(description="the instant, with its offset")],
        jurisdiction: Annotated[
            str, Query(pattern=JURISDICTION_PATTERN, description="where the work is")
        ],
        licence: Annotated[
            list[Annotated[str, Query(pattern=LICENCE_KIND_PATTERN)]],
            Query(max_length=8, description="licence kinds required"),
        ] = [],  # noqa: B006 (FastAPI copies query defaults)
        skill: Annotated[
            list[Annotated[str, Query(pattern=SKILL_PATTERN)]],
            Query(max_length=16, description="skills required"),
        ] = [],  # noqa: B006
        limit: Limit = 100,
    ) -> list[Employee]:
        return await run_in_threadpool(
            service.find_available,
            at,
            jurisdiction,
            licences=licence,
            skills=skill,
            limit=limit,
            region=_region(who),
        )

    @router.get(
        "/employees/{employee_no}",
        response_model=Employee,
        operation_id="employees.get",
        summary="One employee",
        responses=_AUTH | _NOT_FOUND,
    )
    async def get_employee(
        who: Annotated[Access, Depends(access("employees.get"))], employee_no: EmployeeNo
    ) -> Employee:
        return await run_in_threadpool(service.get, employee_no, region=_region(who))

    @router.patch(
        "/employees/{employee_no}",
        response_model=Employee,
        operation_id="employees.update",
        summary="Change an employee",
        description="Fields left out stay; `skills` and `hours` replace the whole list.",
        responses=_AUTH | _NOT_FOUND | _CONFLICT,
    )
    async def update_employee(
        who: Annotated[Access, Depends(access("employees.update"))],
        employee_no: EmployeeNo,
        patch: EmployeePatch,
    ) -> Employee:
        return await run_in_threadpool(service.update, employee_no, patch, region=_region(who))

    @router.put(
        "/employees/{employee_no}/photo",
        status_code=status.HTTP_204_NO_CONTENT,
        response_class=Response,
        operation_id="employees.photo.put",
        summary="Set the employee's badge photo (admins): the raw image as the body",
        description="The photo a customer is shown of the MOSIE at their door. JPEG, PNG or "
        f"WebP of at most {MAX_BADGE_BYTES} bytes; the bytes must be what `Content-Type` says. "
        "Replaces the one held.",
        openapi_extra=_BADGE_BODY,
        responses=_AUTH
        | _NOT_FOUND
        | {
            204: {"description": "stored"},
            413: {"description": f"the photo is larger than {MAX_BADGE_BYTES} bytes"},
            415: {"description": "Content-Type is not image/jpeg, image/png or image/webp"},
        },
    )
    async def put_photo(
        who: Annotated[Access, Depends(access("employees.photo.put"))],
        employee_no: EmployeeNo,
        request: Request,
    ) -> Response:
        declared = request.headers.get("content-type", "")
        if declared.split(";", 1)[0].strip().lower() not in BADGE_TYPES:
            raise HTTPException(
                status.HTTP_415_UNSUPPORTED_MEDIA_TYPE,
                f"Content-Type must be one of {', '.join(BADGE_TYPES)}",
            )
        content = bytearray()
        async for chunk in request.stream():
            content += chunk
            if len(content) > MAX_BADGE_BYTES:
                raise HTTPException(
                    status.HTTP_413_CONTENT_TOO_LARGE,
                    f"the photo is larger than {MAX_BADGE_BYTES} bytes",
                )
        by = who.employee_no or who.subject
        await run_in_threadpool(
            lambda: service.set_badge_photo(
                employee_no, bytes(content), declared, by, region=_region(who)
            )
        )
        return Response(status_code=status.HTTP_204_NO_CONTENT)

    @router.post(
        "/employees/{employee_no}/licences",
        response_model=Licence,
        status_code=status.HTTP_201_CREATED,
        operation_id="licences.create",
        summary="Add a licence",
        responses=_AUTH | _NOT_FOUND | _CONFLICT,
    )
    async def add_licence(
        who: Annotated[Access, Depends(access("licences.create"))],
        employee_no: EmployeeNo,
        licence: LicenceIn,
    ) -> Licence:
        return await run_in_threadpool(
            service.add_licence, employee_no, licence, region=_region(who)
        )

    @router.delete(
        "/employees/{employee_no}/licences/{licence_id}",
        status_code=status.HTTP_204_NO_CONTENT,
        response_class=Response,
        operation_id="licences.delete",
        summary="Remove a licence",
        responses=_AUTH | _NOT_FOUND,
    )
    async def remove_licence(
        who: Annotated[Access, Depends(access("licences.delete"))],
        employee_no: EmployeeNo,
        licence_id: RowId,
    ) -> Response:
        await run_in_threadpool(
            service.remove_licence, employee_no, licence_id, region=_region(who)
        )
        return Response(status_code=status.HTTP_204_NO_CONTENT)

    @router.get(
        "/employees/{employee_no}/absences",
        response_model=list[Absence],
        operation_id="absences.list",
        summary="An employee's absences",
        description="Those sharing a day with `from`..`to`, by first day.",
        responses=_AUTH | _NOT_FOUND,
    )
    async def list_absences(
        who: Annotated[Access, Depends(access("absences.list"))],
        employee_no: EmployeeNo,
        first: First,
        last: Last,
        limit: Limit = 100,
        offset: Offset = 0,
    ) -> list[Absence]:
        return await run_in_threadpool(
            service.list_absences,
            employee_no,
            first,
            last,
            limit=limit,
            offset=offset,
            region=_region(who),
        )

    @router.post(
        "/employees/{employee_no}/absences",
        response_model=Absence,
        status_code=status.HTTP_201_CREATED,
        operation_id="absences.create",
        summary="Record an absence",
        responses=_AUTH | _NOT_FOUND | {409: {"description": "overlaps another absence"}},
    )
    async def add_absence(
        who: Annotated[Access, Depends(access("absences.create"))],
        employee_no: EmployeeNo,
        absence: Annotated[AbsenceIn, Body()],
    ) -> Absence:
        return await run_in_threadpool(
            service.add_absence, employee_no, absence, region=_region(who)
        )

    @router.delete(
        "/employees/{employee_no}/absences/{absence_id}",
        status_code=status.HTTP_204_NO_CONTENT,
        response_class=Response,
        operation_id="absences.delete",
        summary="Remove an absence",
        responses=_AUTH | _NOT_FOUND,
    )
    async def remove_absence(
        who: Annotated[Access, Depends(access("absences.delete"))],
        employee_no: EmployeeNo,
        absence_id: RowId,
    ) -> Response:
        await run_in_threadpool(
            service.remove_absence, employee_no, absence_id, region=_region(who)
        )
        return Response(status_code=status.HTTP_204_NO_CONTENT)

    @router.get(
        "/calendar/business-days",
        response_model=BusinessDays,
        operation_id="calendar.business_days",
        summary="Business days and holidays",
        description="The URL region's business calendar for one jurisdiction (default: the "
        f"region's), `from`..`to` included, at most {MAX_SPAN_DAYS} days.",
        responses=_AUTH,
    )
    async def business_days(
        who: Annotated[Access, Depends(access("calendar.business_days"))],
        first: First,
        last: Last,
        jurisdiction: Jurisdiction = None,
    ) -> BusinessDays:
        return await run_in_threadpool(
            service.business_days, _region(who), jurisdiction, first, last
        )

    # -- the location notice (the signed-in employee's own) -----------------------------
    @router.get(
        "/me/location-notice",
        response_model=LocationConsent,
        operation_id="location_notice.get",
        summary="The location notice and whether I acknowledged its current version",
        responses=_AUTH | _NOT_FOUND,
    )
    async def location_notice(
        who: Annotated[Access, Depends(access("location_notice.get"))],
        language: Annotated[str, Query(pattern=r"^(en|es)$")] = "en",
    ) -> LocationConsent:
        return await run_in_threadpool(
            lambda: service.location_consent(_me(who), region=_region(who), language=language)
        )

    @router.post(
        "/me/location-notice",
        response_model=LocationConsent,
        operation_id="location_notice.acknowledge",
        summary="Acknowledge the location notice's current version",
        description="Recorded with its version and time; 422 for a version that is not "
        "the current one (read the notice again); 409 for an inactive employee.",
        responses=_AUTH | _NOT_FOUND | _CONFLICT,
    )
    async def acknowledge_location_notice(
        who: Annotated[Access, Depends(access("location_notice.acknowledge"))], body: NoticeAck
    ) -> LocationConsent:
        return await run_in_threadpool(
            lambda: service.acknowledge_location_notice(_me(who), body.version, region=_region(who))
        )

    @router.delete(
        "/me/location-notice",
        response_model=LocationConsent,
        operation_id="location_notice.withdraw",
        summary="Withdraw my acknowledgement: my location is no longer recorded",
        responses=_AUTH | _NOT_FOUND,
    )
    async def withdraw_location_notice(
        who: Annotated[Access, Depends(access("location_notice.withdraw"))],
    ) -> LocationConsent:
        return await run_in_threadpool(
            lambda: service.withdraw_location_notice(_me(who), region=_region(who))
        )

    return router
