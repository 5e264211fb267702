"""A report table as an A4 PDF (ReportLab's platypus; the one module of reports that
imports it): title, region and month, the table with its totals, and the notes. Cells
are :func:`~cloud.reports.tables.cell_text`'s, the page's and the CSV's; words (titles,
column headings, notes) come translated from the caller, so the PDF speaks the page's
language. Pure: bytes out of its arguments.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from io import BytesIO
from xml.sax.saxutils import escape

from reportlab.lib import colors
from reportlab.lib.pagesizes import A4, landscape
from reportlab.lib.styles import getSampleStyleSheet
from reportlab.lib.units import mm
from reportlab.platypus import (
    Flowable,
    PageBreak,
    Paragraph,
    SimpleDocTemplate,
    Spacer,
    Table,
    TableStyle,
)

from cloud.reports.outputs import rows_with_totals
from cloud.reports.tables import ReportTable, cell_text

__all__ = ["render_pdf"]


def _story(table: ReportTable, words: Mapping[str, str]) -> list[Flowable]:
    styles = getSampleStyleSheet()
    title = words.get(f"report.{table.name}", table.name)
    head = f"{title} — {table.region.upper()} — {table.month:%Y-%m}"
    header = [words.get(f"column.{c.key}", c.key) for c in table.columns]
    body = [
        [cell_text(c, row.get(c.key)) for c in table.columns] for row in rows_with_totals(table)
    ]
    grid = Table([header, *body], repeatRows=1, hAlign="LEFT")
    grid.setStyle(
        TableStyle(
            [
                ("FONTSIZE", (0, 0), (-1, -1), 7),
                ("FONTNAME", (0, 0), (-1, 0), "Helvetica-Bold"),
                ("ALIGN", (1, 1), (-1, -1), "RIGHT"),
                ("LINEBELOW", (0, 0), (-1, 0), 0.5, colors.black),
                ("ROWBACKGROUNDS", (0, 1), (-1, -1), [colors.white, colors.whitesmoke]),
            ]
        )
    )
    story: list[Flowable] = [Paragraph(escape(head), styles["Heading2"]), grid, Spacer(1, 4 * mm)]
    for note in table.notes:
        story.append(Paragraph(escape(words.get(note, note)), styles["BodyText"]))
    return story


def render_pdf(
    tables: Sequence[ReportTable],
    words: Mapping[str, str],
    *,
    language: str,
    invariant: bool = False,
) -> bytes:
    """``tables`` one after another, each from a new page (one report, or a pack).
    ``invariant``: no creation time or random document id, so the same tables make the
    same bytes (a mail's attachment made again on a retry)."""
    buf = BytesIO()
    title = words.get("reports", "Reports")
    pdf = SimpleDocTemplate(
        buf, pagesize=landscape(A4), title=title, author="PoTR", lang=language,
        invariant=1 if invariant else None,
        leftMargin=12 * mm, rightMargin=12 * mm, topMargin=12 * mm, bottomMargin=12 * mm,
    )  # fmt: skip
    story: list[Flowable] = []
    for i, table in enumerate(tables):
        if i:
            story.append(PageBreak())
        story.extend(_story(table, words))
    pdf.build(story)
    return buf.getvalue()
