"""The site pages every role has (a customer's own sites; a MOSIE's, support's and the
office's region): the list of sites, a site's live power flow, today's curve, energy per
day, month and year, its devices with their state and its notices.

Support reaches the same pages "as the customer" (:mod:`pages_support`), with the
customer's scope and read-only; that is why each handler here is a plain function of a
scope, wrapped by thin routes.
"""

# No ``from __future__ import annotations``: the routes' dependencies are local to
# ``create_site_pages`` and FastAPI resolves string annotations in the module's globals.

from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import JSONResponse, Response
from starlette.concurrency import run_in_threadpool

from cloud.identity import Role
from cloud.portal.web.notices import site_notices
from cloud.portal.web.render import Renderer
from cloud.portal.web.session import PageRefused, Sessions, Viewer
from cloud.portal.web.site_data import EnergyView, SiteData
from cloud.registry import Site
from cloud.scope import Scope

__all__ = ["SitePages", "create_site_pages"]

SiteId = Annotated[int, Path(ge=1, le=2**31 - 1)]
View = Annotated[Literal["day", "month", "year"], Query()]


@dataclass(frozen=True)
class AsCustomer:
    """Support's read-only view of one customer account (None: the viewer's own)."""

    account_id: str
    name: str
    base: str  # URL prefix of this view's pages


class SitePages:
    """The pages' bodies, for a scope; the routes decide which scope."""

    def __init__(
        self,
        data: SiteData,
        renderer: Renderer,
        *,
        live_interval_s: float,
        meter_swaps: Callable[[Site], list[Any]] = lambda _site: [],
        alarms: Callable[[Scope, Site], list[Any]] = lambda _scope, _site: [],
    ) -> None:
        self.data = data
        self.renderer = renderer
        self.live_interval_s = live_interval_s
        self.meter_swaps = meter_swaps
        self.alarms = alarms

    async def site_or_404(self, scope: Scope, site_id: int) -> Site:
        site = await run_in_threadpool(self.data.site, scope, site_id)
        if site is None:
            raise PageRefused(404, "no such site")
        return site

    async def sites(
        self, request: Request, viewer: Viewer, scope: Scope, as_customer: AsCustomer | None
    ) -> Response:
        def gather() -> tuple[list[Site], dict[int, dict[str, int]]]:
            sites = self.data.sites(scope)
            return sites, self.data.site_states(self.data.reach(scope), sites)

        sites, states = await run_in_threadpool(gather)
        base = as_customer.base if as_customer else f"/ui/{viewer.region.value}"
        return self.renderer.page(
            request, "sites.html", language=viewer.language, viewer=viewer,
            sites=sites, site_states=states, base=base, as_customer=as_customer,
        )  # fmt: skip

    async def site(
        self,
        request: Request,
        viewer: Viewer,
        scope: Scope,
        site_id: int,
        as_customer: AsCustomer | None,
    ) -> Response:
        site = await self.site_or_404(scope, site_id)

        def gather() -> tuple[Any, ...]:
            reach, gateways = self.data.reach(scope), self.data.gateways(scope, site)
            devices = self.data.devices(scope, site, reach, gateways)
            flow = self.data.flow(site, reach, self._stale_after())
            return devices, flow, gateways, self.meter_swaps(site), self.alarms(scope, site)

        devices, flow, gateways, swaps, alarms = await run_in_threadpool(gather)
        base = as_customer.base if as_customer else f"/ui/{viewer.region.value}"
        show_gateways = as_customer is None and viewer.role in (Role.ADMIN, Role.OPERATOR)
        return self.renderer.page(
            request, "site.html", language=viewer.language, viewer=viewer,
            site=site, devices=devices, flow=flow, base=base, as_customer=as_customer,
            fmt=viewer.formats.at(site.time_zone), gateways=gateways if show_gateways else [],
            notices=site_notices(devices, flow, swaps), alarms=alarms,
            alarm_links=as_customer is None and viewer.role != Role.CUSTOMER,
        )  # fmt: skip

    async def live(self, request: Request, viewer: Viewer, scope: Scope, site_id: int) -> Response:
        site = await self.site_or_404(scope, site_id)
        flow = await run_in_threadpool(
            lambda: self.data.flow(site, self.data.reach(scope), self._stale_after())
        )
        return self.renderer.page(
            request, "_live.html", language=viewer.language, viewer=viewer,
            site=site, flow=flow, fmt=viewer.formats.at(site.time_zone),
            base=request.url.path.rsplit("/sites/", 1)[0],
        )  # fmt: skip

    async def today(self, viewer: Viewer, scope: Scope, site_id: int) -> Response:
        site = await self.site_or_404(scope, site_id)

        def gather() -> dict[str, Any]:
            # The series' labels need the devices, not their states.
            devices = self.data.devices_of(scope, self.data.gateways(scope, site))
            labels = {d.id: d.serial or d.local_id for d in devices}
            return self.data.today(site, self.data.reach(scope), labels).as_json()

        return JSONResponse(await run_in_threadpool(gather))

    async def energy(
        self, request: Request, viewer: Viewer, scope: Scope, site_id: int, view: EnergyView
    ) -> Response:
        site = await self.site_or_404(scope, site_id)
        table = await run_in_threadpool(
            lambda: self.data.energy(site, self.data.reach(scope), view)
        )
        return self.renderer.page(
            request, "_energy.html", language=viewer.language, viewer=viewer,
            site=site, table=table, fmt=viewer.formats.at(site.time_zone),
            base=request.url.path.rsplit("/sites/", 1)[0],
        )  # fmt: skip

    def _stale_after(self) -> timedelta:
        # Two publish intervals and a little: one late message is not yet "stale".
        return timedelta(seconds=2.5 * self.live_interval_s)


def create_site_pages(sessions: Sessions, pages: SitePages) -> APIRouter:
    router = APIRouter(prefix="/ui/{region}", include_in_schema=False)

    def viewer(route: str) -> Any:
        return Depends(sessions.viewer(route))

    @router.get("/", operation_id="ui.sites")
    async def sites(request: Request, who: Annotated[Viewer, viewer("ui.sites")]) -> Response:
        return await pages.sites(request, who, who.scope, None)

    @router.get("/sites/{site_id}", operation_id="ui.site")
    async def site(
        request: Request, site_id: SiteId, who: Annotated[Viewer, viewer("ui.site")]
    ) -> Response:
        return await pages.site(request, who, who.scope, site_id, None)

    @router.get("/sites/{site_id}/live", operation_id="ui.site.live")
    async def live(
        request: Request, site_id: SiteId, who: Annotated[Viewer, viewer("ui.site.live")]
    ) -> Response:
        return await pages.live(request, who, who.scope, site_id)

    @router.get("/sites/{site_id}/today.json", operation_id="ui.site.today")
    async def today(site_id: SiteId, who: Annotated[Viewer, viewer("ui.site.today")]) -> Response:
        return await pages.today(who, who.scope, site_id)

    @router.get("/sites/{site_id}/energy", operation_id="ui.site.energy")
    async def energy(
        request: Request,
        site_id: SiteId,
        who: Annotated[Viewer, viewer("ui.site.energy")],
        view: View = "day",
    ) -> Response:
        return await pages.energy(request, who, who.scope, site_id, view)

    return router
