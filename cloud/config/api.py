"""Config service REST routes; the portal passes in a dependency that authorises the
caller (operator/admin) and returns who it is (the token's subject).

The service's refusals (:mod:`cloud.config.errors`) propagate: the portal's exception
handlers answer them (404, 409, 422 naming field/limit/reason, else 400).
"""

# No ``from __future__ import annotations``: the routes' ``Caller`` alias is local to
# ``create_router`` and FastAPI resolves string annotations in the module's globals only.

from collections.abc import Callable
from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Depends, HTTPException, Query, status
from starlette.concurrency import run_in_threadpool

from cloud.config.models import (
    AuditEntry,
    Command,
    CommandIn,
    ConfigIn,
    ConfigView,
    DesiredConfig,
    RollbackIn,
)
from cloud.config.service import ConfigService

Limit = Annotated[int, Query(ge=1, le=1000, description="page size")]
Offset = Annotated[int, Query(ge=0, description="rows to skip")]

_REFUSALS: dict[int | str, dict[str, Any]] = {
    404: {"description": "unknown gateway (no birth seen), device, command or version"},
    409: {"description": "nothing to roll back to"},
    422: {"description": "refused before signing: detail names field, limit and reason"},
}


def create_router(service: ConfigService, *, actor: Callable[..., str]) -> APIRouter:
    """Routes under ``/gateways/{gw}/commands``, ``/commands``, ``/gateways/{gw}/config``."""
    router = APIRouter(tags=["config"])
    Caller = Annotated[str, Depends(actor)]

    @router.post(
        "/gateways/{gateway_id}/commands",
        response_model=Command,
        status_code=status.HTTP_201_CREATED,
        summary="Send a signed command to a device or the gateway",
        responses=_REFUSALS,
    )
    async def send_command(gateway_id: str, body: CommandIn, who: Caller) -> Command:
        return await run_in_threadpool(service.send_command, gateway_id, body, who)

    @router.get(
        "/commands/{command_id}",
        response_model=Command,
        summary="One command and its status",
        responses={404: {"description": "no such command"}},
    )
    async def get_command(command_id: UUID, _who: Caller) -> Command:
        command = await run_in_threadpool(service.get_command, command_id)
        if command is None:
            raise HTTPException(status.HTTP_404_NOT_FOUND, f"command {command_id} not found")
        return command

    @router.get(
        "/gateways/{gateway_id}/commands",
        response_model=list[Command],
        summary="A gateway's commands, newest first",
    )
    async def list_commands(
        gateway_id: str, _who: Caller, limit: Limit = 100, offset: Offset = 0
    ) -> list[Command]:
        return await run_in_threadpool(
            service.list_commands, gateway_id, limit=limit, offset=offset
        )

    @router.put(
        "/gateways/{gateway_id}/config",
        response_model=DesiredConfig,
        summary="Set the desired config: a new version, signed, published retained",
        responses=_REFUSALS,
    )
    async def set_config(gateway_id: str, body: ConfigIn, who: Caller) -> DesiredConfig:
        return await run_in_threadpool(service.set_config, gateway_id, body, who)

    @router.get(
        "/gateways/{gateway_id}/config",
        response_model=ConfigView,
        summary="Desired config, reported state per device, and history",
        responses={404: {"description": "unknown gateway"}},
    )
    async def show_config(gateway_id: str, _who: Caller) -> ConfigView:
        return await run_in_threadpool(service.show_config, gateway_id)

    @router.post(
        "/gateways/{gateway_id}/config/rollback",
        response_model=DesiredConfig,
        status_code=status.HTTP_201_CREATED,
        summary="Roll back: a new version carrying an earlier version's settings",
        responses=_REFUSALS,
    )
    async def rollback(gateway_id: str, body: RollbackIn, who: Caller) -> DesiredConfig:
        return await run_in_threadpool(service.rollback, gateway_id, body, who)

    @router.get(
        "/gateways/{gateway_id}/config/audit",
        response_model=list[AuditEntry],
        summary="Who asked for what, when and why, and what came of it (newest first)",
    )
    async def audit(
        gateway_id: str, _who: Caller, limit: Limit = 100, offset: Offset = 0
    ) -> list[AuditEntry]:
        return await run_in_threadpool(service.audit, gateway_id, limit=limit, offset=offset)

    return router
