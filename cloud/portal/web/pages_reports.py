"""Reports in the web UI (issue 20 point 4).

``/ui/{region}/reports`` lists the reports the viewer's role may open (admins every one,
operators fleet, alerts, MOSIE and support, support staff support — the policy's
``ui.reports.<name>``) with a month
picker (a GET form: the month is in the address, so a report can be bookmarked).
``/ui/{region}/reports/{name}?month=YYYY-MM`` shows one report: a server-rendered SVG
bar chart (no script; a ``<title>`` on each bar) above the table with its total(s) and
the notes that define its figures; ``&format=csv`` and ``&format=pdf`` download the same
table (:func:`cloud.reports.download`, the REST routes' own), so the page, the CSV and
the PDF write each figure with the same function. A month that is not ``YYYY-MM`` is
the page again with the reason, 422.

``/ui/{region}/reports/all/{name}?month=…`` (policy ``ui.reports.all``: callers whose
scope is every region, the admins; 403 for anyone else) shows a report across every
region: each region's table from its own reader, combined
(:func:`cloud.reports.combined_report`, the monthly pack's), with the same chart, table
and downloads. The index links to it for those who may open it. Any report the readers
make is offered (``reader.names``), so a new one needs no change here. A process pinned
to a region has its own region's reader and the other regions' reports APIs
(``remote``), asked with the viewer's own token; a region that does not answer makes
the page 503 naming it.
"""

# No ``from __future__ import annotations``: the routes' dependencies are local to
# ``create_report_pages`` and FastAPI resolves string annotations in the module's globals.

from collections.abc import Callable, Mapping
from datetime import UTC, date, datetime, timedelta
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import Response
from markupsafe import Markup
from starlette.concurrency import run_in_threadpool

from cloud.portal.authz import may_call
from cloud.portal.web.render import Renderer
from cloud.portal.web.report_words import words_in
from cloud.portal.web.session import PageRefused, Sessions, Viewer
from cloud.reports import (
    RegionsMissing,
    RemoteReports,
    ReportsReader,
    ReportTable,
    cell_text,
    combined_report,
    download,
    parse_month,
    sources_for,
    svg_chart,
)
from contracts.topics import Region

__all__ = ["create_report_pages", "last_month"]

Format = Literal["html", "csv", "pdf"]


def last_month(now: datetime) -> date:
    """The month before ``now``'s (UTC): the newest a report can show whole."""
    return (now.astimezone(UTC).date().replace(day=1) - timedelta(days=1)).replace(day=1)


def create_report_pages(
    sessions: Sessions,
    renderer: Renderer,
    reader: ReportsReader,
    *,
    regions: Mapping[Region, ReportsReader] | None = None,
    remote: Mapping[Region, RemoteReports] | None = None,
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> APIRouter:
    """The report pages; ``regions`` (one reader per region, or the process's own
    region's alone with ``remote`` for the others): also the reports across them."""
    router = APIRouter(prefix="/ui/{region}", include_in_schema=False)

    def viewer(route: str) -> Any:
        return Depends(sessions.viewer(route))

    def reachable(who: Viewer) -> list[str]:
        return [n for n in reader.names if may_call(who.role, f"ui.reports.{n}")]

    def across(who: Viewer) -> list[str]:
        """The reports ``who`` may open across every region (none without readers)."""
        if not regions or not may_call(who.role, "ui.reports.all"):
            return []
        return list(next(iter(regions.values())).names)

    def shown(
        request: Request, who: Viewer, table: ReportTable, *, path: str, where: str
    ) -> Response:
        words = words_in(who.language)
        title = words.get(f"report.{table.name}", table.name)
        rows = [
            [(c, cell_text(c, row.get(c.key))) for c in table.columns]
            for row in [*table.rows, *table.totals]
        ]
        return renderer.page(
            request, "report.html", language=who.language, viewer=who, name=table.name,
            table=table, rows=rows, totals_from=len(table.rows), words=words,
            title=title, month=f"{table.month:%Y-%m}", path=path, where=where,
            chart=Markup(svg_chart(table, f"{title}: {words.get('column.' + table.chart)}")),
        )  # fmt: skip

    def refused_month(request: Request, who: Viewer) -> Response:
        return renderer.page(
            request, "reports.html", language=who.language, viewer=who,
            names=reachable(who), across=across(who), words=words_in(who.language),
            month=f"{last_month(clock()):%Y-%m}", refusal="month", status_code=422,
        )  # fmt: skip

    @router.get("/reports", operation_id="ui.reports")
    async def index(
        request: Request,
        who: Annotated[Viewer, viewer("ui.reports")],
        month: Annotated[str, Query(max_length=20)] = "",
    ) -> Response:
        chosen = parse_month(month) if month else last_month(clock())
        return renderer.page(
            request, "reports.html", language=who.language, viewer=who,
            names=reachable(who), across=across(who), words=words_in(who.language),
            month=f"{(chosen or last_month(clock())):%Y-%m}",
            refusal=None if chosen else "month", status_code=200 if chosen else 422,
        )  # fmt: skip

    def add(name: str) -> None:
        route = f"ui.reports.{name}"

        @router.get(f"/reports/{name}", operation_id=route)
        async def show(
            request: Request,
            who: Annotated[Viewer, viewer(route)],
            month: Annotated[str, Query(max_length=20)] = "",
            format: Format = "html",
        ) -> Response:
            chosen = parse_month(month) if month else last_month(clock())
            if chosen is None:
                return refused_month(request, who)
            table = await run_in_threadpool(reader.report, name, chosen, scope=who.scope)
            if table is None:
                raise PageRefused(404, "no reports in this scope")
            if format != "html":
                return download(table, format, words_in(who.language), who.language)
            where = who.region.value.upper()
            return shown(request, who, table, path=f"/ui/{who.region.value}/reports/{name}",
                         where=where)  # fmt: skip

    for name in reader.names:
        add(name)

    if regions:
        readers = dict(regions)
        others = dict(remote or {})

        @router.get("/reports/all/{name}", operation_id="ui.reports.all")
        async def show_across(
            request: Request,
            who: Annotated[Viewer, viewer("ui.reports.all")],
            name: Annotated[str, Path(max_length=32)],
            month: Annotated[str, Query(max_length=20)] = "",
            format: Format = "html",
        ) -> Response:
            if name not in across(who):
                raise PageRefused(404, f"no report {name!r}")
            chosen = parse_month(month) if month else last_month(clock())
            if chosen is None:
                return refused_month(request, who)
            sources = sources_for(readers, others, sessions.token(request))
            try:
                table = await run_in_threadpool(
                    combined_report, sources, name, chosen, concurrently=bool(others)
                )
            except RegionsMissing as exc:
                missing = tuple(r.value for r in exc.missing)
                raise PageRefused(503, str(exc), missing=missing) from None
            if table is None:
                raise PageRefused(404, "no region made this report")
            words = words_in(who.language)
            if format != "html":
                return download(table, format, words, who.language)
            where = " + ".join(r.value.upper() for r in sources)
            return shown(request, who, table, path=f"/ui/{who.region.value}/reports/all/{name}",
                         where=where)  # fmt: skip

    return router
