"""A report table as CSV and as a server-rendered SVG bar chart (pure: text out of a
:class:`~cloud.reports.tables.ReportTable`). Cells are written by
:func:`~cloud.reports.tables.cell_text`, as on the page and in the PDF.

The chart needs no script (the portal's CSP allows none inline): one bar per row of the
table's chart column, each with a ``<title>`` holding the row's key and the cell's
text, so a screen reader and a hover read the same figure as the table beside it.
"""

from __future__ import annotations

import csv
import io
from decimal import Decimal
from xml.sax.saxutils import escape, quoteattr

from cloud.reports.tables import Cell, ReportTable, cell_text

__all__ = ["csv_text", "rows_with_totals", "svg_chart"]

_WIDTH, _HEIGHT, _PAD = 640, 220, 28


def rows_with_totals(table: ReportTable) -> list[dict[str, Cell]]:
    """The table's rows then its total row(s): what every output lists."""
    return [*table.rows, *table.totals]


def csv_text(table: ReportTable) -> str:
    """Header (the column keys) then one line per row and total."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow([c.key for c in table.columns])
    for row in rows_with_totals(table):
        writer.writerow([cell_text(c, row.get(c.key)) for c in table.columns])
    return out.getvalue()


def _label(table: ReportTable, row: dict[str, Cell]) -> str:
    return " ".join(str(row.get(k) or "") for k in table.keys).strip()


def svg_chart(table: ReportTable, title: str) -> str:
    """A bar per row of the chart column (values drawn as floats: drawing, not
    figures); an empty table draws the axis alone."""
    column = table.column(table.chart)
    values = [(row, row.get(column.key)) for row in table.rows]
    numbers = [float(v) for _, v in values if v is not None and not isinstance(v, str)]
    top = max([n for n in numbers if n > 0], default=1.0)
    count = max(len(values), 1)
    step = (_WIDTH - 2 * _PAD) / count
    bar = max(step * 0.7, 1.0)
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {_WIDTH} {_HEIGHT}"'
        f' class="report-chart" role="img" aria-label={quoteattr(title)}>',
        f"<title>{escape(title)}</title>",
        f'<line x1="{_PAD}" y1="{_HEIGHT - _PAD}" x2="{_WIDTH - _PAD}"'
        f' y2="{_HEIGHT - _PAD}" class="axis" stroke="currentColor"/>',
        f'<text x="{_PAD}" y="14" class="chart-top" font-size="11">'
        f"{escape(cell_text(column, _as_cell(top, whole=column.kind == 'count')))}</text>",
    ]
    for i, (row, value) in enumerate(values):
        number = float(value) if value is not None and not isinstance(value, str) else 0.0
        height = max(number, 0.0) / top * (_HEIGHT - 2 * _PAD)
        x = _PAD + i * step + (step - bar) / 2
        y = _HEIGHT - _PAD - height
        text = f"{_label(table, row)}: {cell_text(column, value)}"
        parts.append(
            f'<rect x="{x:.1f}" y="{y:.1f}" width="{bar:.1f}" height="{height:.1f}"'
            f' class="bar" fill="currentColor"><title>{escape(text)}</title></rect>'
        )
    if values:
        first, last = _label(table, values[0][0]), _label(table, values[-1][0])
        parts.append(
            f'<text x="{_PAD}" y="{_HEIGHT - 8}" font-size="11">{escape(first)}</text>'
            f'<text x="{_WIDTH - _PAD}" y="{_HEIGHT - 8}" font-size="11"'
            f' text-anchor="end">{escape(last)}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)


def _as_cell(number: float, *, whole: bool) -> Cell:
    return round(number) if whole else Decimal(repr(number))
