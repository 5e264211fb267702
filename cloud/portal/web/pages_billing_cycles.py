"""Billing cycles in the web UI (issue 19 point 6): admins run them, admins and operators
follow them.

``/ui/{region}/billing/cycles`` lists the region's cycles, newest period first (period,
monthly or quarterly, state, who ran it, when, invoices issued, sites skipped, progress
while running) and, for admins, the form that starts one: a month and monthly or
quarterly (CSRF checked). Starting goes through :class:`cloud.billing.CycleRunner`, the
REST route's, which records the cycle and runs it in a background thread; the post
redirects to the cycle's page (post/redirect/get), also when the period's cycle already
exists — a second start never runs a second cycle. Refusals (a period not ended in every
zone of the region, no quarter start) are the list again with the reason, 422 — never a
500. A cycle started while another of the region runs waits for it ("waiting to start").

``/ui/{region}/billing/cycles/{id}`` shows one cycle: its progress, totals per currency,
documents (linked to nothing: a staff member reads a customer's bill through support's
audited view) and the sites it skipped with the reasons. While the cycle runs, its
progress part polls ``…/progress`` with htmx every ``live_interval_s``; the part stops
polling once the cycle is billed, and asks the page to reload (``HX-Refresh``) so the
documents it issued appear.
"""

# No ``from __future__ import annotations``: the routes' dependencies are local to
# ``create_cycle_pages`` and FastAPI resolves string annotations in the module's globals.

import re
from collections.abc import Callable
from datetime import date
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Form, Path, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from cloud.billing import (
    CycleRunner,
    CycleSummary,
    PeriodNotEndedError,
    RunnerClosedError,
)
from cloud.identity import Role
from cloud.portal.web.csrf import check_csrf
from cloud.portal.web.render import Renderer
from cloud.portal.web.session import PageRefused, Sessions, Viewer

__all__ = ["create_cycle_pages", "parse_month"]

CycleIdPath = Annotated[int, Path(ge=1, le=2**63 - 1)]
_MONTH = re.compile(r"^(20[2-9][0-9])-(0[1-9]|1[0-2])$")
#: Cycles one list shows; documents and skipped sites one cycle page lists.
_LISTED = 50
_SHOWN = 200


def parse_month(text: str) -> date | None:
    """A form's ``YYYY-MM`` (2020-2099) as the month's first day; None if it is not one."""
    found = _MONTH.fullmatch(text.strip())
    return date(int(found[1]), int(found[2]), 1) if found else None


def create_cycle_pages(sessions: Sessions, renderer: Renderer, runner: CycleRunner) -> APIRouter:
    router = APIRouter(prefix="/ui/{region}", include_in_schema=False)
    reader = runner.reader

    def viewer(route: str) -> Any:
        return Depends(sessions.viewer(route))

    async def list_page(
        request: Request,
        who: Viewer,
        refusal: str | None = None,
        status_code: int = 200,
        typed: tuple[str, str] = ("", "monthly"),
    ) -> Response:
        cycles = await run_in_threadpool(lambda: reader.cycles(who.region, limit=_LISTED))
        return renderer.page(
            request, "billing_cycles.html", language=who.language, viewer=who, cycles=cycles,
            may_start=who.role == Role.ADMIN, refusal=refusal, status_code=status_code,
            typed_month=typed[0], typed_cycle=typed[1],
        )  # fmt: skip

    @router.get("/billing/cycles", operation_id="ui.billing.cycles")
    async def listing(
        request: Request, who: Annotated[Viewer, viewer("ui.billing.cycles")]
    ) -> Response:
        return await list_page(request, who)

    @router.post(
        "/billing/cycles",
        operation_id="ui.billing.cycles.start",
        dependencies=[Depends(check_csrf)],
    )
    async def start(
        request: Request,
        who: Annotated[Viewer, viewer("ui.billing.cycles.start")],
        month: Annotated[str, Form(max_length=20)],
        cycle: Annotated[Literal["monthly", "quarterly"], Form()] = "monthly",
    ) -> Response:
        _ = renderer.gettext(who.language)
        typed = (month.strip()[:7], cycle)
        first_day = parse_month(month)
        if first_day is None:
            text = _("Not started: %(reason)s", reason=_("give a month as YYYY-MM."))
            return await list_page(request, who, text, 422, typed)
        subject = who.caller.subject
        try:
            started = await run_in_threadpool(
                lambda: runner.start(who.region, first_day, cycle, subject)
            )
        except RunnerClosedError:
            raise PageRefused(503, "the portal is shutting down") from None
        except ValueError as exc:
            text = _("Not started: %(reason)s", reason=_refusal(_, who, exc))
            return await list_page(request, who, text, 422, typed)
        # Post/redirect/get: a reload shows the cycle, it does not start anything again.
        url = f"/ui/{who.region.value}/billing/cycles/{started.cycle.id}"
        return RedirectResponse(url, status_code=303)

    def progress_html(who: Viewer, cycle: CycleSummary) -> str:
        env = renderer.environment(who.language)
        context = {
            "viewer": who, "fmt": who.formats, "c": cycle,
            "live_interval_s": renderer.live_interval_s,
        }  # fmt: skip
        return env.get_template("_cycle_progress.html").render(context)

    @router.get("/billing/cycles/{cycle_id}", operation_id="ui.billing.cycle")
    async def one(
        request: Request, cycle_id: CycleIdPath, who: Annotated[Viewer, viewer("ui.billing.cycle")]
    ) -> Response:
        found = await run_in_threadpool(lambda: reader.cycle(who.region, cycle_id, limit=_SHOWN))
        if found is None:
            raise PageRefused(404, "no such billing cycle in the region")
        return renderer.page(
            request, "billing_cycle.html", language=who.language, viewer=who, c=found,
            progress_html=progress_html(who, found), shown=_SHOWN,
        )  # fmt: skip

    @router.get("/billing/cycles/{cycle_id}/progress", operation_id="ui.billing.cycle.progress")
    async def progress(
        cycle_id: CycleIdPath,
        who: Annotated[Viewer, viewer("ui.billing.cycle.progress")],
        shown: Annotated[Literal["running", "billed"], Query()] = "running",
    ) -> Response:
        found = await run_in_threadpool(lambda: reader.summary(who.region, cycle_id))
        if found is None:
            raise PageRefused(404, "no such billing cycle in the region")
        headers = {"cache-control": "no-store"}
        if shown == "running" and found.state == "billed":
            headers["hx-refresh"] = "true"  # the page lists the documents issued: reload it
        return HTMLResponse(progress_html(who, found), headers=headers)

    return router


def _refusal(_: Callable[..., str], who: Viewer, exc: ValueError) -> str:
    """The reader's words for a period the runner refused."""
    if isinstance(exc, PeriodNotEndedError):
        when = who.formats.datetime(exc.ends_at, "short")
        return _(
            "the period has not ended in every time zone of the region (it ends %(when)s).",
            when=when,
        )
    return _("a quarter starts in January, April, July or October.")
