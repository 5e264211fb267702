"""Config service REST routes (mounted by the portal under ``/api/v1/{region}``).

Each route takes its caller's :class:`~cloud.scope.Access` from the portal's one
authorisation dependency (``access(route_key)``: operators and admins), acts as its
``subject`` and passes the URL's region to the service, which treats a gateway or
command of another region as absent (404, nothing written).

The service's refusals (:mod:`cloud.config.errors`) propagate: the portal's exception
handlers answer them (404, 409, 422 naming field/limit/reason, else 400).
"""

# No ``from __future__ import annotations``: the routes' ``Annotated`` dependencies are
# local to ``create_router`` and FastAPI resolves string annotations in the module's
# globals only.

from collections.abc import Callable
from functools import partial
from typing import Annotated, Any, Literal
from uuid import UUID

from fastapi import APIRouter, Depends, HTTPException, Path, status
from starlette.concurrency import run_in_threadpool

from cloud.apitypes import BODY_RESPONSES, GatewayIdPath, Limit, Offset, SiteId, problem
from cloud.config.models import (
    AuditEntry,
    Command,
    CommandIn,
    ConfigIn,
    ConfigView,
    DesiredConfig,
    RollbackIn,
)
from cloud.config.rollout_models import RolloutActionIn, RolloutIn, RolloutSummary, RolloutView
from cloud.config.service import ConfigService
from cloud.config.site_profiles import ApprovalView, ConnectionApprovalIn, SiteGridCode
from cloud.scope import Access

_UNKNOWN_GATEWAY: dict[int | str, dict[str, Any]] = {
    404: problem("unknown gateway (no birth seen) or of another region"),
}
#: What a send to a gateway under a technician's work answers (issue 17).
_HELD_NOTE = (
    " While a technician is on the gateway's site (a dispatch work order on site) it is"
    " stored but not published: its status is `held` and `held_by` names the work"
    " orders; it is published when the last of them leaves the site"
)
_REFUSALS: dict[int | str, dict[str, Any]] = {
    **BODY_RESPONSES,
    400: problem("refused by the config service"),
    404: problem("unknown gateway (no birth seen), device, command or version"),
    409: problem("nothing to roll back to"),
    422: problem("malformed, or refused before signing: detail names field, limit and reason"),
}


def _region(who: Access) -> str:
    """The region the service filters by. The config service scopes by region only: an
    account's scope (a customer's, refused by the policy before this) fails closed."""
    if who.scope.by_account or who.scope.region is None:
        raise HTTPException(status.HTTP_403_FORBIDDEN, "device control is for staff only")
    return who.scope.region.value


def create_router(
    service: ConfigService, *, access: Callable[[str], Callable[..., Any]]
) -> APIRouter:
    """Routes under ``/gateways/{gw}/commands``, ``/commands``, ``/gateways/{gw}/config``,
    ``/rollouts``."""
    router = APIRouter(tags=["config"])

    @router.post(
        "/gateways/{gateway_id}/commands",
        response_model=Command,
        status_code=status.HTTP_201_CREATED,
        operation_id="commands.send",
        summary="Send a signed command to a device or the gateway",
        response_description="Stored and published (status pending)."
        + _HELD_NOTE
        + " (a command that expires meanwhile ends `expired`, never published).",
        responses=_REFUSALS,
    )
    async def send_command(
        gateway_id: GatewayIdPath,
        body: CommandIn,
        who: Annotated[Access, Depends(access("commands.send"))],
    ) -> Command:
        return await run_in_threadpool(
            service.send_command, gateway_id, body, who.subject, region=_region(who)
        )

    @router.get(
        "/commands/{command_id}",
        response_model=Command,
        operation_id="commands.get",
        summary="One command and its status",
        responses={404: problem("no such command in the region")},
    )
    async def get_command(
        command_id: UUID, who: Annotated[Access, Depends(access("commands.get"))]
    ) -> Command:
        command = await run_in_threadpool(service.get_command, command_id, region=_region(who))
        if command is None:
            raise HTTPException(status.HTTP_404_NOT_FOUND, f"command {command_id} not found")
        return command

    @router.get(
        "/gateways/{gateway_id}/commands",
        response_model=list[Command],
        operation_id="commands.list",
        summary="A gateway's commands, newest first",
        responses=_UNKNOWN_GATEWAY,
    )
    async def list_commands(
        gateway_id: GatewayIdPath,
        who: Annotated[Access, Depends(access("commands.list"))],
        limit: Limit = 100,
        offset: Offset = 0,
    ) -> list[Command]:
        return await run_in_threadpool(
            service.list_commands, gateway_id, limit=limit, offset=offset, region=_region(who)
        )

    @router.put(
        "/gateways/{gateway_id}/config",
        response_model=DesiredConfig,
        operation_id="config.set",
        summary="Set the desired config: a new version, signed, published retained",
        response_description="The new version, published (status published)."
        + _HELD_NOTE
        + " (only the latest version then).",
        responses=_REFUSALS,
    )
    async def set_config(
        gateway_id: GatewayIdPath,
        body: ConfigIn,
        who: Annotated[Access, Depends(access("config.set"))],
    ) -> DesiredConfig:
        return await run_in_threadpool(
            service.set_config, gateway_id, body, who.subject, region=_region(who)
        )

    @router.get(
        "/gateways/{gateway_id}/config",
        response_model=ConfigView,
        operation_id="config.get",
        summary="Desired config, reported state per device, and history",
        responses=_UNKNOWN_GATEWAY,
    )
    async def show_config(
        gateway_id: GatewayIdPath, who: Annotated[Access, Depends(access("config.get"))]
    ) -> ConfigView:
        return await run_in_threadpool(service.show_config, gateway_id, region=_region(who))

    @router.post(
        "/gateways/{gateway_id}/config/rollback",
        response_model=DesiredConfig,
        status_code=status.HTTP_201_CREATED,
        operation_id="config.rollback",
        summary="Roll back: a new version carrying an earlier version's settings",
        response_description="The new version, published (status published)."
        + _HELD_NOTE
        + " (only the latest version then).",
        responses=_REFUSALS,
    )
    async def rollback(
        gateway_id: GatewayIdPath,
        body: RollbackIn,
        who: Annotated[Access, Depends(access("config.rollback"))],
    ) -> DesiredConfig:
        return await run_in_threadpool(
            service.rollback, gateway_id, body, who.subject, region=_region(who)
        )

    @router.get(
        "/gateways/{gateway_id}/config/audit",
        response_model=list[AuditEntry],
        operation_id="config.audit",
        summary="Who asked for what, when and why, and what came of it (newest first)",
        responses=_UNKNOWN_GATEWAY,
    )
    async def audit(
        gateway_id: GatewayIdPath,
        who: Annotated[Access, Depends(access("config.audit"))],
        limit: Limit = 100,
        offset: Offset = 0,
    ) -> list[AuditEntry]:
        return await run_in_threadpool(
            service.audit, gateway_id, limit=limit, offset=offset, region=_region(who)
        )

    _rollout_routes(router, service, access)
    _site_routes(router, service, access)
    return router


_NO_SITE: dict[int | str, dict[str, Any]] = {
    404: problem("a site of another region, or one the config service knows nothing of"),
}


def _site_routes(
    router: APIRouter, service: ConfigService, access: Callable[[str], Callable[..., Any]]
) -> None:
    sites = service.sites

    @router.get(
        "/sites/{site_id}/grid-code",
        response_model=SiteGridCode,
        operation_id="grid_code.get",
        summary="The site's grid-code profile by location: the rule that chose it and why,"
        " whether it holds unverified values, and the connection approval on file",
        response_description="Order: site rule > connection approval > island > utility >"
        " device type > region default. `profile` null: unassigned (`reason` says what"
        " would decide).",
        responses=_NO_SITE,
    )
    async def site_grid_code(
        site_id: SiteId, who: Annotated[Access, Depends(access("grid_code.get"))]
    ) -> SiteGridCode:
        return await run_in_threadpool(sites.grid_code, _region(who), site_id)

    @router.put(
        "/sites/{site_id}/connection-approval",
        response_model=ApprovalView,
        operation_id="connection_approval.set",
        summary="Record the network operator's connection approval of the site",
        response_description="In force from now: no config change (manual, rollout,"
        " technician push, provisioning) may change the site's region, trip settings or"
        " export limit beyond it, and its reference is stored with every change. Earlier"
        " approvals stay as history.",
        responses={**BODY_RESPONSES, **_NO_SITE, 422: problem("unknown profile or region")},
    )
    async def set_connection_approval(
        site_id: SiteId,
        body: ConnectionApprovalIn,
        who: Annotated[Access, Depends(access("connection_approval.set"))],
    ) -> ApprovalView:
        return await run_in_threadpool(sites.set_approval, _region(who), site_id, body, who.subject)


_ROLLOUT_STATES = (
    " States: `running` (pushing wave by wave), `paused` (by an operator, or by itself"
    " when a wave's failure rate passed the threshold with on_failure=pause), `aborted`"
    " (by an operator, or by itself with on_failure=abort: nothing more is pushed),"
    " `completed`, `rolled_back`; `detail` says why."
)
_NO_ROLLOUT: dict[int | str, dict[str, Any]] = {404: problem("no such rollout in the region")}
_ACTION_REFUSALS: dict[int | str, dict[str, Any]] = {
    **BODY_RESPONSES,
    404: problem("no such rollout in the region"),
    409: problem("the rollout's state does not allow this action (detail names it)"),
}
RolloutId = Annotated[int, Path(ge=1, le=2**63 - 1, description="rollout id")]


def _rollout_routes(
    router: APIRouter, service: ConfigService, access: Callable[[str], Callable[..., Any]]
) -> None:
    rollouts = service.rollouts

    @router.post(
        "/rollouts",
        response_model=RolloutView,
        status_code=status.HTTP_201_CREATED,
        operation_id="rollouts.create",
        summary="Stage a config change over many gateways: a canary, then larger waves",
        response_description="Created and its canary pushed." + _ROLLOUT_STATES,
        responses={
            **_REFUSALS,
            404: problem("a listed gateway is unknown (no birth seen) or of another region"),
            409: problem("an active rollout already covers some of these gateways"),
        },
    )
    async def create_rollout(
        body: RolloutIn, who: Annotated[Access, Depends(access("rollouts.create"))]
    ) -> RolloutView:
        return await run_in_threadpool(rollouts.create, _region(who), body, who.subject)

    @router.get(
        "/rollouts",
        response_model=list[RolloutSummary],
        operation_id="rollouts.list",
        summary="The region's rollouts, newest first",
    )
    async def list_rollouts(
        who: Annotated[Access, Depends(access("rollouts.list"))],
        limit: Limit = 100,
        offset: Offset = 0,
    ) -> list[RolloutSummary]:
        return await run_in_threadpool(
            partial(rollouts.list, region=_region(who), limit=limit, offset=offset)
        )

    @router.get(
        "/rollouts/{rollout_id}",
        response_model=RolloutView,
        operation_id="rollouts.get",
        summary="A rollout: progress per wave and per gateway, and its log",
        response_description=_ROLLOUT_STATES.strip(),
        responses=_NO_ROLLOUT,
    )
    async def get_rollout(
        rollout_id: RolloutId, who: Annotated[Access, Depends(access("rollouts.get"))]
    ) -> RolloutView:
        return await run_in_threadpool(partial(rollouts.get, rollout_id, region=_region(who)))

    def _action(name: Literal["pause", "resume", "abort", "rollback"], summary: str) -> None:
        key = f"rollouts.{name}"

        @router.post(
            f"/rollouts/{{rollout_id}}/{name}",
            response_model=RolloutView,
            operation_id=key,
            summary=summary,
            responses=_ACTION_REFUSALS,
        )
        async def action(
            rollout_id: RolloutId,
            body: RolloutActionIn,
            who: Annotated[Access, Depends(access(key))],
        ) -> RolloutView:
            return await run_in_threadpool(
                partial(
                    rollouts.act, rollout_id, name, body.reason, who.subject, region=_region(who)
                )
            )

        action.__name__ = f"{name}_rollout"

    _action("pause", "Pause: no further gateway is pushed until resumed")
    _action("resume", "Resume: accept the failures so far and go on wave by wave")
    _action("abort", "Abort: nothing more is pushed (a rollback remains possible)")
    _action(
        "rollback",
        "Roll back everywhere the rollout reached: a new version carrying each gateway's"
        " previous settings, only where its config is still the rollout's (others are"
        " skipped and named)",
    )
