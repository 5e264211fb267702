"""Telemetry REST routes: one device's readings of one catalog metric."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Path, Query, status
from starlette.concurrency import run_in_threadpool

from cloud.telemetry.models import ReadingSeries
from cloud.telemetry.store import TelemetryReader
from contracts.metrics import BY_NAME
from contracts.timeutil import utc_now

DEFAULT_WINDOW = timedelta(hours=24)
MAX_LIMIT = 10_000


def create_router(
    reader: TelemetryReader, *, read: Callable[..., Any], device_exists: Callable[[int], bool]
) -> APIRouter:
    router = APIRouter(tags=["telemetry"])

    @router.get(
        "/devices/{device_id}/readings",
        response_model=ReadingSeries,
        dependencies=[Depends(read)],
        summary="Readings of one device and metric",
        description="Samples with `from <= ts < to` in time order, SI units as in the "
        "metric catalog. `from`/`to` are RFC 3339 with an offset; the window "
        "defaults to the 24 h before `to` (default: now).",
        responses={
            404: {"description": "no such device"},
            422: {"description": "unknown metric or bad time window"},
        },
    )
    async def readings(
        # Device keys are PostgreSQL ``int``: anything outside is no device (and must not
        # reach the driver, which would refuse it with an error, not an answer).
        device_id: Annotated[int, Path(ge=1, le=2**31 - 1)],
        metric: Annotated[str, Query(description="catalog name, e.g. `pv_w`")],
        from_: Annotated[datetime | None, Query(alias="from")] = None,
        to: Annotated[datetime | None, Query()] = None,
        limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = 1000,
    ) -> ReadingSeries:
        if metric not in BY_NAME:
            raise HTTPException(422, f"unknown metric {metric!r}; known: {sorted(BY_NAME)}")
        for name, value in (("from", from_), ("to", to)):
            if value is not None and value.tzinfo is None:
                raise HTTPException(422, f"'{name}' needs a UTC offset, e.g. 2025-01-01T00:00:00Z")
        end = to or utc_now()
        start = from_ or end - DEFAULT_WINDOW
        if start >= end:
            raise HTTPException(422, "'from' must be before 'to'")
        if not await run_in_threadpool(device_exists, device_id):
            raise HTTPException(status.HTTP_404_NOT_FOUND, f"device {device_id} not found")
        return await run_in_threadpool(reader.readings, device_id, metric, start, end, limit=limit)

    return router
