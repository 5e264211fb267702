"""Analysis and reports (issue 20 point 4): per region and month, the fleet's energy,
availability, performance ratio and completeness; revenue, billed energy and savings
delivered; MOSIE performance (jobs, SLA, first-time fix); alert volumes — as tables the
portal shows with a chart, downloads as CSV and PDF, and sends to the admins as a
monthly pack. Read-only over the tables the other services publish
(:class:`ReportsReader`); imports no service. Support SLA attainment plugs in through
:class:`SupportSlaSource`, which the composition root answers with the support
service's figures (:func:`support_table`).

Published interface: the names below; other modules import nothing else.
"""

from cloud.reports.api import (
    ReportOut,
    as_out,
    create_cross_region_router,
    create_router,
    download,
    parse_month,
)
from cloud.reports.outputs import csv_text, rows_with_totals, svg_chart
from cloud.reports.packs import (
    Pack,
    PackSettings,
    build_pack,
    combined_report,
    pack_month_due,
    run_monthly_packs,
)
from cloud.reports.pdf import render_pdf
from cloud.reports.reader import (
    FOLLOW_UP_DAYS,
    REPORTS,
    SUPPORT_COLUMNS,
    ReportsReader,
    SupportSlaSource,
    month_bounds,
    support_table,
)
from cloud.reports.reference import Reference, UtilityPrice, load_reference
from cloud.reports.tables import Cell, Column, ReportTable, cell_text, combine, ratio

__all__ = [
    "FOLLOW_UP_DAYS",
    "REPORTS",
    "SUPPORT_COLUMNS",
    "Cell",
    "Column",
    "Pack",
    "PackSettings",
    "Reference",
    "ReportOut",
    "ReportTable",
    "ReportsReader",
    "SupportSlaSource",
    "UtilityPrice",
    "as_out",
    "build_pack",
    "cell_text",
    "combine",
    "combined_report",
    "create_cross_region_router",
    "create_router",
    "csv_text",
    "download",
    "load_reference",
    "month_bounds",
    "pack_month_due",
    "parse_month",
    "ratio",
    "render_pdf",
    "rows_with_totals",
    "run_monthly_packs",
    "support_table",
    "svg_chart",
]
