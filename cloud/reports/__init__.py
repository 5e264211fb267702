"""Analysis and reports (issue 20 point 4): per region and month, the fleet's energy,
availability, performance ratio and completeness; revenue, billed energy and savings
delivered; MOSIE performance (jobs, SLA, first-time fix); alert volumes — as tables the
portal shows with a chart, downloads as CSV and PDF, and sends to the admins as a
monthly pack. Read-only over the tables the other services publish
(:class:`ReportsReader`); imports no service. Support SLA attainment plugs in through
:class:`SupportSlaSource`, which the composition root answers with the support
service's figures (:func:`support_table`).

Across regions with a database each, another region's tables come over its reports
API in exact form (:class:`RemoteReports`, :mod:`cloud.reports.wire`).

Published interface: the names below; other modules import nothing else.
"""

from cloud.reports.api import (
    ReportOut,
    as_out,
    create_cross_region_router,
    create_router,
    download,
    missing_problem,
    parse_month,
    sources_for,
)
from cloud.reports.outputs import csv_text, rows_with_totals, svg_chart
from cloud.reports.packs import (
    Pack,
    PackSettings,
    RegionsMissing,
    RegionUnavailable,
    ServicesSettings,
    TableSource,
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
from cloud.reports.remote import CallerTables, RemoteReports
from cloud.reports.tables import (
    Cell,
    Column,
    ReportTable,
    cell_text,
    combine,
    exact_cell,
    exact_text,
    ratio,
)
from cloud.reports.wire import PARTS_MEDIA_TYPE, ReportParts, as_parts, table_of

__all__ = [
    "FOLLOW_UP_DAYS",
    "PARTS_MEDIA_TYPE",
    "REPORTS",
    "SUPPORT_COLUMNS",
    "CallerTables",
    "Cell",
    "Column",
    "Pack",
    "PackSettings",
    "Reference",
    "RegionUnavailable",
    "RegionsMissing",
    "RemoteReports",
    "ReportOut",
    "ReportParts",
    "ReportTable",
    "ReportsReader",
    "ServicesSettings",
    "SupportSlaSource",
    "TableSource",
    "UtilityPrice",
    "as_out",
    "as_parts",
    "build_pack",
    "cell_text",
    "combine",
    "combined_report",
    "create_cross_region_router",
    "create_router",
    "csv_text",
    "download",
    "exact_cell",
    "exact_text",
    "load_reference",
    "missing_problem",
    "month_bounds",
    "pack_month_due",
    "parse_month",
    "ratio",
    "render_pdf",
    "rows_with_totals",
    "run_monthly_packs",
    "sources_for",
    "support_table",
    "svg_chart",
    "table_of",
]
