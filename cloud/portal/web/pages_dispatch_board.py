"""The operators' dispatch board of a region, filtered and live, and the employees'
performance screen (issue 17).

**Board.** ``/ui/{region}/dispatch`` lists the region's work orders by state, the most
urgent first, filtered by query parameters — ``status`` (repeatable; default every
active state), ``priority`` (repeatable), ``technician`` (an employee number) and
``breached`` (``yes``/``no``: an SLA timer breached or not) — each bounded and checked
(a value out of form is the 422 page, never a 500). ``/ui/{region}/dispatch/events``
streams the same board, re-rendered with the same filters whenever a work order of the
region changes (:mod:`board_feed`: PostgreSQL ``LISTEN``, as the inbox's feed), and
``portal.js`` swaps it in without a reload.

**Performance.** ``/ui/{region}/performance?days=N`` (1 to 366, default 30): jobs done,
SLA met and first-time fix rate over the last N days from the service's figures —
operators and admins see the region's total and each of its technicians; a MOSIE sees
only their own line.
"""

# No ``from __future__ import annotations``: the routes' dependencies are local to
# ``create_board_pages`` and FastAPI resolves string annotations in the module's globals.

from dataclasses import dataclass
from datetime import timedelta
from typing import Annotated, Any, Literal
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Header, Query, Request
from fastapi.responses import Response, StreamingResponse
from starlette.concurrency import run_in_threadpool

from cloud.dispatch import DispatchService, HistoryEntry, Performance, WorkOrder
from cloud.dispatch.lifecycle import WorkOrderStatus
from cloud.identity import Role
from cloud.portal.web.board_feed import BoardFeed, digest_of
from cloud.portal.web.render import Renderer
from cloud.portal.web.session import PageRefused, Sessions, Viewer
from cloud.portal.web.site_data import SiteData
from contracts.timeutil import utc_now

__all__ = ["BoardFilter", "create_board_pages"]

#: A state, a priority, or "" (the GET form's empty choice: any).
StatusName = Literal[
    "",
    "scheduled", "assigned", "accepted", "en_route", "on_site", "on_hold",
    "cannot_complete", "resolved", "verified", "closed", "cancelled",
]  # fmt: skip
PriorityName = Literal["", "P1", "P2", "P3", "P4"]
#: Every state at most once, every priority at most once (and the empty choice).
_MAX_STATUSES = len(WorkOrderStatus) + 1
_MAX_PRIORITIES = 5
EMPLOYEE_NO = r"^E[0-9]{1,9}$"
Digest = Annotated[str | None, Header(max_length=64, pattern=r"^[0-9a-f]{1,64}$")]
_DESK = frozenset({Role.ADMIN, Role.OPERATOR})


@dataclass(frozen=True)
class BoardFilter:
    """What the board shows: ``statuses`` (empty: every active state), ``priorities``
    (empty: all), one ``technician``'s jobs, those with (True) or without (False) a
    breached SLA timer."""

    statuses: tuple[str, ...] = ()
    priorities: tuple[str, ...] = ()
    technician: str | None = None
    breached: bool | None = None

    @property
    def query(self) -> str:
        """The filter as the board's query string (the stream's URL carries it)."""
        pairs: list[tuple[str, str]] = [("status", s) for s in self.statuses]
        pairs += [("priority", p) for p in self.priorities]
        if self.technician:
            pairs.append(("technician", self.technician))
        if self.breached is not None:
            pairs.append(("breached", "yes" if self.breached else "no"))
        return urlencode(pairs)

    @property
    def active(self) -> bool:
        return bool(self.query)


def board_filter(
    status: Annotated[list[StatusName] | None, Query(max_length=_MAX_STATUSES)] = None,
    priority: Annotated[list[PriorityName] | None, Query(max_length=_MAX_PRIORITIES)] = None,
    technician: Annotated[str, Query(max_length=10, pattern=r"^(E[0-9]{1,9})?$")] = "",
    breached: Literal["", "yes", "no"] = "",
) -> BoardFilter:
    """The board's filter from its query parameters (FastAPI checks each: 422 else);
    an empty value is "any" (a GET form's empty choice)."""
    return BoardFilter(
        statuses=tuple(dict.fromkeys(s for s in status or () if s)),
        priorities=tuple(dict.fromkeys(p for p in priority or () if p)),
        technician=technician or None,
        breached=None if not breached else breached == "yes",
    )


def create_board_pages(
    sessions: Sessions,
    renderer: Renderer,
    data: SiteData,
    service: DispatchService,
    feed: BoardFeed,
) -> APIRouter:
    router = APIRouter(prefix="/ui/{region}", include_in_schema=False)

    def viewer(route_key: str) -> Any:
        return Depends(sessions.viewer(route_key))

    def gather(who: Viewer, chosen: BoardFilter) -> dict[str, Any]:
        """The board's orders by state and what each row tells beside them."""
        orders = service.board(
            who.region, chosen.statuses or None, scope=who.scope, assignee=chosen.technician,
            priorities=chosen.priorities or None, breached=chosen.breached,
        )  # fmt: skip
        why: dict[int, str] = {}
        verdicts: dict[int, str] = {}
        for order in orders:
            if order.assignee is None:
                reason = _last_auto_assign(service.history(order.id, who.scope))
                if reason:
                    why[order.id] = reason
            if order.status == WorkOrderStatus.RESOLVED:
                verdict = service.verdict(order.id)
                if verdict:
                    verdicts[order.id] = verdict
        by_status: dict[str, list[WorkOrder]] = {}
        for order in orders:
            by_status.setdefault(order.status.value, []).append(order)
        sites = {s.id: s for s in data.sites(who.scope)}
        return {
            "by_status": by_status,
            "why": why,
            "verdicts": verdicts,
            "sites": sites,
            "statuses": [s.value for s in WorkOrderStatus],
            "filtered": chosen.active,
        }

    def render_board(who: Viewer, found: dict[str, Any]) -> str:
        env = renderer.environment(who.language)
        context = {"viewer": who, "fmt": who.formats, **found}
        return env.get_template("_dispatch_board.html").render(context)

    @router.get("/dispatch", operation_id="ui.dispatch")
    async def board(
        request: Request,
        who: Annotated[Viewer, viewer("ui.dispatch")],
        chosen: Annotated[BoardFilter, Depends(board_filter)],
    ) -> Response:
        def work() -> tuple[dict[str, Any], list[str]]:
            return gather(who, chosen), service.technicians(who.region)

        found, technicians = await run_in_threadpool(work)
        html = render_board(who, found)
        return renderer.page(
            request, "dispatch.html", language=who.language, viewer=who, board_html=html,
            digest=digest_of(html), chosen=chosen, technicians=technicians,
            all_statuses=[s.value for s in WorkOrderStatus],
        )  # fmt: skip

    @router.get("/dispatch/events", operation_id="ui.dispatch.events")
    async def events(
        request: Request,
        who: Annotated[Viewer, viewer("ui.dispatch.events")],
        chosen: Annotated[BoardFilter, Depends(board_filter)],
        digest: Annotated[str | None, Query(max_length=64, pattern=r"^[0-9a-f]{1,64}$")] = None,
        last_event_id: Digest = None,
    ) -> Response:
        # A reconnecting EventSource sends the id of the last board it got.
        have = last_event_id or digest

        def render() -> str:
            return render_board(who, gather(who, chosen))

        async def gone() -> bool:
            return await request.is_disconnected()

        return StreamingResponse(
            feed.stream(who.region.value, have, render, gone),
            media_type="text/event-stream",
            headers={"cache-control": "no-store", "x-accel-buffering": "no"},
        )

    @router.get("/performance", operation_id="ui.performance")
    async def performance(
        request: Request,
        who: Annotated[Viewer, viewer("ui.performance")],
        days: Annotated[int, Query(ge=1, le=366)] = 30,
    ) -> Response:
        mine: str | None = None
        if who.role == Role.MOSIE:
            mine = who.caller.employee_no
            if not mine:
                raise PageRefused(403, "a MOSIE signs in with their employee number")
        until = utc_now()
        since = until - timedelta(days=days)

        def work() -> dict[str, Any]:
            def of(employee_no: str | None) -> Performance:
                return service.performance(who.region, employee_no, since=since, until=until)

            if mine is not None:
                return {"total": None, "people": [of(mine)]}
            return {
                "total": of(None),
                "people": [of(e) for e in service.technicians(who.region)],
            }

        found = await run_in_threadpool(work)
        return renderer.page(
            request, "performance.html", language=who.language, viewer=who, days=days,
            since=since, until=until, is_desk=who.role in _DESK, **found,
        )  # fmt: skip

    return router


def _last_auto_assign(history: list[HistoryEntry]) -> str | None:
    """Why auto-assignment last found nobody (its latest ``auto_assign`` line)."""
    for entry in reversed(history):
        if entry.action == "auto_assign":
            return entry.reason
    return None
