"""Registry REST routes; the portal passes in its read/write authorisation dependencies.

The service's refusals (``NotFoundError``, ``ConflictError``) propagate: the portal's
exception handlers answer them (404, 409).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query, status
from starlette.concurrency import run_in_threadpool

from cloud.registry.models import Device, Gateway, GatewayIn, Site, SiteIn
from cloud.registry.service import RegistryService

Limit = Annotated[int, Query(ge=1, le=1000, description="page size")]
Offset = Annotated[int, Query(ge=0, description="rows to skip")]


def create_router(
    service: RegistryService, *, read: Callable[..., Any], write: Callable[..., Any]
) -> APIRouter:
    """Routes under ``/sites``, ``/gateways``, ``/devices``; ``read``/``write`` authorise."""
    router = APIRouter(tags=["registry"])
    readers = [Depends(read)]
    writers = [Depends(write)]

    @router.get(
        "/sites",
        response_model=list[Site],
        dependencies=readers,
        summary="List sites",
        description="Every site of the fleet, by id.",
    )
    async def list_sites(limit: Limit = 100, offset: Offset = 0) -> list[Site]:
        return await run_in_threadpool(service.list_sites, limit=limit, offset=offset)

    @router.post(
        "/sites",
        response_model=Site,
        status_code=status.HTTP_201_CREATED,
        dependencies=writers,
        summary="Create a site",
    )
    async def add_site(site: SiteIn) -> Site:
        return await run_in_threadpool(service.add_site, site)

    @router.get(
        "/gateways",
        response_model=list[Gateway],
        dependencies=readers,
        summary="List gateways",
        description="Optionally only one site's gateways.",
    )
    async def list_gateways(
        site_id: Annotated[int | None, Query(ge=1)] = None, limit: Limit = 100, offset: Offset = 0
    ) -> list[Gateway]:
        return await run_in_threadpool(
            service.list_gateways, site_id=site_id, limit=limit, offset=offset
        )

    @router.post(
        "/gateways",
        response_model=Gateway,
        status_code=status.HTTP_201_CREATED,
        dependencies=writers,
        summary="Register a gateway",
        responses={
            404: {"description": "site not found"},
            409: {"description": "gateway exists or region mismatch"},
        },
    )
    async def add_gateway(gateway: GatewayIn) -> Gateway:
        return await run_in_threadpool(service.add_gateway, gateway)

    @router.get(
        "/devices",
        response_model=list[Device],
        dependencies=readers,
        summary="List devices",
        description="Optionally only one gateway's devices.",
    )
    async def list_devices(
        gateway_id: str | None = None, limit: Limit = 100, offset: Offset = 0
    ) -> list[Device]:
        return await run_in_threadpool(
            service.list_devices, gateway_id=gateway_id, limit=limit, offset=offset
        )

    @router.get(
        "/devices/{device_id}",
        response_model=Device,
        dependencies=readers,
        summary="One device",
        responses={404: {"description": "no such device"}},
    )
    async def get_device(device_id: int) -> Device:
        device = await run_in_threadpool(service.get_device, device_id)
        if device is None:
            raise HTTPException(status.HTTP_404_NOT_FOUND, f"device {device_id} not found")
        return device

    return router
