"""A report as plain data: named columns and rows of figures, one table that the portal
page, its chart, the CSV and the PDF all draw from, so the four hold the same numbers
(each cell is written by :func:`cell_text`, nowhere else).

Figures are additive parts (counts, kWh, money) or ratios of two of them (a
:class:`Column` with ``ratio_of``). Ratios are never summed: :func:`combine` adds the
parts of rows with the same key — the regions' tables of one report — and works every
ratio out again from the added parts. That is how a cross-region report is made: each
region computes its table next to its own data, and only tables travel (module
:mod:`cloud.reports.packs`).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date
from decimal import ROUND_HALF_UP, Decimal
from typing import Literal

__all__ = [
    "Cell",
    "Column",
    "ReportTable",
    "cell_text",
    "combine",
    "exact_cell",
    "exact_text",
    "ratio",
]

#: What a cell holds: text (a key), a count, a Decimal figure; None where a ratio has no
#: denominator (shown as an empty cell, never as 0).
Cell = str | int | Decimal | None
Kind = Literal["key", "count", "decimal", "percent"]

_PLACES = {"decimal": Decimal("0.01"), "percent": Decimal("0.1")}
_INTEGER = re.compile(r"-?[0-9]{1,30}")
#: Decimal's own ``str``: digits, a point, an exponent (``5E-7``); no NaN or Infinity.
_DECIMAL = re.compile(r"-?[0-9]{1,40}(\.[0-9]{1,40})?(E[+-]?[0-9]{1,2})?")


@dataclass(frozen=True, slots=True)
class Column:
    """``key``: the CSV header and the translation key (``report.column.<key>``);
    ``kind``: how it is written; ``ratio_of``: (numerator, denominator) column keys of a
    percentage, worked out from the row's parts."""

    key: str
    kind: Kind
    ratio_of: tuple[str, str] | None = None


@dataclass(frozen=True, slots=True)
class ReportTable:
    """One report for one month: ``rows`` are dicts by column key; ``keys``: the columns
    that identify a row (what :func:`combine` groups by); ``chart``: the column the
    page's bar chart shows, one bar a row; ``total``: the rows summed (parts) with
    ratios worked out again."""

    name: str
    month: date
    region: str
    columns: tuple[Column, ...]
    keys: tuple[str, ...]
    chart: str
    rows: list[dict[str, Cell]] = field(default_factory=list)
    #: Notes that belong with the figures (a definition, a source, an unverified price).
    notes: tuple[str, ...] = ()
    #: A column whose values must not be added together (a currency): one total each.
    totals_by: str | None = None

    @property
    def totals(self) -> list[dict[str, Cell]]:
        """The total row, or one per value of ``totals_by`` (money of different
        currencies is never added)."""
        if self.totals_by is None:
            return [_total(self.columns, self.keys, self.rows)]
        groups: dict[Cell, list[dict[str, Cell]]] = {}
        for row in self.rows:
            groups.setdefault(row.get(self.totals_by), []).append(row)
        out = []
        for value, rows in sorted(groups.items(), key=lambda g: str(g[0])):
            total = _total(self.columns, self.keys, rows)
            total[self.totals_by] = value
            out.append(total)
        return out

    def column(self, key: str) -> Column:
        return next(c for c in self.columns if c.key == key)


def ratio(numerator: Cell, denominator: Cell) -> Decimal | None:
    """``numerator / denominator`` in percent, rounded half up to 0.1; None without a
    denominator."""
    if numerator is None or denominator is None or isinstance(numerator, str):
        return None
    if isinstance(denominator, str) or denominator == 0:
        return None
    value = Decimal(numerator) * 100 / Decimal(denominator)
    return value.quantize(_PLACES["percent"], rounding=ROUND_HALF_UP)


def with_ratios(columns: Sequence[Column], row: dict[str, Cell]) -> dict[str, Cell]:
    """``row`` with its ratio columns worked out from its parts."""
    out = dict(row)
    for column in columns:
        if column.ratio_of is not None:
            out[column.key] = ratio(row.get(column.ratio_of[0]), row.get(column.ratio_of[1]))
    return out


def cell_text(column: Column, value: Cell) -> str:
    """How every output writes a cell: counts as integers, figures to 0.01, percentages
    to 0.1, no grouping (the same string on the page, in the CSV and in the PDF)."""
    if value is None:
        return ""
    if column.kind in _PLACES and not isinstance(value, str):
        places = _PLACES[column.kind]
        return str(Decimal(value).quantize(places, rounding=ROUND_HALF_UP))
    return str(value)


def exact_text(column: Column, value: Cell) -> str | None:
    """How a cell travels between regions (the reports' ``format=parts``): its exact
    value as text — a count's digits, a Decimal's every digit (``str``), a key as it is;
    None stays None. Unlike :func:`cell_text`, nothing is rounded, so the receiving side
    adds the very parts this side added."""
    return None if value is None else str(value)


def exact_cell(column: Column, text: str | None) -> Cell:
    """The cell :func:`exact_text` wrote, read back by ``column``'s kind; ``ValueError``
    for text that is no such value (a count that is not an integer, a figure that is no
    finite decimal)."""
    if text is None or column.kind == "key":
        return text
    if column.kind == "count":
        if not _INTEGER.fullmatch(text):
            raise ValueError(f"{column.key}: {text[:40]!r} is not a count")
        return int(text)
    if not _DECIMAL.fullmatch(text):
        raise ValueError(f"{column.key}: {text[:40]!r} is not a decimal figure")
    return Decimal(text)


def _add(a: Cell, b: Cell) -> Cell:
    if a is None:
        return b
    if b is None or isinstance(a, str) or isinstance(b, str):
        return a
    return a + b


def _total(
    columns: Sequence[Column], keys: Sequence[str], rows: Iterable[dict[str, Cell]]
) -> dict[str, Cell]:
    total: dict[str, Cell] = {}
    for column in columns:
        if column.kind == "key" or column.ratio_of is not None:
            continue
        for row in rows:
            total[column.key] = _add(total.get(column.key), row.get(column.key))
    if keys:
        total[keys[-1]] = "total"
    return with_ratios(columns, total)


def combine(tables: Sequence[ReportTable], *, region: str = "all") -> ReportTable:
    """The tables of one report and month from several regions as one: rows with the
    same key have their parts added and their ratios worked out again; rows only one
    region has are kept, in the order first seen (the first table's, then the next's).
    Raises ``ValueError`` for tables of different reports, months or columns (a region
    running another version of a report)."""
    if not tables:
        raise ValueError("nothing to combine")
    head = tables[0]
    if any(t.name != head.name or t.month != head.month for t in tables):
        raise ValueError("tables of different reports or months")
    if any(t.columns != head.columns or t.keys != head.keys for t in tables):
        raise ValueError(f"tables of report {head.name!r} with different columns")
    merged: dict[tuple[Cell, ...], dict[str, Cell]] = {}
    for table in tables:
        for row in table.rows:
            key = tuple(row.get(k) for k in head.keys)
            into = merged.setdefault(key, {k: row.get(k) for k in head.keys})
            for column in head.columns:
                if column.kind != "key" and column.ratio_of is None:
                    into[column.key] = _add(into.get(column.key), row.get(column.key))
    rows = [with_ratios(head.columns, r) for r in merged.values()]
    notes = tuple(dict.fromkeys(n for t in tables for n in t.notes))
    return ReportTable(
        head.name, head.month, region, head.columns, head.keys, head.chart, rows, notes,
        head.totals_by,
    )  # fmt: skip
