"""Ingest REST routes: completeness per device and local day."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query, status
from starlette.concurrency import run_in_threadpool

from cloud.ingest.completeness import MAX_DAYS, CompletenessReader, DeviceCompleteness

DEFAULT_DAYS = 7


def create_router(reader: CompletenessReader, *, read: Callable[..., Any]) -> APIRouter:
    router = APIRouter(tags=["ingest"])

    @router.get(
        "/devices/{device_id}/completeness",
        response_model=DeviceCompleteness,
        dependencies=[Depends(read)],
        summary="Completeness % of one device per local day",
        description="Samples stored ÷ samples expected from the poll interval declared in "
        "the gateway's birth, per day in the site's time zone; `from`/`to` are local dates "
        "(inclusive), by default the last 7 days up to today (counted up to now).",
        responses={404: {"description": "no such device"}, 422: {"description": "bad range"}},
    )
    async def completeness(
        device_id: int,
        from_: Annotated[date | None, Query(alias="from")] = None,
        to: Annotated[date | None, Query()] = None,
    ) -> DeviceCompleteness:
        last = to or date.today()
        first = from_ or last - timedelta(days=DEFAULT_DAYS - 1)
        if first > last:
            raise HTTPException(422, "'from' must not be after 'to'")
        if (last - first).days >= MAX_DAYS:
            raise HTTPException(422, f"at most {MAX_DAYS} days per request")
        found = await run_in_threadpool(reader.device, device_id, first, last)
        if found is None:
            raise HTTPException(status.HTTP_404_NOT_FOUND, f"device {device_id} not found")
        return found

    return router
