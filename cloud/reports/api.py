"""Reports' REST routes, relative to the portal's regional prefix ``/api/v1/{region}``:
``GET /reports/{name}?month=YYYY-MM&format=json|csv|pdf`` for each report, one route
(and one policy entry, ``reports.<name>``) per report, so the portal's policy decides
who reads which: admins every report, operators the fleet, alerts, MOSIE and support
ones (not revenue), support staff the support one. The region is the URL's; figures are
the reader's, scoped in SQL.

``GET /reports/all/{name}?month=…&format=…`` (one route, policy entry ``reports.all``,
:func:`create_cross_region_router`): the report across every region, each region's
table made by its own reader and :func:`~cloud.reports.tables.combine`-d — for callers
whose scope is every region (403 for any other role). The URL's region is only where
the gateway sent the request. Where a region's table comes from: a local reader, or —
when each region has its own database — that region's reports API with the caller's
own token (``remote``, :class:`~cloud.reports.remote.RemoteReports`). A region whose
table cannot be had makes the answer 503 naming it (``detail.missing_regions``), never
a total of the others.

``format=parts`` (regional route only) answers the table in exact machine form
(:class:`~cloud.reports.wire.ReportParts`, media type ``application/vnd.potr.report-
parts+json``): what another region's process combines. The JSON (``format=json``) is
unchanged.
"""

# No ``from __future__ import annotations``: FastAPI resolves the routes' annotations.

import re
from collections.abc import Callable, Mapping
from datetime import date
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Path, Query, Request, Response, status
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from cloud.apitypes import problem
from cloud.reports.outputs import csv_text
from cloud.reports.packs import RegionsMissing, TableSource, combined_report
from cloud.reports.pdf import render_pdf
from cloud.reports.reader import ReportsReader
from cloud.reports.remote import RemoteReports
from cloud.reports.tables import ReportTable, cell_text
from cloud.reports.wire import PARTS_MEDIA_TYPE, as_parts, parts_schema
from cloud.scope import Access
from contracts.topics import Region

__all__ = [
    "ReportOut",
    "as_out",
    "create_cross_region_router",
    "create_router",
    "download",
    "missing_problem",
    "parse_month",
    "sources_for",
]

_MONTH = re.compile(r"^(20[2-9][0-9])-(0[1-9]|1[0-2])$")
MONTH_PATTERN = _MONTH.pattern
Month = Annotated[
    str, Query(pattern=MONTH_PATTERN, max_length=7, description="the local month, YYYY-MM")
]
Format = Annotated[Literal["json", "csv", "pdf"], Query(description="json, csv or pdf")]
RegionalFormat = Annotated[
    Literal["json", "csv", "pdf", "parts"],
    Query(description="json, csv, pdf, or parts (the exact table another region combines)"),
]
Language = Annotated[Literal["en", "es"], Query(description="the PDF's language")]
_Text = Annotated[str, Field(max_length=300)]
ReportName = Annotated[
    str, Path(pattern=r"^[a-z][a-z0-9_]{0,31}$", max_length=32, description="the report")
]


class ReportOut(BaseModel):
    """One report for a region and month: ``rows`` and ``totals`` hold each column's
    cell as text, exactly as the CSV, the PDF and the page write it ('' where a ratio
    has no denominator). ``totals``: one row, or one per currency."""

    name: Annotated[str, Field(max_length=32)]
    region: Annotated[str, Field(max_length=8)]
    month: Annotated[str, Field(max_length=7)]
    columns: Annotated[list[Annotated[str, Field(max_length=32)]], Field(max_length=32)]
    rows: Annotated[list[dict[str, _Text]], Field(max_length=1000)]
    totals: Annotated[list[dict[str, _Text]], Field(max_length=16)]
    notes: Annotated[list[_Text], Field(max_length=32)]


def parse_month(text: str) -> date | None:
    found = _MONTH.fullmatch(text.strip())
    return date(int(found[1]), int(found[2]), 1) if found else None


def _cells(table: ReportTable, row: Mapping[str, Any]) -> dict[str, str]:
    return {c.key: cell_text(c, row.get(c.key)) for c in table.columns}


def as_out(table: ReportTable, notes: Callable[[str], str] = str) -> ReportOut:
    return ReportOut(
        name=table.name,
        region=table.region,
        month=f"{table.month:%Y-%m}",
        columns=[c.key for c in table.columns],
        rows=[_cells(table, r) for r in table.rows],
        totals=[_cells(table, r) for r in table.totals],
        notes=[notes(n)[:300] for n in table.notes],
    )


def download(table: ReportTable, fmt: str, words: Mapping[str, str], language: str) -> Response:
    """``table`` as a CSV or PDF download named ``<name>-<region>-<YYYY-MM>``."""
    stem = f"{table.name}-{table.region}-{table.month:%Y-%m}"
    headers = {"Cache-Control": "private, no-store"}
    if fmt == "csv":
        headers["Content-Disposition"] = f'attachment; filename="{stem}.csv"'
        return Response(csv_text(table), media_type="text/csv; charset=utf-8", headers=headers)
    headers["Content-Disposition"] = f'attachment; filename="{stem}.pdf"'
    pdf = render_pdf([table], words, language=language)
    return Response(pdf, media_type="application/pdf", headers=headers)


def _first_day(month: str) -> date:
    first = parse_month(month)
    if first is None:  # the route's pattern already refused it; kept for mypy
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_ENTITY, "month: YYYY-MM")
    return first


def answer(table: ReportTable, fmt: str, words: Mapping[str, str], language: str) -> Any:
    """The table as JSON (:class:`ReportOut`, notes in ``words``), in exact form
    (``parts``) or its download."""
    if fmt == "json":
        return as_out(table, lambda n: words.get(n, n))
    if fmt == "parts":
        return Response(
            as_parts(table).model_dump_json(),
            media_type=PARTS_MEDIA_TYPE,
            headers={"Cache-Control": "private, no-store"},
        )
    return download(table, fmt, words, language)


def _bearer(request: Request) -> str:
    """The caller's token (the access dependency has checked it is a bearer token)."""
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    return token.strip() if scheme.lower() == "bearer" else ""


def missing_problem(exc: RegionsMissing) -> HTTPException:
    """503 naming the regions whose tables could not be had, and why."""
    names = ", ".join(r.value for r in exc.missing)
    return HTTPException(
        status.HTTP_503_SERVICE_UNAVAILABLE,
        {
            "message": f"no figures across the regions: region(s) {names} did not answer",
            "missing_regions": [r.value for r in exc.missing],
            "reasons": {r.value: reason for r, reason in exc.missing.items()},
        },
        headers={"Retry-After": "30"},
    )


def create_router(
    reader: ReportsReader,
    *,
    access: Callable[[str], Callable[..., Any]],
    words_for: Callable[[str], Mapping[str, str]],
) -> APIRouter:
    """Routes under ``/reports``; ``words_for(language)``: the PDF's words (the portal's
    catalogue)."""
    router = APIRouter(tags=["reports"])
    answers: dict[int | str, dict[str, Any]] = {
        200: {
            "content": {
                "text/csv": {},
                "application/pdf": {},
                PARTS_MEDIA_TYPE: {"schema": parts_schema()},
            },
            "description": "the report (json), its CSV or PDF, or its exact parts (parts)",
        },
        404: problem("a region out of reach"),
        422: problem("a month that is not YYYY-MM (2020-2099), or an unknown format"),
    }

    def add(name: str) -> None:
        route = f"reports.{name}"

        @router.get(
            f"/reports/{name}",
            response_model=ReportOut,
            operation_id=route,
            summary=f"The {name} report of the region for a month (json, csv or pdf)",
            responses=answers,
        )
        async def get_report(
            who: Annotated[Access, Depends(access(route))],
            month: Month,
            format: RegionalFormat = "json",
            lang: Language = "en",
        ) -> Any:
            first = _first_day(month)
            table = await run_in_threadpool(reader.report, name, first, scope=who.scope)
            if table is None:
                raise HTTPException(status.HTTP_404_NOT_FOUND, "no reports in this scope")
            return answer(table, format, words_for(lang), lang)

    for name in reader.names:
        add(name)
    return router


def sources_for(
    readers: Mapping[Region, TableSource],
    remote: Mapping[Region, RemoteReports],
    token: str,
) -> dict[Region, TableSource]:
    """Each region's source in :class:`Region` order: its local reader, else its
    reports API with ``token``."""
    sources: dict[Region, TableSource] = {}
    for region in Region:
        if region in readers:
            sources[region] = readers[region]
        elif region in remote:
            sources[region] = remote[region].for_caller(token)
    return sources


def create_cross_region_router(
    readers: Mapping[Region, ReportsReader],
    *,
    access: Callable[[str], Callable[..., Any]],
    words_for: Callable[[str], Mapping[str, str]],
    remote: Mapping[Region, RemoteReports] | None = None,
) -> APIRouter:
    """``GET /reports/all/{name}``: each report of ``readers``' first reader (they make
    the same ones) across the regions of ``readers`` — one reader per region, each over
    its region's data — and of ``remote`` (the other regions' reports APIs, asked with
    the caller's token) (module docstring); 404 for a name that is no report, 503
    naming a region that did not answer."""
    router = APIRouter(tags=["reports"])
    names = next(iter(readers.values())).names
    others = dict(remote or {})

    @router.get(
        "/reports/all/{name}",
        response_model=ReportOut,
        operation_id="reports.all",
        summary="A report across every region for a month (json, csv or pdf)",
        description="Each region's table, made next to its data, combined: parts added,"
        " ratios worked out again, money totalled per currency. Only for callers whose"
        " scope is every region (admins); 403 for anyone else.",
        responses={
            200: {
                "content": {"text/csv": {}, "application/pdf": {}},
                "description": "the report across the regions (json), or its CSV or PDF",
            },
            404: problem("no such report, or a region this process does not serve"),
            422: problem("a month that is not YYYY-MM (2020-2099), or an unknown format"),
            503: problem(
                "a region's table could not be had (its API did not answer in time, or"
                " refused): `detail.missing_regions` names them, `detail.reasons` says"
                " why; no partial total is given"
            ),
        },
    )
    async def get_combined(
        who: Annotated[Access, Depends(access("reports.all"))],
        request: Request,
        name: ReportName,
        month: Month,
        format: Format = "json",
        lang: Language = "en",
    ) -> Any:
        first = _first_day(month)
        if name not in names:
            raise HTTPException(status.HTTP_404_NOT_FOUND, f"no report {name!r}")
        sources = sources_for(readers, others, _bearer(request))
        try:
            table = await run_in_threadpool(
                combined_report, sources, name, first, concurrently=bool(others)
            )
        except RegionsMissing as exc:
            raise missing_problem(exc) from None
        if table is None:
            raise HTTPException(status.HTTP_404_NOT_FOUND, "no region made this report")
        return answer(table, format, words_for(lang), lang)

    return router
