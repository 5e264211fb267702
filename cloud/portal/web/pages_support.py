"""Support's pages: find a customer by name, email, site (name or number) or device
serial, then see what that customer sees — their sites and each site's pages — read-only
and with the customer's own scope, so support sees exactly the customer's view and no
more. Every such view (the customer's site list, a site page) is written to the
portal's audit log (:class:`cloud.portal.audit.ViewAudit`) before the page is answered;
the parts a site page loads by itself (live values, chart, energy) belong to that view.
"""

# No ``from __future__ import annotations``: the routes' dependencies are local to
# ``create_support_pages`` and FastAPI resolves string annotations in the module's globals.

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from cloud.customers import Account, CustomersService
from cloud.portal.audit import ViewAudit
from cloud.portal.web.pages_sites import AsCustomer, SiteId, SitePages, View
from cloud.portal.web.render import Renderer
from cloud.portal.web.session import PageRefused, Sessions, Viewer
from cloud.registry import RegistryService
from cloud.scope import Scope

__all__ = ["create_support_pages"]

AccountPath = Annotated[str, Path(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")]
SearchText = Annotated[str, Query(max_length=100)]
_RESULTS = 20


def create_support_pages(
    sessions: Sessions,
    renderer: Renderer,
    pages: SitePages,
    registry: RegistryService,
    customers: CustomersService,
    audit: ViewAudit,
) -> APIRouter:
    router = APIRouter(prefix="/ui/{region}", include_in_schema=False)

    def viewer(route: str) -> Any:
        return Depends(sessions.viewer(route))

    @router.get("/support", operation_id="ui.support.search")
    async def search(
        request: Request, who: Annotated[Viewer, viewer("ui.support.search")], q: SearchText = ""
    ) -> Response:
        text = q.strip()

        def find() -> tuple[list[Account], list[Any]]:
            if len(text) < 2:
                return [], []
            accounts = customers.find_accounts(who.scope, text, limit=_RESULTS)
            sites = registry.find_sites(who.scope, text, limit=_RESULTS)
            return accounts, sites

        accounts, sites = await run_in_threadpool(find)
        return renderer.page(
            request, "support.html", language=who.language, viewer=who, q=text,
            accounts=accounts, sites=sites, too_short=0 < len(text) < 2,
        )  # fmt: skip

    async def as_customer(
        request: Request, who: Viewer, account_id: str
    ) -> tuple[Scope, AsCustomer]:
        account = await run_in_threadpool(
            lambda: customers.get_account(account_id, who.region, scope=who.scope)
        )
        if account is None:
            raise PageRefused(404, "no such customer")
        base = f"/ui/{who.region.value}/customers/{account.id}"
        return Scope.of_account(who.region, account.id), AsCustomer(account.id, account.name, base)

    async def record(
        request: Request, who: Viewer, view: AsCustomer, what: str, site: int | None
    ) -> None:
        address = request.client.host if request.client else None
        await run_in_threadpool(
            lambda: audit.record(
                actor_subject=who.caller.subject, actor_role=who.role, region=who.region,
                account_id=view.account_id, what=what, site_id=site, address=address,
            )
        )  # fmt: skip

    @router.get("/customers/{account_id}", operation_id="ui.support.customer")
    async def customer(
        request: Request,
        account_id: AccountPath,
        who: Annotated[Viewer, viewer("ui.support.customer")],
    ) -> Response:
        scope, view = await as_customer(request, who, account_id)
        await record(request, who, view, "customer.sites", None)
        return await pages.sites(request, who, scope, view)

    @router.get("/customers/{account_id}/sites/{site_id}", operation_id="ui.support.site")
    async def site(
        request: Request,
        account_id: AccountPath,
        site_id: SiteId,
        who: Annotated[Viewer, viewer("ui.support.site")],
    ) -> Response:
        scope, view = await as_customer(request, who, account_id)
        await pages.site_or_404(scope, site_id)
        await record(request, who, view, "customer.site", site_id)
        return await pages.site(request, who, scope, site_id, view)

    @router.get("/customers/{account_id}/sites/{site_id}/live", operation_id="ui.support.site.live")
    async def live(
        request: Request,
        account_id: AccountPath,
        site_id: SiteId,
        who: Annotated[Viewer, viewer("ui.support.site.live")],
    ) -> Response:
        scope, _view = await as_customer(request, who, account_id)
        return await pages.live(request, who, scope, site_id)

    @router.get(
        "/customers/{account_id}/sites/{site_id}/today.json",
        operation_id="ui.support.site.today",
    )
    async def today(
        request: Request,
        account_id: AccountPath,
        site_id: SiteId,
        who: Annotated[Viewer, viewer("ui.support.site.today")],
    ) -> Response:
        scope, _view = await as_customer(request, who, account_id)
        return await pages.today(who, scope, site_id)

    @router.get(
        "/customers/{account_id}/sites/{site_id}/energy",
        operation_id="ui.support.site.energy",
    )
    async def energy(
        request: Request,
        account_id: AccountPath,
        site_id: SiteId,
        who: Annotated[Viewer, viewer("ui.support.site.energy")],
        view: View = "day",
    ) -> Response:
        scope, _view = await as_customer(request, who, account_id)
        return await pages.energy(request, who, scope, site_id, view)

    @router.get("/audit", operation_id="ui.audit")
    async def audit_log(request: Request, who: Annotated[Viewer, viewer("ui.audit")]) -> Response:
        records = await run_in_threadpool(lambda: audit.recent(who.scope, limit=100))
        return renderer.page(
            request, "audit.html", language=who.language, viewer=who, records=records
        )

    return router
