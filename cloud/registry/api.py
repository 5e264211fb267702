"""Registry REST routes (mounted by the portal under ``/api/v1/{region}``).

Every route takes its caller's :class:`~cloud.scope.Access` from the portal's one
authorisation dependency (``access(route_key)``; the key is the route's
``operationId``) and passes its scope to the service, which filters in SQL: what is
outside it reads as absent (404, or missing from a list). The service's refusals
(``NotFoundError``, ``ConflictError``) propagate: the portal's handlers answer them.
"""

# No ``from __future__ import annotations``: the routes' ``Annotated`` dependencies are
# local to ``create_router`` and FastAPI resolves string annotations in the module's
# globals only.

from collections.abc import Callable
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query, status
from starlette.concurrency import run_in_threadpool

from cloud.apitypes import (
    BODY_RESPONSES,
    INT4_MAX,
    DeviceId,
    GatewayIdPath,
    Limit,
    Offset,
    SiteId,
    problem,
)
from cloud.registry.models import Device, Gateway, GatewayIn, Site, SiteIn
from cloud.registry.service import RegistryService
from cloud.scope import Access
from contracts.topics import GATEWAY_ID_RE


def create_router(
    service: RegistryService, *, access: Callable[[str], Callable[..., Any]]
) -> APIRouter:
    """Routes under ``/sites``, ``/gateways``, ``/devices``; ``access(key)`` authorises."""
    router = APIRouter(tags=["registry"])

    @router.get(
        "/sites",
        response_model=list[Site],
        operation_id="sites.list",
        summary="List sites",
        description="The region's sites the caller may see (a customer: its account's), by id.",
    )
    async def list_sites(
        who: Annotated[Access, Depends(access("sites.list"))],
        limit: Limit = 100,
        offset: Offset = 0,
    ) -> list[Site]:
        return await run_in_threadpool(
            service.list_sites, limit=limit, offset=offset, scope=who.scope
        )

    @router.get(
        "/sites/{site_id}",
        response_model=Site,
        operation_id="sites.get",
        summary="One site",
        responses={404: problem("no such site in the caller's reach")},
    )
    async def get_site(
        site_id: SiteId, who: Annotated[Access, Depends(access("sites.get"))]
    ) -> Site:
        site = await run_in_threadpool(service.get_site, site_id, scope=who.scope)
        if site is None:
            raise HTTPException(status.HTTP_404_NOT_FOUND, f"site {site_id} not found")
        return site

    @router.post(
        "/sites",
        response_model=Site,
        status_code=status.HTTP_201_CREATED,
        operation_id="sites.create",
        summary="Create a site",
        description="The body's `region` must be the URL's.",
        responses={**BODY_RESPONSES, 422: problem("malformed, or another region than the URL's")},
    )
    async def add_site(
        site: SiteIn, who: Annotated[Access, Depends(access("sites.create"))]
    ) -> Site:
        if who.scope.region is not None and site.region != who.scope.region:
            raise HTTPException(
                422,
                [
                    {
                        "loc": ["body", "region"],
                        "msg": f"must be the URL's region {who.scope.region.value!r}",
                        "type": "value_error",
                    }
                ],
            )
        return await run_in_threadpool(service.add_site, site)

    @router.get(
        "/gateways",
        response_model=list[Gateway],
        operation_id="gateways.list",
        summary="List gateways",
        description="The gateways the caller may see; optionally only one site's.",
    )
    async def list_gateways(
        who: Annotated[Access, Depends(access("gateways.list"))],
        site_id: Annotated[int | None, Query(ge=1, le=INT4_MAX)] = None,
        limit: Limit = 100,
        offset: Offset = 0,
    ) -> list[Gateway]:
        return await run_in_threadpool(
            service.list_gateways, site_id=site_id, limit=limit, offset=offset, scope=who.scope
        )

    @router.get(
        "/gateways/{gateway_id}",
        response_model=Gateway,
        operation_id="gateways.get",
        summary="One gateway",
        responses={404: problem("no such gateway in the caller's reach")},
    )
    async def get_gateway(
        gateway_id: GatewayIdPath, who: Annotated[Access, Depends(access("gateways.get"))]
    ) -> Gateway:
        gateway = await run_in_threadpool(service.get_gateway, gateway_id, scope=who.scope)
        if gateway is None:
            raise HTTPException(status.HTTP_404_NOT_FOUND, f"gateway {gateway_id!r} not found")
        return gateway

    @router.post(
        "/gateways",
        response_model=Gateway,
        status_code=status.HTTP_201_CREATED,
        operation_id="gateways.create",
        summary="Register a gateway",
        responses={
            **BODY_RESPONSES,
            404: problem("no such site in the caller's reach"),
            409: problem("gateway exists or region mismatch"),
        },
    )
    async def add_gateway(
        gateway: GatewayIn, who: Annotated[Access, Depends(access("gateways.create"))]
    ) -> Gateway:
        return await run_in_threadpool(service.add_gateway, gateway, scope=who.scope)

    @router.get(
        "/devices",
        response_model=list[Device],
        operation_id="devices.list",
        summary="List devices",
        description="The devices the caller may see; optionally only one gateway's.",
    )
    async def list_devices(
        who: Annotated[Access, Depends(access("devices.list"))],
        gateway_id: Annotated[
            str | None, Query(pattern=GATEWAY_ID_RE.pattern, max_length=64)
        ] = None,
        limit: Limit = 100,
        offset: Offset = 0,
    ) -> list[Device]:
        return await run_in_threadpool(
            service.list_devices, gateway_id=gateway_id, limit=limit, offset=offset, scope=who.scope
        )

    @router.get(
        "/devices/{device_id}",
        response_model=Device,
        operation_id="devices.get",
        summary="One device",
        responses={404: problem("no such device in the caller's reach")},
    )
    async def get_device(
        device_id: DeviceId, who: Annotated[Access, Depends(access("devices.get"))]
    ) -> Device:
        device = await run_in_threadpool(service.get_device, device_id, scope=who.scope)
        if device is None:
            raise HTTPException(status.HTTP_404_NOT_FOUND, f"device {device_id} not found")
        return device

    return router
