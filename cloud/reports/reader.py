"""The reports' figures for one region and month, read-only, straight from the tables
the other services publish (like :class:`cloud.billing.BillsReader` reads billing):
``customers.installations`` (the fleet and its kWp), ``telemetry.energy_site_1d`` and
``telemetry.metrics`` (production per local day), ``billing.invoices`` and
``billing.invoice_lines`` (revenue and billed energy), ``dispatch.work_orders`` and
``dispatch.history`` (MOSIE performance), ``alerts.alarms`` and ``alerts.alarm_history``
(alert volumes). It writes nothing and imports no service.

Every query is filtered in SQL by the caller's region (:class:`~cloud.scope.Scope`);
reports are staff's, so an account's scope (a customer) reaches nothing. Each answer is
an aggregate (a :class:`~cloud.reports.tables.ReportTable` of a few dozen rows at most),
never raw telemetry: the cross-region view combines these tables (module
:mod:`cloud.reports.tables`).

Definitions (the figures' meaning, also in ARCHITECTURE):

* **fleet**: a day's fleet is the region's sites with an installation record installed
  on or before that local day. *Reporting*: sites whose PV counter had samples in the
  day; *availability* = reporting / fleet. *Energy*: the day's PV production (the
  counter's stored site day). *Expected*: the fleet's kWp x the month's reference yield
  (``data/reference.yaml``); *performance ratio* = energy / expected. *Completeness*:
  the PV counter's covered hours / (fleet x 24 h).
* **revenue**: documents issued in the month (issue date), per currency and tariff
  zone; credit notes and cancellations count negative. *Billed energy*: the kWh of
  their energy lines, signed the same way; *utility cost*: that kWh at the utility's
  reference price; *savings* = utility cost - the net billed for that energy.
* **mosie**: per technician, in the region's local month: *jobs* = resolves;
  *SLA met* = resolves at or before the due time of their visit (among those that had
  one); *verified* = verifications; *first-time fix* = verified jobs resolved at the
  first visit, never reopened, with no follow-up job of the same type at the same site
  raised within :data:`FOLLOW_UP_DAYS` of the verification.
* **alerts**: per severity, alarms first raised in the local month, those cleared in
  it, and annunciations (transitions into unacknowledged from another state).
* **support** (from :class:`SupportSlaSource`): per ticket priority, the first-response
  and resolution clocks *decided* in the local month — met (the event by the due time;
  decided at the event) or breached (the due time passed without it; decided at the
  due time) — and attainment = met / measured (:mod:`cloud.support.metrics`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any, Protocol
from zoneinfo import ZoneInfo

from cloud.adapters.postgres import Connection, ConnectionPool, dict_row
from cloud.calendars import builtin_calendar, month_bounds
from cloud.reports.reference import Reference, load_reference
from cloud.reports.tables import Cell, Column, ReportTable, with_ratios
from cloud.scope import Scope
from contracts.topics import Region

__all__ = [
    "FOLLOW_UP_DAYS",
    "REPORTS",
    "SUPPORT_COLUMNS",
    "ReportsReader",
    "SupportSlaSource",
    "month_bounds",
    "support_table",
]

Pool = ConnectionPool[Connection[Any]]

#: A job whose fault comes back (a new job of the same type at the same site) within
#: this many days of its verification was not fixed the first time.
FOLLOW_UP_DAYS = 30
_MWH_PER_KWH = Decimal(1_000_000)
_CENT = Decimal("0.01")

FLEET_COLUMNS = (
    Column("day", "key"),
    Column("sites", "count"),
    Column("reporting", "count"),
    Column("availability", "percent", ("reporting", "sites")),
    Column("energy_kwh", "decimal"),
    Column("expected_kwh", "decimal"),
    Column("performance_ratio", "percent", ("energy_kwh", "expected_kwh")),
    Column("covered_h", "decimal"),
    Column("expected_h", "count"),
    Column("completeness", "percent", ("covered_h", "expected_h")),
)
REVENUE_COLUMNS = (
    Column("currency", "key"),
    Column("tariff_zone", "key"),
    Column("documents", "count"),
    Column("net", "decimal"),
    Column("tax", "decimal"),
    Column("gross", "decimal"),
    Column("billed_kwh", "decimal"),
    Column("energy_net", "decimal"),
    Column("utility_cost", "decimal"),
    Column("savings", "decimal"),
    Column("savings_share", "percent", ("savings", "utility_cost")),
)
MOSIE_COLUMNS = (
    Column("technician", "key"),
    Column("jobs", "count"),
    Column("sla_measured", "count"),
    Column("sla_met", "count"),
    Column("sla_attainment", "percent", ("sla_met", "sla_measured")),
    Column("verified", "count"),
    Column("first_time_fixes", "count"),
    Column("first_time_fix_rate", "percent", ("first_time_fixes", "verified")),
)
ALERT_COLUMNS = (
    Column("severity", "key"),
    Column("raised", "count"),
    Column("cleared", "count"),
    Column("annunciations", "count"),
)
SUPPORT_COLUMNS = (
    Column("priority", "key"),
    Column("first_response_measured", "count"),
    Column("first_response_met", "count"),
    Column(
        "first_response_attainment", "percent", ("first_response_met", "first_response_measured")
    ),
    Column("resolution_measured", "count"),
    Column("resolution_met", "count"),
    Column("resolution_attainment", "percent", ("resolution_met", "resolution_measured")),
)

#: The reports, in the order the portal lists them.
REPORTS = ("fleet", "revenue", "mosie", "alerts")
_SEVERITIES = ("urgent", "high", "medium", "low")


class SupportSlaSource(Protocol):
    """Support SLA attainment (issue 20 point 1), answered by the support service: its
    table for a region and local month (:func:`support_table`). Reports import no
    service, so the composition root (:mod:`cloud.bootstrap`) wires one in; without it
    the report is not offered, with it the reader calls it like its own queries."""

    def support_sla(self, region: Region, month: date) -> ReportTable: ...


def support_table(region: Region, month: date, rows: Sequence[Mapping[str, Cell]]) -> ReportTable:
    """The ``support`` report from the support service's counts per priority (a
    :class:`SupportSlaSource` builds it with this): each row's parts as
    :data:`SUPPORT_COLUMNS` name them, the ratios worked out here."""
    parts = [c.key for c in SUPPORT_COLUMNS if c.ratio_of is None]
    table_rows = [with_ratios(SUPPORT_COLUMNS, {k: row.get(k) for k in parts}) for row in rows]
    return ReportTable(
        "support", month.replace(day=1), region.value, SUPPORT_COLUMNS, ("priority",),
        "resolution_attainment", table_rows, ("note.support",),
    )  # fmt: skip


def _last_day(month: date) -> date:
    return (month.replace(day=1) + timedelta(days=32)).replace(day=1) - timedelta(days=1)


def _region_zone(region: Region) -> ZoneInfo:
    calendar = builtin_calendar(region)
    return calendar.time_zone(calendar.default_jurisdiction)


_FLEET = """
WITH fleet AS (
    SELECT i.site_id, i.pv_kwp, i.installed_on FROM customers.installations i
    WHERE i.region = %(region)s AND i.installed_on <= %(last)s
), joining AS (
    -- sites by the day they join the month's fleet (those installed before: its 1st)
    SELECT greatest(installed_on, %(first)s::date) AS day, count(*) AS n, sum(pv_kwp) AS kwp
    FROM fleet GROUP BY 1
), sizes AS (
    SELECT d::date AS day,
           sum(coalesce(j.n, 0)) OVER (ORDER BY d) AS sites,
           sum(coalesce(j.kwp, 0)) OVER (ORDER BY d) AS kwp
    FROM generate_series(%(first)s::date, %(last)s::date, interval '1 day') AS d
    LEFT JOIN joining j ON j.day = d::date
), pv AS (
    SELECT e.day, count(*) FILTER (WHERE e.samples > 0) AS reporting,
           sum(e.energy_mwh) AS energy_mwh, sum(extract(epoch FROM e.covered)) AS covered_s
    FROM telemetry.energy_site_1d e
    -- the installations themselves, not the CTE: the planner hashes the smaller side
    JOIN customers.installations f ON f.site_id = e.site_id AND f.installed_on <= e.day
    WHERE f.region = %(region)s
      AND e.metric_id = (SELECT id FROM telemetry.metrics WHERE name = 'pv_wh')
      AND e.day BETWEEN %(first)s AND %(last)s
    GROUP BY e.day
)
SELECT s.day, s.sites::int AS sites, coalesce(pv.reporting, 0)::int AS reporting,
       coalesce(pv.energy_mwh, 0)::bigint AS energy_mwh, s.kwp,
       coalesce(pv.covered_s, 0)::bigint AS covered_s
FROM sizes s LEFT JOIN pv ON pv.day = s.day
ORDER BY s.day
"""

_SIGN = "CASE WHEN i.kind IN ('invoice', 'debit_note') THEN 1 ELSE -1 END"
_REVENUE = f"""
WITH energy AS (
    SELECT l.invoice_id, sum(l.kwh) AS kwh, sum(l.net) AS net
    FROM billing.invoice_lines l
    JOIN billing.invoices i ON i.id = l.invoice_id
    WHERE l.description_key = 'energy' AND i.region = %(region)s
      AND i.issue_date BETWEEN %(first)s AND %(last)s
    GROUP BY l.invoice_id
)
SELECT i.currency, i.tariff_zone,
       count(*) AS documents,
       sum({_SIGN} * i.net) AS net,
       sum({_SIGN} * i.tax) AS tax,
       sum({_SIGN} * i.gross) AS gross,
       coalesce(sum({_SIGN} * e.kwh), 0) AS billed_kwh,
       coalesce(sum({_SIGN} * e.net), 0) AS energy_net
FROM billing.invoices i
LEFT JOIN energy e ON e.invoice_id = i.id
WHERE i.region = %(region)s AND i.issue_date BETWEEN %(first)s AND %(last)s
GROUP BY i.currency, i.tariff_zone
ORDER BY i.currency, i.tariff_zone
"""

_MOSIE = """
WITH resolves AS (
    SELECT h.actor AS technician, h.at, h.resolve_by
    FROM dispatch.history h JOIN dispatch.work_orders w ON w.id = h.work_order_id
    WHERE w.region = %(region)s AND h.action = 'resolve'
      AND h.at >= %(since)s AND h.at < %(until)s
), verified AS (
    SELECT w.id, w.site_id, w.type, w.created_at, w.visits, w.reopen_count, h.at,
           coalesce(h.assignee, w.assignee, '-') AS technician
    FROM dispatch.history h JOIN dispatch.work_orders w ON w.id = h.work_order_id
    WHERE w.region = %(region)s AND h.action = 'verify'
      AND h.at >= %(since)s AND h.at < %(until)s
), followed AS (
    -- a job of the same type at the same site raised after it, within the window
    SELECT DISTINCT v.id FROM verified v JOIN dispatch.work_orders f
      ON f.region = %(region)s AND f.site_id = v.site_id AND f.type = v.type
     AND f.id <> v.id AND f.created_at > v.created_at
     AND f.created_at <= v.at + make_interval(days => %(follow_up)s)
), verifications AS (
    SELECT v.technician,
           (v.visits = 1 AND v.reopen_count = 0 AND fo.id IS NULL) AS first_time
    FROM verified v LEFT JOIN followed fo ON fo.id = v.id
)
SELECT technician, sum(jobs)::int AS jobs, sum(sla_measured)::int AS sla_measured,
       sum(sla_met)::int AS sla_met, sum(verified)::int AS verified,
       sum(first_time_fixes)::int AS first_time_fixes
FROM (
    SELECT technician, 1 AS jobs, (resolve_by IS NOT NULL)::int AS sla_measured,
           coalesce(at <= resolve_by, false)::int AS sla_met, 0 AS verified,
           0 AS first_time_fixes
    FROM resolves
    UNION ALL
    SELECT technician, 0, 0, 0, 1, first_time::int FROM verifications
) AS counted
GROUP BY technician ORDER BY technician
"""

_ALERTS = """
WITH mine AS (
    SELECT id, severity, first_raised_at, cleared_at FROM alerts.alarms
    WHERE region = %(region)s
), raised AS (
    SELECT severity, count(*) AS n FROM mine
    WHERE first_raised_at >= %(since)s AND first_raised_at < %(until)s GROUP BY 1
), cleared AS (
    SELECT severity, count(*) AS n FROM mine
    WHERE cleared_at >= %(since)s AND cleared_at < %(until)s GROUP BY 1
), annunciated AS (
    SELECT m.severity, count(*) AS n FROM alerts.alarm_history h JOIN mine m ON m.id = h.alarm_id
    WHERE h.to_state = 'unacknowledged' AND h.from_state <> 'unacknowledged'
      AND h.at >= %(since)s AND h.at < %(until)s GROUP BY 1
)
SELECT s.severity, coalesce(r.n, 0)::int AS raised, coalesce(c.n, 0)::int AS cleared,
       coalesce(a.n, 0)::int AS annunciations
FROM unnest(%(severities)s::text[]) WITH ORDINALITY AS s(severity, ord)
LEFT JOIN raised r ON r.severity = s.severity
LEFT JOIN cleared c ON c.severity = s.severity
LEFT JOIN annunciated a ON a.severity = s.severity
ORDER BY s.ord
"""


class ReportsReader:
    """The region's report tables for a month; blocking: call from a thread in async
    code. ``support``: the support SLA source once there is one (None: no such report)."""

    def __init__(
        self,
        pool: Pool,
        *,
        reference: Reference | None = None,
        support: SupportSlaSource | None = None,
        zone_of: Callable[[Region], ZoneInfo] = _region_zone,
    ) -> None:
        self._pool = pool
        self._reference = reference or load_reference()
        self._support = support
        self._zone_of = zone_of

    @property
    def names(self) -> tuple[str, ...]:
        """The reports this reader makes (``support`` only with a source)."""
        return (*REPORTS, "support") if self._support is not None else REPORTS

    def report(self, name: str, month: date, *, scope: Scope) -> ReportTable | None:
        """Report ``name`` for ``month`` in ``scope``'s region, or None when the scope
        reaches no region's reports (every region, or a customer's account)."""
        if scope.region is None or scope.by_account:
            return None
        month = month.replace(day=1)
        builders: dict[str, Callable[[Region, date], ReportTable]] = {
            "fleet": self._fleet,
            "revenue": self._revenue,
            "mosie": self._mosie,
            "alerts": self._alerts,
        }
        if name == "support" and self._support is not None:
            return self._support.support_sla(scope.region, month)
        build = builders.get(name)
        if build is None:
            raise ValueError(f"no report {name!r}")
        return build(scope.region, month)

    def _rows(self, sql: str, params: dict[str, Any]) -> list[dict[str, Any]]:
        with self._pool.connection() as conn:
            return conn.cursor(row_factory=dict_row).execute(sql, params).fetchall()

    def _fleet(self, region: Region, month: date) -> ReportTable:
        last = _last_day(month)
        rows = self._rows(_FLEET, {"region": region.value, "first": month, "last": last})
        per_kwp = self._reference.yield_per_kwp_day(region.value, month) or Decimal(0)
        table_rows = [
            with_ratios(
                FLEET_COLUMNS,
                {
                    "day": r["day"].isoformat(),
                    "sites": r["sites"],
                    "reporting": r["reporting"],
                    "energy_kwh": Decimal(r["energy_mwh"]) / _MWH_PER_KWH,
                    "expected_kwh": Decimal(r["kwp"]) * per_kwp,
                    "covered_h": Decimal(r["covered_s"]) / 3600,
                    "expected_h": r["sites"] * 24,
                },
            )
            for r in rows
        ]
        source = self._reference.yield_source(region.value)
        notes = ("note.fleet",) + (
            (f"reference yield: {source[0]} (unverified)",) if source and not source[1] else ()
        )
        return ReportTable(
            "fleet", month, region.value, FLEET_COLUMNS, ("day",), "energy_kwh", table_rows,
            notes,
        )  # fmt: skip

    def _revenue(self, region: Region, month: date) -> ReportTable:
        last = _last_day(month)
        rows = self._rows(_REVENUE, {"region": region.value, "first": month, "last": last})
        notes: list[str] = ["note.revenue"]
        out: list[dict[str, Cell]] = []
        for r in rows:
            price = self._reference.utility_price(region.value, r["tariff_zone"], month)
            cost = (
                (r["billed_kwh"] * price.price).quantize(_CENT, rounding=ROUND_HALF_UP)
                if price is not None
                else None
            )
            if price is not None:
                flag = "" if price.verified else " (unverified)"
                notes.append(
                    f"utility price {r['tariff_zone']}: {price.price} {r['currency']}/kWh"
                    f" from {price.effective_from}, {price.source}{flag}"
                )
            out.append(
                with_ratios(
                    REVENUE_COLUMNS,
                    {
                        **{k: r[k] for k in ("currency", "tariff_zone", "documents")},
                        **{k: r[k] for k in ("net", "tax", "gross", "billed_kwh", "energy_net")},
                        "utility_cost": cost,
                        "savings": None if cost is None else cost - r["energy_net"],
                    },
                )
            )
        return ReportTable(
            "revenue", month, region.value, REVENUE_COLUMNS, ("currency", "tariff_zone"),
            "savings", out, tuple(dict.fromkeys(notes)), totals_by="currency",
        )  # fmt: skip

    def _window(self, region: Region, month: date) -> dict[str, Any]:
        since, until = month_bounds(month, self._zone_of(region))
        return {"region": region.value, "since": since, "until": until}

    def _mosie(self, region: Region, month: date) -> ReportTable:
        params = {**self._window(region, month), "follow_up": FOLLOW_UP_DAYS}
        rows = [with_ratios(MOSIE_COLUMNS, r) for r in self._rows(_MOSIE, params)]
        return ReportTable(
            "mosie", month, region.value, MOSIE_COLUMNS, ("technician",), "jobs", rows,
            ("note.mosie",),
        )  # fmt: skip

    def _alerts(self, region: Region, month: date) -> ReportTable:
        params = {**self._window(region, month), "severities": list(_SEVERITIES)}
        rows: Sequence[dict[str, Cell]] = self._rows(_ALERTS, params)
        return ReportTable(
            "alerts", month, region.value, ALERT_COLUMNS, ("severity",), "raised", list(rows),
            ("note.alerts",),
        )  # fmt: skip
