"""Telemetry REST routes: one device's readings of one catalog metric (mounted by the
portal under ``/api/v1/{region}``).

The store knows gateways, not sites: the portal's ``reach`` dependency turns the
caller's scope into a :class:`~cloud.scope.GatewayReach` (a region, and for a customer
its account's gateways), and a device behind a gateway outside it is not found.
"""

# No ``from __future__ import annotations``: the routes' ``Annotated`` dependencies are
# local to ``create_router`` and FastAPI resolves string annotations in the module's
# globals only.

from collections.abc import Callable
from datetime import timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query, status
from starlette.concurrency import run_in_threadpool

from cloud.apitypes import EARLIEST, DeviceId, Instant, problem
from cloud.scope import GatewayReach
from cloud.telemetry.models import ReadingSeries
from cloud.telemetry.store import TelemetryReader
from contracts.metrics import BY_NAME
from contracts.timeutil import utc_now

DEFAULT_WINDOW = timedelta(hours=24)
MAX_LIMIT = 10_000
_METRICS = sorted(BY_NAME)


def create_router(
    reader: TelemetryReader, *, reach: Callable[[str], Callable[..., Any]]
) -> APIRouter:
    """``reach(route_key)``: the route's dependency returning the caller's
    :class:`GatewayReach` (authorising it on the way)."""
    router = APIRouter(tags=["telemetry"])

    @router.get(
        "/devices/{device_id}/readings",
        response_model=ReadingSeries,
        operation_id="devices.readings",
        summary="Readings of one device and metric",
        description="Samples with `from <= ts < to` in time order, SI units as in the "
        "metric catalog. `from`/`to` are RFC 3339 with an offset, from 2000 to before "
        "2100; the window defaults to the 24 h before `to` (default: now).",
        responses={
            404: problem("no such device in the caller's reach"),
            422: problem("unknown metric or bad time window"),
        },
    )
    async def readings(
        device_id: DeviceId,
        where: Annotated[GatewayReach, Depends(reach("devices.readings"))],
        metric: Annotated[
            str,
            Query(
                max_length=64,
                description="catalog name, e.g. `pv_w`",
                json_schema_extra={"enum": _METRICS},
            ),
        ],
        from_: Annotated[Instant | None, Query(alias="from")] = None,
        to: Annotated[Instant | None, Query()] = None,
        limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = 1000,
    ) -> ReadingSeries:
        if metric not in BY_NAME:
            raise HTTPException(422, f"unknown metric {metric!r}; known: {_METRICS}")
        end = to or utc_now()
        start = from_ or max(end - DEFAULT_WINDOW, EARLIEST)
        if start >= end:
            raise HTTPException(422, "'from' must be before 'to'")
        if not await run_in_threadpool(reader.device_exists, device_id, where):
            raise HTTPException(status.HTTP_404_NOT_FOUND, f"device {device_id} not found")
        return await run_in_threadpool(reader.readings, device_id, metric, start, end, limit=limit)

    return router
