"""The reports' words in a language (issue 20 point 4): report titles, column headings
and the notes that define the figures, as literal ``_()`` calls so ``pybabel extract``
finds them. The page, the PDF (REST and web alike) and the pack read the same dict, so
a heading says the same in each."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from functools import cache
from typing import Any

from cloud.portal.web.i18n import load_translations

__all__ = ["report_words", "words_in"]


def report_words(_: Callable[..., str]) -> dict[str, str]:
    """Key → text: ``report.<name>``, ``column.<key>``, ``note.<name>``, ``reports``."""
    return {
        "reports": _("Reports"),
        "report.fleet": _("Fleet energy and availability"),
        "report.revenue": _("Revenue, billed energy and savings"),
        "report.mosie": _("MOSIE performance"),
        "report.alerts": _("Alert volumes"),
        "report.support": _("Support SLA attainment"),
        "column.day": _("Day"),
        "column.sites": _("Sites"),
        "column.reporting": _("Reporting"),
        "column.availability": _("Availability %"),
        "column.energy_kwh": _("Energy kWh"),
        "column.expected_kwh": _("Expected kWh"),
        "column.performance_ratio": _("Performance ratio %"),
        "column.covered_h": _("Hours covered"),
        "column.expected_h": _("Hours expected"),
        "column.completeness": _("Completeness %"),
        "column.currency": _("Currency"),
        "column.tariff_zone": _("Tariff zone"),
        "column.documents": _("Documents"),
        "column.net": _("Net"),
        "column.tax": _("Tax"),
        "column.gross": _("Gross"),
        "column.billed_kwh": _("Billed kWh"),
        "column.energy_net": _("Billed for energy"),
        "column.utility_cost": _("At the utility's price"),
        "column.savings": _("Savings"),
        "column.savings_share": _("Savings %"),
        "column.technician": _("Technician"),
        "column.jobs": _("Jobs"),
        "column.sla_measured": _("Jobs with a due time"),
        "column.sla_met": _("On time"),
        "column.sla_attainment": _("SLA attainment %"),
        "column.verified": _("Verified"),
        "column.first_time_fixes": _("First-time fixes"),
        "column.first_time_fix_rate": _("First-time fix %"),
        "column.severity": _("Severity"),
        "column.raised": _("Raised"),
        "column.cleared": _("Cleared"),
        "column.annunciations": _("Annunciations"),
        "column.priority": _("Priority"),
        "column.first_response_measured": _("First responses measured"),
        "column.first_response_met": _("First responses on time"),
        "column.first_response_attainment": _("First response SLA %"),
        "column.resolution_measured": _("Resolutions measured"),
        "column.resolution_met": _("Resolutions on time"),
        "column.resolution_attainment": _("Resolution SLA %"),
        "note.fleet": _(
            "A day's fleet: the region's sites installed by that local day. Availability:"
            " sites whose PV counter reported that day. Performance ratio: PV energy"
            " against the sites' kWp times the month's reference yield. Completeness:"
            " hours the PV counter covered against 24 hours per site."
        ),
        "note.revenue": _(
            "Documents issued in the month; credit notes and cancellations count"
            " negative. Savings: the billed kWh at the utility's reference price, less"
            " what was billed for that energy."
        ),
        "note.mosie": _(
            "Jobs: resolves in the region's local month. On time: resolved by the due"
            " time of the visit. First-time fix: verified, resolved at the first visit,"
            " never reopened, and no job of the same type at the site within 30 days."
        ),
        "note.support": _(
            "Per ticket priority, the SLA clocks decided in the region's local month:"
            " on time when the first response or resolution came by its due time"
            " (counted in the month it came), late when the due time passed without it"
            " (counted in the month of the due time). Business hours, holidays and time"
            " waiting on the customer are the support policy's."
        ),
        "note.alerts": _(
            "Alarms first raised and cleared in the region's local month; annunciations:"
            " each time an alarm became unacknowledged again."
        ),
    }


@cache
def _catalogues() -> dict[str, Any]:
    return dict(load_translations())


@cache
def words_in(language: str) -> Mapping[str, str]:
    """:func:`report_words` in ``language`` (English for one without a catalogue)."""
    catalogues = _catalogues()
    return report_words((catalogues.get(language) or catalogues["en"]).gettext)
