"""A customer's account at a glance (issue 20, point 2): the questions callers asked the
IVR, answered on the customer's home without a person — what they owe and why (the
balance and the documents still open), their billed energy and an estimate of what it
saved against the utility's price, their system's health (device states and active
alarms per site), and the next technician visit — each with a link to its detail page.

One page (``/ui/{region}/overview``); the home (the sites list) loads its ``#overview``
section for a customer. Every read is the customer's own scope, filtered in SQL by the
service that owns the data (billing, registry and telemetry, alerts, dispatch); a
service not served here leaves its part out rather than failing the page. The savings
are estimated against the utility prices the reports use (``cloud/reports/data/
reference.yaml``), so the customer's figure and the reports' savings delivered agree.
"""

# No ``from __future__ import annotations``: the routes' dependencies are local to
# ``create_overview_pages`` and FastAPI resolves string annotations in the module's globals.

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from cloud.billing import BillsReader, estimate_savings
from cloud.dispatch import DispatchService
from cloud.dispatch.lifecycle import WorkOrderStatus
from cloud.portal.web.render import Renderer
from cloud.portal.web.session import Sessions, Viewer
from cloud.portal.web.site_data import SiteData
from cloud.registry import Site
from cloud.scope import Scope
from contracts.topics import Region

__all__ = ["NextVisit", "Overview", "UtilityPrice", "create_overview_pages"]

#: The utility's reference price per kWh (tax-exclusive) in a region's tariff zone on a
#: local date, or None where there is none.
UtilityPrice = Callable[[Region, str, date], Decimal | None]

#: The newest documents read to find the open ones (an account has a few a year).
_DOCUMENTS = 100
#: The open states of a job a customer waits on.
_WAITING = frozenset(
    {
        WorkOrderStatus.SCHEDULED,
        WorkOrderStatus.ASSIGNED,
        WorkOrderStatus.ACCEPTED,
        WorkOrderStatus.EN_ROUTE,
        WorkOrderStatus.ON_SITE,
        WorkOrderStatus.ON_HOLD,
    }
)


@dataclass(frozen=True, slots=True)
class NextVisit:
    """The visit a customer waits for: the job, its site, and the confirmed window's
    start (None: no time agreed yet); ``under_way``: the MOSIE is on the way or there."""

    work_order_id: int
    site_id: int
    starts: datetime | None
    under_way: bool


def next_visit(jobs: list[Any], starts: dict[int, datetime | None]) -> NextVisit | None:
    """The job under way, else the one with the earliest confirmed window, else the
    first open one (the service's order: the most urgent)."""
    if not jobs:
        return None
    under_way = [j for j in jobs if j.status in (WorkOrderStatus.EN_ROUTE, WorkOrderStatus.ON_SITE)]
    booked = sorted((s, j.id) for j in jobs if (s := starts.get(j.id)) is not None)
    if under_way:
        job = under_way[0]
    elif booked:
        job = next(j for j in jobs if j.id == booked[0][1])
    else:
        job = jobs[0]
    return NextVisit(job.id, job.site_id, starts.get(job.id), job in under_way)


class Overview:
    """The page's facts for one customer scope; blocking: call from a thread."""

    def __init__(
        self,
        data: SiteData,
        *,
        alarms: Callable[[Scope, Site], list[Any]],
        bills: BillsReader | None,
        utility_price: UtilityPrice,
        dispatch: DispatchService | None,
    ) -> None:
        self._data = data
        self._alarms = alarms
        self._bills = bills
        self._utility_price = utility_price
        self._dispatch = dispatch

    def gather(self, who: Viewer) -> dict[str, Any]:
        scope, account = who.scope, who.scope.account_id
        sites = self._data.sites(scope)
        found: dict[str, Any] = {
            "sites": sites,
            "site_states": self._data.site_states(self._data.reach(scope), sites),
            "site_alarms": {s.id: len(self._alarms(scope, s)) for s in sites},
            "balance": None,
            "open_documents": [],
            "savings": [],
            "visit": None,
        }
        if self._bills is not None and account is not None:
            documents = self._bills.documents(account, scope=scope, limit=_DOCUMENTS)
            region = who.region

            def price(zone: str, day: date) -> Decimal | None:
                return self._utility_price(region, zone, day)

            found |= {
                "balance": self._bills.balance(account, scope=scope),
                "open_documents": [
                    d for d in documents if d.state == "issued" and d.outstanding > 0
                ],
                # Only what has a reference price: no estimate of nothing.
                "savings": [
                    s
                    for s in estimate_savings(self._bills.energy_lines(account, scope=scope), price)
                    if s.kwh > 0
                ],
            }
        if self._dispatch is not None and account is not None:
            jobs = self._dispatch.board(who.region, sorted(_WAITING), scope=scope)
            starts = {}
            for job in jobs:
                booked = self._dispatch.appointment(job.id, scope).appointment
                starts[job.id] = booked.starts if booked is not None else None
            found["visit"] = next_visit(jobs, starts)
        return found


def create_overview_pages(sessions: Sessions, renderer: Renderer, overview: Overview) -> APIRouter:
    router = APIRouter(prefix="/ui/{region}", include_in_schema=False)

    def viewer(route: str) -> Any:
        return Depends(sessions.viewer(route))

    @router.get("/overview", operation_id="ui.overview")
    async def page(request: Request, who: Annotated[Viewer, viewer("ui.overview")]) -> Response:
        found = await run_in_threadpool(overview.gather, who)
        return renderer.page(request, "overview.html", language=who.language, viewer=who, **found)

    return router
