"""The office's pages: the fleet of a region (gateways online, offline, never seen;
devices online, asleep, unreachable, faulty; ingest health and yesterday's completeness)
and a gateway's commands and config state, with a form to send it a diagnostic command
(``ping``, ``rescan``) — the one state-changing form of this issue, CSRF-checked like
every other.
"""

# No ``from __future__ import annotations``: the routes' dependencies are local to
# ``create_staff_pages`` and FastAPI resolves string annotations in the module's globals.

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Form, Path, Request
from fastapi.responses import RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from cloud.config import CommandIn, ConfigError, ConfigService
from cloud.ingest import FleetStatusReader
from cloud.portal.web.csrf import check_csrf
from cloud.portal.web.render import Renderer
from cloud.portal.web.session import PageRefused, Sessions, Viewer
from cloud.portal.web.site_data import SiteData
from cloud.registry import RegistryService
from contracts.topics import Region

__all__ = ["create_staff_pages"]

GatewayId = Annotated[str, Path(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._-]+$")]
#: Commands a person may send from the gateway page (diagnostics: no setpoint here).
PAGE_COMMANDS = ("ping", "rescan")
_MAX_GATEWAYS = 200


def create_staff_pages(
    sessions: Sessions,
    renderer: Renderer,
    data: SiteData,
    registry: RegistryService,
    fleet: FleetStatusReader,
    config: ConfigService | None,
) -> APIRouter:
    router = APIRouter(prefix="/ui/{region}", include_in_schema=False)

    def viewer(route: str) -> Any:
        return Depends(sessions.viewer(route))

    @router.get("/fleet", operation_id="ui.fleet")
    async def fleet_page(request: Request, who: Annotated[Viewer, viewer("ui.fleet")]) -> Response:
        reach = data.reach(who.scope)

        def gather() -> dict[str, Any]:
            return {
                "status": fleet.fleet_status(reach, who.region),
                "gateways": fleet.gateway_states(reach, who.region, limit=_MAX_GATEWAYS),
                "health": fleet.ingest_health(reach, who.region),
                "completeness": fleet.completeness_yesterday(reach, who.region),
                "sites": {s.id: s for s in data.sites(who.scope)},
            }

        found = await run_in_threadpool(gather)
        regions = list(Region) if who.scope.region is None or who.role.value == "admin" else []
        return renderer.page(
            request, "fleet.html", language=who.language, viewer=who,
            regions=[r.value for r in regions], **found,
        )  # fmt: skip

    async def gateway_page(
        request: Request, who: Viewer, gateway_id: str, message: str | None, status_code: int
    ) -> Response:
        gateway = await run_in_threadpool(lambda: registry.get_gateway(gateway_id, scope=who.scope))
        if gateway is None or config is None:
            raise PageRefused(404, "no such gateway")
        region = who.region.value

        def gather() -> dict[str, Any]:
            try:
                view = config.show_config(gateway_id, history=10, region=region)
            except ConfigError:
                view = None  # no birth seen yet: nothing reported, nothing desired
            commands = config.list_commands(gateway_id, limit=20, region=region)
            return {"config": view, "commands": commands}

        found = await run_in_threadpool(gather)
        site = await run_in_threadpool(data.site, who.scope, gateway.site_id)
        fmt = who.formats.at(site.time_zone) if site else who.formats
        return renderer.page(
            request, "gateway.html", language=who.language, viewer=who, gateway=gateway,
            site=site, fmt=fmt, page_commands=PAGE_COMMANDS, message=message,
            status_code=status_code, **found,
        )  # fmt: skip

    @router.get("/gateways/{gateway_id}", operation_id="ui.gateway")
    async def gateway(
        request: Request, gateway_id: GatewayId, who: Annotated[Viewer, viewer("ui.gateway")]
    ) -> Response:
        return await gateway_page(request, who, gateway_id, None, 200)

    @router.post(
        "/gateways/{gateway_id}/commands",
        operation_id="ui.gateway.command",
        dependencies=[Depends(check_csrf)],
    )
    async def send(
        request: Request,
        gateway_id: GatewayId,
        who: Annotated[Viewer, viewer("ui.gateway.command")],
        name: Annotated[Literal["ping", "rescan"], Form()],
    ) -> Response:
        if config is None:
            raise PageRefused(404, "no such gateway")
        exists = await run_in_threadpool(lambda: registry.get_gateway(gateway_id, scope=who.scope))
        if exists is None:
            raise PageRefused(404, "no such gateway")
        command = CommandIn(name=name, reason="sent from the portal")
        try:
            await run_in_threadpool(
                config.send_command, gateway_id, command, who.caller.subject,
                region=who.region.value,
            )  # fmt: skip
        except ConfigError as exc:
            return await gateway_page(request, who, gateway_id, str(exc), 409)
        # Post/redirect/get: a reload does not send the command twice.
        return RedirectResponse(request.url.path.rsplit("/commands", 1)[0], status_code=303)

    return router
