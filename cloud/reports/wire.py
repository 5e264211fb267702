"""A region's finished report table in exact machine form, for another region to combine
(the reports' ``format=parts``, media type :data:`PARTS_MEDIA_TYPE`).

The JSON of :class:`~cloud.reports.ReportOut` writes each cell as the page does, rounded
(0.01 kWh, 0.1 %); adding those would add rounding errors, and a ratio worked out from
rounded parts can differ from the one a single database gives. :class:`ReportParts`
carries the table itself: its columns (key, kind, the parts a ratio is made of), and
each row's keys and additive parts as exact text (:func:`~cloud.reports.tables.exact_text`:
every digit of a count or Decimal, nothing rounded). Ratios do not travel: the reading
side works them out again from the parts, as :func:`~cloud.reports.tables.combine`
does. Notes travel as their keys (each side translates). Flat fields only, so the
OpenAPI document can show the schema inline.
"""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field

from cloud.reports.tables import Cell, Column, ReportTable, exact_cell, exact_text, with_ratios

__all__ = ["PARTS_MEDIA_TYPE", "ReportParts", "as_parts", "parts_schema", "table_of"]

#: The media type of a :class:`ReportParts` answer (not ``application/json``: that one
#: is :class:`~cloud.reports.ReportOut`'s, unchanged for its clients).
PARTS_MEDIA_TYPE = "application/vnd.potr.report-parts+json"

_Key = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]{0,31}$", max_length=32)]
_Exact = Annotated[str, Field(max_length=100)]
_Note = Annotated[str, Field(max_length=300)]


class ReportParts(BaseModel):
    """One report of a region and month, exact: ``columns``/``kinds`` in order;
    ``ratios``: a ratio column's (numerator, denominator); ``rows``: each row's key and
    part columns as exact text (None: no value), ratio columns left out."""

    name: _Key
    region: Annotated[str, Field(max_length=8)]
    month: Annotated[str, Field(pattern=r"^20[2-9][0-9]-(0[1-9]|1[0-2])$", max_length=7)]
    columns: Annotated[list[_Key], Field(min_length=1, max_length=32)]
    kinds: Annotated[
        list[Literal["key", "count", "decimal", "percent"]], Field(min_length=1, max_length=32)
    ]
    ratios: Annotated[
        dict[_Key, Annotated[list[_Key], Field(min_length=2, max_length=2)]],
        Field(max_length=32),
    ]
    keys: Annotated[list[_Key], Field(max_length=8)]
    chart: _Key
    totals_by: _Key | None = None
    rows: Annotated[
        list[Annotated[dict[_Key, _Exact | None], Field(max_length=32)]], Field(max_length=1000)
    ]
    notes: Annotated[list[_Note], Field(max_length=32)]


def as_parts(table: ReportTable) -> ReportParts:
    """``table`` in exact form (its rows' keys and parts; no ratios, no totals)."""
    carried = [c for c in table.columns if c.ratio_of is None]
    return ReportParts(
        name=table.name,
        region=table.region,
        month=f"{table.month:%Y-%m}",
        columns=[c.key for c in table.columns],
        kinds=[c.kind for c in table.columns],
        ratios={c.key: list(c.ratio_of) for c in table.columns if c.ratio_of is not None},
        keys=list(table.keys),
        chart=table.chart,
        totals_by=table.totals_by,
        rows=[{c.key: exact_text(c, row.get(c.key)) for c in carried} for row in table.rows],
        notes=list(table.notes),
    )


def table_of(parts: ReportParts) -> ReportTable:
    """The table ``parts`` carries, its ratios worked out again. ``ValueError`` for one
    that does not hold together (kinds and columns of different lengths, a ratio, key
    or chart naming no column, a cell that is not its column's kind)."""
    if len(parts.kinds) != len(parts.columns):
        raise ValueError("columns and kinds differ in length")
    names = set(parts.columns)
    named = [*parts.keys, parts.chart, *([parts.totals_by] if parts.totals_by else [])]
    named += [part for pair in parts.ratios.values() for part in pair]
    if set(parts.ratios) - names or set(named) - names:
        raise ValueError("a ratio, key or chart names no column")
    columns = tuple(
        Column(key, kind, _pair(parts.ratios.get(key)))
        for key, kind in zip(parts.columns, parts.kinds, strict=True)
    )
    carried = [c for c in columns if c.ratio_of is None]
    rows: list[dict[str, Cell]] = []
    for row in parts.rows:
        cells = {c.key: exact_cell(c, row.get(c.key)) for c in carried}
        rows.append(with_ratios(columns, cells))
    year, month = parts.month.split("-")
    return ReportTable(
        parts.name, date(int(year), int(month), 1), parts.region, columns, tuple(parts.keys),
        parts.chart, rows, tuple(parts.notes), parts.totals_by,
    )  # fmt: skip


def _pair(pair: list[str] | None) -> tuple[str, str] | None:
    return (pair[0], pair[1]) if pair is not None else None


def parts_schema() -> dict[str, Any]:
    """:class:`ReportParts`' JSON schema, for the OpenAPI document (inline: flat)."""
    return ReportParts.model_json_schema(mode="serialization")
