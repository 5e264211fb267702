"""Telemetry REST routes (mounted by the portal under ``/api/v1/{region}``): a device's
or a site's readings of one catalog metric — raw samples paged by cursor, or rollup
buckets, chosen by ``resolution`` — and the newest values of a site or of the fleet.

The store knows gateways, not sites: the portal's ``reach`` dependency turns the
caller's scope into a :class:`~cloud.scope.GatewayReach` (a region, and for a customer
its account's gateways), and a device or site behind gateways outside it is not found;
lists hold only what is in it.
"""

# No ``from __future__ import annotations``: the routes' ``Annotated`` dependencies are
# local to ``create_router`` and FastAPI resolves string annotations in the module's
# globals only.

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Annotated, Any, Literal, TypeVar

from fastapi import APIRouter, Depends, HTTPException, Query, status
from starlette.concurrency import run_in_threadpool

from cloud.apitypes import EARLIEST, INT4_MAX, DeviceId, Instant, LocalDay, SiteId, problem
from cloud.scope import GatewayReach
from cloud.telemetry import examples
from cloud.telemetry.energy_store import ENERGY_METRICS
from cloud.telemetry.models import AnySeries, FleetLatest, SiteEnergyOut, SiteLatest, SiteReadings
from cloud.telemetry.resolution import (
    CURSOR_MAX_LEN,
    CURSOR_PATTERN,
    MAX_POINTS,
    CursorError,
    Resolution,
    choose_level,
    decode_cursor,
)
from cloud.telemetry.rollups import Level
from cloud.telemetry.store import TelemetryReader
from contracts.metrics import BY_ID, BY_NAME
from contracts.timeutil import utc_now

DEFAULT_WINDOW = timedelta(hours=24)
MAX_LIMIT = 10_000
#: Per device of a site (a site answers up to ``queries.MAX_SITE_DEVICES`` series).
MAX_SITE_LIMIT = 2_000
#: How far back the newest-value routes look by default, and at most (raw retention).
DEFAULT_MAX_AGE_H = 168
MAX_AGE_H = 2160
_METRICS = sorted(BY_NAME)
_ENERGY_METRICS = sorted(BY_ID[i].name for i in ENERGY_METRICS)
EnergyUnit = Literal["hour", "day", "month"]
#: The longest range of local days asked at once, per unit (bounded answers: 31 x 25
#: hours, 366 days, 10 years of months).
MAX_ENERGY_DAYS: dict[str, int] = {"hour": 31, "day": 366, "month": 3_660}
_T = TypeVar("_T")
_WINDOW_DOC = (
    "`from`/`to` are RFC 3339 with an offset, from 2000 to before 2100; the window "
    "defaults to the 24 h before `to` (default: now)."
)
_RESOLUTION_DOC = (
    "`resolution`: `raw` samples (default), rollup buckets of `5m`, `1h` or `1d` (UTC "
    "days; whole buckets overlapping the window; samples of quality bad are in none), or "
    "`auto`: the coarsest level with at least `points` buckets in the window, raw when "
    "even 5 min buckets are fewer. The answer's `resolution` says which shape it has: "
    "`points` (raw) or `buckets`. Buckets are as fresh as the rollups' last refresh "
    "(the maintenance job's); raw samples as soon as ingest commits them."
)

Metric = Annotated[
    str,
    Query(
        max_length=64, description="catalog name, e.g. `pv_w`", json_schema_extra={"enum": _METRICS}
    ),
]
OptionalMetric = Annotated[
    str | None,
    Query(
        max_length=64,
        description="only this catalog metric (default: every one)",
        json_schema_extra={"enum": _METRICS},
    ),
]
ResolutionQuery = Annotated[Resolution, Query(description="raw, 5m, 1h, 1d or auto")]
Points = Annotated[
    int, Query(ge=1, le=MAX_POINTS, description="for `auto`: the points wanted (a chart's width)")
]
From = Annotated[Instant | None, Query(alias="from")]
To = Annotated[Instant | None, Query()]
MaxAge = Annotated[
    int, Query(ge=1, le=MAX_AGE_H, description="hours back to look for the newest sample")
]


def create_router(
    reader: TelemetryReader, *, reach: Callable[[str], Callable[..., Any]]
) -> APIRouter:
    """``reach(route_key)``: the route's dependency returning the caller's
    :class:`GatewayReach` (authorising it on the way)."""
    router = APIRouter(tags=["telemetry"])

    @router.get(
        "/devices/{device_id}/readings",
        response_model=AnySeries,
        operation_id="devices.readings",
        summary="Readings of one device and metric",
        description="Samples with `from <= ts < to` in time order, SI units as in the "
        f"metric catalog. {_WINDOW_DOC} {_RESOLUTION_DOC} At most `limit` points or "
        "buckets; when more follow, `truncated` is true and `next_cursor` continues "
        "(the same query with `cursor`).",
        responses={
            200: examples.response(raw=examples.RAW, rollup=examples.ROLLUP),
            404: problem("no such device in the caller's reach"),
            422: problem("unknown metric, bad time window or a cursor not of this query"),
        },
    )
    async def readings(
        device_id: DeviceId,
        where: Annotated[GatewayReach, Depends(reach("devices.readings"))],
        metric: Metric,
        from_: From = None,
        to: To = None,
        resolution: ResolutionQuery = "raw",
        points: Points = 300,
        limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = 1000,
        cursor: Annotated[
            str | None,
            Query(
                max_length=CURSOR_MAX_LEN,
                pattern=CURSOR_PATTERN,
                description="`next_cursor` of the previous page",
            ),
        ] = None,
    ) -> Any:
        _known(metric)
        start, end = _window(from_, to)
        level = choose_level(resolution, start, end, points)
        after = _cursor(cursor, level)
        if not await run_in_threadpool(reader.device_exists, device_id, where):
            raise HTTPException(status.HTTP_404_NOT_FOUND, f"device {device_id} not found")
        return await run_in_threadpool(
            lambda: reader.readings(
                device_id, metric, start, end, limit=limit, level=level, after=after
            )
        )

    @router.get(
        "/sites/{site_id}/readings",
        response_model=SiteReadings,
        operation_id="sites.readings",
        summary="Readings of one metric of every device of a site",
        description="One series per device of the site (by device id), each as "
        f"`/devices/{{device_id}}/readings` answers its first page. {_WINDOW_DOC} "
        f"{_RESOLUTION_DOC} A truncated series continues on the device's route with "
        "its `next_cursor`.",
        responses={
            200: examples.response(site=examples.SITE_READINGS),
            404: problem("no such site (with a gateway) in the caller's reach"),
            422: problem("unknown metric or bad time window"),
        },
    )
    async def site_readings(
        site_id: SiteId,
        where: Annotated[GatewayReach, Depends(reach("sites.readings"))],
        metric: Metric,
        from_: From = None,
        to: To = None,
        resolution: ResolutionQuery = "raw",
        points: Points = 300,
        limit: Annotated[
            int, Query(ge=1, le=MAX_SITE_LIMIT, description="points or buckets per device")
        ] = 1000,
    ) -> SiteReadings:
        _known(metric)
        start, end = _window(from_, to)
        level = choose_level(resolution, start, end, points)
        found = await run_in_threadpool(
            lambda: reader.site_readings(
                site_id, metric, (start, end), level, limit=limit, reach=where
            )
        )
        return _found(found, f"site {site_id}")

    @router.get(
        "/sites/{site_id}/latest",
        response_model=SiteLatest,
        operation_id="sites.latest",
        summary="Newest value per device and metric of a site",
        description="For each device of the site and each metric (or only `metric`), the "
        "newest sample of the last `max_age_h` hours; pairs without one are left out.",
        responses={
            200: examples.response(site=examples.SITE_LATEST),
            404: problem("no such site (with a gateway) in the caller's reach"),
            422: problem("unknown metric"),
        },
    )
    async def site_latest(
        site_id: SiteId,
        where: Annotated[GatewayReach, Depends(reach("sites.latest"))],
        metric: OptionalMetric = None,
        max_age_h: MaxAge = DEFAULT_MAX_AGE_H,
    ) -> SiteLatest:
        if metric is not None:
            _known(metric)
        since = utc_now() - timedelta(hours=max_age_h)
        found = await run_in_threadpool(
            lambda: reader.site_latest(site_id, since, metric=metric, reach=where)
        )
        return _found(found, f"site {site_id}")

    @router.get(
        "/latest",
        response_model=FleetLatest,
        operation_id="fleet.latest",
        summary="Newest value of one metric for every device in reach",
        description="The region's fleet (a customer: its account's devices), by device "
        "id: the newest sample of `metric` of the last `max_age_h` hours per device; "
        "devices without one are left out. `limit` devices a page; `next_after` "
        "continues (as `after`).",
        responses={
            200: examples.response(fleet=examples.FLEET_LATEST),
            422: problem("unknown metric"),
        },
    )
    async def fleet_latest(
        where: Annotated[GatewayReach, Depends(reach("fleet.latest"))],
        metric: Metric,
        max_age_h: MaxAge = DEFAULT_MAX_AGE_H,
        after: Annotated[
            int, Query(ge=0, le=INT4_MAX, description="continue after this device id")
        ] = 0,
        limit: Annotated[int, Query(ge=1, le=1000, description="devices per page")] = 100,
    ) -> FleetLatest:
        _known(metric)
        since = utc_now() - timedelta(hours=max_age_h)
        return await run_in_threadpool(
            lambda: reader.fleet_latest(metric, since, after=after, limit=limit, reach=where)
        )

    @router.get(
        "/sites/{site_id}/energy",
        response_model=SiteEnergyOut,
        operation_id="sites.energy",
        summary="A site's energy per local hour, day or month",
        description="Energy of one Wh counter (`metric`: "
        + ", ".join(f"`{m}`" for m in _ENERGY_METRICS)
        + ") summed over the site's devices per local `unit` in the site's time zone "
        "(never PoTR's system meter; `import_wh`, `export_wh`: the grid meter the "
        "installation record names), "
        "from the local day `from` to the local day `to` (inclusive; a month: every month "
        "they touch). From counter differences: resets and recorded meter swaps handled, "
        "nothing interpolated; a period not wholly covered by samples is not `complete` "
        "and says why in `flags`. Energy is exact to the milliwatt-hour (a decimal "
        f"string). At most {MAX_ENERGY_DAYS['hour']} days by hour, "
        f"{MAX_ENERGY_DAYS['day']} by day, {MAX_ENERGY_DAYS['month']} by month.",
        responses={
            200: examples.response(days=examples.SITE_ENERGY),
            404: problem("no such site (with a gateway) in the caller's reach"),
            422: problem("not an energy counter, or a bad or too long range of days"),
        },
    )
    async def energy(
        site_id: SiteId,
        where: Annotated[GatewayReach, Depends(reach("sites.energy"))],
        metric: Annotated[
            str,
            Query(
                max_length=64,
                description="a Wh counter",
                json_schema_extra={"enum": _ENERGY_METRICS},
            ),
        ],
        from_: Annotated[LocalDay, Query(alias="from", description="first local day")],
        to: Annotated[LocalDay, Query(description="last local day (inclusive)")],
        unit: Annotated[EnergyUnit, Query(description="hour, day or month")] = "day",
    ) -> SiteEnergyOut:
        if metric not in _ENERGY_METRICS:
            raise HTTPException(422, f"{metric!r} is no energy counter; known: {_ENERGY_METRICS}")
        if to < from_:
            raise HTTPException(422, "'to' must not be before 'from'")
        if (to - from_).days + 1 > MAX_ENERGY_DAYS[unit]:
            raise HTTPException(422, f"at most {MAX_ENERGY_DAYS[unit]} days by {unit}")
        found = await run_in_threadpool(
            lambda: reader.site_energy(site_id, metric, unit, from_, to, reach=where)
        )
        return _found(found, f"site {site_id}")

    return router


def _known(metric: str) -> None:
    if metric not in BY_NAME:
        raise HTTPException(422, f"unknown metric {metric!r}; known: {_METRICS}")


def _window(from_: datetime | None, to: datetime | None) -> tuple[datetime, datetime]:
    end = to or utc_now()
    start = from_ or max(end - DEFAULT_WINDOW, EARLIEST)
    if start >= end:
        raise HTTPException(422, "'from' must be before 'to'")
    return start, end


def _cursor(cursor: str | None, level: Level | None) -> datetime | None:
    if cursor is None:
        return None
    try:
        return decode_cursor(cursor, level)
    except CursorError as exc:
        raise HTTPException(422, f"cursor: {exc}") from None


def _found(found: _T | None, what: str) -> _T:
    if found is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"{what} not found")
    return found
