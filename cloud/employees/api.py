"""Employees REST routes (relative paths; the portal mounts them and passes in its
``read``/``write`` authorisation dependencies).

The service's refusals propagate to the portal's handlers: ``NotFoundError`` 404,
``ConflictError`` 409, ``InvalidError`` 422. Every route lists every status it answers.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Path, Query, Response, status
from pydantic import AwareDatetime
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
)
from cloud.employees.service import EmployeeService
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


def create_router(
    service: EmployeeService, *, read: Callable[..., Any], write: Callable[..., Any]
) -> APIRouter:
    """Routes under ``/employees`` and ``/calendar``; ``read``/``write`` authorise."""
    router = APIRouter(tags=["employees"])
    readers = [Depends(read)]
    writers = [Depends(write)]

    @router.get(
        "/employees",
        response_model=list[Employee],
        dependencies=readers,
        summary="List employees",
        description="By employee number; optionally only active ones, one home "
        "jurisdiction, or holders of one skill.",
        responses=_AUTH,
    )
    async def list_employees(
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
        )

    @router.post(
        "/employees",
        response_model=Employee,
        status_code=status.HTTP_201_CREATED,
        dependencies=writers,
        summary="Add an employee",
        responses=_AUTH | _CONFLICT,
    )
    async def add_employee(employee: EmployeeIn) -> Employee:
        return await run_in_threadpool(service.add, employee)

    @router.get(
        "/employees/available",
        response_model=list[Employee],
        dependencies=readers,
        summary="Who can take a job",
        description="Active staff at work at `at` (hours, absences, holidays) holding "
        "every `licence` kind and `skill` named, valid for work in `jurisdiction` that day.",
        responses=_AUTH,
    )
    async def available(
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
            service.find_available, at, jurisdiction, licences=licence, skills=skill, limit=limit
        )

    @router.get(
        "/employees/{employee_no}",
        response_model=Employee,
        dependencies=readers,
        summary="One employee",
        responses=_AUTH | _NOT_FOUND,
    )
    async def get_employee(employee_no: EmployeeNo) -> Employee:
        return await run_in_threadpool(service.get, employee_no)

    @router.patch(
        "/employees/{employee_no}",
        response_model=Employee,
        dependencies=writers,
        summary="Change an employee",
        description="Fields left out stay; `skills` and `hours` replace the whole list.",
        responses=_AUTH | _NOT_FOUND | _CONFLICT,
    )
    async def update_employee(employee_no: EmployeeNo, patch: EmployeePatch) -> Employee:
        return await run_in_threadpool(service.update, employee_no, patch)

    @router.post(
        "/employees/{employee_no}/licences",
        response_model=Licence,
        status_code=status.HTTP_201_CREATED,
        dependencies=writers,
        summary="Add a licence",
        responses=_AUTH | _NOT_FOUND | _CONFLICT,
    )
    async def add_licence(employee_no: EmployeeNo, licence: LicenceIn) -> Licence:
        return await run_in_threadpool(service.add_licence, employee_no, licence)

    @router.delete(
        "/employees/{employee_no}/licences/{licence_id}",
        status_code=status.HTTP_204_NO_CONTENT,
        response_class=Response,
        dependencies=writers,
        summary="Remove a licence",
        responses=_AUTH | _NOT_FOUND,
    )
    async def remove_licence(employee_no: EmployeeNo, licence_id: RowId) -> Response:
        await run_in_threadpool(service.remove_licence, employee_no, licence_id)
        return Response(status_code=status.HTTP_204_NO_CONTENT)

    @router.get(
        "/employees/{employee_no}/absences",
        response_model=list[Absence],
        dependencies=readers,
        summary="An employee's absences",
        description="Those sharing a day with `from`..`to`, by first day.",
        responses=_AUTH | _NOT_FOUND,
    )
    async def list_absences(
        employee_no: EmployeeNo,
        first: First,
        last: Last,
        limit: Limit = 100,
        offset: Offset = 0,
    ) -> list[Absence]:
        return await run_in_threadpool(
            service.list_absences, employee_no, first, last, limit=limit, offset=offset
        )

    @router.post(
        "/employees/{employee_no}/absences",
        response_model=Absence,
        status_code=status.HTTP_201_CREATED,
        dependencies=writers,
        summary="Record an absence",
        responses=_AUTH | _NOT_FOUND | {409: {"description": "overlaps another absence"}},
    )
    async def add_absence(
        employee_no: EmployeeNo, absence: Annotated[AbsenceIn, Body()]
    ) -> Absence:
        return await run_in_threadpool(service.add_absence, employee_no, absence)

    @router.delete(
        "/employees/{employee_no}/absences/{absence_id}",
        status_code=status.HTTP_204_NO_CONTENT,
        response_class=Response,
        dependencies=writers,
        summary="Remove an absence",
        responses=_AUTH | _NOT_FOUND,
    )
    async def remove_absence(employee_no: EmployeeNo, absence_id: RowId) -> Response:
        await run_in_threadpool(service.remove_absence, employee_no, absence_id)
        return Response(status_code=status.HTTP_204_NO_CONTENT)

    @router.get(
        "/calendar/{region}/business-days",
        response_model=BusinessDays,
        dependencies=readers,
        summary="Business days and holidays",
        description="The regional business calendar for one jurisdiction (default: the "
        f"region's), `from`..`to` included, at most {MAX_SPAN_DAYS} days.",
        responses=_AUTH,
    )
    async def business_days(
        region: Region, first: First, last: Last, jurisdiction: Jurisdiction = None
    ) -> BusinessDays:
        return await run_in_threadpool(service.business_days, region, jurisdiction, first, last)

    return router
