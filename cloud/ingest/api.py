"""Ingest REST routes: completeness per device and local day (mounted by the portal under
``/api/v1/{region}``; the caller's reach comes from the portal, as for telemetry)."""

# No ``from __future__ import annotations``: the route's ``Annotated`` dependency is local
# to ``create_router`` and FastAPI resolves string annotations in the module's globals only.

from collections.abc import Callable
from datetime import date, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query, status
from starlette.concurrency import run_in_threadpool

from cloud.apitypes import DeviceId, LocalDay, problem
from cloud.ingest.completeness import MAX_DAYS, CompletenessReader, DeviceCompleteness
from cloud.scope import GatewayReach

DEFAULT_DAYS = 7


def create_router(
    reader: CompletenessReader, *, reach: Callable[[str], Callable[..., Any]]
) -> APIRouter:
    """``reach(route_key)``: the route's dependency returning the caller's
    :class:`GatewayReach` (authorising it on the way)."""
    router = APIRouter(tags=["ingest"])

    @router.get(
        "/devices/{device_id}/completeness",
        response_model=DeviceCompleteness,
        operation_id="devices.completeness",
        summary="Completeness % of one device per local day",
        description="Samples stored ÷ samples expected from the poll interval declared in "
        "the gateway's birth, per day in the site's time zone; `from`/`to` are local dates "
        f"(inclusive, from 2000 to before 2100, at most {MAX_DAYS} days), by default the "
        "last 7 days up to today (counted up to now).",
        responses={
            404: problem("no such device in the caller's reach"),
            422: problem("bad range"),
        },
    )
    async def completeness(
        device_id: DeviceId,
        where: Annotated[GatewayReach, Depends(reach("devices.completeness"))],
        from_: Annotated[LocalDay | None, Query(alias="from")] = None,
        to: Annotated[LocalDay | None, Query()] = None,
    ) -> DeviceCompleteness:
        last = to or date.today()
        first = from_ or last - timedelta(days=DEFAULT_DAYS - 1)
        if first > last:
            raise HTTPException(422, "'from' must not be after 'to'")
        if (last - first).days >= MAX_DAYS:
            raise HTTPException(422, f"at most {MAX_DAYS} days per request")
        found = await run_in_threadpool(reader.device, device_id, first, last, reach=where)
        if found is None:
            raise HTTPException(status.HTTP_404_NOT_FOUND, f"device {device_id} not found")
        return found

    return router
