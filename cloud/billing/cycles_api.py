"""Billing cycles' REST routes, relative to the portal's regional prefix ``/api/v1/{region}``
(issue 19 point 6): the region's cycles, one cycle with its documents and skipped sites,
and starting a cycle — which runs in the background (:class:`CycleRunner`) and answers
at once with the cycle's address.

Who may call which is the portal's policy (``access(route_key)``; 401/403 are its); the
URL's region is the cycle's: another region's cycle is 404.
"""

# No ``from __future__ import annotations``: the routes' ``Annotated`` dependencies are
# local to ``create_cycles_router`` and FastAPI resolves string annotations in the
# module's globals only.

from collections.abc import Callable
from datetime import date
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Path, Query, Response, status
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from cloud.apitypes import BODY_RESPONSES, problem
from cloud.billing.cycle_runs import (
    CycleRunner,
    CycleStart,
    PeriodNotEndedError,
    RunnerClosedError,
)
from cloud.billing.cycles import CycleDetail, CycleSummary
from cloud.scope import Access
from contracts.topics import Region

__all__ = ["CycleStartIn", "CycleStartOut", "create_cycles_router"]

CycleIdPath = Annotated[int, Path(ge=1, le=2**63 - 1, description="the cycle's id")]
Limit = Annotated[int, Query(ge=1, le=500, description="page size")]
Offset = Annotated[int, Query(ge=0, le=1_000_000, description="rows to skip")]
#: Periods a start may name: from the platform's first bills to well past any run.
FIRST_PERIOD = date(2020, 1, 1)
LAST_PERIOD = date(2099, 12, 1)

Responses = dict[int | str, dict[str, Any]]


class CycleStartIn(BaseModel):
    """A billing period of the URL's region: a month, or a quarter for the plans billed
    quarterly (``first_day`` the 1st of January, April, July or October)."""

    model_config = ConfigDict(extra="forbid")

    first_day: date = Field(
        ge=FIRST_PERIOD, le=LAST_PERIOD, description="the period's first day: a month's 1st"
    )
    cycle: Literal["monthly", "quarterly"] = "monthly"


class CycleStartOut(BaseModel):
    """``started``/``resumed``: a run was started now (202); ``running``: this process runs
    or queued it already, ``already_billed``: the period was billed (200). ``url``: where
    to follow it."""

    outcome: Literal["started", "resumed", "running", "already_billed"]
    url: str
    cycle: CycleSummary


def _answers(**extra: str) -> Responses:
    answers: Responses = {
        401: problem("no valid bearer token"),
        403: problem("the caller's role may not do this"),
        404: problem("no such cycle in the region (or a region out of reach)"),
        422: problem("a path, query or body field out of its bounds (detail names it)"),
    }
    for code, text in extra.items():
        status_code = int(code[1:])
        answers[status_code] = (
            {"model": CycleStartOut, "description": text} if status_code < 400 else problem(text)
        )
    return answers


def create_cycles_router(
    runner: CycleRunner, *, access: Callable[[str], Callable[..., Any]]
) -> APIRouter:
    """Routes under ``/billing/cycles``."""
    router = APIRouter(tags=["billing"])
    reader = runner.reader

    def region_of(who: Access) -> Region:
        assert who.scope.region is not None  # within the URL's region
        return who.scope.region

    @router.get(
        "/billing/cycles",
        response_model=list[CycleSummary],
        operation_id="billing.cycles.list",
        summary="The region's billing cycles, newest period first, with their progress",
        responses=_answers(),
    )
    async def list_cycles(
        who: Annotated[Access, Depends(access("billing.cycles.list"))],
        limit: Limit = 50,
        offset: Offset = 0,
    ) -> list[CycleSummary]:
        region = region_of(who)
        return await run_in_threadpool(lambda: reader.cycles(region, limit=limit, offset=offset))

    @router.get(
        "/billing/cycles/{cycle_id}",
        response_model=CycleDetail,
        operation_id="billing.cycles.get",
        summary="One billing cycle: its documents (a page), totals per currency, and the"
        " sites it skipped with the reasons (a page)",
        responses=_answers(),
    )
    async def get_cycle(
        cycle_id: CycleIdPath,
        who: Annotated[Access, Depends(access("billing.cycles.get"))],
        limit: Limit = 200,
        offset: Offset = 0,
    ) -> CycleDetail:
        region = region_of(who)
        found = await run_in_threadpool(
            lambda: reader.cycle(region, cycle_id, limit=limit, offset=offset)
        )
        if found is None:
            raise HTTPException(status.HTTP_404_NOT_FOUND, f"no billing cycle {cycle_id}")
        return found

    @router.post(
        "/billing/cycles",
        response_model=CycleStartOut,
        status_code=status.HTTP_202_ACCEPTED,
        operation_id="billing.cycles.start",
        summary="Start the region's billing cycle of a period; it runs in the background",
        responses=BODY_RESPONSES
        | _answers(
            s200="the period's cycle exists: running in this process, or billed (no new run)",
            s202="the cycle was started (or an interrupted run resumed); it runs after the"
            " region's cycles started before it. Location: its URL",
            s422="a field out of bounds, a period that is no month or quarter, or one that"
            " has not ended in every time zone of the region (detail says when it ends)",
            s503="the runner is shutting down",
        ),
    )
    async def start_cycle(
        body: CycleStartIn,
        response: Response,
        who: Annotated[Access, Depends(access("billing.cycles.start"))],
    ) -> CycleStartOut:
        region = region_of(who)
        try:
            started: CycleStart = await run_in_threadpool(
                lambda: runner.start(region, body.first_day, body.cycle, who.subject)
            )
        except PeriodNotEndedError as exc:
            raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, str(exc)) from None
        except ValueError as exc:  # no month or quarter start
            raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, str(exc)) from None
        except RunnerClosedError as exc:
            raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, str(exc)) from None
        url = f"/api/v1/{region.value}/billing/cycles/{started.cycle.id}"
        response.headers["location"] = url
        if started.outcome in ("running", "already_billed"):
            response.status_code = status.HTTP_200_OK
        return CycleStartOut(outcome=started.outcome, url=url, cycle=started.cycle)

    return router
